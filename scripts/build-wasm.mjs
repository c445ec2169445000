// Builds crate/ to wasm32-unknown-unknown and writes the core's variants:
//   ts/wasm/nabla.wasm          simd128 (every engine with wasm SIMD)
//   ts/wasm/nabla-relaxed.wasm  simd128 + relaxed SIMD (fused multiply-add in the GEMM micro-kernel);
//                               `init()` picks it when `WebAssembly.validate` accepts relaxed SIMD
//   ts/wasm/nabla-threads.wasm  simd128 + atomics on an imported shared memory, exporting its stack
//                               pointer and TLS set-up so each worker instance gets its own;
//                               `init({ threads })` loads it (ts/wasm/threads.ts)
//   ts/wasm/nabla-threads-relaxed.wasm  the same with relaxed SIMD, for engines that have it
// Toolchains, in order of preference:
//   1. Debian's rustc-web (rustc >= 1.82 with the std sources and their vendored dependencies,
//      packages rustc-web cargo-web rust-web-src lld-22): std is built from source for wasm32
//      (`-Z build-std`, offline through the vendored sources); builds every variant.
//   2. A rustc whose sysroot has a prebuilt wasm32 std (rustup with the target, or Debian's
//      rustc 1.63 + libstd-rust-dev-wasm32): the simd128 variant only.
// Stops with the exact install command when neither is there.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = 'wasm32-unknown-unknown';
const outDir = join(root, 'ts', 'wasm');
const PLAIN = '+simd128';
const RELAXED = '+simd128,+relaxed-simd';
const THREADS = '+simd128,+atomics,+bulk-memory,+mutable-globals';
const THREADS_RELAXED = `${THREADS},+relaxed-simd`;
// Shared memory is imported (every thread's instance gets the same one), may reach 4 GiB, and
// each non-first instance sets its own stack pointer and calls __wasm_init_tls on its own block.
const THREADS_LINK = [
  '--shared-memory',
  '--import-memory',
  '--export-memory',
  '--initial-memory=4194304', // ts/wasm/threads.ts creates the shared memory with these 64 pages
  '--max-memory=4294967296',
  '--export=__stack_pointer',
  '--export=__wasm_init_tls',
  '--export=__tls_size',
  '--export=__tls_align',
];

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

/** rustc-web: a new enough /usr/bin/rustc with std's sources (and their dependencies) vendored. */
function rustcWeb() {
  const rustc = '/usr/bin/rustc';
  const version = run(rustc, ['--version']);
  const m = version && /^rustc 1\.(\d+)/.exec(version);
  if (!m || Number(m[1]) < 82 || !existsSync('/usr/bin/cargo')) return null;
  const sysroot = run(rustc, ['--print', 'sysroot']);
  const vendor = sysroot && join(sysroot, 'lib', 'rustlib', 'src', 'rust', 'library', 'vendor');
  const linker = ['/usr/bin/rust-lld', '/usr/bin/lld-22'].find((l) => existsSync(l));
  if (!vendor || !existsSync(vendor) || !linker) return null;
  return { rustc, cargo: '/usr/bin/cargo', vendor, linker };
}

