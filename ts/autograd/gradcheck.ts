// Compares autograd with central finite differences. For a random fixed weighting g of the
// output, the analytic gradient of sum(fn(x) * g) is checked against
// (f(x + eps e_j) - f(x - eps e_j)) / 2eps for every element j of every checked input.
// An element passes when |analytic - numeric| <= atol + rtol * |numeric|; a NaN or infinite
// value on either side fails outright (a NaN comparison is false, so it must never be skipped).
import { ShapeError, ValueError, fmt } from '../errors.js';
import { sameShape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { f32View } from '../wasm/heap.js';
import { noGrad } from './node.js';
import { randn } from '../ops/creation.js';

export interface GradcheckOptions {
  /** Finite-difference step (default 1e-3, suited to float32). */
  eps?: number;
  /** Absolute tolerance (default 1e-2). */
  atol?: number;
  /** Relative tolerance (default 1e-2). */
  rtol?: number;
  /**
   * The weighting g of the output (default: standard normal). A fixed weighting, e.g. ones,
   * makes the check exact to reason about: the analytic value is then g · J.
   */
  gradOutput?: Tensor;
}

export interface GradcheckResult {
  ok: boolean;
  maxAbsError: number;
  maxRelError: number;
  /** The element that is furthest outside the tolerance (or closest to it when all pass). */
  worst: { input: number; index: number; analytic: number; numeric: number } | null;
}

function weightedSum(out: Float32Array | Int32Array, g: Float32Array): number {
  let s = 0;
  for (let i = 0; i < out.length; i++) s += out[i] * g[i];
  return s;
}

export function gradcheck(
  fn: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  opts: GradcheckOptions = {},
): GradcheckResult {
  const eps = opts.eps ?? 1e-3;
  const atol = opts.atol ?? 1e-2;
  const rtol = opts.rtol ?? 1e-2;
  const checked = inputs.map((t, i) => (t.requiresGrad ? i : -1)).filter((i) => i >= 0);
  if (checked.length === 0) {
    throw new ValueError(
      'gradcheck: no input requires grad (set requiresGrad: true on the ones to check)',
    );
  }
  const saved = inputs.map((t) => t.grad);
  inputs.forEach((t) => (t.grad = null));

  const result = tidy(() => {
    const out = fn(...inputs);
    if (opts.gradOutput && !sameShape(opts.gradOutput.shape, out.shape)) {
      throw new ShapeError(
        `gradcheck: gradOutput ${fmt(opts.gradOutput.shape)} does not match the output ${fmt(out.shape)}`,
      );
    }
    const g = opts.gradOutput ?? randn(out.shape);
    const gArr = g.toArray() as Float32Array;
    out.backward(g);
    const analytic = checked.map((i) =>
      inputs[i].grad ? (inputs[i].grad!.toArray() as Float32Array) : null,
    );
    inputs.forEach((t) => {
      t.grad?.dispose();
      t.grad = null;
    });

    const f = (): number => tidy(() => noGrad(() => weightedSum(fn(...inputs).toArray(), gArr)));
    let worst: GradcheckResult['worst'] = null;
    let worstScore = -1;
    let maxAbs = 0;
    let maxRel = 0;
    checked.forEach((inputIndex, c) => {
      const x = inputs[inputIndex];
      for (let j = 0; j < x.size; j++) {
        const view = (): Float32Array => f32View(x.ptr, x.size); // re-made: memory may grow
        const orig = view()[j];
        view()[j] = orig + eps;
        const fp = f();
        view()[j] = orig - eps;
        const fm = f();
        view()[j] = orig;
        const numeric = (fp - fm) / (2 * eps);
        const a = analytic[c] ? analytic[c]![j] : 0;
        const finite = Number.isFinite(a) && Number.isFinite(numeric);
        const err = finite ? Math.abs(a - numeric) : Infinity;
        maxAbs = Math.max(maxAbs, err);
        maxRel = Math.max(maxRel, err / Math.max(Math.abs(numeric), 1e-12));
        // Infinity for a non-finite pair, so NaN never hides behind a failed comparison.
        const score = finite ? err / (atol + rtol * Math.abs(numeric)) : Infinity;
        if (score > worstScore) {
          worstScore = score;
          worst = { input: inputIndex, index: j, analytic: a, numeric };
        }
      }
    });
    return { ok: worstScore <= 1, maxAbsError: maxAbs, maxRelError: maxRel, worst };
  });
  inputs.forEach((t, i) => (t.grad = saved[i]));
  return result;
}
