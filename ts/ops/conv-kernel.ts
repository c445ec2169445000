// The fused 2-d convolution (crate/src/kernels/conv.rs): forward and both gradients run through
// the packed GEMM, which packs its panels straight from the image, so no im2col tensor exists.
// One autograd node per call; it saves nothing beyond its inputs. Callers (ts/ops/conv.ts) have
// checked dtypes, shapes and options; this file only sizes buffers and calls the kernels.
import { fmt } from '../errors.js';
import { OutOfMemoryError, matmulScratch, unsigned, writeInts } from '../wasm/heap.js';
import { wasm } from '../wasm/core.js';
import { Tensor } from '../tensor/tensor.js';
import { record } from '../autograd/node.js';

/** Output size of one dim, as PyTorch computes it. */
export function convOut(size: number, k: number, s: number, p: number, d: number): number {
  return Math.floor((size + 2 * p - d * (k - 1) - 1) / s) + 1;
}

/** The geometry the conv kernels read (see `conv_geom` in crate/src/abi.rs). */
interface Geometry {
  n: number;
  values: number[];
  oh: number;
  ow: number;
  co: number;
}

function geometry(
  x: Tensor,
  weight: Tensor,
  stride: readonly number[],
  padding: readonly number[],
  dilation: readonly number[],
  groups: number,
): Geometry {
  const [n, , h, w] = x.shape;
  const [co, cig, kh, kw] = weight.shape;
  const oh = convOut(h, kh, stride[0], padding[0], dilation[0]);
  const ow = convOut(w, kw, stride[1], padding[1], dilation[1]);
  const values = [h, w, kh, kw, dilation[0], dilation[1], padding[0], padding[1]];
  values.push(stride[0], stride[1], oh, ow, groups, cig, co / groups);
  return { n, values, oh, ow, co };
}

/**
 * `conv2d` of x [N, C, H, W] with weight [Co, C / groups, kh, kw] and symmetric zero padding,
 * as one fused kernel per direction; both x and weight non-empty (the caller composes empty
 * cases). Gradients: dx from the input-gradient kernel, dweight and dbias from the
 * weight-gradient kernel (both sum over the batch inside the kernel).
 */
export function conv2dFused(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  stride: readonly number[],
  padding: readonly number[],
  dilation: readonly number[],
  groups: number,
): Tensor {
  const g = geometry(x, weight, stride, padding, dilation, groups);
  const y = Tensor.empty([g.n, g.co, g.oh, g.ow], 'float32');
  const cols = colsScratch(g, weight);
  wasm().conv2d_f32(
    ...[x.ptr, weight.ptr, bias ? bias.ptr : 0, y.ptr],
    ...[writeInts(g.values), 0, g.n, ptr(cols), matmulScratch()],
  );
  cols?.dispose();
  return record(y, 'conv2d', bias ? [x, weight, bias] : [x, weight], (dy) => {
    const core = wasm();
    const dx = x.requiresGrad ? Tensor.empty(x.shape, 'float32') : null;
    const dw = weight.requiresGrad ? Tensor.empty(weight.shape, 'float32') : null;
    const db = bias?.requiresGrad ? Tensor.empty(bias.shape, 'float32') : null;
    const cols = colsScratch(g, weight);
    if (dx) {
      core.conv2d_bwd_input_f32(
        ...[dy.ptr, weight.ptr, dx.ptr, writeInts(g.values), 0, g.n],
        ...[ptr(cols), matmulScratch()],
      );
    }
    if (dw || db) {
      core.conv2d_bwd_weight_f32(
        ...[x.ptr, dy.ptr, ptr(dw), ptr(db), g.n],
        ...[writeInts(g.values), 0, g.co, ptr(cols), matmulScratch()],
      );
    }
    cols?.dispose();
    return bias ? [dx, dw, db] : [dx, dw];
  });
}

const ptr = (t: Tensor | null): number => (t ? t.ptr : 0);

/** The kernels' column chunk (bounded, see `cols_len`), or null when they need none (1×1). */
function colsScratch(g: Geometry, weight: Tensor): Tensor | null {
  // cols_len is at most max(K · 64, 131072 + K) floats; keep it inside wasm32's usize.
  const [, cig, kh, kw] = weight.shape;
  if (cig * kh * kw * 64 >= 2 ** 30) {
    throw new OutOfMemoryError(
      `conv2d: weight ${fmt(weight.shape)} has too many taps per output for the kernels' column scratch`,
    );
  }
  const len = unsigned(wasm().conv2d_cols_len(writeInts(g.values)));
  return len > 0 ? Tensor.empty([len], 'float32') : null;
}
