// The LoRA page's worker: pretrains a small character GPT-2 (the base) on the Brown slice,
// then fine-tunes it as a spam classifier with LoRA adapters on the attention and MLP
// projections plus a new head (the only trainable weights), reports loss and test
// accuracy/F1, classifies typed text, and saves the adapter to IndexedDB and loads it back
// into a fresh copy of the base.
import * as nb from '/dist/index.js';
import { exclusive, positiveInt, rng, yieldToEventLoop } from './worker-util.js';

// The plain core: this tiny fine-tuning's typed-text predictions sit close to 0.5, and the plain
// build gives the same bits in every browser (relaxed SIMD rounds differently), so the demo
// behaves the same everywhere.
await nb.init({ simd: 'plain' });

// A fixed character vocabulary: newline and printable ASCII (what the demo server serves).
const VOCAB = ['\n', ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i))];
const INDEX = new Map(VOCAB.map((c, i) => [c, i]));
const encode = (text) => [...text].filter((c) => INDEX.has(c)).map((c) => INDEX.get(c));
const BASE_KEY = 'lora-demo/base';
const ADAPTER_KEY = 'lora-demo/adapter';
const TARGETS = ['c_attn', 'c_proj', 'c_fc']; // GPT-2's attention and MLP projections

let brown = null; // Int32Array of the corpus's ids
let spam = null; // { train: [{ ids, label }], test: [...] }
let base = null; // { config: GPT2Config, weights: Record<string, Tensor> } (kept)
let model = null; // the classifier being fine-tuned or loaded

function positiveNumber(name, value) {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new nb.ValueError(`${name} must be a positive number, got ${value}`);
  }
  return value;
}

/** GPT2Model (the base) with a new head on the mean of the hidden states: P(ham), P(spam). */
class SpamClassifier extends nb.nn.Module {
  constructor(config) {
    super();
    this.transformer = new nb.nn.GPT2Model(config);
    this.score = new nb.nn.Linear(config.nEmbd, 2);
  }

  /**
   * `ids` int32 [B, T], right-padded; `mask` float32 [B, T, 1] (1 on real characters). The
   * base is causal, so the padding after a text does not change its hidden states, and the
   * masked mean covers exactly the text.
   */
  forward(ids, mask) {
    const { lastHiddenState } = this.transformer.forward(ids, { useCache: false });
    const pooled = lastHiddenState.mul(mask).sum(1).div(mask.sum(1));
    return this.score.forward(pooled);
  }
}

/** A batch of texts (already id lists) cut to `T` characters: ids, mask. */
function batchOf(seqs, T) {
  const L = Math.max(1, Math.min(T, Math.max(...seqs.map((s) => s.length))));
  const ids = new Int32Array(seqs.length * L).fill(INDEX.get(' '));
  const mask = new Float32Array(seqs.length * L);
  seqs.forEach((s, b) => {
    const n = Math.min(L, s.length);
    ids.set(s.slice(0, n), b * L);
    mask.fill(1, b * L, b * L + Math.max(n, 1)); // an empty text averages its one pad
  });
  return [
    nb.tensor(ids, { shape: [seqs.length, L], dtype: 'int32' }),
    nb.tensor(mask, { shape: [seqs.length, L, 1] }),
  ];
}

/** P(spam) for each text (noGrad, eval mode), in batches of `batch`. */
function probabilities(m, seqs, batch = 32) {
  const T = m.transformer.config.nPositions;
  const out = [];
  m.eval();
  for (let i = 0; i < seqs.length; i += batch) {
    const p = nb.tidy(() =>
      nb.noGrad(() => {
        const logits = m.forward(...batchOf(seqs.slice(i, i + batch), T));
        return nb.nn.functional.softmax(logits, -1).toArray();
      }),
    );
    for (let k = 1; k < p.length; k += 2) out.push(p[k]);
  }
  m.train();
  return out;
}

/** Accuracy, precision, recall and F1 (spam = positive) of P(spam) > 0.5. */
function scores(probs, items) {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let right = 0;
  probs.forEach((p, i) => {
    const guess = p > 0.5 ? 1 : 0;
    const label = items[i].label;
    if (guess === label) right++;
    if (guess === 1 && label === 1) tp++;
    if (guess === 1 && label === 0) fp++;
    if (guess === 0 && label === 1) fn++;
  });
  const precision = tp + fp ? tp / (tp + fp) : 0;
  const recall = tp + fn ? tp / (tp + fn) : 0;
  const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
  return { accuracy: right / probs.length, precision, recall, f1 };
}

