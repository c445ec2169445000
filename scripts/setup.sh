#!/usr/bin/env bash
# Installs everything nabla needs on a fresh Debian machine with Node: a Rust compiler with the
# wasm32 target (Debian's rustc + libstd-rust-dev-wasm32 unless one is already present),
# binaryen (wasm-opt), wabt (wasm-objdump, used by the SIMD test), rustfmt, clippy, chromium (the
# browser tests drive it through playwright-core), Fashion-MNIST (examples/cnn-transfer and its
# test read Debian's gzipped IDX files), then `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."

has_wasm_rustc() {
  local rc sysroot
  for rc in rustc /usr/bin/rustc; do
    sysroot=$("$rc" --print sysroot 2>/dev/null) || continue
    [ -d "$sysroot/lib/rustlib/wasm32-unknown-unknown" ] && return 0
  done
  return 1
}

pkgs=()
# Debian's rustc links wasm32 with /usr/bin/rust-lld, a symlink to lld-14, which is only a
# Recommends of libstd-rust-dev-wasm32: install it explicitly (and mend a dangling link).
has_wasm_rustc || pkgs+=(rustc cargo libstd-rust-dev-wasm32 lld-14)
if [ -L /usr/bin/rust-lld ] && [ ! -e /usr/bin/rust-lld ]; then pkgs+=(lld-14); fi
command -v wasm-opt >/dev/null || pkgs+=(binaryen)
command -v wasm-objdump >/dev/null || pkgs+=(wabt)
command -v rustfmt >/dev/null || pkgs+=(rustfmt)
# `npm run check` runs cargo clippy: rustup's component when present, else Debian's.
cargo clippy --version >/dev/null 2>&1 || pkgs+=(rust-clippy)
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
