// Pooling (max, average, adaptive average and max over 1-d and 2-d inputs). Max and average
// pooling run the fused kernels (ts/ops/pool-kernel.ts); the compositions below are their
// definition (nb.composed) and still serve the adaptive pools. Composed from existing ops: windows come from `unfold` over an explicitly padded input (−∞ for max, 0 for
// average), max takes `argmax` + `gather` so its gradient goes to the first maximum of each
// window as PyTorch's does, and adaptive average pooling is two matmuls with averaging
// matrices. Output sizes, padding limits and divisors follow ATen's pooling_output_shape and
// avg_pool2d.
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/node.js';
import { tensor } from './creation.js';
import { gather } from './indexing.js';
import { matmul } from './matmul.js';
import { pad, unfold } from './pad.js';
import { stack } from './shape.js';
import { convTuple } from './conv.js';
import { fused } from './fusion.js';
import { avgPool2dFused, dropIndices, maxPool2dFused } from './pool-kernel.js';

export interface MaxPoolOptions {
  /** Default: the kernel size. */
  stride?: number | readonly number[] | null;
  /** −∞ padding on both sides, at most half the kernel; default 0. */
  padding?: number | readonly number[];
  dilation?: number | readonly number[];
  /** Round the output size up (a last window may start in the input and run past it). */
  ceilMode?: boolean;
  /** Also return the flat index (h · W + w) of every maximum in its input plane. */
  returnIndices?: boolean;
}

export interface AvgPoolOptions {
  stride?: number | readonly number[] | null;
  /** Zero padding on both sides, at most half the kernel; default 0. */
  padding?: number | readonly number[];
  ceilMode?: boolean;
  /** Count the zero padding in the divisor; default true. */
  countIncludePad?: boolean;
  /** Divide every window's sum by this instead (2-d only, as in PyTorch). */
  divisorOverride?: number | null;
}

/** One spatial dim of a pooling window, as ATen computes it. */
interface Dim {
  size: number;
  k: number;
  s: number;
  p: number;
  d: number;
  out: number;
  /** −∞/0 padding after the input: p plus what a ceil-mode last window runs past. */
  after: number;
}

function poolDims(
  op: string,
  shape: readonly number[],
  nd: number,
  kernelSize: number | readonly number[],
  opts: { stride?: number | readonly number[] | null; padding?: unknown; dilation?: unknown },
  ceilMode: boolean,
): Dim[] {
  const k = convTuple(op, 'kernelSize', kernelSize, nd, 1);
  const s = convTuple(op, 'stride', opts.stride ?? k, nd, 1);
  const p = convTuple(op, 'padding', opts.padding ?? 0, nd, 0);
  const d = convTuple(op, 'dilation', opts.dilation ?? 1, nd, 1);
  const spatial = shape.slice(-nd);
  return spatial.map((size, i) => {
    if (p[i] > Math.floor(k[i] / 2)) {
      throw new ValueError(
        `${op}: padding should be at most half of the kernel size, got padding ${fmt(p)} and kernelSize ${fmt(k)}`,
      );
    }
    const span = d[i] * (k[i] - 1) + 1;
    let out = Math.floor((size + 2 * p[i] - span + (ceilMode ? s[i] - 1 : 0)) / s[i]) + 1;
    // The last window must start inside the input or its left padding.
    if (ceilMode && (out - 1) * s[i] >= size + p[i]) out--;
    if (out < 1) {
      throw new ShapeError(
        `${op}: input ${fmt(shape)} is too small for kernel ${fmt(k)} with padding ${fmt(p)} and dilation ${fmt(d)} (output size ${out})`,
      );
    }
    const after = Math.max(p[i], (out - 1) * s[i] + span - size - p[i]);
    return { size, k: k[i], s: s[i], p: p[i], d: d[i], out, after };
  });
}

