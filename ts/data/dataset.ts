// Datasets: anything with a length and an indexed `get`, plus the two every training script
// needs — in-memory tensors (TensorDataset) and index views for splits (Subset, randomSplit).
import { hold } from '../tensor/scope.js';
import { IndexError, ShapeError, ValueError, fmt } from '../errors.js';
import { noGrad } from '../autograd/node.js';
import type { Tensor } from '../tensor/tensor.js';
import { keyFor, randperm } from './shuffle.js';

/** A map from indices `0..length-1` to samples, like `torch.utils.data.Dataset`. */
export abstract class Dataset<T> {
  abstract get length(): number;
  /**
   * The sample at `i`. Tensors made here belong to whoever calls `get` (the DataLoader frees
   * them once they are stacked into a batch); tensors the dataset stores are left alone.
   */
  abstract get(i: number): T;
}

/** Resolves a possibly negative index, or throws an IndexError naming `op`. */
export function checkIndex(op: string, i: number, length: number): number {
  if (!Number.isInteger(i) || i < -length || i >= length) {
    throw new IndexError(`${op}: index ${i} is out of range for a dataset of length ${length}`);
  }
  return i < 0 ? i + length : i;
}

/** Tensors indexed together along dim 0: `get(i)` is `[t0[i], t1[i], ...]`. */
export class TensorDataset<T extends Tensor[] = Tensor[]> extends Dataset<T> {
  readonly tensors: T;

  constructor(...tensors: T) {
    super();
    if (tensors.length === 0) throw new ValueError('TensorDataset: expected at least one tensor');
    const n = tensors[0].ndim > 0 ? tensors[0].shape[0] : -1;
    if (tensors.some((t) => t.ndim === 0 || t.shape[0] !== n)) {
      throw new ShapeError(
        `TensorDataset: all tensors need the same size in dim 0, got ${tensors.map((t) => fmt(t.shape)).join(', ')}`,
      );
    }
    // The dataset holds its tensors across training steps (a scope's tensors stay the scope's).
    tensors.forEach(hold);
    this.tensors = tensors;
  }

  get length(): number {
    return this.tensors[0].shape[0];
  }

  /** Fresh copies of row `i` of every tensor (the caller owns them). */
  get(i: number): T {
    const k = checkIndex('TensorDataset.get', i, this.length);
    return noGrad(() =>
      this.tensors.map((t) => {
        const row = t.narrow(0, k, 1);
        const out = row.reshape(t.shape.slice(1));
        if (out !== row) row.dispose();
        return out;
      }),
    ) as T;
  }
}

/** The samples of `dataset` at `indices`, in that order. */
export class Subset<T> extends Dataset<T> {
  readonly indices: Int32Array;

  constructor(
    readonly dataset: Dataset<T>,
    indices: ArrayLike<number>,
  ) {
    super();
    const n = dataset.length;
    this.indices = Int32Array.from(indices);
    this.indices.forEach((v, p) => {
      if (!Number.isInteger(indices[p]) || v < 0 || v >= n) {
        throw new IndexError(
          `Subset: index ${indices[p]} at position ${p} is out of range for a dataset of length ${n}`,
        );
      }
    });
  }

  get length(): number {
    return this.indices.length;
  }

  get(i: number): T {
    return this.dataset.get(this.indices[checkIndex('Subset.get', i, this.length)]);
  }
}

/**
 * Lengths for `randomSplit` from fractions the way PyTorch does it: floor each share, then
 * hand the remainder out one by one, round-robin from the first split.
 */
export function splitLengths(n: number, fractionsOrLengths: readonly number[]): number[] {
  const parts = fractionsOrLengths;
  if (parts.length === 0) throw new ValueError('randomSplit: expected at least one length');
  const total = parts.reduce((a, b) => a + b, 0);
  // PyTorch's test: math.isclose(sum, 1) and sum <= 1.
  if (Math.abs(total - 1) <= 1e-9 && total <= 1) {
    if (parts.some((f) => !(f >= 0 && f <= 1))) {
      throw new ValueError(`randomSplit: fractions must be in [0, 1], got ${fmt(parts)}`);
    }
    const lengths = parts.map((f) => Math.floor(n * f));
    const remainder = n - lengths.reduce((a, b) => a + b, 0);
    for (let i = 0; i < remainder; i++) lengths[i % lengths.length]++;
    return lengths;
  }
  if (parts.some((l) => !Number.isInteger(l) || l < 0)) {
    throw new ValueError(
      `randomSplit: expected fractions summing to 1 or non-negative integer lengths, got ${fmt(parts)}`,
    );
  }
  if (total !== n) {
    throw new ValueError(
      `randomSplit: lengths ${fmt(parts)} sum to ${total}, but the dataset has ${n} samples`,
    );
  }
  return [...parts];
}

/**
 * Splits `dataset` into disjoint random Subsets (PyTorch's `random_split`): `lengths` are
 * sample counts summing to the dataset length, or fractions summing to 1. The permutation
 * comes from `seed`, or from the global generator (`nb.manualSeed`) when omitted.
 */
export function randomSplit<T>(
  dataset: Dataset<T>,
  fractionsOrLengths: readonly number[],
  seed?: number,
): Subset<T>[] {
  const lengths = splitLengths(dataset.length, fractionsOrLengths);
  const perm = randperm(dataset.length, keyFor('randomSplit', seed, 0));
  let at = 0;
  return lengths.map((len) => {
    const part = new Subset(dataset, perm.subarray(at, at + len));
    at += len;
    return part;
  });
}
