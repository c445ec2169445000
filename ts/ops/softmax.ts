// Softmax and log-softmax along one dim, forward and backward each one fused kernel.
import { splitItems } from './parallel.js';
import { normDim, numel } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { record } from '../autograd/node.js';
import { castTo } from './copy.js';

function softmaxOp(name: string, x: Tensor, dim: number, log: 0 | 1): Tensor {
  const d = normDim(name, dim, x.ndim, x.shape);
  const outer = numel(x.shape.slice(0, d));
  const r = x.ndim === 0 ? 1 : x.shape[d];
  const inner = numel(x.shape.slice(d + 1));
  const xf = x.dtype === 'float32' ? x : castTo(x, 'float32');
  const out = Tensor.empty(x.shape, 'float32');
  // Split by outer rows: each is normalised on its own.
  const rows = (fn: 'softmax_f32' | 'softmax_bwd_f32', args: (at: number, n: number) => number[]) =>
    splitItems(fn, outer, out.size, (b, e) => args(4 * b * r * inner, e - b));
  if (out.size > 0) {
    rows('softmax_f32', (at, n) => [xf.ptr + at, out.ptr + at, n, r, inner, log]);
  }
  if (xf !== x) xf.dispose();
  return record(out, name, [x], (g) => {
    const gx = Tensor.empty(x.shape, 'float32');
    if (gx.size > 0) {
      rows('softmax_bwd_f32', (at, n) => [out.ptr + at, g.ptr + at, gx.ptr + at, n, r, inner, log]);
    }
    return [gx];
  });
}

export const softmax = (x: Tensor, dim: number): Tensor => softmaxOp('softmax', x, dim, 0);
export const logSoftmax = (x: Tensor, dim: number): Tensor => softmaxOp('logSoftmax', x, dim, 1);
