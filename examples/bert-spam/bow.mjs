// The baseline every fine-tuned model must beat: bag-of-words logistic regression. Words are
// lower-cased runs of letters, digits and a few symbols spam likes ($ ! %); the vocabulary is
// the training split's words seen in at least `minCount` emails (at most `maxWords` of them);
// an email is the L2-normalised vector of log(1 + count); one nn.Linear(V, 2) is trained with
// full-batch AdamW and weight decay, keeping the epoch with the best validation F1 (spam).
import * as nb from 'nabla';

const WORD = /[a-z0-9$!%]+/g;

export function words(text) {
  return text.toLowerCase().match(WORD) ?? [];
}

/** Words in at least `minCount` of the training emails, most frequent first. */
export function bowVocabulary(texts, { minCount = 3, maxWords = 10000 } = {}) {
  const df = new Map();
  for (const t of texts) for (const w of new Set(words(t))) df.set(w, (df.get(w) ?? 0) + 1);
  const kept = [...df].filter(([, c]) => c >= minCount);
  kept.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return new Map(kept.slice(0, maxWords).map(([w], i) => [w, i]));
}

/** [n, V] features: log(1 + count) per word, each row scaled to unit length. */
export function bowFeatures(texts, vocab) {
  const V = vocab.size;
  const x = new Float32Array(texts.length * V);
  texts.forEach((t, r) => {
    const row = x.subarray(r * V, (r + 1) * V);
    for (const w of words(t)) {
      const j = vocab.get(w);
      if (j !== undefined) row[j] += 1;
    }
    let norm = 0;
    for (let j = 0; j < V; j++) {
      if (row[j]) row[j] = Math.log1p(row[j]);
      norm += row[j] * row[j];
    }
    if (norm > 0) for (let j = 0, s = 1 / Math.sqrt(norm); j < V; j++) row[j] *= s;
  });
  return nb.keep(nb.tensor(x, { shape: [texts.length, V] }));
}

/** A model's weights copied out of wasm memory (and back), to keep the best epoch. */
function snapshot(model) {
  const out = {};
  for (const [k, t] of Object.entries(model.stateDict())) out[k] = [t.shape, t.toArray()];
  return out;
}

function restore(state) {
  const out = {};
  for (const [k, [shape, values]] of Object.entries(state)) out[k] = nb.tensor(values, { shape });
  return out;
}

function spamF1(pred, target) {
  return nb.metrics.precisionRecallF1(pred, target, { numClasses: 2 }).f1[1];
}

/**
 * Trains the baseline on `train` and picks its epoch on `val` ({ texts, labels } each); returns
 * the test predictions, the best validation F1 and the parameter count.
 */
export function bagOfWords({ train, val, test }, opts = {}) {
  const { epochs = 300, lr = 0.05, weightDecay = 1e-4, seed = 0 } = opts;
  nb.manualSeed(seed);
  const vocab = bowVocabulary(train.texts, opts);
  const [xt, xv, xs] = [train, val, test].map((s) => bowFeatures(s.texts, vocab));
  const yt = nb.keep(nb.tensor(train.labels, { dtype: 'int32' }));
  const yv = nb.tensor(val.labels, { dtype: 'int32' });
  const model = new nb.nn.Linear(vocab.size, 2);
  const opt = new nb.optim.AdamW(model.parameters(), { lr, weightDecay });
  let best = { f1: -1, state: null, epoch: -1 };
  for (let e = 0; e < epochs; e++) {
    nb.tidy(() => {
      nb.nn.functional.crossEntropy(model.forward(xt), yt).backward();
    });
    opt.step();
    opt.zeroGrad();
    const f1 = nb.noGrad(() => nb.tidy(() => spamF1(model.forward(xv).argmax(1), yv)));
    if (f1 > best.f1) best = { f1, epoch: e, state: snapshot(model) };
  }
  nb.tidy(() => model.loadStateDict(restore(best.state)));
  const pred = nb.noGrad(() => Array.from(model.forward(xs).argmax(1).toArray()));
  return {
    pred,
    valF1: best.f1,
    epoch: best.epoch,
    vocabulary: vocab.size,
    parameters: vocab.size * 2 + 2,
  };
}
