// Fused LayerNorm: one kernel per direction over rows of the trailing `d` elements. The forward
// saves each row's mean (as an f32 pair, see crate/src/kernels/layernorm.rs) and rstd for the
// backward, which writes dx and accumulates dweight and dbias. Both split over the pool by
// rows; large backwards sum the parameter gradients in fixed row chunks, added in order.
import { wasm } from '../wasm/core.js';
import { Tensor } from '../tensor/tensor.js';
import { record, releaseIntermediates } from '../autograd/node.js';
import { zeros } from './creation.js';
import { SPLIT_MIN_ELEMENTS, splitItems, sumChunks } from './parallel.js';

/** Row chunks of a large backward (the most threads it can use). */
const CHUNKS = 8;

/**
 * LayerNorm of float32 `x` over its trailing `d` elements (one row each), then `* weight +
 * bias` when given (`d` elements each). Shapes and dtypes are checked by the caller
 * (`nn.functional.layerNorm`).
 */
export function layerNormOp(
  x: Tensor,
  d: number,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
): Tensor {
  const rows = x.size === 0 ? 0 : x.size / d;
  const y = Tensor.empty(x.shape, 'float32');
  const mean = Tensor.empty([rows, 2], 'float32');
  const rstd = Tensor.empty([rows], 'float32');
  const ptr = (t: Tensor | null): number => (t ? t.ptr : 0);
  const affine = [ptr(weight), ptr(bias)];
  if (rows > 0) {
    splitItems('layer_norm_f32', rows, x.size, (b, e) => {
      const [at, n] = [4 * b * d, e - b];
      return [x.ptr + at, y.ptr + at, mean.ptr + 8 * b, rstd.ptr + 4 * b, ...affine, n, d, eps];
    });
  }
  const params = [weight, bias].filter((p): p is Tensor => p !== null);
  const out = record(
    y,
    'layerNorm',
    [x, ...params],
    (g) => {
      const gx = x.requiresGrad ? Tensor.empty(x.shape, 'float32') : null;
      const chunks = x.size >= SPLIT_MIN_ELEMENTS ? Math.min(CHUNKS, rows) : 1;
      // In one call the kernel accumulates parameter gradients over rows, so they start at
      // zero; chunked, `sumChunks` overwrites them.
      const [gw, gb] = [weight, bias].map((p) =>
        !p?.requiresGrad ? null : chunks === 1 ? zeros(p.shape) : Tensor.empty(p.shape, 'float32'),
      );
      if (rows > 0 && (gx || gw || gb)) {
        if (chunks === 1) {
          const [m, r, w] = [mean.ptr, rstd.ptr, ptr(weight)];
          wasm().layer_norm_bwd_f32(g.ptr, x.ptr, m, r, w, ptr(gx), ptr(gw), ptr(gb), rows, d);
        } else {
          const [pw, pb] = [gw, gb].map((t) => (t ? Tensor.empty([chunks, d], 'float32') : null));
          const head = [g.ptr, x.ptr, mean.ptr, rstd.ptr, ptr(weight), ptr(gx), ptr(pw), ptr(pb)];
          // Each chunk overwrites its rows of dx and its partial sums.
          splitItems('layer_norm_bwd_chunks_f32', chunks, x.size, (b, e) => [
            ...head,
            rows,
            d,
            chunks,
            b,
            e,
          ]);
          sumChunks(pw, gw);
          sumChunks(pb, gb);
        }
      }
      return [gx, ...(weight ? [gw] : []), ...(bias ? [gb] : [])];
    },
    [mean, rstd],
  );
  // Without a graph nothing reads the statistics again.
  releaseIntermediates(out, [mean, rstd]);
  return out;
}
