// Classification metrics with scikit-learn's definitions. Counting runs in the core; only
// per-class arithmetic happens in JavaScript.
import { ValueError } from '../errors.js';
import { noGrad } from '../autograd/node.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { tensor } from '../ops/creation.js';
import { add, eq, mul } from '../ops/elementwise.js';
import { sum } from '../ops/reduce.js';
import { bincount, classCount, npSum, toLabels, type Labels } from './labels.js';

/**
 * Fraction of samples whose predicted class equals the target. `pred` holds class indices
 * (int32 [N]) or scores ([N, C], argmax is taken); `target` is int32 [N].
 */
export function accuracy(pred: Tensor, target: Tensor): number {
  return tidy(() => {
    const { pred: p, target: t } = toLabels('accuracy', pred, target);
    if (t.size === 0) throw new ValueError('accuracy: no samples');
    return noGrad(() => sum(eq(p, t)).item()) / t.size;
  });
}

/**
 * Counts of (true class, predicted class) pairs: an int32 [C, C] tensor whose rows are true
 * classes and columns predicted ones. `numClasses` defaults to the largest label + 1.
 */
export function confusionMatrix(pred: Tensor, target: Tensor, numClasses?: number): Tensor {
  const counts = tidy(() => {
    const labels = toLabels('confusionMatrix', pred, target);
    const c = classCount('confusionMatrix', labels, numClasses);
    if (c * c > 2 ** 31 - 1) {
      throw new ValueError(`confusionMatrix: ${c} classes overflow int32 pair indices`);
    }
    const pairs = noGrad(() => add(mul(labels.target, c), labels.pred));
    return { c, flat: bincount(pairs, c * c) };
  });
  return tensor(Int32Array.from(counts.flat), { shape: [counts.c, counts.c] });
}

export type Average = 'none' | 'micro' | 'macro' | 'weighted';

export interface PRFOptions {
  /** Score classes `0..numClasses-1`; by default only classes present in pred or target. */
  numClasses?: number;
  /** Per-class scores ('none', the default) or one average (scikit-learn's meanings). */
  average?: Average;
  /** The score when a denominator is 0 (scikit-learn's `zero_division`; default 0). */
  zeroDivision?: 0 | 1;
}

export interface PerClassScores {
  /** The class index each entry describes. */
  labels: number[];
  precision: number[];
  recall: number[];
  f1: number[];
  /** Number of samples of each true class. */
  support: number[];
}

export interface AveragedScores {
  precision: number;
  recall: number;
  f1: number;
  /** Samples over the scored classes (scikit-learn returns None here). */
  support: number;
}

/** Per-class counts: true positives, predictions and true samples for each label. */
export interface ClassStats {
  labels: number[];
  tp: number[];
  predSum: number[];
  trueSum: number[];
  /** Labels occurring in pred or target (scikit-learn's `unique_labels`). */
  present: number[];
}

/** Counts per class for the labels scored: `0..numClasses-1`, or those present. */
export function classStats(
  op: string,
  pred: Tensor,
  target: Tensor,
  numClasses?: number,
): ClassStats {
  return tidy(() => {
    const l: Labels = toLabels(op, pred, target);
    const k = classCount(op, l, numClasses);
    if (k === 0) throw new ValueError(`${op}: no samples and no numClasses`);
    const trueSum = bincount(l.target, k);
    const predSum = bincount(l.pred, k);
    const hits = noGrad(() => eq(l.pred, l.target).float());
    const tp = bincount(l.target, k, hits);
    const all = Array.from({ length: k }, (_, i) => i);
    const present = all.filter((i) => trueSum[i] + predSum[i] > 0);
    const labels = numClasses === undefined ? present : all;
    const pick = (a: Float64Array): number[] => labels.map((i) => a[i]);
    return { labels, tp: pick(tp), predSum: pick(predSum), trueSum: pick(trueSum), present };
  });
}

const divide = (num: number[], den: number[], zd: number): number[] =>
  num.map((v, i) => (den[i] === 0 ? zd : v / den[i]));

/** scikit-learn's precision_recall_fscore_support (beta = 1) from per-class counts. */
export function scores(
  s: ClassStats,
  average: Average,
  zeroDivision: number,
): PerClassScores | AveragedScores {
  const total = (a: number[]): number => a.reduce((x, y) => x + y, 0);
  const micro = average === 'micro';
  const tp = micro ? [total(s.tp)] : s.tp;
  const predSum = micro ? [total(s.predSum)] : s.predSum;
  const trueSum = micro ? [total(s.trueSum)] : s.trueSum;
  const precision = divide(tp, predSum, zeroDivision);
  const recall = divide(tp, trueSum, zeroDivision);
  const f1 = precision.map((p, i) => {
    const denom = p + recall[i];
    return (2 * p * recall[i]) / (denom === 0 ? 1 : denom);
  });
  if (average === 'none') {
    return { labels: s.labels, precision, recall, f1, support: s.trueSum };
  }
  const support = total(s.trueSum);
  if (average === 'weighted') {
    if (support === 0) {
      const zd = zeroDivision;
      return total(s.predSum) === 0
        ? { precision: zd, recall: zd, f1: zd, support }
        : { precision: 0, recall: zd, f1: 0, support };
    }
    const avg = (a: number[]): number => npSum(a.map((v, i) => v * trueSum[i])) / support;
    return { precision: avg(precision), recall: avg(recall), f1: avg(f1), support };
  }
  const mean = (a: number[]): number => npSum(a) / a.length;
  return { precision: mean(precision), recall: mean(recall), f1: mean(f1), support };
}

/**
 * Precision, recall, F1 and support like scikit-learn's `precision_recall_fscore_support`:
 * per class (`average: 'none'`), or averaged over classes ('macro'), weighted by support
 * ('weighted'), or from pooled counts ('micro'). Classes are those present in pred or target
 * unless `numClasses` is given.
 */
export function precisionRecallF1(
  pred: Tensor,
  target: Tensor,
  opts: PRFOptions & { average: 'micro' | 'macro' | 'weighted' },
): AveragedScores;
export function precisionRecallF1(
  pred: Tensor,
  target: Tensor,
  opts?: PRFOptions & { average?: 'none' },
): PerClassScores;
export function precisionRecallF1(
  pred: Tensor,
  target: Tensor,
  opts: PRFOptions = {},
): PerClassScores | AveragedScores {
  const average = opts.average ?? 'none';
  if (!['none', 'micro', 'macro', 'weighted'].includes(average)) {
    throw new ValueError(
      `precisionRecallF1: average must be 'none', 'micro', 'macro' or 'weighted', got ${String(average)}`,
    );
  }
  const zd = checkZeroDivision('precisionRecallF1', opts.zeroDivision);
  return scores(classStats('precisionRecallF1', pred, target, opts.numClasses), average, zd);
}

export function checkZeroDivision(op: string, zd: number | undefined): number {
  if (zd === undefined) return 0;
  if (zd !== 0 && zd !== 1) throw new ValueError(`${op}: zeroDivision must be 0 or 1, got ${zd}`);
  return zd;
}