/** Checks an input of `nd` spatial dims; returns it as [N, C, H, W] (H = 1 for 1-d). */
function planes(op: string, x: Tensor, nd: number): Tensor {
  if (x.dtype !== 'float32') throw new DTypeError(`${op}: expected float32, got ${x.dtype}`);
  if (x.ndim !== nd + 1 && x.ndim !== nd + 2) {
    throw new ShapeError(
      `${op}: expected a ${nd + 1}-D (unbatched) or ${nd + 2}-D (batched) input, got ${fmt(x.shape)}`,
    );
  }
  if (x.shape.slice(-nd).some((s) => s === 0)) {
    throw new ShapeError(`${op}: the spatial dims of ${fmt(x.shape)} must be non-empty`);
  }
  const b = x.ndim === nd + 2 ? x : x.unsqueeze(0);
  return nd === 1 ? b.unsqueeze(2) : b;
}

/** [N, C, oh, ow] back to the caller's rank (unbatched, 1-d). */
function unplanes(y: Tensor, x: Tensor, nd: number): Tensor {
  const r = nd === 1 ? y.squeeze(2) : y;
  return x.ndim === nd + 2 ? r : r.squeeze(0);
}

/** Dims as 2-d: a 1-d pool is a 2-d one over a height of 1. */
function as2d(dims: Dim[]): [Dim, Dim] {
  if (dims.length === 2) return [dims[0], dims[1]];
  return [{ size: 1, k: 1, s: 1, p: 0, d: 1, out: 1, after: 0 }, dims[0]];
}

/** The windows of x4 (padded with `value`) as [N, C, kh · kw, oh · ow]. */
function windows(x4: Tensor, h: Dim, w: Dim, value: number): Tensor {
  const padded =
    h.p || h.after || w.p || w.after
      ? pad(x4, [w.p, w.after, h.p, h.after], { mode: 'constant', value })
      : x4;
  const cols = unfold(padded, [h.k, w.k], { stride: [h.s, w.s], dilation: [h.d, w.d] });
  const [n, c] = x4.shape;
  return cols.reshape([n, c, h.k * w.k, h.out * w.out]);
}

function maxPoolNd(
  op: string,
  nd: number,
  x: Tensor,
  kernelSize: number | readonly number[],
  opts: MaxPoolOptions,
): Tensor | [Tensor, Tensor] {
  const x4 = planes(op, x, nd);
  const [h, w] = as2d(poolDims(op, x.shape, nd, kernelSize, opts, opts.ceilMode ?? false));
  if (fused.pool) {
    const [y, idx] = maxPool2dFused(x4, h, w);
    if (!opts.returnIndices) dropIndices(y, idx);
    const yOut = unplanes(y, x, nd);
    return opts.returnIndices ? [yOut, unplanes(idx, x, nd)] : yOut;
  }
  const cols = windows(x4, h, w, -Infinity);
  const [n, c] = x4.shape;
  const arg = cols.argmax(2, true);
  const y = unplanes(gather(cols, 2, arg).reshape([n, c, h.out, w.out]), x, nd);
  if (!opts.returnIndices) return y;
  return [y, unplanes(flatIndices(arg, h, w).reshape([n, c, h.out, w.out]), x, nd)];
}

/** Window-relative argmax → flat index in the (unpadded) input plane, int32. */
function flatIndices(arg: Tensor, h: Dim, w: Dim): Tensor {
  return noGrad(() => {
    const a = arg.toArray() as Int32Array;
    const l = h.out * w.out;
    const idx = new Int32Array(a.length);
    for (let i = 0; i < a.length; i++) {
      const pos = i % l;
      const oi = Math.floor(pos / w.out);
      const oj = pos % w.out;
      const ki = Math.floor(a[i] / w.k);
      const kj = a[i] % w.k;
      const ih = oi * h.s - h.p + ki * h.d;
      const iw = oj * w.s - w.p + kj * w.d;
      idx[i] = ih * w.size + iw;
    }
    return tensor(idx, { shape: [a.length], dtype: 'int32' });
  });
}

/** ATen's avg_pool divisor of every window: [oh · ow] as a float32 tensor. */
function divisors(h: Dim, w: Dim, countIncludePad: boolean, override: number | null): Tensor {
  const out = new Float32Array(h.out * w.out);
  const range = (o: number, dim: Dim) => {
    const start = o * dim.s - dim.p;
    const end = Math.min(start + dim.k, dim.size + dim.p);
    const size = end - start;
    const inside = Math.min(end, dim.size) - Math.max(start, 0);
    return countIncludePad ? size : inside;
  };
  for (let i = 0; i < h.out; i++) {
    for (let j = 0; j < w.out; j++) out[i * w.out + j] = override ?? range(i, h) * range(j, w);
  }
  return tensor(out, { shape: [h.out * w.out] });
}

