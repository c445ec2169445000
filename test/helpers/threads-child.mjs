// Run by test/threads.test.ts: loads the built package with init({ threads: argv[2] }) and prints
// as one JSON line the products, gradients and training losses whose bits must not depend on the
// thread count, with nb.backendInfo().
import * as nb from '../../dist/index.js';

await nb.init({ threads: Number(process.argv[2]) });
nb.manualSeed(7);
const arr = (t) => Array.from(t.toArray());
const products = {};
// [name, a shape, b shape, options]: below and above the split threshold, odd edges, both
// transposed forms, batched.
for (const [name, as, bs, opts] of [
  ['tiny', [3, 5], [5, 7], {}],
  ['odd', [67, 130], [130, 45], {}],
  ['square', [256, 256], [256, 256], {}],
  ['transA', [130, 67], [130, 45], { transA: true }],
  ['transB', [67, 130], [45, 130], { transB: true }],
  ['batched', [3, 40, 50], [3, 50, 60], {}],
  ['batchedBig', [2, 128, 64], [2, 64, 96], {}],
]) {
  const a = nb.randn(as);
  const b = nb.randn(bs);
  products[name] = { a: arr(a), b: arr(b), c: arr(nb.matmul(a, b, opts)) };
}

const model = new nb.nn.Sequential(
  new nb.nn.Linear(784, 256),
  new nb.nn.ReLU(),
  new nb.nn.Linear(256, 10),
);
const opt = new nb.optim.Adam(model.parameters(), { lr: 1e-3 });
const x = nb.randn([64, 784]);
const y = nb.randint(0, 10, [64]);
const losses = [];
for (let step = 0; step < 8; step++) {
  opt.zeroGrad();
  const loss = nb.nn.functional.crossEntropy(model.forward(x), y);
  loss.backward();
  opt.step();
  losses.push(loss.item());
}
const weights = model.parameters().map(arr);
console.log(
  JSON.stringify({ info: nb.backendInfo(), threads: nb.threads(), products, losses, weights }),
);
