// Seeded permutations for shuffling and splitting. A permutation is a pure function of a
// 64-bit key ([hi, lo] words, like the core's counter-based generators), so the same seed and
// epoch always give the same order in every JavaScript engine.
import { ValueError } from '../errors.js';
import { nextKey } from '../ops/random.js';

export type Key = readonly [number, number];

/** SplitMix32: spreads one 32-bit word into a stream used only to seed the main generator. */
function splitmix32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x9e3779b9) >>> 0;
    let z = a;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** xoshiro128**, seeded from both key words: a fast generator with a 2^128 period. */
function generator([hi, lo]: Key): () => number {
  const a = splitmix32(hi);
  const b = splitmix32(lo ^ 0x6a09e667);
  const s = [a(), a(), b(), b()];
  if (!s.some((v) => v !== 0)) s[0] = 1; // the all-zero state is a fixed point
  return () => {
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A uniformly random permutation of 0..n-1 (Fisher–Yates with unbiased rejection sampling). */
export function randperm(n: number, key: Key): Int32Array {
  const next = generator(key);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const bound = i + 1;
    const limit = 2 ** 32 - (2 ** 32 % bound);
    let r = next();
    while (r >= limit) r = next();
    const j = r % bound;
    const tmp = out[i];
    out[i] = out[j];
    out[j] = tmp;
  }
  return out;
}

/** The key for an explicit `seed` and a stream number, or the global generator's next key. */
export function keyFor(op: string, seed: number | undefined, stream: number): Key {
  if (seed === undefined) return nextKey();
  if (!Number.isFinite(seed))
    throw new ValueError(`${op}: seed must be a finite number, got ${seed}`);
  return [Math.trunc(seed) >>> 0, stream >>> 0];
}