function avgPoolNd(
  op: string,
  nd: number,
  x: Tensor,
  kernelSize: number | readonly number[],
  opts: AvgPoolOptions,
): Tensor {
  const x4 = planes(op, x, nd);
  const override = opts.divisorOverride ?? null;
  if (override !== null && (!Number.isFinite(override) || override === 0)) {
    throw new ValueError(`${op}: divisorOverride must be a non-zero number, got ${override}`);
  }
  const dims = poolDims(op, x.shape, nd, kernelSize, opts, opts.ceilMode ?? false);
  const [h, w] = as2d(dims);
  // A divisor that float32 rounds to zero keeps the composition's division by it.
  if (fused.pool && (override === null || Math.fround(override) !== 0)) {
    const y = avgPool2dFused(x4, h, w, opts.countIncludePad ?? true, override);
    return unplanes(y, x, nd);
  }
  const [n, c] = x4.shape;
  const sums = windows(x4, h, w, 0).sum(2);
  const div = divisors(h, w, opts.countIncludePad ?? true, override);
  return unplanes(sums.div(div).reshape([n, c, h.out, w.out]), x, nd);
}

/** `torch.nn.functional.max_pool2d`; with `returnIndices`, [output, int32 indices]. */
export function maxPool2d(
  x: Tensor,
  kernelSize: number | readonly number[],
  opts: MaxPoolOptions & { returnIndices: true },
): [Tensor, Tensor];
export function maxPool2d(
  x: Tensor,
  kernelSize: number | readonly number[],
  opts?: MaxPoolOptions,
): Tensor;
export function maxPool2d(
  x: Tensor,
  kernelSize: number | readonly number[],
  opts: MaxPoolOptions = {},
): Tensor | [Tensor, Tensor] {
  return maxPoolNd('maxPool2d', 2, x, kernelSize, opts);
}

/** `torch.nn.functional.max_pool1d`; with `returnIndices`, [output, int32 indices]. */
export function maxPool1d(
  x: Tensor,
  kernelSize: number | readonly number[],
  opts: MaxPoolOptions & { returnIndices: true },
): [Tensor, Tensor];
export function maxPool1d(
  x: Tensor,
  kernelSize: number | readonly number[],
  opts?: MaxPoolOptions,
): Tensor;
export function maxPool1d(
  x: Tensor,
  kernelSize: number | readonly number[],
  opts: MaxPoolOptions = {},
): Tensor | [Tensor, Tensor] {
  return maxPoolNd('maxPool1d', 1, x, kernelSize, opts);
}

/** `torch.nn.functional.avg_pool2d`. */
export function avgPool2d(
  x: Tensor,
  kernelSize: number | readonly number[],
  opts: AvgPoolOptions = {},
): Tensor {
  return avgPoolNd('avgPool2d', 2, x, kernelSize, opts);
}

/** `torch.nn.functional.avg_pool1d` (no divisorOverride, as in PyTorch). */
export function avgPool1d(
  x: Tensor,
  kernelSize: number | readonly number[],
  opts: Omit<AvgPoolOptions, 'divisorOverride'> = {},
): Tensor {
  return avgPoolNd('avgPool1d', 1, x, kernelSize, { ...opts, divisorOverride: null });
}

/** Output sizes of an adaptive pool: a number, or one per dim with null keeping the input's. */
function adaptiveSizes(
  op: string,
  outputSize: number | readonly (number | null)[],
  spatial: readonly number[],
): number[] {
  const n = spatial.length;
  const raw =
    typeof outputSize === 'number' ? Array<number | null>(n).fill(outputSize) : [...outputSize];
  if (raw.length !== n) {
    throw new ValueError(
      `${op}: outputSize must have ${n} entries, got ${JSON.stringify(outputSize)}`,
    );
  }
  return raw.map((v, i) => {
    const s = v ?? spatial[i];
    if (!Number.isInteger(s) || s < 1) {
      throw new ValueError(
        `${op}: outputSize must be positive integers (or null), got ${JSON.stringify(outputSize)}`,
      );
    }
    return s;
  });
}

