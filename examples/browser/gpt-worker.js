// The GPT page's worker: reads the Brown corpus slice the demo server serves, builds a
// character vocabulary, pretrains a small GPT-2 (nn.GPT2LMHeadModel) with AdamW, warmup +
// cosine decay and gradient clipping, reports train and validation loss to the page, and
// samples text one character at a time with the KV cache, posting each character as it comes.
import * as nb from '/dist/index.js';
import { exclusive, positiveInt, rng, yieldToEventLoop } from './worker-util.js';

await nb.init();

let corpus = null; // { requested, text, vocab: string[], index: Map, ids: Int32Array, split }
let model = null;
let modelVocab = null; // the vocabulary the model was trained with

/** Every tensor inside a model output's nested arrays and objects (the KV cache). */
function tensorsIn(value, out = []) {
  if (value instanceof nb.Tensor) out.push(value);
  else if (Array.isArray(value)) value.forEach((v) => tensorsIn(v, out));
  else if (value && typeof value === 'object')
    Object.values(value).forEach((v) => tensorsIn(v, out));
  return out;
}

/** The first `chars` characters of /corpus/brown.txt, its vocabulary and a 90/10 split. */
async function loadCorpus(chars) {
  if (!corpus || corpus.requested !== chars) {
    const res = await fetch('/corpus/brown.txt');
    if (!res.ok) throw new Error(`cannot load /corpus/brown.txt: ${res.status} ${res.statusText}`);
    const text = (await res.text()).slice(0, chars);
    const vocab = [...new Set(text)].sort();
    const index = new Map(vocab.map((c, i) => [c, i]));
    const ids = Int32Array.from(text, (c) => index.get(c));
    corpus = { requested: chars, text, vocab, index, ids, split: Math.floor(0.9 * ids.length) };
  }
  return corpus;
}

/**
 * The windows of `T + 1` characters at `from + starts[i]`: inputs [starts.length, T] and
 * targets (the same windows shifted by one), as int32 tensors.
 */
function windows(ids, from, starts, T) {
  const x = new Int32Array(starts.length * T);
  const y = new Int32Array(starts.length * T);
  starts.forEach((s, b) => {
    x.set(ids.subarray(from + s, from + s + T), b * T);
    y.set(ids.subarray(from + s + 1, from + s + T + 1), b * T);
  });
  const shape = [starts.length, T];
  return [nb.tensor(x, { shape, dtype: 'int32' }), nb.tensor(y, { shape, dtype: 'int32' })];
}

/** Mean next-character cross-entropy (nats) of `x` → `y`. */
function lossOf(x, y) {
  const { logits } = model.forward(x, { useCache: false });
  return nb.nn.functional.crossEntropy(logits.reshape([-1, logits.shape[2]]), y.reshape([-1]));
}

/** The mean loss over fixed, evenly spaced validation windows (the same ones every time). */
function validate(c, T, batch, batches) {
  const span = c.ids.length - c.split - T - 1;
  const n = Math.max(1, Math.min(batch * batches, span));
  const starts = Array.from({ length: n }, (_, i) => Math.floor((i * span) / n));
  model.eval();
  let total = 0;
  let count = 0;
  for (let i = 0; i < n; i += batch) {
    const part = starts.slice(i, i + batch);
    total +=
      nb.tidy(() => nb.noGrad(() => lossOf(...windows(c.ids, c.split, part, T)).item())) *
      part.length;
    count += part.length;
  }
  model.train();
  return total / count;
}

nb.worker.serve({
  /** Loads the corpus: its size, vocabulary and split. */
  async corpus({ chars }) {
    const c = await loadCorpus(positiveInt('chars', chars));
    return {
      chars: c.text.length,
      vocab: c.vocab.join(''),
      train: c.split,
      validation: c.ids.length - c.split,
    };
  },

  /** Trains a fresh model for `steps` steps; the page's Stop cancels it between steps. */
  train: (config, ctx) => exclusive('train', ctx, () => train(config, ctx)),

  /**
   * Continues `prompt` by `length` characters, one model call per character on the KV cache,
   * sampling from the top-k of logits / temperature (nn.sampleLogits); each character is
   * reported as it comes (model.generate returns all tokens at once, and stops at nPositions).
   */
  generate: (request, ctx) => exclusive('generate', ctx, () => generate(request, ctx)),

  /** Live tensors and heap bytes, for checking that loops stay flat. */
  memory() {
    return nb.memory();
  },
});

