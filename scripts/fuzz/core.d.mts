// Types for core.mjs, which test/fuzz.test.ts imports with the library passed in.
export type Outcome = 'ok' | 'typed' | 'generic' | 'trap' | 'hang' | 'garbage' | 'corrupted';

export const SURFACES: readonly ['safetensors', 'idx', 'checkpoint', 'ops', 'alloc'];
export type Surface = (typeof SURFACES)[number];

export const COLUMNS: readonly Outcome[];

/** Runs one seeded case with sentinels alive; `nb` is the library (`import * as nb`). */
export function runCase(
  nb: unknown,
  seed: number,
  surface: Surface,
  index: number,
  opts?: { maxAllocBytes?: number },
): { outcome: Outcome; detail: string };

/** The library still computes exact small results. */
export function healthy(nb: unknown): boolean;

export type Counts = Record<string, Record<'cases' | 'ok' | Outcome, number>>;
export function emptyCounts(): Counts;
export function table(counts: Counts): string;