function cargoBuild(tool, features, targetDir, linkArgs = []) {
  const linker =
    (tool.linker ? ` -C linker=${tool.linker}` : '') +
    linkArgs.map((a) => ` -C link-arg=${a}`).join('');
  const env = {
    ...process.env,
    RUSTC: tool.rustc,
    RUSTFLAGS: `-C target-feature=${features}${linker}`,
  };
  const args = ['build', '--release', '--target', target, '-p', 'nabla-core', '--quiet'];
  args.push('--target-dir', targetDir);
  if (tool.vendor) {
    env.RUSTC_BOOTSTRAP = '1'; // -Z build-std on a stable compiler
    args.push(
      '-Z',
      'build-std=std,panic_abort',
      '--config',
      'source.crates-io.replace-with="vendored"',
      '--config',
      `source.vendored.directory="${tool.vendor}"`,
    );
  }
  const build = spawnSync(tool.cargo, args, { cwd: root, env, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
  return join(targetDir, target, 'release', 'nabla_core.wasm');
}

/** wasm-opt (binaryen) when installed and able to read the module, else the cargo output. */
function optimise(built, out) {
  const opt = spawnSync(
    'wasm-opt',
    [
      '-O3',
      '--enable-simd',
      '--enable-bulk-memory',
      '--enable-sign-ext',
      '--enable-nontrapping-float-to-int',
      '--enable-mutable-globals',
      '--enable-threads',
      built,
      '-o',
      out,
    ],
    { stdio: 'ignore' },
  );
  if (!opt.error && opt.status === 0) return 'wasm-opt -O3';
  copyFileSync(built, out);
  return 'unoptimised';
}

const web = rustcWeb();
const candidates = [
  { rustc: 'rustc', cargo: 'cargo' },
  { rustc: '/usr/bin/rustc', cargo: existsSync('/usr/bin/cargo') ? '/usr/bin/cargo' : 'cargo' },
];
const prebuilt = web
  ? null
  : candidates.find((c) => hasWasmTarget(c.rustc) && run(c.cargo, ['--version']));
if (!web && !prebuilt) {
  console.error(
    `build-wasm: no Rust compiler for ${target} was found. Install one of:\n` +
      `  apt-get install -y rustc-web cargo-web rust-web-src lld-22   (Debian; both variants)\n` +
      `  rustup target add ${target}\n` +
      `  apt-get install -y rustc cargo libstd-rust-dev-wasm32 lld-14   (Debian; simd128 only)`,
  );
  process.exit(1);
}
const tool = web ?? prebuilt;
mkdirSync(outDir, { recursive: true });

// Separate target directories: the two variants' std builds differ in their flags.
const plain = join(outDir, 'nabla.wasm');
const how = optimise(cargoBuild(tool, PLAIN, join(root, 'target', 'wasm-simd128')), plain);
console.log(
  `build-wasm: ${tool.rustc} -> ts/wasm/nabla.wasm (${statSync(plain).size} bytes, ${how})`,
);

const relaxed = join(outDir, 'nabla-relaxed.wasm');
if (web) {
  // Debian's binaryen (108) cannot parse relaxed SIMD; rustc's own -O3 output is as fast here.
  copyFileSync(cargoBuild(tool, RELAXED, join(root, 'target', 'wasm-relaxed')), relaxed);
  console.log(
    `build-wasm: relaxed SIMD -> ts/wasm/nabla-relaxed.wasm (${statSync(relaxed).size} bytes)`,
  );
  const threads = join(outDir, 'nabla-threads.wasm');
  const built = cargoBuild(tool, THREADS, join(root, 'target', 'wasm-threads'), THREADS_LINK);
  const threadsHow = optimise(built, threads);
  console.log(
    `build-wasm: shared memory + atomics -> ts/wasm/nabla-threads.wasm (${statSync(threads).size} bytes, ${threadsHow})`,
  );
  const threadsRelaxed = join(outDir, 'nabla-threads-relaxed.wasm');
  const dir = join(root, 'target', 'wasm-threads-relaxed');
  copyFileSync(cargoBuild(tool, THREADS_RELAXED, dir, THREADS_LINK), threadsRelaxed);
  console.log(
    `build-wasm: shared memory + atomics + relaxed SIMD -> ts/wasm/nabla-threads-relaxed.wasm (${statSync(threadsRelaxed).size} bytes)`,
  );
} else {
  rmSync(relaxed, { force: true });
  rmSync(join(outDir, 'nabla-threads.wasm'), { force: true });
  rmSync(join(outDir, 'nabla-threads-relaxed.wasm'), { force: true });
  console.log(
    'build-wasm: this toolchain has no relaxed SIMD or atomics std; built the simd128 variant only',
  );
}
