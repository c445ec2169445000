// The Brown corpus loader the text examples pretrain on: tags stripped, prose restored, every
// character inside the 96-symbol vocabulary, and a lossless character encoding.
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain-JS example module without types
import * as brown from '../examples/data/brown.mjs';

describe('examples/data/brown.mjs', () => {
  const text: string = brown.loadBrown();

  it('reads all 500 samples, about 6 M characters', () => {
    expect(brown.brownFiles()).toHaveLength(500);
    expect(text.length).toBeGreaterThan(5_500_000);
    expect(text.length).toBeLessThan(6_500_000);
  });

  it('strips the part-of-speech tags and restores quotes and punctuation', () => {
    expect(text.startsWith('The Fulton County Grand Jury said Friday an investigation of')).toBe(
      true,
    );
    expect(text).toContain('produced "no evidence" that any irregularities took place.');
    expect(text).not.toMatch(/\w\/(nn|nns|np|vbd|at|in|jj)(-tl)?\s/);
    expect(text).not.toContain('``');
    expect(text).not.toMatch(/\w [.,;?!](\s|$)/);
  });

  it('untags a line exactly', () => {
    expect(brown.untag("\tHe/pps said/vbd ,/, ``/`` yes/rb ''/'' ./.\n")).toBe('He said, "yes".');
  });

  it('stays inside the 96 characters, and encoding round-trips', () => {
    expect(brown.CHARS).toHaveLength(96);
    const ids: Int32Array = brown.encodeChars(text);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of ids) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(96);
    expect(brown.decodeChars(ids.subarray(0, 5000))).toBe(text.slice(0, 5000));
  });
});