async function train(config, ctx) {
  let optimizer = null;
  try {
    const c = await loadCorpus(positiveInt('chars', config.chars));
    const T = positiveInt('context', config.context, 4096);
    const B = positiveInt('batch', config.batch);
    const steps = positiveInt('steps', config.steps);
    if (c.split - T - 1 < 1 || c.ids.length - c.split - T - 1 < 1) {
      throw new nb.ValueError(`${c.ids.length} characters are too few for context ${T}`);
    }
    nb.manualSeed(config.seed ?? 0);
    const next = rng(config.seed ?? 0);
    model?.dispose();
    model = null;
    model = new nb.nn.GPT2LMHeadModel(
      new nb.nn.GPT2Config({
        vocabSize: c.vocab.length,
        nPositions: T,
        nEmbd: positiveInt('embd', config.embd),
        nLayer: positiveInt('layers', config.layers),
        nHead: positiveInt('heads', config.heads),
        residPdrop: config.dropout ?? 0,
        embdPdrop: config.dropout ?? 0,
        attnPdrop: config.dropout ?? 0,
      }),
    );
    modelVocab = c;
    model.train();
    const parameters = model.parameters();
    // Weight decay on the matrices only (not on biases and LayerNorm gains), as in GPT-2.
    optimizer = new nb.optim.AdamW(
      [
        { params: parameters.filter((p) => p.ndim >= 2), weightDecay: config.weightDecay ?? 0.1 },
        { params: parameters.filter((p) => p.ndim < 2), weightDecay: 0 },
      ],
      { lr: config.lr, betas: [0.9, 0.95] },
    );
    const schedule = nb.optim.warmup(optimizer, {
      warmupSteps: Math.min(config.warmup ?? 100, steps - 1),
      totalSteps: steps,
      minLr: config.lr / 10,
    });
    const evalEvery = positiveInt('evalEvery', config.evalEvery ?? 100);
    const count = parameters.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
    ctx.report({ kind: 'start', parameters: count, vocab: c.vocab.length, steps });

    const span = c.split - T - 1;
    const started = performance.now();
    let trainLoss = NaN;
    let valLoss = NaN;
    let step = 0;
    const evaluate = () => {
      valLoss = validate(c, T, B, config.valBatches ?? 8);
      // The live tensor count goes along, to show the loop keeps memory flat.
      ctx.report({ kind: 'validation', step, loss: valLoss, tensors: nb.memory().tensors });
    };
    evaluate(); // the untrained model's loss: about ln(vocabulary)
    while (step < steps) {
      const lr = optimizer.paramGroups[0].lr;
      trainLoss = nb.tidy(() => {
        const starts = Array.from({ length: B }, () => Math.floor(next() * span));
        optimizer.zeroGrad();
        const loss = lossOf(...windows(c.ids, 0, starts, T));
        loss.backward();
        if ((config.clip ?? 1) > 0) nb.nn.utils.clipGradNorm(parameters, config.clip ?? 1);
        optimizer.step();
        return loss.item();
      });
      schedule.step();
      step++;
      const seconds = (performance.now() - started) / 1000;
      ctx.report({
        kind: 'step',
        step,
        steps,
        loss: trainLoss,
        lr,
        seconds,
        charsPerSecond: (step * B * T) / seconds,
      });
      if (step % evalEvery === 0 || step === steps) evaluate();
      await yieldToEventLoop();
      if (ctx.signal.aborted) break; // stopped: keep the model as it is, for sampling
    }
    return { step, trainLoss, valLoss, seconds: (performance.now() - started) / 1000 };
  } finally {
    optimizer?.dispose(); // its moments; the model stays for sampling
  }
}

async function generate({ prompt, length, temperature, topK }, ctx) {
  if (!model) throw new nb.ValueError('generate: train the model first');
  const c = modelVocab;
  const T = model.config.nPositions;
  let past = []; // the cache's tensors, kept between steps
  let cache = null; // the model's pastKeyValues
  try {
    positiveInt('length', length);
    const sampling = { temperature, topK }; // checked by nn.sampleLogits (typed errors)
    // Characters outside the vocabulary are dropped; an empty prompt starts a paragraph.
    let context = [...prompt].filter((ch) => c.index.has(ch)).map((ch) => c.index.get(ch));
    if (context.length === 0) context = [c.index.get('\n') ?? 0];
    let text = '';
    let input = context.slice(-T);
    let used = 0; // positions in the cache
    model.eval();
    for (let i = 0; i < length; i++) {
      if (used + input.length > T) {
        // The context is full: start a fresh cache over the last T - 1 characters.
        past.forEach((t) => t.dispose());
        past = [];
        cache = null;
        input = context.slice(-(T - 1));
        used = 0;
      }
      const out = nb.tidy(() =>
        nb.noGrad(() => {
          const ids = nb.tensor([input], { dtype: 'int32' });
          const { logits, pastKeyValues } = model.forward(ids, {
            pastKeyValues: cache ?? undefined,
            useCache: true,
          });
          const last = logits.narrow(1, input.length - 1, 1).reshape([1, -1]);
          const id = nb.nn.sampleLogits(last, sampling).item();
          return { id, pastKeyValues };
        }),
      );
      past.forEach((t) => t.dispose());
      past = tensorsIn(out.pastKeyValues).map((t) => nb.keep(t));
      cache = out.pastKeyValues;
      used += input.length;
      context.push(out.id);
      input = [out.id];
      text += c.vocab[out.id];
      ctx.report({ kind: 'char', char: c.vocab[out.id], index: i });
      await yieldToEventLoop();
      if (ctx.signal.aborted) break;
    }
    return { text };
  } finally {
    past.forEach((t) => t.dispose());
    model.train();
  }
}
