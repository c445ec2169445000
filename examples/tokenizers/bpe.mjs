// A byte-level BPE tokenizer in GPT-2's style: train a vocabulary here, save it as a Hugging Face
// `tokenizer.json`, and encode/decode through `@huggingface/tokenizers` (a dev dependency of the
// examples; the library itself never imports a tokenizer).
//
//   const { merges } = trainBPE(text, { vocabSize: 4096 });
//   const json = toTokenizerJson(merges);            // save with saveTokenizerJson(path, json)
//   const tok = loadTokenizer(json);                  // { vocabSize, encode, decode }
//
// Training: the text is split by GPT-2's pre-tokenisation regex, each distinct piece is counted
// once, its UTF-8 bytes become symbols 0..255, and the most frequent adjacent pair is merged
// into a new symbol until the vocabulary is full. Pair counts are kept in a map and only the
// words holding the merged pair are revisited, so each merge costs what it changes, not the
// whole corpus; a lazy max-heap finds the next pair.
import { readFileSync, writeFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';

/** GPT-2's pre-tokenisation: contractions, letters, digits, other symbols, whitespace runs. */
export const GPT2_SPLIT =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** The end-of-text token every vocabulary here ends with. */
export const EOT = '<|endoftext|>';

/**
 * GPT-2's byte → printable character table: bytes that print as themselves keep their
 * Latin-1 character; the others (controls, space, …) are shifted to U+0100 and up, so every
 * token is a visible string without spaces (space becomes "Ġ", newline "Ċ").
 */
export function bytesToUnicode() {
  const visible = (b) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
  const table = new Array(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(visible(b) ? b : 256 + shifted++);
  return table;
}

/** Pair key of symbols a and b (both below 2^21, so the key stays an exact double). */
const key = (a, b) => a * 2097152 + b;

/** A max-heap of [count, a, b], largest count first, ties to the smaller (a, b) like HF's trainer. */
class PairHeap {
  items = [];
  static before(x, y) {
    return x[0] !== y[0] ? x[0] > y[0] : x[1] !== y[1] ? x[1] < y[1] : x[2] < y[2];
  }
  push(item) {
    const h = this.items;
    h.push(item);
    for (let i = h.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!PairHeap.before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }
  pop() {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && PairHeap.before(h[l], h[m])) m = l;
        if (r < h.length && PairHeap.before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

/** Distinct pre-tokenised pieces of `text` with their counts. */
export function countWords(text) {
  const counts = new Map();
  for (const m of text.matchAll(GPT2_SPLIT)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
  return counts;
}

/**
 * Learns `vocabSize - 257` merges (256 byte symbols, the merges, and the end-of-text token) from
 * `text` or from a Map of piece → count. Stops early when no pair occurs `minFrequency` times.
 * Returns the merges as [left, right] token strings in the order learned (= their rank).
 */
export function trainBPE(text, { vocabSize = 4096, minFrequency = 2 } = {}) {
  if (!Number.isInteger(vocabSize) || vocabSize < 257)
    throw new RangeError(`trainBPE: vocabSize must be an integer >= 257, got ${vocabSize}`);
  const counts = typeof text === 'string' ? countWords(text) : text;
  const utf8 = new TextEncoder();
  const words = []; // symbol arrays
  const freqs = [];
  for (const [w, c] of counts) {
    words.push(Array.from(utf8.encode(w)));
    freqs.push(c);
  }
  const pairCount = new Map(); // key → occurrences weighted by word count
  const where = new Map(); // key → Set of word indices that held the pair when it was added
  const addPairs = (wi, sign, delta) => {
    const w = words[wi];
    for (let i = 0; i + 1 < w.length; i++) {
      const k = key(w[i], w[i + 1]);
      delta.set(k, (delta.get(k) ?? 0) + sign * freqs[wi]);
      if (sign > 0) {
        let s = where.get(k);
        if (!s) where.set(k, (s = new Set()));
        s.add(wi);
      }
    }
  };
  const heap = new PairHeap();
  const apply = (delta) => {
    for (const [k, d] of delta) {
      if (d === 0) continue;
      const c = (pairCount.get(k) ?? 0) + d;
      if (c > 0) pairCount.set(k, c);
      else pairCount.delete(k);
      if (c > 0) heap.push([c, Math.floor(k / 2097152), k % 2097152]);
    }
  };
  const initial = new Map();
  for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1, initial);
  apply(initial);

  const byteChar = bytesToUnicode();
  const tokens = byteChar.slice(); // symbol id → token string
  const merges = [];
  while (tokens.length < vocabSize - 1 && heap.items.length > 0) {
    const [c, a, b] = heap.pop();
    const k = key(a, b);
    if (pairCount.get(k) !== c) continue; // a stale entry: the count changed after the push
    if (c < minFrequency) break;
    const id = tokens.length;
    tokens.push(tokens[a] + tokens[b]);
    merges.push([tokens[a], tokens[b]]);
    const delta = new Map();
    for (const wi of where.get(k)) {
      const w = words[wi];
      let hit = false;
      for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) hit = true;
      if (!hit) continue;
      addPairs(wi, -1, delta);
      const merged = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          merged.push(id);
          i++;
        } else merged.push(w[i]);
      }
      words[wi] = merged;
      addPairs(wi, 1, delta);
    }
    where.delete(k);
    apply(delta);
  }
  return { merges, tokens };
}

/**
 * A Hugging Face tokenizer.json (model BPE, ByteLevel pre-tokenizer and decoder, GPT-2's
 * settings) for byte symbols in `bytesToUnicode` order, then one token per merge, then EOT —
 * or for an explicit `vocab` (token → id) such as GPT-2's own.
 */
export function toTokenizerJson(merges, { vocab = null } = {}) {
  if (!vocab) {
    vocab = {};
    bytesToUnicode().forEach((ch, i) => (vocab[ch] = i));
    for (const [l, r] of merges) vocab[l + r] = Object.keys(vocab).length;
    vocab[EOT] = Object.keys(vocab).length;
  }
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: vocab[EOT],
        content: EOT,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', ...byteLevel },
    post_processor: { type: 'ByteLevel', ...byteLevel, trim_offsets: false },
    decoder: { type: 'ByteLevel', ...byteLevel },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges.map(([l, r]) => `${l} ${r}`),
    },
  };
}

export function saveTokenizerJson(path, json) {
  writeFileSync(path, JSON.stringify(json));
}

/**
 * Wraps a tokenizer.json (object, JSON string or file path) in `@huggingface/tokenizers`:
 * `encode(text)` → Int32Array of ids, `decode(ids)` → text, exact for any string (byte-level:
 * nothing is unknown, and the cleanup that would drop spaces before punctuation is off).
 */
export function loadTokenizer(json) {
  if (typeof json === 'string')
    json = JSON.parse(json.trimStart().startsWith('{') ? json : readFileSync(json, 'utf8'));
  const hf = new Tokenizer(json, { clean_up_tokenization_spaces: false });
  const vocabSize = hf.get_vocab(true).size;
  return {
    kind: 'bpe',
    vocabSize,
    eot: hf.token_to_id(EOT),
    hf,
    encode: (text) => Int32Array.from(hf.encode(text, { add_special_tokens: false }).ids),
    // (the library refuses an empty list; nothing decodes to nothing)
    decode: (ids) =>
      ids.length === 0 ? '' : hf.decode(Array.from(ids), { skip_special_tokens: false }),
  };
}
