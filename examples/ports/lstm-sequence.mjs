// Port of an LSTM sequence model: read 20 steps of a noisy sine wave, predict the next value.
// nn.LSTM(1, 32) -> the last step's hidden state -> Linear(32, 1), MSE loss, Adam(lr 0.01),
// trained by backpropagation through time over the 20 steps; a plain PyTorch-style loop.
//   node examples/ports/lstm-sequence.mjs
import * as nb from 'nabla';

await nb.init();
nb.manualSeed(0);

const STEPS = 20;
/** `n` windows of the wave (random phases and frequencies) and the value that follows each. */
function windows(n) {
  const t = nb.arange(0, STEPS + 1).reshape([1, STEPS + 1]);
  const phase = nb.rand([n, 1]).mul(2 * Math.PI);
  const freq = nb.rand([n, 1]).mul(0.2).add(0.15);
  const wave = t
    .mul(freq)
    .add(phase)
    .sin()
    .add(nb.randn([n, STEPS + 1]).mul(0.02));
  return [wave.narrow(1, 0, STEPS).unsqueeze(-1), wave.narrow(1, STEPS, 1)]; // [n, 20, 1], [n, 1]
}
const [xTrain, yTrain] = windows(512);
const [xTest, yTest] = windows(256);

class SequenceRegressor extends nb.nn.Module {
  constructor() {
    super();
    this.lstm = new nb.nn.LSTM(1, 32, { batchFirst: true });
    this.head = new nb.nn.Linear(32, 1);
  }

  forward(x) {
    const [, [h]] = this.lstm.forward(x); // h: [1, batch, 32], the last step's state
    return this.head.forward(h.squeeze(0));
  }
}
const model = new SequenceRegressor();
const lossFn = new nb.nn.MSELoss();
const optimizer = new nb.optim.Adam(model.parameters(), { lr: 0.01 });
const loader = new nb.data.DataLoader(new nb.data.TensorDataset(xTrain, yTrain), {
  batchSize: 64,
  shuffle: true,
  seed: 0,
});

const losses = [];
for (let epoch = 0; epoch < 30; epoch++) {
  let total = 0;
  for (const [x, y] of loader) {
    optimizer.zeroGrad();
    const loss = lossFn.forward(model.forward(x), y);
    loss.backward();
    optimizer.step();
    total += loss.item();
  }
  losses.push(total / loader.length);
  if (epoch % 10 === 0) console.log(`epoch ${epoch}: loss ${losses[epoch].toFixed(5)}`);
}
const testMse = nb.noGrad(() => lossFn.forward(model.forward(xTest), yTest).item());
// Predicting "the next value equals the last one" is the baseline a sequence model must beat.
const naive = nb.noGrad(() =>
  lossFn.forward(xTest.narrow(1, STEPS - 1, 1).squeeze(-1), yTest).item(),
);
console.log(`test MSE ${testMse.toFixed(5)} (repeat-last-value baseline ${naive.toFixed(5)})`);
console.log(JSON.stringify({ first: losses[0], last: losses[losses.length - 1], testMse, naive }));
