// One LSTM layer forward + backward, fused (nb.lstmLayer: projection GEMM, one fused kernel
// call per step each way, one GEMM per weight gradient) against the same layer composed from
// ops (matmul, chunk, sigmoid, tanh, mul, add per step). Not part of the test suite:
//
//   node bench/rnn-kernels.mjs [--reps 5] [--hidden 128,256]
//
// Prints tokens/s (sequence steps × batch per second of forward + backward), best of `reps`.
import { parseArgs } from 'node:util';
import * as nb from 'nabla';

const { values: args } = parseArgs({
  options: {
    reps: { type: 'string', default: '5' },
    hidden: { type: 'string', default: '128,256' },
  },
});
const [SEQ, BATCH, INPUT] = [64, 32, 64];
await nb.init();
nb.manualSeed(0);

function composed(x, h0, c0, wIh, wHh, bIh, bHh) {
  const gx = nb.matmul(x, wIh, { transB: true }).add(bIh).split(1, 0);
  let h = h0;
  let c = c0;
  const ys = [];
  for (let t = 0; t < SEQ; t++) {
    const gates = gx[t]
      .reshape([BATCH, -1])
      .add(nb.matmul(h, wHh, { transB: true }))
      .add(bHh);
    const [i, f, g, o] = gates.chunk(4, 1);
    c = f.sigmoid().mul(c).add(i.sigmoid().mul(g.tanh()));
    h = o.sigmoid().mul(c.tanh());
    ys.push(h);
  }
  return [nb.stack(ys, 0), h, c];
}

const fused = (x, h0, c0, wIh, wHh, bIh, bHh) => nb.lstmLayer(x, h0, c0, wIh, wHh, bIh, bHh);

function time(fn, inputs, reps) {
  let best = Infinity;
  for (let r = 0; r <= reps; r++) {
    const t0 = performance.now();
    nb.tidy(() => {
      const [y, hN, cN] = fn(...inputs);
      y.mean().add(hN.sum()).add(cN.sum()).backward();
    });
    for (const p of inputs) {
      p.grad?.dispose();
      p.grad = null;
    }
    const ms = performance.now() - t0;
    if (r > 0) best = Math.min(best, ms); // the first run warms up
  }
  return best;
}

for (const H of args.hidden.split(',').map(Number)) {
  const p = (shape, s = 0.1) => nb.keep(nb.randn(shape).mul(s).requiresGrad_());
  const inputs = [
    p([SEQ, BATCH, INPUT], 1),
    p([BATCH, H], 1),
    p([BATCH, H], 1),
    p([4 * H, INPUT]),
    p([4 * H, H]),
    p([4 * H]),
    p([4 * H]),
  ];
  const reps = Number(args.reps);
  const tokens = SEQ * BATCH;
  const f = time(fused, inputs, reps);
  const c = time(composed, inputs, reps);
  const fmt = (ms) =>
    `${ms.toFixed(1).padStart(7)} ms  ${Math.round((tokens / ms) * 1000)
      .toString()
      .padStart(7)} tokens/s`;
  console.log(`LSTM hidden ${H}, batch ${BATCH}, seq ${SEQ}, input ${INPUT} (forward + backward):`);
  console.log(`  fused    ${fmt(f)}`);
  console.log(`  composed ${fmt(c)}   fused is ${(c / f).toFixed(2)}x`);
  for (const t of inputs) t.dispose();
}
