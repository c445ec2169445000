// Fused batch normalisation (crate/src/kernels/batchnorm.rs): one pass computes each channel's
// statistics (or takes the running ones), normalises and applies the affine; the backward
// writes dx, dweight and dbias in one call. `nn.functional.batchNorm` (ts/nn/batchnorm.ts)
// checks shapes and updates the running statistics from the returned batch mean and variance.
import { splitItems } from './parallel.js';
import { Tensor } from '../tensor/tensor.js';
import { record } from '../autograd/node.js';

export interface BatchNormFused {
  y: Tensor;
  /** The batch mean and biased variance [C] (batch statistics only; else null). */
  mean: Tensor | null;
  var: Tensor | null;
}

/**
 * Batch norm of a non-empty x [N, C, ...] over all dims but 1. `running` null normalises with
 * the batch's statistics (their gradient included); else with [mean, var].
 */
export function batchNormFused(
  x: Tensor,
  running: [Tensor, Tensor] | null,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
): BatchNormFused {
  const [n, c] = x.shape;
  const s = x.size / (n * c);
  const batch = running === null;
  const mean = batch ? Tensor.empty([c], 'float32') : running[0];
  const variance = batch ? Tensor.empty([c], 'float32') : running[1];
  const invstd = Tensor.empty([c], 'float32');
  const y = Tensor.empty(x.shape, 'float32');
  const ptr = (t: Tensor | null): number => (t ? t.ptr : 0);
  // Split by channels: each channel's statistics and outputs are its own.
  const channels = (
    fn: 'batch_norm_f32' | 'batch_norm_bwd_f32',
    args: (b: number, e: number) => number[],
  ) => splitItems(fn, c, x.size, args);
  channels('batch_norm_f32', (b, e) => [
    ...[x.ptr, y.ptr, mean.ptr, variance.ptr, invstd.ptr, ptr(weight), ptr(bias)],
    ...[n, c, s, eps, batch ? 1 : 0, b, e],
  ]);
  const params = [weight, bias].filter((p): p is Tensor => p !== null);
  const out = record(
    y,
    'batchNorm',
    [x, ...params],
    (dy) => {
      const dx = x.requiresGrad ? Tensor.empty(x.shape, 'float32') : null;
      const [dw, db] = [weight, bias].map((p) =>
        p?.requiresGrad ? Tensor.empty([c], 'float32') : null,
      );
      channels('batch_norm_bwd_f32', (b, e) => [
        ...[dy.ptr, x.ptr, mean.ptr, invstd.ptr, ptr(weight), ptr(dx), ptr(dw), ptr(db)],
        ...[n, c, s, batch ? 1 : 0, b, e],
      ]);
      return [dx, ...(weight ? [dw] : []), ...(bias ? [db] : [])];
    },
    [mean, invstd],
  );
  return { y: out, mean: batch ? mean : null, var: batch ? variance : null };
}
