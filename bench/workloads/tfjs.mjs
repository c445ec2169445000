// TensorFlow.js's side of the benchmark (child process entry; see driver.mjs), for the
// `tfjs-cpu` (pure JS) and `tfjs-wasm` (XNNPACK, single-threaded in Node) backends. The MLP is
// written with the low-level ops and `optimizer.minimize`, tfjs's fastest training path (the
// layers API adds per-batch overhead), with weights in tfjs's [in, out] layout.
import * as tf from '@tensorflow/tfjs';
import { runChild, storedShapes } from './driver.mjs';

function matmul(c, aData, bData) {
  const [sa, sb] = storedShapes(c);
  const a = tf.tensor2d(aData, sa);
  const b = tf.tensor2d(bData, sb);
  const [ta, tb] = [c.form === 'AtB', c.form === 'ABt'];
  return {
    // Both backends run kernels synchronously; the driver disposes each product when the next
    // one arrives and checks the last.
    run: () => tf.matMul(a, b, ta, tb),
    read: (h) => h.dataSync().slice(),
    free: (h) => h.dispose(),
    via: `tf.matMul(a, b, ${ta}, ${tb})`,
    dispose() {
      a.dispose();
      b.dispose();
    },
  };
}

function dataset(x, y, count) {
  return { x: tf.tensor2d(x, [count, 784]), y: tf.tensor1d(y, 'int32'), count };
}

function batch(ds, idx) {
  return tf.tidy(() => {
    const i = tf.tensor1d(Int32Array.from(idx), 'int32');
    // oneHot's float32 dtype is broken on the wasm backend (it stores int bit patterns).
    return { x: tf.gather(ds.x, i), y: tf.cast(tf.oneHot(tf.gather(ds.y, i), 10), 'float32') };
  });
}

/** PyTorch's Linear init, U(±1/√in) for weight and bias, so every library starts alike. */
function model(config) {
  const L = config.layers;
  const layers = [];
  for (let l = 0; l + 1 < L.length; l++) {
    const bound = 1 / Math.sqrt(L[l]);
    const s = config.seed * 100 + 2 * l;
    layers.push({
      w: tf.variable(tf.randomUniform([L[l], L[l + 1]], -bound, bound, 'float32', s)),
      b: tf.variable(tf.randomUniform([L[l + 1]], -bound, bound, 'float32', s + 1)),
    });
  }
  const forward = (x) =>
    layers.reduce((h, { w, b }, l) => {
      const z = tf.add(tf.matMul(h, w), b);
      return l + 1 < layers.length ? tf.relu(z) : z;
    }, x);
  // tfjs's Adam defaults eps to 1e-7; use PyTorch's 1e-8 like the other libraries.
  const optimizer = tf.train.adam(config.lr, 0.9, 0.999, 1e-8);
  const vars = layers.flatMap(({ w, b }) => [w, b]);
  return { forward, optimizer, vars };
}

function step({ forward, optimizer, vars }, { x, y }) {
  const cost = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, forward(x)), true, vars);
  const loss = cost.dataSync()[0];
  cost.dispose();
  return loss;
}

/** Parameters in PyTorch's layout (weight [out, in], then bias), from tfjs's [in, out]. */
function parameters({ vars }) {
  return vars.map((v) => {
    const data = v.dataSync();
    if (v.shape.length !== 2) return Float32Array.from(data);
    const [inF, outF] = v.shape;
    const out = new Float32Array(data.length);
    for (let i = 0; i < inF; i++)
      for (let o = 0; o < outF; o++) out[o * inF + i] = data[i * outF + o];
    return out;
  });
}

/** Inputs (first `seq` tokens of each row, int32) and one-hot targets (last `seq`). */
function rnnBatch(tokens, { batch, seq, vocab }) {
  return tf.tidy(() => {
    const rows = tf.tensor2d(tokens, [batch, seq + 1], 'int32');
    const y = tf.slice(rows, [0, 1], [batch, seq]);
    return { x: tf.slice(rows, [0, 0], [batch, seq]), y: tf.cast(tf.oneHot(y, vocab), 'float32') };
  });
}

/**
 * tf.layers.embedding -> tf.layers.lstm / gru (returnSequences) -> tf.layers.dense, initialised
 * as PyTorch does (embedding N(0, 1), the rest U(±1/√hidden)) so every library starts from the
 * same loss and learns at the same pace; sigmoid gates, as in PyTorch (tfjs defaults to hard
 * sigmoid). `oneHot` writes the embedding as one-hot × matrix (a dense layer without bias): the
 * same function, for a backend that cannot take the embedding's gradient.
 */
