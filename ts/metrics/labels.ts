// Shared plumbing for the metrics: turning predictions into class indices, checking labels,
// and counting per class in the core.
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import { noGrad } from '../autograd/node.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { full, zeros } from '../ops/creation.js';
import { scatterAdd } from '../ops/indexing.js';
import { argmax, max, min } from '../ops/reduce.js';
import { narrow } from '../ops/shape.js';

/** Class-index predictions and targets, both int32 [N]. */
export interface Labels {
  pred: Tensor;
  target: Tensor;
  /** Largest class index in either (-1 when there are no samples). */
  maxLabel: number;
}

/**
 * Checks `target` (int32 [N]) and `pred` (int32 [N] class indices, or [N, C] scores reduced
 * by argmax). Call inside a tidy: an argmax result is a temporary.
 */
export function toLabels(op: string, pred: Tensor, target: Tensor): Labels {
  if (target.dtype !== 'int32') {
    throw new DTypeError(`${op}: target must be int32 class indices, got ${target.dtype}`);
  }
  if (target.ndim !== 1) {
    throw new ShapeError(`${op}: target must be 1-d [N], got shape ${fmt(target.shape)}`);
  }
  let p = pred;
  if (pred.ndim === 2) {
    if (pred.shape[1] === 0) {
      throw new ShapeError(`${op}: scores ${fmt(pred.shape)} have no classes`);
    }
    p = noGrad(() => argmax(pred, 1));
  } else if (pred.ndim !== 1) {
    throw new ShapeError(
      `${op}: pred must be class indices [N] or scores [N, C], got shape ${fmt(pred.shape)}`,
    );
  } else if (pred.dtype !== 'int32') {
    throw new DTypeError(
      `${op}: 1-d pred must be int32 class indices, got ${pred.dtype} (pass scores as [N, C])`,
    );
  }
  if (p.shape[0] !== target.shape[0]) {
    throw new ShapeError(
      `${op}: pred has ${p.shape[0]} samples but target has ${target.shape[0]} (shapes ${fmt(pred.shape)} and ${fmt(target.shape)})`,
    );
  }
  if (target.size === 0) return { pred: p, target, maxLabel: -1 };
  const lo = Math.min(min(p).item(), min(target).item());
  if (lo < 0) throw new ValueError(`${op}: class indices must be >= 0, got ${lo}`);
  return { pred: p, target, maxLabel: Math.max(max(p).item(), max(target).item()) };
}

/** Checks an explicit class count against the labels and returns it (or max label + 1). */
export function classCount(op: string, labels: Labels, numClasses?: number): number {
  if (numClasses === undefined) return labels.maxLabel + 1;
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new ValueError(`${op}: numClasses must be a positive integer, got ${numClasses}`);
  }
  if (labels.maxLabel >= numClasses) {
    throw new ValueError(
      `${op}: class index ${labels.maxLabel} is out of range for numClasses ${numClasses}`,
    );
  }
  return numClasses;
}

// float32 scatterAdd counts exactly up to 2^24 per bin, so larger inputs go in chunks.
const CHUNK = 1 << 24;

/** How often each value in `0..k-1` occurs in `index` (int32 [N]), optionally weighted. */
export function bincount(index: Tensor, k: number, weights?: Tensor): Float64Array {
  const out = new Float64Array(k);
  const n = index.size;
  for (let start = 0; start < n; start += CHUNK) {
    const len = Math.min(CHUNK, n - start);
    tidy(() =>
      noGrad(() => {
        const whole = len === n;
        const idx = whole ? index : narrow(index, 0, start, len);
        const w = weights ? (whole ? weights : narrow(weights, 0, start, len)) : full([len], 1);
        const counts = scatterAdd(zeros([k]), 0, idx, w).toArray();
        for (let c = 0; c < k; c++) out[c] += counts[c];
      }),
    );
  }
  return out;
}

/**
 * NumPy's pairwise summation of a float64 array (what `np.sum` and `np.mean` do), so averages
 * match scikit-learn to the last bit.
 */
export function npSum(a: readonly number[], lo = 0, n = a.length): number {
  if (n < 8) {
    let res = 0;
    for (let i = lo; i < lo + n; i++) res += a[i];
    return res;
  }
  if (n <= 128) {
    const r = a.slice(lo, lo + 8);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += a[lo + i + j];
    let res = r[0] + r[1] + (r[2] + r[3]) + (r[4] + r[5] + (r[6] + r[7]));
    for (; i < n; i++) res += a[lo + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return npSum(a, lo, n2) + npSum(a, lo + n2, n - n2);
}
