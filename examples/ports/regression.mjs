// Port of a 3-layer regression network: 3 -> 5 -> 2 -> 3 with ReLU, MSE loss, Adam(lr 0.01),
// fit to a smooth function of three inputs.   node examples/ports/regression.mjs
import * as nb from 'nabla';

await nb.init();
nb.manualSeed(0);

const x = nb.rand([256, 3]).mul(2).sub(1);
const [a, b, c] = x.split(1, 1);
const y = nb.cat([a.add(b).mul(0.5), b.sub(c).relu(), a.mul(c).add(0.3)], 1);

const model = new nb.nn.Sequential(
  new nb.nn.Linear(3, 5),
  new nb.nn.ReLU(),
  new nb.nn.Linear(5, 2),
  new nb.nn.ReLU(),
  new nb.nn.Linear(2, 3),
);
const lossFn = new nb.nn.MSELoss();
const optimizer = new nb.optim.Adam(model.parameters(), { lr: 0.01 });

const losses = [];
for (let epoch = 0; epoch < 500; epoch++) {
  const loss = nb.tidy(() => {
    optimizer.zeroGrad();
    const l = lossFn.forward(model.forward(x), y);
    l.backward();
    optimizer.step();
    return l.item();
  });
  losses.push(loss);
  if (epoch % 100 === 0) console.log(`epoch ${epoch}: loss ${loss.toFixed(5)}`);
}
console.log(JSON.stringify({ first: losses[0], last: losses[losses.length - 1] }));
