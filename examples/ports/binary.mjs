// Port of a 2 -> 4 -> 1 sigmoid network trained with binary cross-entropy and SGD(lr 0.01)
// on a 2-D binary task: two overlapping Gaussian blobs.   node examples/ports/binary.mjs
import * as nb from 'nabla';

await nb.init();
nb.manualSeed(0);

const n = 200;
const labels = nb.randint(0, 2, [n, 1]).float();
const centres = labels
  .mul(2)
  .sub(1)
  .mul(nb.tensor([[1.5, -1.0]])); // (+1.5, -1) or (-1.5, +1)
const x = centres.add(nb.randn([n, 2]).mul(0.8));

const model = new nb.nn.Sequential(
  new nb.nn.Linear(2, 4),
  new nb.nn.Sigmoid(),
  new nb.nn.Linear(4, 1),
  new nb.nn.Sigmoid(),
);
const lossFn = new nb.nn.BCELoss();
const optimizer = new nb.optim.SGD(model.parameters(), { lr: 0.01 });
const loader = new nb.data.DataLoader(new nb.data.TensorDataset(x, labels), {
  batchSize: 1,
  shuffle: true,
  seed: 0,
});

const losses = [];
for (let epoch = 0; epoch < 30; epoch++) {
  let total = 0;
  for (const [xb, yb] of loader) {
    total += nb.tidy(() => {
      optimizer.zeroGrad();
      const l = lossFn.forward(model.forward(xb), yb);
      l.backward();
      optimizer.step();
      return l.item();
    });
    xb.dispose();
    yb.dispose();
  }
  losses.push(total / n);
  if (epoch % 10 === 0) console.log(`epoch ${epoch}: loss ${losses.at(-1).toFixed(4)}`);
}
const accuracy = nb.tidy(() => model.eval().forward(x).gt(0.5).eq(labels).float().mean().item());
console.log(`accuracy ${(100 * accuracy).toFixed(1)}%`);
console.log(JSON.stringify({ first: losses[0], last: losses.at(-1), accuracy }));
