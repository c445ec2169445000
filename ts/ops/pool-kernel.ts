// Fused 2-d pooling (crate/src/kernels/pool.rs): max pooling writes values and int32 indices in
// one pass and its backward scatters by the indices; average pooling sums each clipped window
// once each way. Callers (ts/ops/pool.ts) have checked and resolved the options into ATen's
// window geometry.
import { splitItems } from './parallel.js';
import { writeInts } from '../wasm/heap.js';
import { Tensor } from '../tensor/tensor.js';
import { record, releaseIntermediates } from '../autograd/node.js';

/** One spatial dim of a pooling window: size, kernel, stride, padding, dilation, output. */
export interface PoolDim {
  size: number;
  k: number;
  s: number;
  p: number;
  d: number;
  out: number;
}

function geom(h: PoolDim, w: PoolDim): number[] {
  return [h.size, w.size, h.k, w.k, h.d, w.d, h.p, w.p, h.s, w.s, h.out, w.out];
}

/** Max pooling of x [N, C, H, W]: [values, int32 flat indices into each input plane]. */
export function maxPool2dFused(x: Tensor, h: PoolDim, w: PoolDim): [Tensor, Tensor] {
  const [n, c] = x.shape;
  const planes = n * c;
  const shape = [n, c, h.out, w.out];
  const y = Tensor.empty(shape, 'float32');
  const idx = Tensor.empty(shape, 'int32');
  const g = writeInts(geom(h, w));
  splitItems('max_pool2d_f32', planes, x.size, (b, e) => [x.ptr, y.ptr, idx.ptr, g, b, e]);
  const out = record(
    y,
    'maxPool2d',
    [x],
    (dy) => {
      const dx = Tensor.empty(x.shape, 'float32');
      const [plane, o] = [h.size * w.size, h.out * w.out];
      splitItems('max_pool2d_bwd_f32', planes, x.size, (b, e) => [
        dy.ptr,
        idx.ptr,
        dx.ptr,
        plane,
        o,
        b,
        e,
      ]);
      return [dx];
    },
    [idx],
  );
  return [out, idx];
}

/**
 * Average pooling of x [N, C, H, W] (dilation 1): each clipped window's sum over `divisor`, or
 * over its size with (`includePad`) or without the zero padding when `divisor` is null.
 */
export function avgPool2dFused(
  x: Tensor,
  h: PoolDim,
  w: PoolDim,
  includePad: boolean,
  divisor: number | null,
): Tensor {
  const [n, c] = x.shape;
  const planes = n * c;
  const y = Tensor.empty([n, c, h.out, w.out], 'float32');
  const pad = includePad ? 1 : 0;
  const div = divisor ?? 0;
  const g = writeInts(geom(h, w));
  splitItems('avg_pool2d_f32', planes, x.size, (b, e) => [x.ptr, y.ptr, g, pad, div, b, e]);
  return record(y, 'avgPool2d', [x], (dy) => {
    const dx = Tensor.empty(x.shape, 'float32');
    const g = writeInts(geom(h, w));
    splitItems('avg_pool2d_bwd_f32', planes, x.size, (b, e) => [dy.ptr, dx.ptr, g, pad, div, b, e]);
    return [dx];
  });
}

/** Frees the indices when the caller does not return them and no graph keeps them. */
export function dropIndices(y: Tensor, idx: Tensor): void {
  releaseIntermediates(y, [idx]);
}
