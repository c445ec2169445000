// A BERT-style WordPiece tokenizer: train a vocabulary here, save it as `vocab.txt` and as a
// Hugging Face `tokenizer.json` (BertNormalizer, BertPreTokenizer, WordPiece, TemplateProcessing
// "[CLS] $A [SEP]" / "[CLS] $A [SEP] $B [SEP]", WordPiece decoder), and encode/decode through
// `@huggingface/tokenizers` (a dev dependency of the examples; the library never imports it).
//
//   const vocab = trainWordPiece(text, { vocabSize: 8000 });   // tokens in id order
//   saveVocabTxt('vocab.txt', vocab);                         // or toTokenizerJson(vocab)
//   const tok = loadWordPiece('vocab.txt');                   // vocab.txt or tokenizer.json
//   const batch = tok.encodeBatch(['a text', 'another'], { maxLength: 128 });
//   // → { inputIds, tokenTypeIds, attentionMask: Int32Array, shape: [B, T] } for nb.tensor
//
// Training follows HF's WordPiece trainer: BERT normalisation and pre-tokenisation, each word
// split into characters with `##` marking the non-initial ones, then the most frequent adjacent
// pair merged (`un` + `##able` → `unable`) until the vocabulary is full. Pair counts are kept
// in a map and only the words holding the merged pair are revisited; a lazy max-heap finds the
// next pair (the same scheme as bpe.mjs).
import { readFileSync, writeFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';

/** BERT's special tokens, at the ids HF's WordPiece trainer gives them (0..4). */
export const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
export const PREFIX = '##';

// BERT's punctuation: Unicode P plus every ASCII non-alphanumeric printable character.
const PUNCT = '\\p{P}\\u0021-\\u002F\\u003A-\\u0040\\u005B-\\u0060\\u007B-\\u007E';
const WORD = new RegExp(`[^\\s${PUNCT}]+|[${PUNCT}]`, 'gu');

const isCjk = (cp) =>
  (cp >= 0x4e00 && cp <= 0x9fff) ||
  (cp >= 0x3400 && cp <= 0x4dbf) ||
  (cp >= 0x20000 && cp <= 0x2a6df) ||
  (cp >= 0x2a700 && cp <= 0x2b73f) ||
  (cp >= 0x2b740 && cp <= 0x2b81f) ||
  (cp >= 0x2b820 && cp <= 0x2ceaf) ||
  (cp >= 0xf900 && cp <= 0xfaff) ||
  (cp >= 0x2f800 && cp <= 0x2fa1f);

/**
 * BERT's normaliser (uncased): drop NUL, U+FFFD and control characters, whitespace becomes a
 * space, CJK ideographs get spaces around them, lowercase, strip accents (NFD, drop marks).
 */
export function normalize(text) {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0);
    if (cp === 0 || cp === 0xfffd) continue;
    if (ch !== '\t' && ch !== '\n' && ch !== '\r' && /^[\p{Cc}\p{Cf}\p{Co}\p{Cs}]$/u.test(ch))
      continue;
    if (/^\s$/u.test(ch)) out += ' ';
    else if (isCjk(cp)) out += ` ${ch} `;
    else out += ch;
  }
  return out
    .toLowerCase()
    .normalize('NFD')
    .replace(/\p{Mn}/gu, '');
}

/** BERT's pre-tokeniser: runs of non-space non-punctuation, and single punctuation marks. */
export function preTokenize(text) {
  return text.trim().match(WORD) ?? [];
}

