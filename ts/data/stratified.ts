// Stratified splits: every split keeps each class's share of the dataset, as scikit-learn's
// `train_test_split(..., stratify=y)` does — what small or imbalanced sets (spam vs ham) need so
// that validation and test scores are comparable.
import { ValueError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { Dataset, Subset } from './dataset.js';
import { keyFor, randperm } from './shuffle.js';

const OP = 'stratifiedSplit';

/** Labels as integers, one per sample (a Tensor of class indices, or any array of numbers). */
function readLabels(labels: Tensor | ArrayLike<number>, n: number): Int32Array {
  const values = labels instanceof Tensor ? labels.toArray() : Array.from(labels);
  if (labels instanceof Tensor && labels.shape.length !== 1) {
    throw new ValueError(`${OP}: labels must be 1-D, got shape [${labels.shape.join(', ')}]`);
  }
  if (values.length !== n) {
    throw new ValueError(`${OP}: ${values.length} labels for a dataset of ${n} samples`);
  }
  const out = new Int32Array(n);
  values.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
      throw new ValueError(`${OP}: labels must be non-negative integers, got ${v} at index ${i}`);
    }
    out[i] = v;
  });
  return out;
}

/** floor(c · f) each, the remainder one by one from the first split (randomSplit's rule). */
function shares(c: number, fractions: readonly number[]): number[] {
  const lengths = fractions.map((f) => Math.min(c, Math.floor(c * f)));
  let left = c - lengths.reduce((a, b) => a + b, 0);
  for (let i = 0; left > 0; i = (i + 1) % lengths.length, left--) lengths[i]++;
  return lengths;
}

/**
 * Splits `dataset` into disjoint Subsets with the given `fractions` (summing to 1), each class
 * divided in the same proportions: a class of c samples gives each split floor(c · f) samples
 * and hands its remainder out round-robin from the first split (randomSplit's rule, per class).
 * The samples of a class are drawn by a seeded permutation, and each split's order is shuffled
 * so classes interleave. Returns the Subsets in the order of `fractions`.
 */
export function stratifiedSplit<T>(
  dataset: Dataset<T>,
  labels: Tensor | ArrayLike<number>,
  fractions: readonly number[],
  seed?: number,
): Subset<T>[] {
  const n = dataset.length;
  const y = readLabels(labels, n);
  const total = fractions.reduce((a, b) => a + b, 0);
  if (fractions.length === 0 || Math.abs(total - 1) > 1e-9 || fractions.some((f) => !(f >= 0))) {
    throw new ValueError(
      `${OP}: expected fractions in [0, 1] summing to 1, got [${fractions.join(', ')}]`,
    );
  }
  const byClass = new Map<number, number[]>();
  y.forEach((c, i) => {
    const list = byClass.get(c);
    if (list) list.push(i);
    else byClass.set(c, [i]);
  });
  const parts: number[][] = fractions.map(() => []);
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  classes.forEach((c, ci) => {
    const members = byClass.get(c)!;
    const perm = randperm(members.length, keyFor(OP, seed, 2 * ci));
    const lengths = shares(members.length, fractions);
    let at = 0;
    lengths.forEach((len, s) => {
      for (let k = at; k < at + len; k++) parts[s].push(members[perm[k]]);
      at += len;
    });
  });
  return parts.map((part, s) => {
    const order = randperm(part.length, keyFor(OP, seed, 2 * classes.length + 2 * s + 1));
    return new Subset(
      dataset,
      Array.from(order, (k) => part[k]),
    );
  });
}
