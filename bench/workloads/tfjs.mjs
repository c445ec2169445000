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

/** One CNN batch in tfjs's NHWC layout: images and one-hot labels, or inputs and targets. */
function cnnBatch(workload, { x, y }, c) {
  return tf.tidy(() => {
    if (workload === 'cnn-resblock') {
      const nhwc = (d) =>
        tf.transpose(tf.tensor4d(d, [c.batch, c.channels, c.size, c.size]), [0, 2, 3, 1]);
      return { x: nhwc(x), y: nhwc(y) };
    }
    const labels = tf.tensor1d(Int32Array.from(y), 'int32');
    return {
      x: tf.tensor4d(x, [c.batch, 28, 28, 1]),
      y: tf.cast(tf.oneHot(labels, 10), 'float32'),
    };
  });
}

/**
 * PyTorch's conv and linear initialisation, U(±1/√fan_in) for weight and bias, in tfjs's
 * layouts (conv filters [kh, kw, in, out], dense kernels [in, out]).
 */
function uniformVar(shape, fanIn, seed) {
  const b = 1 / Math.sqrt(fanIn);
  return tf.variable(tf.randomUniform(shape, -b, b, 'float32', seed));
}

/**
 * Training-mode BatchNorm over NHWC: batch statistics (biased variance) normalise the input;
 * the running statistics (momentum 0.1, unbiased variance, as PyTorch) are updated after the
 * step from the statistics the forward kept in `stats`.
 */
function batchNorm(channels) {
  const bn = {
    gamma: tf.variable(tf.ones([channels])),
    beta: tf.variable(tf.zeros([channels])),
    runningMean: tf.variable(tf.zeros([channels]), false),
    runningVar: tf.variable(tf.ones([channels]), false),
    stats: null,
  };
  bn.apply = (x) => {
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    bn.stats = { mean: tf.keep(mean), variance: tf.keep(variance), n: x.size / channels };
    return tf.add(
      tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), bn.gamma),
      bn.beta,
    );
  };
  bn.update = () => {
    const { mean, variance, n } = bn.stats;
    tf.tidy(() => {
      bn.runningMean.assign(tf.add(tf.mul(bn.runningMean, 0.9), tf.mul(mean, 0.1)));
      bn.runningVar.assign(
        tf.add(tf.mul(bn.runningVar, 0.9), tf.mul(variance, (0.1 * n) / (n - 1))),
      );
    });
    tf.dispose([mean, variance]);
    bn.stats = null;
  };
  return bn;
}

/** LeNet-5 (lib/cnn.mjs) with the low-level ops: conv2d, maxPool, matMul. */
function lenet(seed) {
  const s = seed * 100;
  const w1 = uniformVar([5, 5, 1, 6], 25, s);
  const b1 = uniformVar([6], 25, s + 1);
  const w2 = uniformVar([5, 5, 6, 16], 150, s + 2);
  const b2 = uniformVar([16], 150, s + 3);
  const dense = [400, 120, 84, 10].slice(1).map((out, l, a) => {
    const inF = l ? a[l - 1] : 400;
    return {
      w: uniformVar([inF, out], inF, s + 4 + 2 * l),
      b: uniformVar([out], inF, s + 5 + 2 * l),
    };
  });
  const forward = (x) => {
    let h = tf.maxPool(tf.relu(tf.add(tf.conv2d(x, w1, 1, 'same'), b1)), 2, 2, 'valid');
    h = tf.maxPool(tf.relu(tf.add(tf.conv2d(h, w2, 1, 'valid'), b2)), 2, 2, 'valid');
    // NHWC flattening: the same function as PyTorch's NCHW one up to a fixed permutation of
    // the first linear layer's inputs.
    h = tf.reshape(h, [x.shape[0], 400]);
    return dense.reduce((z, { w, b }, l) => {
      const o = tf.add(tf.matMul(z, w), b);
      return l + 1 < dense.length ? tf.relu(o) : o;
    }, h);
  };
  const vars = [w1, b1, w2, b2, ...dense.flatMap(({ w, b }) => [w, b])];
  return { forward, vars, loss: (y, out) => tf.losses.softmaxCrossEntropy(y, out), bns: [] };
}

/** torchvision's BasicBlock: conv3×3 (no bias) → BN → ReLU → conv3×3 → BN, + x, ReLU. */
function resblock(c, seed) {
  const s = seed * 100;
  const C = c.channels;
  const w1 = uniformVar([3, 3, C, C], 9 * C, s);
  const w2 = uniformVar([3, 3, C, C], 9 * C, s + 1);
  const bn1 = batchNorm(C);
  const bn2 = batchNorm(C);
  const forward = (x) => {
    const h = tf.relu(bn1.apply(tf.conv2d(x, w1, 1, 'same')));
    return tf.relu(tf.add(bn2.apply(tf.conv2d(h, w2, 1, 'same')), x));
  };
  const vars = [w1, bn1.gamma, bn1.beta, w2, bn2.gamma, bn2.beta];
  return { forward, vars, loss: (y, out) => tf.losses.meanSquaredError(y, out), bns: [bn1, bn2] };
}

/**
 * The CNN as written; when the backend cannot train it (tfjs-wasm has no
 * Conv2DBackpropFilter, the convolution's weight gradient), the reason instead. The probe takes
 * the gradients for one small input and applies nothing.
 */
function cnnModel(workload, c, seed) {
  const m = workload === 'cnn-resblock' ? resblock(c, seed) : lenet(seed);
  // tfjs's Adam defaults eps to 1e-7; use PyTorch's 1e-8 like the other libraries.
  m.optimizer = tf.train.adam(c.lr, 0.9, 0.999, 1e-8);
  const probe = workload === 'cnn-resblock' ? [2, 4, 4, c.channels] : [2, 28, 28, 1];
  try {
    tf.tidy(() => {
      const { grads } = tf.variableGrads(() => tf.sum(m.forward(tf.ones(probe))), m.vars);
      Object.values(grads).forEach((g) => g.dataSync());
    });
    return m;
  } catch (e) {
    return { cannotTrain: e.message };
  } finally {
    m.bns.forEach((bn) => bn.stats && tf.dispose([bn.stats.mean, bn.stats.variance]));
    m.bns.forEach((bn) => (bn.stats = null));
  }
}

function cnnStep({ forward, optimizer, vars, loss, bns }, { x, y }) {
  const cost = optimizer.minimize(() => loss(y, forward(x)), true, vars);
  bns.forEach((bn) => bn.update());
  const value = cost.dataSync()[0];
  cost.dispose();
  return value;
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
    cnnBatch,
    cnnModel,
    cnnStep,
    cnnParameters: ({ vars }) => vars.map((v) => Float32Array.from(v.dataSync())),
    // The cpu backend needs about two minutes an epoch here: extrapolate from a few steps.
    extrapolateEpoch: backend === 'cpu',
    memory() {
      const heap = tf.backend().wasm?.HEAPU8?.byteLength;
      return { tensorBytes: tf.memory().numBytes, ...(heap ? { wasmHeapBytes: heap } : {}) };
    },
  };
});