/** Distinct normalised words of `text` (a string or an iterable of strings) with counts. */
export function countWords(text) {
  const counts = new Map();
  const texts = typeof text === 'string' ? [text] : text;
  for (const t of texts) {
    for (const w of preTokenize(normalize(t))) counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  return counts;
}

const key = (a, b) => a * 2097152 + b;

/** A max-heap of [count, a, b]: largest count first, ties to the smaller (a, b). */
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

/**
 * A WordPiece vocabulary (token strings in id order) of at most `vocabSize` entries learned
 * from `text` (a string, an iterable of strings, or a Map word → count): the special tokens,
 * the sorted alphabet (characters and their `##` forms), then merged tokens in the order
 * learned. Stops early when no pair occurs `minFrequency` times.
 */
export function trainWordPiece(text, { vocabSize = 8000, minFrequency = 2 } = {}) {
  const counts = text instanceof Map ? text : countWords(text);
  const words = [];
  const freqs = [];
  const ids = new Map(); // token → symbol id
  const tokens = [];
  const sym = (t) => {
    let id = ids.get(t);
    if (id === undefined) {
      id = tokens.length;
      ids.set(t, id);
      tokens.push(t);
    }
    return id;
  };
  // The alphabet first, sorted, so symbol ids follow vocabulary order.
  const alphabet = new Set();
  for (const w of counts.keys()) [...w].forEach((c, i) => alphabet.add(i === 0 ? c : PREFIX + c));
  for (const t of [...alphabet].sort()) sym(t);
  if (SPECIAL_TOKENS.length + tokens.length > vocabSize) {
    throw new RangeError(
      `trainWordPiece: vocabSize ${vocabSize} is below the ${SPECIAL_TOKENS.length} special tokens plus the ${tokens.length}-symbol alphabet`,
    );
  }
  for (const [w, c] of counts) {
    words.push([...w].map((ch, i) => ids.get(i === 0 ? ch : PREFIX + ch)));
    freqs.push(c);
  }
  const pairCount = new Map();
  const where = new Map();
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
  while (SPECIAL_TOKENS.length + tokens.length < vocabSize && heap.items.length > 0) {
    const [c, a, b] = heap.pop();
    const k = key(a, b);
    if (pairCount.get(k) !== c) continue; // stale: the count changed after the push
    if (c < minFrequency) break;
    // b is never word-initial, so it carries the prefix: un + ##able → unable.
    // Two pairs can build one token (##h ##er, ##he ##r): it keeps its first id.
    const merged = tokens[a] + tokens[b].slice(PREFIX.length);
    const id = sym(merged);
    const delta = new Map();
    for (const wi of where.get(k)) {
      const w = words[wi];
      let hit = false;
      for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) hit = true;
      if (!hit) continue;
      addPairs(wi, -1, delta);
      const next = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          next.push(id);
          i++;
        } else next.push(w[i]);
      }
      words[wi] = next;
      addPairs(wi, 1, delta);
    }
    where.delete(k);
    apply(delta);
  }
  return [...SPECIAL_TOKENS, ...tokens];
}

/** `vocab.txt`: one token per line, line number = id (BERT's format). */
export function toVocabTxt(vocab) {
  return vocab.join('\n') + '\n';
}

export function saveVocabTxt(path, vocab) {
  writeFileSync(path, toVocabTxt(vocab));
}

