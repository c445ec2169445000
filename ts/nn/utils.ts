// Gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_: both change the
// `.grad` tensors in place and skip parameters without a gradient.
import { DTypeError, DisposedError, ValueError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/node.js';
import { wasm } from '../wasm/core.js';
import { splitItems } from '../ops/parallel.js';

/** The gradients of `parameters` (one tensor or an iterable), checked before any is touched. */
function gradsOf(op: string, parameters: Tensor | Iterable<Tensor>): Tensor[] {
  const list = parameters instanceof Tensor ? [parameters] : [...parameters];
  const grads: Tensor[] = [];
  list.forEach((p, i) => {
    if (!(p instanceof Tensor)) throw new ValueError(`${op}: parameters[${i}] is not a Tensor`);
    const g = p.grad;
    if (g == null) return;
    if (g.isDisposed) throw new DisposedError(`${op}: the grad of parameters[${i}] was disposed`);
    if (g.dtype !== 'float32')
      throw new DTypeError(`${op}: the grad of parameters[${i}] is ${g.dtype}`);
    grads.push(g);
  });
  return grads;
}

/** The largest of non-negative `values`, or NaN if one is. */
function maxOf(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isNaN(v) || v > m) m = v;
  }
  return m;
}

/** A gradient longer than this sums its norm in chunks of it, split over the pool's threads. */
const NORM_CHUNK = 1 << 16;

/**
 * `Σ |g|^p` (or `max |g|` for `p = Infinity`) in float64. A long gradient is cut into chunks
 * at points fixed by its length, each chunk summed alone (on any thread) and the chunk sums
 * added in order, so the norm is the same for every thread count.
 */
function powSum(g: Tensor, p: number): number {
  const chunks = Math.ceil(g.size / NORM_CHUNK);
  if (chunks <= 1) return wasm().pow_sum_f32(g.ptr, g.size, p);
  const sums = Tensor.empty([2 * chunks], 'float32'); // `chunks` float64s (16-byte aligned)
  try {
    const args = (b: number, e: number): number[] => [g.ptr, g.size, NORM_CHUNK, p, sums.ptr, b, e];
    splitItems('pow_sum_chunks_f32', chunks, g.size, args);
    const v = new Float64Array(wasm().memory.buffer, sums.ptr, chunks);
    return p === Infinity ? maxOf(v) : v.reduce((s, x) => s + x, 0);
  } finally {
    sums.dispose();
  }
}

/**
 * Scales all gradients together so that their joint `normType`-norm (as if concatenated) is at
 * most `maxNorm`, and returns that norm as it was before clipping. The scale is
 * `maxNorm / (norm + 1e-6)`, clamped to 1, as in PyTorch; `normType` may be `Infinity`/'inf'.
 * The norm is accumulated in float64.
 */
export function clipGradNorm(
  parameters: Tensor | Iterable<Tensor>,
  maxNorm: number,
  normType: number | 'inf' = 2,
): number {
  const op = 'clipGradNorm';
  const p = normType === 'inf' ? Infinity : normType;
  if (typeof p !== 'number' || !(p > 0)) {
    throw new ValueError(
      `${op}: normType must be a positive number or Infinity, got ${String(normType)}`,
    );
  }
  if (typeof maxNorm !== 'number' || Number.isNaN(maxNorm)) {
    throw new ValueError(`${op}: maxNorm must be a number, got ${String(maxNorm)}`);
  }
  const grads = gradsOf(op, parameters);
  if (grads.length === 0) return 0;
  const parts = grads.map((g) => powSum(g, p));
  const total = p === Infinity ? maxOf(parts) : parts.reduce((s, v) => s + v, 0) ** (1 / p);
  const coef = Math.min(maxNorm / (total + 1e-6), 1);
  // a factor of exactly 1 would leave every value as it is (NaN included), so skip the pass
  if (coef !== 1) noGrad(() => grads.forEach((g) => g.mul_(coef)));
  return total;
}

/** Clamps every gradient element to `[-clipValue, clipValue]` in place. */
export function clipGradValue(parameters: Tensor | Iterable<Tensor>, clipValue: number): void {
  const op = 'clipGradValue';
  if (typeof clipValue !== 'number' || Number.isNaN(clipValue)) {
    throw new ValueError(`${op}: clipValue must be a number, got ${String(clipValue)}`);
  }
  const grads = gradsOf(op, parameters);
  noGrad(() => {
    for (const g of grads) {
      const c = g.clamp(-clipValue, clipValue);
      g.copy_(c);
      c.dispose();
    }
  });
}

// nn.utils.rnn: PackedSequence and the padding / packing functions.
export * as rnn from './rnn/packing.js';
