// The fused 2-d convolution (crate/src/kernels/conv.rs): forward and both gradients run through
// the packed GEMM, which packs its panels straight from the image, so no im2col tensor exists.
// One autograd node per call; it saves nothing beyond its inputs. Callers (ts/ops/conv.ts) have
// checked dtypes, shapes and options; this file only sizes buffers and calls the kernels.
import { backends } from '../backends.js';
import { fmt } from '../errors.js';
import { OutOfMemoryError, unsigned, writeInts } from '../wasm/heap.js';
import { wasm } from '../wasm/core.js';
import type { PoolExport } from '../wasm/threads.js';
import { gemmScratch, runSplitOrWhole, sumChunks } from './parallel.js';
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
  values.push(
    stride[0],
    stride[1],
    oh,
    ow,
    groups,
    cig,
    co / groups,
    backends.conv.winograd ? 1 : 0,
  );
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
  const cols = colsLen(g, weight);
  const geom = writeInts(g.values);
  const head = [x.ptr, weight.ptr, bias ? bias.ptr : 0, y.ptr, geom];
  split(g, cols, 'conv2d_f32', g.n, 1, (b, e, c, s) => [...head, b, e, c, s]);
  return record(y, 'conv2d', bias ? [x, weight, bias] : [x, weight], (dy) => {
    const dx = x.requiresGrad ? Tensor.empty(x.shape, 'float32') : null;
    const dw = weight.requiresGrad ? Tensor.empty(weight.shape, 'float32') : null;
    const db = bias?.requiresGrad ? Tensor.empty(bias.shape, 'float32') : null;
    const cols = colsLen(g, weight);
    const geom = writeInts(g.values);
    if (dx) {
      const head = [dy.ptr, weight.ptr, dx.ptr, geom];
      split(g, cols, 'conv2d_bwd_input_f32', g.n, 1, (b, e, c, s) => [...head, b, e, c, s]);
    }
    const chunks = weightChunks(g, weight.size);
    if ((dw || db) && chunks > 1) {
      // By image chunks: partial sums, added in chunk order (whatever thread made each).
      const pw = dw ? Tensor.empty([chunks, weight.size], 'float32') : null;
      const pb = db ? Tensor.empty([chunks, g.co], 'float32') : null;
      const head = [x.ptr, dy.ptr, ptr(pw), ptr(pb), g.n, chunks, geom];
      const fn = 'conv2d_bwd_weight_chunks_f32';
      split(g, cols, fn, chunks, 1, (b, e, c, s) => [...head, b, e, c, s]);
      sumChunks(pw, dw);
      sumChunks(pb, db);
    } else if (dw || db) {
      // By output channels: each gradient row is summed over every image by one thread.
      const head = [x.ptr, dy.ptr, ptr(dw), ptr(db), g.n, geom];
      split(g, cols, 'conv2d_bwd_weight_f32', g.co, 4, (b, e, c, s) => [...head, b, e, c, s]);
    }
    return bias ? [dx, dw, db] : [dx, dw];
  });
}

const ptr = (t: Tensor | null): number => (t ? t.ptr : 0);

/** The weight gradient's image chunks: at most this many... */
const WEIGHT_CHUNKS = 8;
/** ...and partial sums of at most this many floats (8 MB) in all. */
const WEIGHT_PARTIAL_FLOATS = 1 << 21;

/**
 * How many image chunks the weight gradient is summed in (1: one sum over all images, split
 * by output channels). Split by output channels, every thread unfolds every image, which on
 * LeNet's shallow convolutions costs as much as the GEMM; by image chunks each unfolds its
 * own. Depends on the sizes only, never on the thread count, so every count gives the same
 * bits. Depthwise and 1×1 convolutions unfold nothing and keep the split by channels.
 */
function weightChunks(g: Geometry, weightSize: number): number {
  const [, , kh, kw, , , ph, pw, sh, sw, , , groups, cig] = g.values;
  const depthwise = cig === 1 && groups > 1;
  const pointwise = kh === 1 && kw === 1 && sh === 1 && sw === 1 && ph === 0 && pw === 0;
  if (depthwise || pointwise || g.macs < SPLIT_MIN_MACS) return 1;
  const fit = Math.floor(WEIGHT_PARTIAL_FLOATS / (weightSize + g.co));
  return Math.max(1, Math.min(g.n, WEIGHT_CHUNKS, fit));
}

/**
 * Runs one conv kernel over `[0, length)` (images or output channels), split over the pool
 * when there is one and the convolution is big enough, else in one call. Each thread gets its
 * own `cols` floats of column chunk and its GEMM scratch.
 */
function split(
  g: Geometry,
  cols: number,
  fn: PoolExport,
  length: number,
  align: number,
  args: (begin: number, end: number, cols: number, scratch: number) => number[],
): void {
  runSplitOrWhole({
    fn,
    length,
    align,
    work: g.macs,
    minWork: SPLIT_MIN_MACS,
    redo: true, // every conv kernel overwrites its range's outputs
    scratch: cols,
    args: (b, e, w, c) => args(b, e, c, gemmScratch(w)),
  });
}

/** Floats of the kernels' column chunk (bounded, see `cols_len`); 0 when they need none (1×1). */
function colsLen(g: Geometry, weight: Tensor): number {
  // cols_len is at most max(K · 64, 131072 + K) + 65536 floats, or the padded image copy (at
  // most 262144); keep it inside wasm32's usize.
  const [, cig, kh, kw] = weight.shape;
  if (cig * kh * kw * 64 >= 2 ** 30) {
    throw new OutOfMemoryError(
      `conv2d: weight ${fmt(weight.shape)} has too many taps per output for the kernels' column scratch`,
    );
  }
  return unsigned(wasm().conv2d_cols_len(writeInts(g.values)));
}