/** FNV-1a over the bytes of a state dict's tensors (sorted by name): any changed bit shows. */
function checksumOf(dict) {
  let h = 0x811c9dc5;
  for (const name of Object.keys(dict).sort()) {
    const bytes = new Uint8Array(dict[name].toArray().buffer);
    for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** The checksum of a module's own state dict (its base weights, not the adapters). */
function checksum(module) {
  const dict = module.stateDict();
  try {
    return checksumOf(dict);
  } finally {
    Object.values(dict).forEach((t) => t.dispose());
  }
}

const disposeAll = (dict) => Object.values(dict).forEach((t) => t.dispose());

/** A fresh classifier holding the base weights `weights` (strict) and a new random head. */
function classifierFrom(config, weights) {
  const m = new SpamClassifier(config);
  m.transformer.loadStateDict(weights, { strict: true });
  return m;
}

async function loadBrown(chars) {
  if (!brown || brown.chars !== chars) {
    const res = await fetch('/corpus/brown.txt');
    if (!res.ok) throw new Error(`cannot load /corpus/brown.txt: ${res.status} ${res.statusText}`);
    const ids = Int32Array.from(encode((await res.text()).slice(0, chars)));
    brown = { chars, ids };
  }
  return brown.ids;
}

/** /corpus/spam.json split 75/25 per class (nb.data.stratifiedSplit) into train and test. */
async function loadSpam() {
  if (!spam) {
    const res = await fetch('/corpus/spam.json');
    if (!res.ok) throw new Error(`cannot load /corpus/spam.json: ${res.status} ${res.statusText}`);
    const { source, items } = await res.json();
    const all = items.map((e) => ({ text: e.text, ids: encode(e.text), label: e.label }));
    const dataset = { length: all.length, get: (i) => all[i] };
    const labels = all.map((e) => e.label);
    const [train, test] = nb.data.stratifiedSplit(dataset, labels, [0.75, 0.25], 0);
    const items_ = (s) => Array.from({ length: s.length }, (_, i) => s.get(i));
    spam = { source, train: items_(train), test: items_(test) };
  }
  return spam;
}

nb.worker.serve({
  /** Pretrains a fresh base GPT-2 on the Brown slice and saves it to IndexedDB. */
  pretrain: (config, ctx) => exclusive('pretrain', ctx, () => pretrain(config, ctx)),

  /** The labelled set: sizes of its parts. */
  async data() {
    const s = await loadSpam();
    const count = (xs, l) => xs.filter((e) => e.label === l).length;
    return {
      source: s.source,
      train: s.train.length,
      test: s.test.length,
      trainSpam: count(s.train, 1),
      testSpam: count(s.test, 1),
    };
  },

  /** LoRA fine-tuning of a fresh classifier on the base; Stop ends it between steps. */
  finetune: (config, ctx) => exclusive('finetune', ctx, () => finetune(config, ctx)),

  /** P(spam) of each text, from the current classifier. */
  classify({ texts }) {
    if (!model) throw new nb.ValueError('classify: fine-tune or load an adapter first');
    if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string')) {
      throw new nb.ValueError('classify: texts must be an array of strings');
    }
    return { probabilities: probabilities(model, texts.map(encode)) };
  },

  /** Saves the current adapter (nn.lora.stateDict) and its config to IndexedDB. */
  save: () => exclusive('save', null, save),

  /** A fresh base from IndexedDB plus the saved adapter (strict): the current classifier. */
  load: () => exclusive('load', null, load),

  /** The adapter as adapter_model.safetensors bytes and adapter_config.json text. */
  download() {
    if (!model) throw new nb.ValueError('download: fine-tune or load an adapter first');
    const { tensors, config } = nb.nn.lora.stateDict(model);
    let msg;
    try {
      msg = nb.worker.packWeights(tensors);
    } finally {
      disposeAll(tensors);
    }
    return nb.worker.transfer({ bytes: msg.bytes, config: JSON.stringify(config, null, 2) }, [
      msg.bytes,
    ]);
  },

  memory() {
    return nb.memory();
  },
});

async function pretrain(config, ctx) {
  let optimizer = null;
  let lm = null;
  try {
    const ids = await loadBrown(positiveInt('chars', config.chars));
    const T = positiveInt('context', config.context, 1024);
    const B = positiveInt('batch', config.batch);
    const steps = positiveInt('steps', config.steps);
    const lr = positiveNumber('lr', config.lr);
    if (ids.length < T + 2)
      throw new nb.ValueError(`${ids.length} characters are too few for context ${T}`);
    nb.manualSeed(config.seed ?? 0);
    const next = rng(config.seed ?? 0);
    const gptConfig = new nb.nn.GPT2Config({
      vocabSize: VOCAB.length,
      nPositions: T,
      nEmbd: positiveInt('embd', config.embd),
      nLayer: positiveInt('layers', config.layers),
      nHead: positiveInt('heads', config.heads),
      residPdrop: 0,
      embdPdrop: 0,
      attnPdrop: 0,
    });
    lm = new nb.nn.GPT2LMHeadModel(gptConfig);
    lm.train();
    const parameters = lm.parameters();
    optimizer = new nb.optim.AdamW(nb.optim.paramGroupsWithDecay(lm, { weightDecay: 0.1 }), {
      lr,
      betas: [0.9, 0.95],
    });
    const schedule = nb.optim.warmup(optimizer, {
      warmupSteps: Math.min(Math.ceil(steps / 10), steps - 1),
      totalSteps: steps,
      minLr: lr / 10,
    });
    const count = parameters.reduce((n, p) => n + p.size, 0);
    ctx.report({ kind: 'start', parameters: count, vocab: VOCAB.length, steps });
    const started = performance.now();
    let loss = NaN;
    let step = 0;
    while (step < steps) {
      loss = nb.tidy(() => {
        const x = new Int32Array(B * T);
        const y = new Int32Array(B * T);
        for (let b = 0; b < B; b++) {
          const s = Math.floor(next() * (ids.length - T - 1));
          x.set(ids.subarray(s, s + T), b * T);
          y.set(ids.subarray(s + 1, s + T + 1), b * T);
        }
        optimizer.zeroGrad();
        const { logits } = lm.forward(nb.tensor(x, { shape: [B, T], dtype: 'int32' }), {
          useCache: false,
        });
        const l = nb.nn.functional.crossEntropy(
          logits.reshape([-1, VOCAB.length]),
          nb.tensor(y, { shape: [B * T], dtype: 'int32' }),
        );
        l.backward();
        nb.nn.utils.clipGradNorm(parameters, 1);
        optimizer.step();
        return l.item();
      });
      schedule.step();
      step++;
      const seconds = (performance.now() - started) / 1000;
      ctx.report({ kind: 'step', step, steps, loss, seconds, tensors: nb.memory().tensors });
      await yieldToEventLoop();
      if (ctx.signal.aborted) break;
    }
    const seconds = (performance.now() - started) / 1000;
    // The base is the transformer without its LM head: kept here and saved to IndexedDB.
    const weights = lm.transformer.stateDict();
    try {
      await nb.io.saveToIndexedDB(BASE_KEY, weights, {
        config: JSON.stringify(gptConfig.toJSON()),
      });
      if (base) disposeAll(base.weights);
      base = {
        config: gptConfig,
        weights: Object.fromEntries(
          Object.entries(weights).map(([k, t]) => [k, nb.keep(t.clone())]),
        ),
      };
    } finally {
      disposeAll(weights);
    }
    model?.dispose();
    model = null;
    return { step, loss, seconds, parameters: count, checksum: checksumOf(base.weights) };
  } finally {
    optimizer?.dispose();
    lm?.dispose();
  }
}

async function finetune(config, ctx) {
  if (!base) throw new nb.ValueError('finetune: pretrain the base model first');
  const r = positiveInt('r', config.r);
  const alpha = positiveNumber('alpha', config.alpha);
  const epochs = positiveInt('epochs', config.epochs);
  const B = positiveInt('batch', config.batch);
  const lr = positiveNumber('lr', config.lr);
  const s = await loadSpam();
  let optimizer = null;
  nb.manualSeed(config.seed ?? 0);
  const next = rng(config.seed ?? 0);
  const m = classifierFrom(base.config, base.weights);
  try {
    nb.nn.lora.apply(m, {
      targetModules: TARGETS,
      r,
      alpha,
      dropout: config.dropout ?? 0,
      modulesToSave: ['score'],
      taskType: 'SEQ_CLS',
    });
  } catch (e) {
    m.dispose();
    throw e;
  }
  model?.dispose();
  model = m;
  const before = checksum(m.transformer);
  try {
    const summary = nb.nn.summary(m, { asObject: true });
    optimizer = new nb.optim.AdamW(nb.optim.paramGroupsWithDecay(m, { weightDecay: 0.01 }), {
      lr,
    });
    const perEpoch = Math.ceil(s.train.length / B);
    const steps = epochs * perEpoch;
    const schedule = nb.optim.warmup(optimizer, {
      warmupSteps: Math.min(config.warmup ?? Math.ceil(steps / 10), steps - 1),
      totalSteps: steps,
    });
    const T = base.config.nPositions;
    ctx.report({
      kind: 'start',
      steps,
      trainable: summary.trainable,
      total: summary.total,
      percent: summary.trainablePercent,
      checksum: before,
    });
    const started = performance.now();
    let step = 0;
    let last = null;
    m.train();
    for (let epoch = 1; epoch <= epochs && !ctx.signal.aborted; epoch++) {
      const order = s.train.map((_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      for (let i = 0; i < order.length; i += B) {
        const items = order.slice(i, i + B).map((k) => s.train[k]);
        const lrNow = optimizer.paramGroups[0].lr;
        const loss = nb.tidy(() => {
          optimizer.zeroGrad();
          const logits = m.forward(
            ...batchOf(
              items.map((e) => e.ids),
              T,
            ),
          );
          const target = nb.tensor(
            Int32Array.from(items, (e) => e.label),
            { dtype: 'int32' },
          );
          const l = nb.nn.functional.crossEntropy(logits, target);
          l.backward();
          optimizer.step();
          return l.item();
        });
        schedule.step();
        step++;
        const seconds = (performance.now() - started) / 1000;
        ctx.report({ kind: 'step', step, steps, epoch, loss, lr: lrNow, seconds });
        await yieldToEventLoop();
        if (ctx.signal.aborted) break;
      }
      const probs = probabilities(
        m,
        s.test.map((e) => e.ids),
      );
      last = { epoch, ...scores(probs, s.test) };
      ctx.report({ kind: 'epoch', step, ...last, tensors: nb.memory().tensors });
    }
    const seconds = (performance.now() - started) / 1000;
    const probs = probabilities(
      m,
      s.test.map((e) => e.ids),
    );
    return {
      step,
      seconds,
      ...scores(probs, s.test),
      probabilities: probs,
      trainable: summary.trainable,
      total: summary.total,
      checksumBefore: before,
      checksumAfter: checksum(m.transformer),
      baseChecksum: checksumOf(base.weights),
    };
  } finally {
    optimizer?.dispose();
  }
}

async function save() {
  if (!model) throw new nb.ValueError('save: fine-tune an adapter first');
  const { tensors, config } = nb.nn.lora.stateDict(model);
  try {
    await nb.io.saveToIndexedDB(ADAPTER_KEY, tensors, { adapter_config: JSON.stringify(config) });
  } finally {
    disposeAll(tensors);
  }
  return { key: ADAPTER_KEY, names: Object.keys(tensors), config };
}

/** A fresh base from IndexedDB plus the saved adapter; both become the worker's current ones. */
async function load() {
  const weights = await nb.io.loadFromIndexedDB(BASE_KEY);
  let m = null;
  let adapter = null;
  let config;
  try {
    const meta = await nb.io.indexedDBMetadata(BASE_KEY);
    config = nb.nn.GPT2Config.fromJSON(JSON.parse(meta.config));
    m = classifierFrom(config, weights);
    adapter = await nb.io.loadFromIndexedDB(ADAPTER_KEY);
    const { adapter_config } = await nb.io.indexedDBMetadata(ADAPTER_KEY);
    nb.nn.lora.load(m, adapter, JSON.parse(adapter_config)); // strict: every key, every shape
  } catch (e) {
    m?.dispose();
    disposeAll(weights);
    throw e;
  } finally {
    if (adapter) disposeAll(adapter);
  }
  // The loaded base is the one to fine-tune from next (after a page reload there is no other).
  if (base) disposeAll(base.weights);
  base = {
    config,
    weights: Object.fromEntries(Object.entries(weights).map(([k, t]) => [k, nb.keep(t)])),
  };
  model?.dispose();
  model = m;
  const s = await loadSpam();
  const probs = probabilities(
    m,
    s.test.map((e) => e.ids),
  );
  return { ...scores(probs, s.test), probabilities: probs, checksum: checksum(m.transformer) };
}