/** Adaptive window i of `out` over `size`: [floor(i·size/out), ceil((i+1)·size/out)). */
function adaptiveRange(i: number, size: number, out: number): [number, number] {
  return [Math.floor((i * size) / out), Math.ceil(((i + 1) * size) / out)];
}

/** [out, size]: row i averages adaptive window i. */
function averaging(size: number, out: number): Tensor {
  const m = new Float32Array(out * size);
  for (let i = 0; i < out; i++) {
    const [a, b] = adaptiveRange(i, size, out);
    for (let j = a; j < b; j++) m[i * size + j] = 1 / (b - a);
  }
  return tensor(m, { shape: [out, size] });
}

function adaptiveAvgPoolNd(
  op: string,
  nd: number,
  x: Tensor,
  outputSize: number | readonly (number | null)[],
): Tensor {
  const x4 = planes(op, x, nd);
  const [oh, ow] =
    nd === 2
      ? adaptiveSizes(op, outputSize, x.shape.slice(-2))
      : [1, ...adaptiveSizes(op, outputSize, x.shape.slice(-1))];
  const [, , h, w] = x4.shape;
  // x · Awᵀ averages along W, then Ah · (…) along H.
  const alongW = matmul(x4, averaging(w, ow), { transB: true });
  const y = nd === 2 ? matmul(averaging(h, oh), alongW) : alongW;
  return unplanes(y, x, nd);
}

/** `torch.nn.functional.adaptive_avg_pool2d`. */
export function adaptiveAvgPool2d(
  x: Tensor,
  outputSize: number | readonly (number | null)[],
): Tensor {
  return adaptiveAvgPoolNd('adaptiveAvgPool2d', 2, x, outputSize);
}

/** `torch.nn.functional.adaptive_avg_pool1d`. */
export function adaptiveAvgPool1d(x: Tensor, outputSize: number | readonly number[]): Tensor {
  return adaptiveAvgPoolNd('adaptiveAvgPool1d', 1, x, outputSize);
}

/**
 * `torch.nn.functional.adaptive_max_pool2d`: the maximum of every adaptive window (first one
 * on ties); with `returnIndices`, [output, int32 flat indices into each input plane].
 */
export function adaptiveMaxPool2d(
  x: Tensor,
  outputSize: number | readonly (number | null)[],
  opts: { returnIndices: true },
): [Tensor, Tensor];
export function adaptiveMaxPool2d(
  x: Tensor,
  outputSize: number | readonly (number | null)[],
  opts?: { returnIndices?: boolean },
): Tensor;
export function adaptiveMaxPool2d(
  x: Tensor,
  outputSize: number | readonly (number | null)[],
  opts: { returnIndices?: boolean } = {},
): Tensor | [Tensor, Tensor] {
  const op = 'adaptiveMaxPool2d';
  const x4 = planes(op, x, 2);
  const [n, c, h, w] = x4.shape;
  const [oh, ow] = adaptiveSizes(op, outputSize, [h, w]);
  const values: Tensor[] = [];
  const index = new Int32Array(n * c * oh * ow);
  for (let i = 0; i < oh; i++) {
    const [h0, h1] = adaptiveRange(i, h, oh);
    for (let j = 0; j < ow; j++) {
      const [w0, w1] = adaptiveRange(j, w, ow);
      const win = x4
        .narrow(2, h0, h1 - h0)
        .narrow(3, w0, w1 - w0)
        .reshape([n, c, (h1 - h0) * (w1 - w0)]);
      const arg = win.argmax(2, true);
      values.push(gather(win, 2, arg).reshape([n, c]));
      if (opts.returnIndices) {
        const a = arg.toArray() as Int32Array;
        for (let p = 0; p < a.length; p++) {
          const ih = h0 + Math.floor(a[p] / (w1 - w0));
          const iw = w0 + (a[p] % (w1 - w0));
          index[(p * oh + i) * ow + j] = ih * w + iw;
        }
      }
    }
  }
  const y = unplanes(stack(values, 2).reshape([n, c, oh, ow]), x, 2);
  if (!opts.returnIndices) return y;
  const idx = tensor(index, { shape: [n, c, oh, ow], dtype: 'int32' });
  return [y, x.ndim === 4 ? idx : idx.squeeze(0)];
}
