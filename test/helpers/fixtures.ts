// Loads the PyTorch reference fixtures (scripts/fixtures/make_op_fixtures.py) and compares
// nabla's float32 results against them.
//
// Tolerances. The references are computed in float64 from the exact float32 inputs nabla sees
// and stored to 8 significant digits (≤ 5e-9 relative), so the gap measured here is nabla's own
// float32 error. An element passes when |actual - expected| <= atol + rtol * |expected|.
// - Default rtol 1e-5, atol 1e-6: a correctly rounded float32 op is within 6e-8 relative, and
//   libm-style exp/log/tanh/erf are within a few ulp (~2e-6 relative at worst), so 1e-5 leaves
//   headroom without hiding a wrong formula; atol covers results that land near zero.
// - atol 1e-5 for matmul, reductions (sum/mean/var/logsumexp) and softmax-style backward
//   passes: they add many float32 terms, and when those cancel the result sits near zero with an
//   absolute error of about n * 6e-8 * max|term| that no relative tolerance can absorb.
// - int32 results (comparisons, argmax, indices, one-hot, integer arithmetic) must match exactly.
// - Models (LSTM, attention) chain dozens of ops: rtol 1e-4, atol 1e-5.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import * as nb from '../../ts/index.js';
import { assertClose } from './close.js';

export type DType = 'float32' | 'int32';

export interface TensorSpec {
  shape: number[];
  dtype: DType;
  data: number[];
  requiresGrad?: boolean;
}

export interface OpCase {
  name: string;
  inputs: TensorSpec[];
  output: TensorSpec;
  /** Upstream gradient fed to `out.backward`, flat; null when nothing needs a grad. */
  upstream: number[] | null;
  /** Expected `.grad` of each input, flat; null for inputs that do not require grad. */
  grads: (number[] | null)[];
}

export interface OpFixtures {
  generator: string;
  torch: string;
  cases: OpCase[];
}

export interface ShapedData {
  shape: number[];
  data: number[];
}

export interface ModelFixture {
  tensors: Record<string, ShapedData>;
  outputs: Record<string, ShapedData>;
  grads: Record<string, ShapedData>;
}

export interface ModelFixtures {
  generator: string;
  torch: string;
  lstm: ModelFixture;
  attention: ModelFixture;
}

export interface Tolerance {
  rtol: number;
  atol: number;
}

export const DEFAULT_TOL: Tolerance = { rtol: 1e-5, atol: 1e-6 };
export const SUM_TOL: Tolerance = { rtol: 1e-5, atol: 1e-5 };
export const EXACT: Tolerance = { rtol: 0, atol: 0 };
export const MODEL_TOL: Tolerance = { rtol: 1e-4, atol: 1e-5 };

// Cases whose forward or backward adds many terms (see the header).
const SUM_CASES =
  /^(matmul|sum|mean|var|logsumexp|softmax|log_softmax|masked_fill_neg_inf_softmax|autograd_diamond|autograd_chain)/;

/** Tolerance for an op fixture case, by name. */
export function tolFor(caseName: string): Tolerance {
  return SUM_CASES.test(caseName) ? SUM_TOL : DEFAULT_TOL;
}

let opCache: OpFixtures | undefined;
let modelCache: ModelFixtures | undefined;

export function loadOpFixtures(): OpFixtures {
  opCache ??= JSON.parse(
    readFileSync(new URL('../fixtures/ops.json', import.meta.url), 'utf8'),
  ) as OpFixtures;
  return opCache;
}

export function loadModelFixtures(): ModelFixtures {
  modelCache ??= JSON.parse(
    readFileSync(new URL('../fixtures/models.json', import.meta.url), 'utf8'),
  ) as ModelFixtures;
  return modelCache;
}

/** Builds a tensor from a fixture spec; `requiresGrad` defaults to the spec's flag. */
export function tensorFromSpec(
  spec: TensorSpec,
  requiresGrad = spec.requiresGrad ?? false,
): nb.Tensor {
  const data = spec.dtype === 'int32' ? Int32Array.from(spec.data) : Float32Array.from(spec.data);
  return nb.tensor(data, { dtype: spec.dtype, shape: spec.shape, requiresGrad });
}

/** A float32 tensor from model-fixture data. */
export function tensorFromData(d: ShapedData, requiresGrad = false): nb.Tensor {
  return tensorFromSpec({ shape: d.shape, dtype: 'float32', data: d.data }, requiresGrad);
}

/**
 * Elementwise |actual - expected| <= atol + rtol * |expected| (test/helpers/close.ts, with the
 * fixture default tolerance). On failure the error counts the failing elements and names the
 * worst one (largest ratio to its bound) with both values. NaN or ±Inf in `actual` always
 * fails, since the fixtures hold only finite numbers.
 */
export function expectClose(
  actual: Float32Array | Int32Array,
  expected: number[],
  tol: Partial<Tolerance> = {},
  label = 'values',
): void {
  assertClose(actual, expected, { ...DEFAULT_TOL, ...tol }, label);
}

export type FixtureOp = (...xs: nb.Tensor[]) => nb.Tensor;

/**
 * The tests every op-fixture file runs: the case table and the fixtures name the same cases,
 * and each case's forward (shape, dtype, values) and every input's gradient after
 * `out.backward(upstream)` match PyTorch's within `tol(name)` (int32 outputs exactly).
 */
export function opFixtureTests(
  fixtures: OpFixtures,
  ops: Record<string, FixtureOp>,
  tol: (name: string) => Partial<Tolerance> = tolFor,
): void {
  it('every fixture case has a table entry and every entry a fixture case', () => {
    const names = new Set(fixtures.cases.map((c) => c.name));
    expect(fixtures.cases.filter((c) => !(c.name in ops)).map((c) => c.name)).toEqual([]);
    expect(Object.keys(ops).filter((n) => !names.has(n))).toEqual([]);
  });
  for (const c of fixtures.cases) {
    it(c.name, () => {
      const op = ops[c.name];
      if (!op) throw new Error(`${c.name}: no entry in the ops table`);
      const inputs = c.inputs.map((spec) => tensorFromSpec(spec));
      const out = op(...inputs);
      expect(out.shape, `${c.name} output shape`).toEqual(c.output.shape);
      expect(out.dtype, `${c.name} output dtype`).toBe(c.output.dtype);
      const t = c.output.dtype === 'int32' ? EXACT : tol(c.name);
      expectClose(out.toArray(), c.output.data, t, `${c.name} forward`);
      if (c.upstream === null) return;
      out.backward(tensorFromSpec({ shape: c.output.shape, dtype: 'float32', data: c.upstream }));
      inputs.forEach((input, i) => {
        const expected = c.grads[i] ?? null;
        if (expected === null) {
          expect(input.grad, `${c.name} input ${i} needs no grad`).toBeNull();
          return;
        }
        const grad = input.grad;
        if (grad === null) throw new Error(`${c.name}: input ${i} got no grad`);
        expect(grad.shape, `${c.name} grad ${i} shape`).toEqual(input.shape);
        expectClose(grad.toArray(), expected, t, `${c.name} grad of input ${i}`);
      });
    });
  }
}
