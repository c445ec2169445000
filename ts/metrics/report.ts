// classification_report as scikit-learn 1.2 prints it, character for character.
import { ValueError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import {
  checkZeroDivision,
  classStats,
  scores,
  type AveragedScores,
  type PerClassScores,
} from './classification.js';

export interface ReportOptions {
  /** Row names for classes `0..targetNames.length-1` (implies numClasses = their count). */
  targetNames?: readonly string[];
  /** Report classes `0..numClasses-1`; by default those present in pred or target. */
  numClasses?: number;
  /** Decimal places (default 2). */
  digits?: number;
  /** The score when a denominator is 0 (default 0). */
  zeroDivision?: 0 | 1;
}

/**
 * A text table of per-class precision, recall, F1 and support followed by accuracy, macro and
 * weighted averages, identical to scikit-learn 1.2's `classification_report(y_true, y_pred,
 * labels=..., target_names=..., digits=...)`. When the scored classes differ from those
 * present, the accuracy row becomes "micro avg" as in scikit-learn.
 */
export function classificationReport(
  pred: Tensor,
  target: Tensor,
  opts: ReportOptions = {},
): string {
  const op = 'classificationReport';
  const digits = opts.digits ?? 2;
  if (!Number.isInteger(digits) || digits < 0) {
    throw new ValueError(`${op}: digits must be a non-negative integer, got ${digits}`);
  }
  const names = opts.targetNames;
  let numClasses = opts.numClasses;
  if (names !== undefined) {
    if (numClasses !== undefined && numClasses !== names.length) {
      throw new ValueError(
        `${op}: numClasses ${numClasses} does not match ${names.length} targetNames`,
      );
    }
    numClasses = names.length;
  }
  const zd = checkZeroDivision(op, opts.zeroDivision);
  const stats = classStats(op, pred, target, numClasses);
  const perClass = scores(stats, 'none', zd) as PerClassScores;
  const rowNames = names ? [...names] : stats.labels.map(String);
  const microIsAccuracy =
    numClasses === undefined ||
    (stats.labels.length === stats.present.length &&
      stats.present.every((l) => stats.labels.includes(l)));

  const width = Math.max(...rowNames.map(textLength), 'weighted avg'.length, digits);
  const num = (v: number): string => padStart(pyFixed(v, digits), 9);
  const row = (name: string, p: number, r: number, f: number, s: number): string =>
    `${padStart(name, width)}  ${num(p)} ${num(r)} ${num(f)} ${padStart(String(s), 9)}\n`;

  let report = `${padStart('', width)} ${['precision', 'recall', 'f1-score', 'support'].map((h) => ` ${padStart(h, 9)}`).join('')}\n\n`;
  rowNames.forEach((name, i) => {
    report += row(
      name,
      perClass.precision[i],
      perClass.recall[i],
      perClass.f1[i],
      perClass.support[i],
    );
  });
  report += '\n';
  for (const average of ['micro', 'macro', 'weighted'] as const) {
    const avg = scores(stats, average, zd) as AveragedScores;
    if (average === 'micro' && microIsAccuracy) {
      const blank = padStart('', 9);
      report += `${padStart('accuracy', width)}  ${blank} ${blank} ${num(avg.f1)} ${padStart(String(avg.support), 9)}\n`;
    } else {
      report += row(`${average} avg`, avg.precision, avg.recall, avg.f1, avg.support);
    }
  }
  return report;
}

/** Length in code points, as Python's len() counts a str. */
function textLength(s: string): number {
  return [...s].length;
}

function padStart(s: string, width: number): string {
  return ' '.repeat(Math.max(0, width - textLength(s))) + s;
}

/**
 * Python's `format(x, '.{digits}f')`: the exact binary value rounded half to even. (JavaScript's
 * toFixed rounds exact ties up, so 0.125 would print 0.13 instead of Python's 0.12.)
 */
export function pyFixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  const negative = x < 0 || Object.is(x, -0);
  // x = mantissa * 2^exponent exactly, with an integer mantissa.
  const bits = new DataView(new ArrayBuffer(8));
  bits.setFloat64(0, Math.abs(x));
  const hi = bits.getUint32(0);
  const lo = bits.getUint32(4);
  const biased = hi >>> 20;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  if (biased !== 0) mantissa |= 1n << 52n;
  const exponent = (biased === 0 ? 1 : biased) - 1075;
  let scaled = mantissa * 10n ** BigInt(digits);
  if (exponent >= 0) {
    scaled <<= BigInt(exponent);
  } else {
    const den = 1n << BigInt(-exponent);
    const q = scaled / den;
    const twice = 2n * (scaled % den);
    scaled = twice > den || (twice === den && q % 2n === 1n) ? q + 1n : q;
  }
  const s = scaled.toString().padStart(digits + 1, '0');
  const body = digits === 0 ? s : `${s.slice(0, -digits)}.${s.slice(-digits)}`;
  return negative ? `-${body}` : body;
}
