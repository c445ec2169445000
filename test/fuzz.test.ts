// The CI slice of `npm run fuzz`: a fixed seed and a few hundred cases per surface (mutated
// safetensors, IDX and checkpoint files, random op calls against a float64 reference,
// allocation storms near the 4 GiB limit). Every case must end in a correct result or a typed
// error, with sentinel tensors unchanged, nb.memory() exact and the library still healthy.
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import {
  SURFACES,
  emptyCounts,
  runCase,
  table,
  type Counts,
  type Surface,
} from '../scripts/fuzz/core.mjs';

beforeAll(async () => {
  await nb.init();
});

const SEED = 20261204;
const CASES: Record<Surface, number> = {
  safetensors: 2000,
  idx: 2000,
  checkpoint: 400,
  ops: 5000,
  alloc: 150,
};

function slice(lib: unknown, surface: Surface, n: number, counts: Counts): string[] {
  const bad: string[] = [];
  for (let i = 0; i < n; i++) {
    const { outcome, detail } = runCase(lib, SEED, surface, i, { maxAllocBytes: 4 * 2 ** 20 });
    counts[surface].cases++;
    counts[surface][outcome]++;
    if (outcome !== 'ok' && outcome !== 'typed') bad.push(`${surface} #${i} ${outcome}: ${detail}`);
  }
  return bad;
}

describe('fuzz slice (seeded)', () => {
  const counts = emptyCounts();
  it.each(SURFACES.map((s) => [s]))(
    '%s: every case is a correct result or a typed error',
    (surface) => {
      const bad = slice(nb, surface as Surface, CASES[surface as Surface], counts);
      expect(bad).toEqual([]);
      // the slice exercises both sides: some inputs are accepted, some refused
      const c = counts[surface];
      expect(c.ok).toBeGreaterThan(0);
      expect(c.typed).toBeGreaterThan(0);
    },
  );

  it('prints the table', () => {
    const text = table(counts);
    expect(text.split('\n')).toHaveLength(2 + SURFACES.length);
    console.log(text);
  });
});

describe('the fuzz oracle', () => {
  it('flags a loader that drops tensors as silent garbage', () => {
    const lying = {
      ...nb,
      io: { ...nb.io, loadSafetensors: () => ({ tensors: {}, metadata: {} }) },
    };
    const counts = emptyCounts();
    slice(lying, 'safetensors', 100, counts);
    expect(counts.safetensors.garbage).toBeGreaterThan(0);
  });

  it('flags an op that writes its input as corrupted state', () => {
    const T = nb.Tensor.prototype as unknown as { neg: () => nb.Tensor };
    const neg = T.neg;
    T.neg = function (this: nb.Tensor) {
      const out = neg.call(this);
      if (this.size > 0) this.copy_(0);
      return out;
    };
    try {
      const counts = emptyCounts();
      slice(nb, 'ops', 600, counts);
      expect(counts.ops.corrupted).toBeGreaterThan(0);
    } finally {
      T.neg = neg;
    }
  });
});
