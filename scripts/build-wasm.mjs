// Builds crate/ to wasm32-unknown-unknown with SIMD and writes ts/wasm/nabla.wasm.
// Finds a rustc whose sysroot has the wasm32 standard library (rustup's when it has the
// target, else Debian's /usr/bin/rustc) and stops with the exact install command otherwise.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = 'wasm32-unknown-unknown';
const out = join(root, 'ts', 'wasm', 'nabla.wasm');

function run(cmd, args) {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null;
  }
}

function hasWasmTarget(rustc) {
  const sysroot = run(rustc, ['--print', 'sysroot']);
  return sysroot !== null && existsSync(join(sysroot, 'lib', 'rustlib', target));
}

// Each candidate pairs a rustc with the cargo that should drive it.
const candidates = [
  { rustc: 'rustc', cargo: 'cargo' },
  { rustc: '/usr/bin/rustc', cargo: existsSync('/usr/bin/cargo') ? '/usr/bin/cargo' : 'cargo' },
];
const tool = candidates.find((c) => hasWasmTarget(c.rustc) && run(c.cargo, ['--version']));
if (!tool) {
  console.error(
    `build-wasm: no Rust compiler with the ${target} target was found.\n` +
      `Install one of:\n` +
      `  rustup target add ${target}\n` +
      `  apt-get install -y rustc cargo libstd-rust-dev-wasm32   (Debian)`,
  );
  process.exit(1);
}

const env = {
  ...process.env,
  RUSTC: tool.rustc,
  RUSTFLAGS: '-C target-feature=+simd128',
};
const build = spawnSync(
  tool.cargo,
  ['build', '--release', '--target', target, '-p', 'nabla-core', '--quiet'],
  { cwd: root, env, stdio: 'inherit' },
);
if (build.status !== 0) process.exit(build.status ?? 1);

const built = join(root, 'target', target, 'release', 'nabla_core.wasm');
mkdirSync(dirname(out), { recursive: true });
// wasm-opt (binaryen) shrinks and speeds the module when installed; the build works without it.
const opt = spawnSync(
  'wasm-opt',
  [
    '-O3',
    '--enable-simd',
    '--enable-bulk-memory',
    '--enable-sign-ext',
    '--enable-nontrapping-float-to-int',
    '--enable-mutable-globals',
    built,
    '-o',
    out,
  ],
  {
    stdio: 'inherit',
  },
);
if (opt.error || opt.status !== 0) {
  copyFileSync(built, out);
  console.log(`build-wasm: wasm-opt not available; copied the cargo output unoptimised`);
}
console.log(`build-wasm: ${tool.rustc} -> ts/wasm/nabla.wasm (${statSync(out).size} bytes)`);
