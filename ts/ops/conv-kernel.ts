// The fused 2-d convolution (crate/src/kernels/conv.rs): forward and both gradients run through
// the packed GEMM, which packs its panels straight from the image, so no im2col tensor exists.
// One autograd node per call; it saves nothing beyond its inputs. Callers (ts/ops/conv.ts) have
// checked dtypes, shapes and options; this file only sizes buffers and calls the kernels.
import { fmt } from '../errors.js';
import { OutOfMemoryError, matmulScratch, unsigned, writeInts } from '../wasm/heap.js';
import { pool, wasm } from '../wasm/core.js';
import type { PoolExport } from '../wasm/threads.js';
import { gemmScratch, runSplit } from './parallel.js';
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
  /** Multiply-adds of the whole convolution (any direction costs about the same). */
  macs: number;
}

/** Convolutions below this many multiply-adds stay on the calling thread (as the GEMM). */
const SPLIT_MIN_MACS = 1 << 21;

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
  return { n, values, oh, ow, co, macs: n * co * oh * ow * cig * kh * kw };
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
  const geom = writeInts(g.values);
  const head = [x.ptr, weight.ptr, bias ? bias.ptr : 0, y.ptr, geom];
  split(g, cols, 'conv2d_f32', g.n, 1, (b, e, c, s) => [...head, b, e, c, s]);
  cols?.dispose();
  return record(y, 'conv2d', bias ? [x, weight, bias] : [x, weight], (dy) => {
    const dx = x.requiresGrad ? Tensor.empty(x.shape, 'float32') : null;
    const dw = weight.requiresGrad ? Tensor.empty(weight.shape, 'float32') : null;
    const db = bias?.requiresGrad ? Tensor.empty(bias.shape, 'float32') : null;
    const cols = colsScratch(g, weight);
    const geom = writeInts(g.values);
    if (dx) {
      const head = [dy.ptr, weight.ptr, dx.ptr, geom];
      split(g, cols, 'conv2d_bwd_input_f32', g.n, 1, (b, e, c, s) => [...head, b, e, c, s]);
    }
    if (dw || db) {
      // By output channels: each gradient row is summed over every image by one thread.
      const head = [x.ptr, dy.ptr, ptr(dw), ptr(db), g.n, geom];
      split(g, cols, 'conv2d_bwd_weight_f32', g.co, 4, (b, e, c, s) => [...head, b, e, c, s]);
    }
    cols?.dispose();
    return bias ? [dx, dw, db] : [dx, dw];
  });
}

const ptr = (t: Tensor | null): number => (t ? t.ptr : 0);

/**
 * Runs one conv kernel over `[0, length)` (images or output channels), split over the pool
 * when there is one and the convolution is big enough, else in one call. Each thread gets its
 * own stretch of `cols` (the caller's is `cols` itself) and GEMM scratch.
 */
function split(
  g: Geometry,
  cols: Tensor | null,
  fn: PoolExport,
  length: number,
  align: number,
  args: (begin: number, end: number, cols: number, scratch: number) => number[],
): void {
  const workers = pool();
  if (workers !== null && g.macs >= SPLIT_MIN_MACS && length >= 2 * align) {
    const more = cols ? Tensor.empty([cols.size * workers.scratch.length], 'float32') : null;
    try {
      const done = runSplit({
        fn,
        length,
        align,
        work: g.macs,
        minWork: SPLIT_MIN_MACS,
        redo: true, // every conv kernel overwrites its range's outputs
        args: (b, e, w) =>
          args(b, e, w < 0 ? ptr(cols) : more ? more.ptr + 4 * w * cols!.size : 0, gemmScratch(w)),
      });
      if (done) return;
    } finally {
      more?.dispose();
    }
  }
  (wasm()[fn] as (...a: number[]) => void)(...args(0, length, ptr(cols), matmulScratch()));
}

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
