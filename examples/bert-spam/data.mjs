// Data for the BERT spam example: the stratified SpamAssassin split, Brown's train/validation
// samples, packed MLM chunks, and padded classification batches.
import * as nb from 'nabla';
import { loadBrown } from '../data/brown.mjs';
import { spamAssassin } from '../data/spam.mjs';

/** mulberry32: a small seeded generator for shuffles and chunk order. */
export function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffled(n, rand) {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/**
 * The emails (every `every`-th of the corpus when subsetting for a quick run) split 0.7/0.15/0.15,
 * stratified by label with `seed`: { train, val, test }, each { texts, labels }.
 */
export function spamSplit({ seed = 0, every = 1 } = {}) {
  const mails = spamAssassin().filter((_, i) => i % every === 0);
  const labels = mails.map((m) => m.label);
  const ds = new nb.data.TensorDataset(nb.tensor(labels, { dtype: 'int32' }));
  const parts = nb.data.stratifiedSplit(ds, labels, [0.7, 0.15, 0.15], seed);
  const [train, val, test] = parts.map((p) => ({
    texts: Array.from(p.indices, (i) => mails[i].text),
    labels: Array.from(p.indices, (i) => labels[i]),
  }));
  return { train, val, test };
}

/** Brown's samples with every 20th held out for validation (all genres in both). */
export function brownSplit({ files = Infinity } = {}) {
  const samples = loadBrown({ files }).split('\n\n');
  if (samples.length < 20) {
    const cut = Math.max(1, Math.floor(samples.length * 0.9));
    return { train: samples.slice(0, cut), val: samples.slice(cut) };
  }
  return {
    train: samples.filter((_, i) => i % 20 !== 10),
    val: samples.filter((_, i) => i % 20 === 10),
  };
}

/**
 * Texts → fixed-length MLM sequences: each text's pieces (no special tokens) are concatenated
 * with [SEP] between texts, cut into runs of T - 2 and framed as [CLS] run [SEP]; returns an
 * Int32Array of n · T ids and n. `maxChars` caps each text first (long emails).
 */
export function packChunks(tok, texts, T, { maxChars = Infinity } = {}) {
  const stream = [];
  for (const t of texts) {
    const ids = tok.encode(t.length > maxChars ? t.slice(0, maxChars) : t, null, {
      addSpecialTokens: false,
    }).ids;
    if (ids.length === 0) continue;
    for (const id of ids) stream.push(id);
    stream.push(tok.sepId);
  }
  return chunkStream(tok, stream, T);
}

/**
 * Each email as up to `windows` windows of [CLS] pieces [SEP] (at most maxLength tokens each):
 * its pieces cut into runs of maxLength - 2; an email longer than `windows` runs keeps the
 * first windows - 1 runs and its last run, since both the opening and the closing lines (an
 * unsubscribe footer, a signature) tell spam from ham; windows = 1 keeps the first run (head
 * truncation). Returns an array (per email) of arrays (per window) of ids.
 */
export function encodeEmails(tok, texts, maxLength, { windows = 1 } = {}) {
  const run = maxLength - 2;
  const frame = (pieces) => [tok.clsId, ...pieces, tok.sepId];
  const pieces = (text) => tok.encode(text, null, { addSpecialTokens: false }).ids;
  // A piece spans at least one character, so `cap` characters give every piece the head needs.
  const cap = windows * run * 16;
  return texts.map((t) => {
    const head = pieces(t.length > cap ? t.slice(0, cap) : t);
    const out = [];
    for (let i = 0; i < Math.min(head.length, (windows - 1) * run); i += run) {
      out.push(frame(head.slice(i, i + run)));
    }
    if (head.length > (windows - 1) * run) {
      // The last window: the rest of the head if it fits, else the email's last `run` pieces
      // (tokenised from its end: a tail cut mid-word loses at most the first piece).
      const rest = head.slice((windows - 1) * run);
      const tail =
        windows === 1 || (rest.length <= run && t.length <= cap)
          ? rest.slice(0, run)
          : pieces(t.slice(-run * 16)).slice(-run);
      out.push(frame(tail));
    }
    if (out.length === 0) out.push(frame([]));
    return out;
  });
}

/** At most `max` of the chunks `{ ids, n }` (of T tokens), spread evenly over them. */
export function evenSubset(chunks, max, T) {
  const n = Math.min(max, chunks.n);
  const ids = new Int32Array(n * T);
  for (let i = 0; i < n; i++) {
    const c = Math.floor((i * chunks.n) / n);
    ids.set(chunks.ids.subarray(c * T, (c + 1) * T), i * T);
  }
  return { ids, n };
}

/** A stream of ids cut into runs of T - 2, each framed as [CLS] run [SEP]: { ids, n }. */
function chunkStream(tok, stream, T) {
  const run = T - 2;
  const n = Math.floor(stream.length / run);
  const out = new Int32Array(n * T);
  for (let c = 0; c < n; c++) {
    out[c * T] = tok.clsId;
    for (let j = 0; j < run; j++) out[c * T + 1 + j] = stream[c * run + j];
    out[c * T + T - 1] = tok.sepId;
  }
  return { ids: out, n };
}

/**
 * Encoded emails (encodeEmails' windows) → packed MLM chunks of T tokens, as packChunks makes:
 * every window's pieces with [SEP] between windows, so task-adaptive pretraining reads exactly
 * the text the classifier reads. Returns { ids, n }.
 */
export function packWindows(tok, encoded, T) {
  const stream = [];
  for (const windows of encoded) {
    for (const w of windows) {
      if (w.length <= 2) continue;
      for (let j = 1; j < w.length - 1; j++) stream.push(w[j]);
      stream.push(tok.sepId);
    }
  }
  return chunkStream(tok, stream, T);
}

/**
 * Emails `idx` as one batch of their windows padded to the longest: { inputIds, attentionMask }
 * of [windows, T], `mean` ([emails, windows], each email's row averaging its windows) and labels.
 */
export function classBatch(encoded, labels, idx, padId) {
  const rows = idx.flatMap((i) => encoded[i]);
  const T = Math.max(...rows.map((r) => r.length));
  const ids = new Int32Array(rows.length * T).fill(padId);
  const mask = new Int32Array(rows.length * T);
  rows.forEach((r, w) => {
    ids.set(r, w * T);
    mask.fill(1, w * T, w * T + r.length);
  });
  const mean = new Float32Array(idx.length * rows.length);
  let w = 0;
  idx.forEach((i, e) => {
    const k = encoded[i].length;
    for (let j = 0; j < k; j++) mean[e * rows.length + w++] = 1 / k;
  });
  const shape = [rows.length, T];
  return {
    inputIds: nb.tensor(ids, { shape, dtype: 'int32' }),
    attentionMask: nb.tensor(mask, { shape, dtype: 'int32' }),
    mean: nb.tensor(mean, { shape: [idx.length, rows.length] }),
    labels: nb.tensor(
      idx.map((i) => labels[i]),
      { dtype: 'int32' },
    ),
  };
}