/** Tokens in id order from a `vocab.txt` string (a trailing newline is not a token). */
export function parseVocabTxt(text) {
  const lines = text.split(/\r?\n/);
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/**
 * A Hugging Face tokenizer.json for `vocab` (tokens in id order) with BERT's pipeline, as HF's
 * `BertTokenizerFast` writes it.
 */
export function toTokenizerJson(vocab, { lowercase = true, maxInputCharsPerWord = 100 } = {}) {
  const ids = {};
  vocab.forEach((t, i) => (ids[t] = i));
  for (const t of ['[UNK]', '[CLS]', '[SEP]']) {
    if (!(t in ids)) throw new Error(`toTokenizerJson: the vocabulary has no ${t}`);
  }
  const special = (t, typeId) => ({ SpecialToken: { id: t, type_id: typeId } });
  const seq = (id, typeId) => ({ Sequence: { id, type_id: typeId } });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.filter((t) => t in ids).map((t) => ({
      id: ids[t],
      content: t,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [special('[CLS]', 0), seq('A', 0), special('[SEP]', 0)],
      pair: [
        special('[CLS]', 0),
        seq('A', 0),
        special('[SEP]', 0),
        seq('B', 1),
        special('[SEP]', 1),
      ],
      special_tokens: Object.fromEntries(
        ['[CLS]', '[SEP]'].map((t) => [t, { id: t, ids: [ids[t]], tokens: [t] }]),
      ),
    },
    decoder: { type: 'WordPiece', prefix: PREFIX, cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: PREFIX,
      max_input_chars_per_word: maxInputCharsPerWord,
      vocab: ids,
    },
  };
}

export function saveTokenizerJson(path, json) {
  writeFileSync(path, JSON.stringify(json));
}

/**
 * The reference WordPiece split (greedy longest-match-first, as BERT's): each word becomes the
 * longest vocabulary prefix, then the longest `##` continuation, …; a word with an
 * unmatchable rest, or longer than `maxChars`, becomes [UNK].
 */
export function wordPieceSplit(words, vocabSet, { unk = '[UNK]', maxChars = 100 } = {}) {
  const out = [];
  for (const w of words) {
    const chars = [...w];
    if (chars.length > maxChars) {
      out.push(unk);
      continue;
    }
    const pieces = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let piece = null;
      for (; end > start; end--) {
        const s = (start > 0 ? PREFIX : '') + chars.slice(start, end).join('');
        if (vocabSet.has(s)) {
          piece = s;
          break;
        }
      }
      if (piece === null) break;
      pieces.push(piece);
      start = end;
    }
    if (start < chars.length) out.push(unk);
    else out.push(...pieces);
  }
  return out;
}

/**
 * Drops tokens from the end of the longer sequence until both fit in `budget` (transformers'
 * 'longest_first': on a tie the second sequence loses a token).
 */
function truncatePair(a, b, budget) {
  a = a.slice();
  b = b ? b.slice() : null;
  while (a.length + (b ? b.length : 0) > budget) {
    if (b && b.length >= a.length && b.length > 0) b.pop();
    else a.pop();
  }
  return [a, b];
}

/**
 * Wraps a tokenizer.json (object, JSON string or file path) or a `vocab.txt` (path or text,
 * with `{ vocabTxt: true }`) in `@huggingface/tokenizers`, with BERT's conventions:
 * - `encode(text, pair?, { addSpecialTokens = true, maxLength })` → `{ ids, tokenTypeIds,
 *   attentionMask }` (number arrays); with maxLength, longest-first truncation of the pieces
 *   before [CLS]/[SEP] are added.
 * - `encodeBatch(texts, { maxLength, padding = 'longest' | 'max_length' })`: texts are strings
 *   or [a, b] pairs → `{ inputIds, tokenTypeIds, attentionMask }` Int32Arrays of `shape`
 *   [B, T], padded on the right with [PAD] (type 0, mask 0).
 * - `decode(ids, { skipSpecialTokens = true })` → text; `tokenize(text)` → pieces.
 */
export function loadWordPiece(source, { vocabTxt = false } = {}) {
  let json = source;
  if (typeof source === 'string') {
    const isPath = !source.includes('\n') && !source.trimStart().startsWith('{');
    const text = isPath ? readFileSync(source, 'utf8') : source;
    const asVocab = vocabTxt || (isPath && source.endsWith('.txt'));
    json = asVocab ? toTokenizerJson(parseVocabTxt(text)) : JSON.parse(text);
  }
  const hf = new Tokenizer(json, {});
  const vocab = hf.get_vocab(true);
  const id = (t) => vocab.get(t);
  const [padId, unkId, clsId, sepId, maskId] = SPECIAL_TOKENS.map(id);
  const pieces = (text) => hf.encode(text, { add_special_tokens: false }).ids;

  function encode(text, pair = null, { addSpecialTokens = true, maxLength = null } = {}) {
    let a = pieces(text);
    let b = pair == null ? null : pieces(pair);
    if (!addSpecialTokens) {
      if (maxLength != null) [a, b] = truncatePair(a, b, maxLength);
      const ids = b ? [...a, ...b] : a;
      return {
        ids,
        tokenTypeIds: [...a.map(() => 0), ...(b ?? []).map(() => 1)],
        attentionMask: ids.map(() => 1),
      };
    }
    const specials = b ? 3 : 2;
    if (maxLength != null) {
      if (maxLength < specials)
        throw new RangeError(
          `encode: maxLength ${maxLength} leaves no room for ${specials} special tokens`,
        );
      [a, b] = truncatePair(a, b, maxLength - specials);
    }
    const ids = [clsId, ...a, sepId, ...(b ? [...b, sepId] : [])];
    const tokenTypeIds = [0, ...a.map(() => 0), 0, ...(b ? [...b.map(() => 1), 1] : [])];
    return { ids, tokenTypeIds, attentionMask: ids.map(() => 1) };
  }

  function encodeBatch(
    texts,
    { maxLength = null, padding = 'longest', addSpecialTokens = true } = {},
  ) {
    const encs = texts.map((t) =>
      Array.isArray(t)
        ? encode(t[0], t[1], { addSpecialTokens, maxLength })
        : encode(t, null, { addSpecialTokens, maxLength }),
    );
    const T =
      padding === 'max_length' && maxLength != null
        ? maxLength
        : Math.max(1, ...encs.map((e) => e.ids.length));
    const B = encs.length;
    const inputIds = new Int32Array(B * T).fill(padId);
    const tokenTypeIds = new Int32Array(B * T);
    const attentionMask = new Int32Array(B * T);
    encs.forEach((e, i) => {
      inputIds.set(e.ids, i * T);
      tokenTypeIds.set(e.tokenTypeIds, i * T);
      attentionMask.set(e.attentionMask, i * T);
    });
    return { inputIds, tokenTypeIds, attentionMask, shape: [B, T] };
  }

  return {
    kind: 'wordpiece',
    hf,
    vocabSize: vocab.size,
    padId,
    unkId,
    clsId,
    sepId,
    maskId,
    specialIds: [padId, unkId, clsId, sepId, maskId].filter((v) => v !== undefined),
    tokenize: (text) => hf.encode(text, { add_special_tokens: false }).tokens,
    encode,
    encodeBatch,
    decode: (ids, { skipSpecialTokens = true } = {}) =>
      ids.length === 0
        ? ''
        : hf.decode(Array.from(ids), { skip_special_tokens: skipSpecialTokens }),
  };
}
