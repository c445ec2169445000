#!/usr/bin/env bash
# Installs everything nabla needs on a fresh Debian machine with Node: Debian's rustc-web (Rust
# 1.96, which builds std from its vendored sources for wasm32, so the core gets a relaxed-SIMD
# variant; it replaces Debian's rustc 1.63 packages) with lld-22 as the wasm linker, binaryen
# (wasm-opt), wabt (wasm-objdump, used by the SIMD test), rustfmt, clippy, chromium (the browser
# tests drive it through playwright-core), Fashion-MNIST (examples/cnn-transfer and its test read
# Debian's gzipped IDX files), then `npm ci`. scripts/build-wasm.mjs says which toolchain it used.
set -euo pipefail
cd "$(dirname "$0")/.."

# rustc-web as scripts/build-wasm.mjs looks for it: /usr/bin/rustc >= 1.82 with std's vendored
# sources, and a wasm linker.
has_rustc_web() {
  local minor
  minor=$(/usr/bin/rustc --version 2>/dev/null | sed -n 's/^rustc 1\.\([0-9]*\).*/\1/p')
  [ -n "$minor" ] && [ "$minor" -ge 82 ] || return 1
  [ -d "$(/usr/bin/rustc --print sysroot)/lib/rustlib/src/rust/library/vendor" ] || return 1
  [ -x /usr/bin/cargo ] && { [ -e /usr/bin/lld-22 ] || [ -e /usr/bin/rust-lld ]; }
}

pkgs=()
has_rustc_web || pkgs+=(rustc-web cargo-web rust-web-src lld-22)
command -v wasm-opt >/dev/null || pkgs+=(binaryen)
command -v wasm-objdump >/dev/null || pkgs+=(wabt)
command -v rustfmt >/dev/null || pkgs+=(rustfmt-web)
# `npm run check` runs cargo clippy: rustup's component when present, else Debian's.
cargo clippy --version >/dev/null 2>&1 || pkgs+=(rust-web-clippy)
[ -x /usr/bin/chromium ] || pkgs+=(chromium)
# examples/cnn-transfer fine-tunes on Fashion-MNIST: /usr/share/datasets/fashion-mnist/*.gz
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || pkgs+=(dataset-fashion-mnist)

if [ ${#pkgs[@]} -gt 0 ]; then
  echo "setup: installing ${pkgs[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

npm ci --no-audit --no-fund