function rnnLayers(r, { cell, hidden }, seed, oneHot) {
  const s = seed * 100;
  const normal = tf.initializers.randomNormal({ mean: 0, stddev: 1, seed: s });
  const uniform = (k) => {
    const b = 1 / Math.sqrt(hidden);
    return tf.initializers.randomUniform({ minval: -b, maxval: b, seed: s + k });
  };
  const embedding = oneHot
    ? tf.layers.dense({ units: r.embed, useBias: false, kernelInitializer: normal })
    : tf.layers.embedding({ inputDim: r.vocab, outputDim: r.embed, embeddingsInitializer: normal });
  const rnn = tf.layers[cell]({
    units: hidden,
    returnSequences: true,
    recurrentActivation: 'sigmoid',
    kernelInitializer: uniform(1),
    recurrentInitializer: uniform(2),
    biasInitializer: uniform(3),
  });
  const head = tf.layers.dense({
    units: r.vocab,
    kernelInitializer: uniform(4),
    biasInitializer: uniform(5),
  });
  const forward = (x) => {
    const e = oneHot
      ? embedding.apply(tf.cast(tf.oneHot(x, r.vocab), 'float32'))
      : embedding.apply(x);
    return head.apply(rnn.apply(e));
  };
  tf.tidy(() => forward(tf.zeros([1, 2], 'int32'))); // builds the layers' weights
  const vars = [embedding, rnn, head].flatMap((l) => l.trainableWeights.map((w) => w.read()));
  // tfjs's Adam defaults eps to 1e-7; use PyTorch's 1e-8 like the other libraries.
  const optimizer = tf.train.adam(r.lr, 0.9, 0.999, 1e-8);
  return { forward, vars, optimizer };
}

/**
 * The model as written; when the backend cannot train it (tfjs-wasm has no UnsortedSegmentSum,
 * the embedding's gradient), the reason, and the one-hot variant instead. The probe takes
 * gradients on two tokens and applies nothing.
 */
function rnnModel(r, c, seed) {
  const m = rnnLayers(r, c, seed, false);
  try {
    tf.tidy(() => {
      const { grads } = tf.variableGrads(
        () => tf.sum(m.forward(tf.tensor2d([[1, 2]], [1, 2], 'int32'))),
        m.vars,
      );
      Object.values(grads).forEach((g) => g.dataSync());
    });
    return m;
  } catch (e) {
    tf.dispose(m.vars);
    return {
      ...rnnLayers(r, c, seed, true),
      cannotTrain: e.message,
      variant: 'embedding as one-hot × matrix (tf.layers.dense without bias)',
    };
  }
}

function rnnStep({ forward, optimizer, vars }, { x, y }) {
  const cost = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, forward(x)), true, vars);
  const loss = cost.dataSync()[0];
  cost.dispose();
  return loss;
}

function accuracy({ forward }, ds) {
  let correct = 0;
  for (let s = 0; s < ds.count; s += 1000) {
    const len = Math.min(1000, ds.count - s);
    correct += tf.tidy(() => {
      const x = tf.slice(ds.x, [s, 0], [len, 784]);
      const y = tf.slice(ds.y, [s], [len]);
      return tf
        .equal(tf.argMax(forward(x), 1), y)
        .sum()
        .dataSync()[0];
    });
  }
  return correct / ds.count;
}

await runChild(async (library) => {
  const backend = { 'tfjs-cpu': 'cpu', 'tfjs-wasm': 'wasm' }[library];
  if (!backend) throw new Error(`tfjs.mjs: unknown library ${library}`);
  if (backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend(backend))) throw new Error(`tfjs: backend ${backend} unavailable`);
  await tf.ready();
  const flag = (name) => tf.env().getAsync(name);
  const info =
    backend === 'wasm'
      ? {
          simd: await flag('WASM_HAS_SIMD_SUPPORT'),
          multithread: await flag('WASM_HAS_MULTITHREAD_SUPPORT'),
        }
      : null;
  return {
    version: tf.version.tfjs,
    info,
    matmul,
    dataset,
    batch,
    free: ({ x, y }) => tf.dispose([x, y]),
    model,
    step,
    parameters,
    accuracy,
    rnnBatch,
    rnnModel,
    rnnStep,
    rnnParameters: ({ vars }) => vars.map((v) => Float32Array.from(v.dataSync())),
    // The cpu backend needs about two minutes an epoch here: extrapolate from a few steps.
    extrapolateEpoch: backend === 'cpu',
    memory() {
      const heap = tf.backend().wasm?.HEAPU8?.byteLength;
      return { tensorBytes: tf.memory().numBytes, ...(heap ? { wasmHeapBytes: heap } : {}) };
    },
  };
});
