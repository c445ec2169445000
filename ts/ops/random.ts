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
  const key: [number, number] = [seedWord, counter >>> 0];
  counter++;
  return key;
}

/** The generator's position, for checkpoints that must resume random streams exactly. */
export function getRngState(): { seed: number; counter: number } {
  return { seed: seedWord, counter };
}

export function setRngState(state: { seed: number; counter: number }): void {
  seedWord = state.seed >>> 0;
  counter = state.counter;
}
