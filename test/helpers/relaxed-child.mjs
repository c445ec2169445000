// Run by test/relaxed-simd.test.ts in a child Node (with or without
// --experimental-wasm-relaxed-simd): loads the built package with init({ simd: argv[2] }),
// computes a GEMM, a convolution's forward and gradients and a short training run, and prints
// them with nb.backendInfo() as one JSON line.
import * as nb from '../../dist/index.js';

const simd = process.argv[2];
try {
  await nb.init({ simd, threads: 1 }); // the single-thread cores; threads: relaxed-simd.test.ts
} catch (e) {
  console.log(JSON.stringify({ error: { name: e.name, message: e.message } }));
  process.exit(0);
}
nb.manualSeed(3);
const arr = (t) => Array.from(t.toArray());
const a = nb.randn([67, 130]);
const b = nb.randn([130, 45]);
const product = arr(nb.matmul(a, b));

// The GEMM path, the depthwise kernel and the one-input-channel direct kernel.
const convOut = {};
for (const [name, ci, co, k, groups] of [
  ['gemm', 3, 8, 3, 1],
  ['depthwise', 4, 8, 3, 4],
  ['direct', 1, 6, 5, 1],
]) {
  const conv = new nb.nn.Conv2d(ci, co, k, { padding: 1, groups });
  const x = nb.randn([2, ci, 11, 11], { requiresGrad: true });
  conv.forward(x).square().sum().backward();
  convOut[name] = { x: arr(x.grad), w: arr(conv.weight.grad) };
}

const [q, k, v] = [0, 1, 2].map(() => nb.randn([2, 3, 10, 16], { requiresGrad: true }));
nb.nn.functional.scaledDotProductAttention(q, k, v, { isCausal: true }).square().sum().backward();
const attention = { q: arr(q.grad), k: arr(k.grad), v: arr(v.grad) };

const model = new nb.nn.Sequential(
  new nb.nn.Linear(20, 64),
  new nb.nn.ReLU(),
  new nb.nn.Linear(64, 3),
);
const opt = new nb.optim.Adam(model.parameters(), { lr: 1e-2 });
const inputs = nb.randn([32, 20]);
const labels = nb.tensor(
  Array.from({ length: 32 }, (_, i) => i % 3),
  { dtype: 'int32' },
);
const losses = [];
for (let step = 0; step < 20; step++) {
  opt.zeroGrad();
  const loss = nb.nn.functional.crossEntropy(model.forward(inputs), labels);
  loss.backward();
  opt.step();
  losses.push(loss.item());
}
// NaN must propagate through the max-based kernels in both builds (relaxed_max alone would not).
const withNaN = nb.tensor([[1, Number.NaN, 3, 4, 5, 6, 7, 8, 9]]);
const nan = {
  softmax: arr(nb.nn.functional.softmax(withNaN, -1)),
  max: arr(withNaN.max()),
  relu: arr(nb.nn.functional.relu(withNaN)),
};
console.log(
  JSON.stringify({
    nan,
    info: nb.backendInfo(),
    a: arr(a),
    b: arr(b),
    product,
    conv: convOut,
    attention,
    losses,
  }),
);
