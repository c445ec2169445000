// GFLOP/s of nabla's matmul at a list of shapes, one thread, optionally for two core builds side
// by side (a change to the GEMM against the build before it). Not part of the test suite:
//
//   npm run build && node bench/gemm-shapes.mjs [--shapes 16x150x6400,128x784x256] [--reps 200]
//   node bench/gemm-shapes.mjs --wasm /tmp/before.wasm,dist/nabla.wasm
//
// A shape is MxKxN or MxKxNxBATCH (B batched, A shared). Each build runs in its own process,
// builds alternating, twice, and each figure is the best of `reps` calls: a change of a few
// percent shows only when the alternation agrees.
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { fileURLToPath } from 'node:url';

const { values: args } = parseArgs({
  options: {
    // The default: LeNet's 6→16 convolution as a GEMM (16 output channels, 150 taps, 64
    // images of 100 positions), small-batch linear layers, and the MLP bench's large shapes.
    shapes: {
      type: 'string',
      default:
        '16x150x6400,16x150x100x64,32x150x6400,16x256x512,16x784x256,64x400x120,128x784x256,256x128x784',
    },
    reps: { type: 'string', default: '200' },
    wasm: { type: 'string', default: '' },
    child: { type: 'string', default: '' },
  },
});

if (args.wasm && !args.child) {
  const builds = args.wasm.split(',');
  const rows = new Map();
  for (let round = 0; round < 2; round++) {
    for (const w of builds) {
      const argv = [fileURLToPath(import.meta.url), '--child', w, '--shapes', args.shapes];
      const r = spawnSync(process.execPath, [...argv, '--reps', args.reps], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`gemm-shapes: ${w} failed:\n${r.stderr}`);
      for (const line of r.stdout.trim().split('\n')) {
        const [shape, gf] = line.split(' ');
        const row = rows.get(shape) ?? new Map();
        row.set(w, Math.max(row.get(w) ?? 0, Number(gf)));
        rows.set(shape, row);
      }
    }
  }
  console.log(`GFLOP/s, best of 2 alternating runs: ${builds.join(' | ')}`);
  for (const [shape, row] of rows) {
    const figs = builds.map((w) => row.get(w).toFixed(1).padStart(6));
    const ratio = (row.get(builds.at(-1)) / row.get(builds[0])).toFixed(3);
    console.log(`  ${shape.padEnd(16)} ${figs.join(' | ')}   last/first ${ratio}`);
  }
} else {
  // The optimising tier from the start (see conv-kernels.mjs).
  setFlagsFromString('--no-liftoff');
  const nb = await import('nabla');
  const wasm = args.child ? { wasm: readFileSync(args.child) } : {};
  await nb.init({ threads: 1, simd: 'plain', ...wasm });
  const reps = Number(args.reps);
  for (const shape of args.shapes.split(',')) {
    const [m, k, n, batch = 1] = shape.split('x').map(Number);
    const a = nb.keep(nb.randn([m, k]));
    const b = nb.keep(nb.randn(batch > 1 ? [batch, k, n] : [k, n]));
    let best = Infinity;
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      nb.tidy(() => {
        nb.matmul(a, b);
      });
      if (r >= reps / 10) best = Math.min(best, performance.now() - t0);
    }
    const gf = (2 * m * k * n * batch) / best / 1e6;
    console.log(args.child ? `${shape} ${gf}` : `  ${shape.padEnd(16)} ${gf.toFixed(1)} GFLOP/s`);
    a.dispose();
    b.dispose();
  }
}
