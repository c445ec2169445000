// nb.metrics against scikit-learn 1.2: every expected value (including the exact
// classification_report text) was computed by sklearn in scripts/fixtures/make_io_fixtures.py.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { npSum } from '../ts/metrics/labels.js';
import { pyFixed } from '../ts/metrics/report.js';

interface Scores {
  precision: number;
  recall: number;
  f1: number;
}
interface MetricCase {
  name: string;
  target: number[];
  pred: number[];
  numClasses: number | null;
  targetNames: string[] | null;
  digits: number;
  zeroDivision: 0 | 1;
  accuracy: number;
  confusion: number[][];
  prf: {
    none: { precision: number[]; recall: number[]; f1: number[]; support: number[] };
    micro: Scores;
    macro: Scores;
    weighted: Scores;
  };
  report: string;
  logits?: { shape: number[]; values: number[] };
}

const cases = JSON.parse(readFileSync(new URL('./fixtures/io.json', import.meta.url), 'utf8'))
  .metrics as MetricCase[];

const ints = (v: number[]): nb.Tensor => nb.tensor(Int32Array.from(v));

beforeAll(async () => {
  await nb.init();
});

describe.each(cases)('scikit-learn case $name', (c) => {
  const opts = {
    numClasses: c.numClasses ?? undefined,
    zeroDivision: c.zeroDivision,
  };

  it('accuracy and confusion matrix', () => {
    const [pred, target] = [ints(c.pred), ints(c.target)];
    expect(nb.metrics.accuracy(pred, target)).toBe(c.accuracy);
    const cm = nb.metrics.confusionMatrix(pred, target, c.confusion.length);
    expect([cm.dtype, cm.tolist()]).toEqual(['int32', c.confusion]);
    if (c.logits) {
      const logits = nb.tensor(Float32Array.from(c.logits.values), { shape: c.logits.shape });
      expect(nb.metrics.accuracy(logits, target)).toBe(c.accuracy);
      expect(nb.metrics.confusionMatrix(logits, target).tolist()).toEqual(c.confusion);
    }
  });

  it('precision, recall, F1 and support', () => {
    const [pred, target] = [ints(c.pred), ints(c.target)];
    const none = nb.metrics.precisionRecallF1(pred, target, opts);
    expect({ ...none, labels: undefined }).toEqual({ ...c.prf.none, labels: undefined });
    expect(none.labels).toHaveLength(c.prf.none.support.length);
    const support = c.prf.none.support.reduce((a, b) => a + b, 0);
    for (const average of ['micro', 'macro', 'weighted'] as const) {
      const got = nb.metrics.precisionRecallF1(pred, target, { ...opts, average });
      expect(got).toEqual({ ...c.prf[average], support });
    }
  });

  it('classification report, character for character', () => {
    const report = nb.metrics.classificationReport(ints(c.pred), ints(c.target), {
      ...opts,
      targetNames: c.targetNames ?? undefined,
      digits: c.digits,
    });
    expect(report).toBe(c.report);
  });
});

describe('metric details', () => {
  it('scores only present classes unless numClasses is given', () => {
    const r = nb.metrics.precisionRecallF1(ints([0, 3, 3]), ints([0, 3, 1]));
    expect(r.labels).toEqual([0, 1, 3]);
    expect(
      nb.metrics.precisionRecallF1(ints([0, 1]), ints([0, 1]), { numClasses: 4 }).labels,
    ).toEqual([0, 1, 2, 3]);
  });

  it("averages with NumPy's pairwise summation", () => {
    // np.sum(np.full(10, 0.1)) and np.sum([1 / (i + 3) for i in range(300)]); a sequential
    // sum gives 0.9999999999999999 and 4.789297397713856.
    expect(npSum(Array(10).fill(0.1))).toBe(1);
    expect(npSum(Array.from({ length: 300 }, (_, i) => 1 / (i + 3)))).toBe(4.789297397713862);
  });

  it('formats like Python: exact ties round half to even', () => {
    expect([0.125, 0.375, 0.625, 0.875, 0.005, 1, 0].map((v) => pyFixed(v, 2))).toEqual([
      '0.12',
      '0.38',
      '0.62',
      '0.88',
      '0.01', // 0.005 is slightly above 5e-3 in binary
      '1.00',
      '0.00',
    ]);
    expect([pyFixed(2.5, 0), pyFixed(3.5, 0), pyFixed(1e-300, 3), pyFixed(1 / 3, 20)]).toEqual([
      '2',
      '4',
      '0.000',
      '0.33333333333333331483',
    ]);
  });

  it('leaves no tensors behind', () => {
    const [pred, target] = [ints([0, 1, 2, 2]), ints([0, 2, 2, 1])];
    const logits = nb.randn([4, 3]);
    const before = nb.memory().tensors;
    nb.metrics.accuracy(logits, target);
    nb.metrics.precisionRecallF1(pred, target, { average: 'macro' });
    nb.metrics.classificationReport(logits, target);
    nb.metrics.confusionMatrix(pred, target).dispose();
    expect(nb.memory().tensors).toBe(before);
  });

  it('rejects bad inputs with errors naming the function', () => {
    const [p, t] = [ints([0, 1, 2]), ints([0, 1, 1])];
    expect(() => nb.metrics.accuracy(ints([0, 1]), t)).toThrow(
      /accuracy: pred has 2 samples but target has 3/,
    );
    expect(() => nb.metrics.accuracy(nb.tensor([0.0, 1.5, 2]), t)).toThrow(nb.DTypeError);
    expect(() => nb.metrics.accuracy(p, nb.tensor([0.5, 1, 1]))).toThrow(
      /accuracy: target must be int32 class indices, got float32/,
    );
    expect(() => nb.metrics.accuracy(nb.zeros([2, 2, 2]), t)).toThrow(nb.ShapeError);
    expect(() => nb.metrics.confusionMatrix(ints([0, -1, 2]), t)).toThrow(
      /confusionMatrix: class indices must be >= 0, got -1/,
    );
    expect(() => nb.metrics.confusionMatrix(p, t, 2)).toThrow(
      /confusionMatrix: class index 2 is out of range for numClasses 2/,
    );
    expect(() => nb.metrics.precisionRecallF1(p, t, { average: 'binary' as 'macro' })).toThrow(
      /precisionRecallF1: average must be/,
    );
    expect(() => nb.metrics.precisionRecallF1(p, t, { zeroDivision: 2 as 1 })).toThrow(
      /precisionRecallF1: zeroDivision must be 0 or 1, got 2/,
    );
    expect(() => nb.metrics.classificationReport(p, t, { targetNames: ['a', 'b'] })).toThrow(
      /classificationReport: class index 2 is out of range for numClasses 2/,
    );
    expect(() =>
      nb.metrics.classificationReport(p, t, { targetNames: ['a', 'b', 'c'], numClasses: 4 }),
    ).toThrow(/classificationReport: numClasses 4 does not match 3 targetNames/);
    expect(() => nb.metrics.accuracy(ints([]), ints([]))).toThrow(/accuracy: no samples/);
  });
});
