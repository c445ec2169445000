// nb.data.stratifiedSplit: each class divided in the split's proportions (scikit-learn's
// stratify), disjoint and covering, seeded, with typed errors for bad labels or fractions.
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';

const { TensorDataset, stratifiedSplit } = nb.data;

beforeAll(async () => {
  await nb.init();
});

/** n samples whose x is their index; labels: class k for a chosen count of each. */
function labelled(counts: number[]): { ds: nb.data.TensorDataset<[nb.Tensor]>; y: number[] } {
  const y = counts.flatMap((c, k) => Array<number>(c).fill(k));
  // Interleave so class order and index order differ.
  const order = y.map((_, i) => (i * 7919) % y.length);
  const shuffled = order.map((i) => y[i]);
  return { ds: new TensorDataset(nb.arange(y.length)), y: shuffled };
}

describe('stratifiedSplit', () => {
  it('divides every class in the fractions (floor, remainder from the first split)', () => {
    const counts = [4150, 1896];
    const { ds, y } = labelled(counts);
    const parts = stratifiedSplit(ds, y, [0.7, 0.15, 0.15], 3);
    const perClass = parts.map((p) => {
      const c = [0, 0];
      for (const i of p.indices) c[y[i]]++;
      return c;
    });
    // 4150: floors 2905, 622, 622 (+1 left to split 0); 1896: 1327, 284, 284 (+1 to split 0).
    expect(perClass).toEqual([
      [2906, 1328],
      [622, 284],
      [622, 284],
    ]);
    const all = parts.flatMap((p) => Array.from(p.indices)).sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 6046 }, (_, i) => i));
  });

  it('is a pure function of the seed and interleaves classes within a split', () => {
    const { ds, y } = labelled([30, 10, 20]);
    const a = stratifiedSplit(ds, y, [0.5, 0.5], 11).map((p) => Array.from(p.indices));
    const b = stratifiedSplit(ds, y, [0.5, 0.5], 11).map((p) => Array.from(p.indices));
    const c = stratifiedSplit(ds, y, [0.5, 0.5], 12).map((p) => Array.from(p.indices));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    const classes = a[0].map((i) => y[i]);
    const sorted = [...classes].sort((p, q) => p - q);
    expect(classes).not.toEqual(sorted);
    // Subsets read the right samples.
    const parts = stratifiedSplit(ds, nb.tensor(y, { dtype: 'int32' }), [0.5, 0.5], 11);
    expect(parts[1].get(0)[0].item()).toBe(a[1][0]);
  });

  it('rejects bad labels and fractions with a typed error', () => {
    const { ds, y } = labelled([3, 3]);
    expect(() => stratifiedSplit(ds, y.slice(1), [0.5, 0.5])).toThrow(nb.ValueError);
    expect(() => stratifiedSplit(ds, y.slice(1), [0.5, 0.5])).toThrow(
      /5 labels for a dataset of 6/,
    );
    expect(() => stratifiedSplit(ds, [...y.slice(1), 0.5], [0.5, 0.5])).toThrow(
      /non-negative integers, got 0.5 at index 5/,
    );
    expect(() => stratifiedSplit(ds, y, [0.5, 0.6])).toThrow(/summing to 1/);
    expect(() => stratifiedSplit(ds, y, [1.5, -0.5])).toThrow(/summing to 1/);
    expect(() => stratifiedSplit(ds, nb.zeros([6, 1]), [1])).toThrow(/must be 1-D/);
  });
});
