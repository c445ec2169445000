// Reproducible randomness. The core's generators are counter-based: a call's numbers are a
// pure function of a 64-bit key, so the state here is just a seed and a call counter.
import { ValueError } from '../errors.js';

let seedWord = (Math.random() * 2 ** 32) >>> 0;
let counter = 0;

/** Makes every later random op (`rand`, `randn`, `randint`, dropout, init) reproducible. */
export function manualSeed(seed: number): void {
  if (!Number.isFinite(seed))
    throw new ValueError(`manualSeed: seed must be a finite number, got ${seed}`);
  seedWord = Math.trunc(seed) >>> 0;
  counter = 0;
}

/** The key for the next random call: [hi, lo] words, distinct for every call after a seed. */
export function nextKey(): [number, number] {
  const key: [number, number] = [seedWord, counter];
  // The key only holds 32 bits of the counter, so it wraps there (a float past 2^53 would
  // stop counting and repeat one stream for ever).
  counter = (counter + 1) % 2 ** 32;
  return key;
}

/** The generator's position, for checkpoints that must resume random streams exactly. */
export function getRngState(): { seed: number; counter: number } {
  return { seed: seedWord, counter };
}

export interface RngState {
  seed: number;
  counter: number;
}

/**
 * Checks a saved generator position without applying it: an object whose `seed` is an integer
 * in [0, 2^32) and whose `counter` is a non-negative safe integer. Throws a ValueError naming
 * `op` and the bad value.
 */
export function checkRngState(op: string, state: unknown): RngState {
  if (state === null || typeof state !== 'object' || Array.isArray(state)) {
    throw new ValueError(
      `${op}: the RNG state must be an object { seed, counter }, got ${show(state)}`,
    );
  }
  const { seed, counter: c } = state as Record<string, unknown>;
  if (!Number.isInteger(seed) || (seed as number) < 0 || (seed as number) >= 2 ** 32) {
    throw new ValueError(`${op}: RNG seed must be an integer in [0, 2^32), got ${show(seed)}`);
  }
  if (!Number.isSafeInteger(c) || (c as number) < 0) {
    throw new ValueError(`${op}: RNG counter must be a non-negative safe integer, got ${show(c)}`);
  }
  return { seed: seed as number, counter: c as number };
}

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : String(v));

export function setRngState(state: RngState): void {
  const checked = checkRngState('setRngState', state);
  seedWord = checked.seed;
  counter = checked.counter % 2 ** 32;
}
