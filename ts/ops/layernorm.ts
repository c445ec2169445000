// Fused LayerNorm: one kernel per direction over rows of the trailing `d` elements. The forward
// saves each row's mean (as an f32 pair, see crate/src/kernels/layernorm.rs) and rstd for the
// backward, which writes dx and accumulates dweight and dbias in a single call.
import { wasm } from '../wasm/core.js';
import { Tensor } from '../tensor/tensor.js';
import { record, releaseIntermediates } from '../autograd/node.js';
import { zeros } from './creation.js';

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
  if (rows > 0) {
    wasm().layer_norm_f32(x.ptr, y.ptr, mean.ptr, rstd.ptr, ptr(weight), ptr(bias), rows, d, eps);
  }
  const params = [weight, bias].filter((p): p is Tensor => p !== null);
  const out = record(
    y,
    'layerNorm',
    [x, ...params],
    (g) => {
      const gx = x.requiresGrad ? Tensor.empty(x.shape, 'float32') : null;
      // The kernel accumulates parameter gradients over rows, so they start at zero.
      const [gw, gb] = [weight, bias].map((p) => (p?.requiresGrad ? zeros(p.shape) : null));
      if (rows > 0 && (gx || gw || gb)) {
        wasm().layer_norm_bwd_f32(
          g.ptr,
          x.ptr,
          mean.ptr,
          rstd.ptr,
          ptr(weight),
          ptr(gx),
          ptr(gw),
          ptr(gb),
          rows,
          d,
        );
      }
      return [gx, ...(weight ? [gw] : []), ...(bias ? [gb] : [])];
    },
    [mean, rstd],
  );
  // Without a graph nothing reads the statistics again.
  releaseIntermediates(out, [mean, rstd]);
  return out;
}
