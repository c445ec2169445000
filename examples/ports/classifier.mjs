// Port of a one-hidden-layer classifier: 64 -> 32 -> 10 on scikit-learn's 8x8 digits,
// cross-entropy loss, Adam(lr 0.001), mini-batches of 32.   node examples/ports/classifier.mjs
import { readFileSync } from 'node:fs';
import * as nb from 'nabla';

await nb.init();
nb.manualSeed(0);

// scikit-learn's digits, shipped in examples/data (pixel counts 0..16; see its README).
const digits = JSON.parse(
  readFileSync(new URL('../data/sklearn-digits.json', import.meta.url), 'utf8'),
);
const asTensors = (split) => [
  nb.tensor(split.X.flat(), { shape: [split.X.length, 64], dtype: 'float32' }).div(16),
  nb.tensor(split.y, { dtype: 'int32' }),
];
const [xTrain, yTrain] = asTensors(digits.train);
const [xTest, yTest] = asTensors(digits.test);

const model = new nb.nn.Sequential(
  new nb.nn.Linear(64, 32),
  new nb.nn.ReLU(),
  new nb.nn.Linear(32, 10),
);
const loader = new nb.data.DataLoader(new nb.data.TensorDataset(xTrain, yTrain), {
  batchSize: 32,
  shuffle: true,
  seed: 0,
});
const { history } = await nb.train.fit(model, {
  trainLoader: loader,
  lossFn: new nb.nn.CrossEntropyLoss(),
  optimizer: new nb.optim.Adam(model.parameters(), { lr: 0.001 }),
  epochs: 40,
  metrics: ['accuracy'],
  progress: 'silent',
});
const testAccuracy = nb.metrics.accuracy(nb.train.predict(model, xTest), yTest);
console.log(`train loss ${history.loss[0].toFixed(4)} -> ${history.loss.at(-1).toFixed(4)}`);
console.log(`test accuracy ${(100 * testAccuracy).toFixed(2)}%`);
console.log(JSON.stringify({ first: history.loss[0], last: history.loss.at(-1), testAccuracy }));
