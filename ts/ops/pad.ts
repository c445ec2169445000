// Padding and sliding windows: `pad` (constant, reflect, replicate, circular) and the im2col
// pair `unfold` / `fold`, each the other's backward. Non-constant padding is an index lookup
// per padded dim, so its gradient is indexSelect's scatter-add.
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import { contiguousStrides, numel } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { wasm } from '../wasm/core.js';
import { record, releaseIntermediates } from '../autograd/node.js';
import { copyStrided } from './copy.js';
import { full } from './creation.js';
import { indexSelect } from './indexing.js';
import { reshape } from './shape.js';
import { fillWords, splitItems } from './parallel.js';

export type PadMode = 'constant' | 'reflect' | 'replicate' | 'circular';

export interface PadOptions {
  /** Default 'constant'. */
  mode?: PadMode;
  /** Fill value of constant padding; default 0. */
  value?: number;
}

/**
 * `torch.nn.functional.pad`: `pad` lists (before, after) amounts from the last dim backwards,
 * `[left, right, top, bottom, ...]`. Negative amounts crop. Reflect, replicate and circular
 * pad the last 1–3 dims of a batched or unbatched input.
 */
export function pad(x: Tensor, pad: readonly number[], opts: PadOptions = {}): Tensor {
  const mode = opts.mode ?? 'constant';
  const m = pad.length / 2;
  if (!Number.isInteger(m) || m > x.ndim || pad.some((p) => !Number.isInteger(p))) {
    throw new ShapeError(
      `pad: padding ${fmt(pad)} must be an even number of integers, at most 2 per dim of the input ${fmt(x.shape)}`,
    );
  }
  // before[d], after[d] for every dim d of x (0 for the dims the tuple does not reach).
  const before = x.shape.map(() => 0);
  const after = x.shape.map(() => 0);
  for (let i = 0; i < m; i++) {
    before[x.ndim - 1 - i] = pad[2 * i];
    after[x.ndim - 1 - i] = pad[2 * i + 1];
  }
  if (mode === 'constant') return padConstant(x, before, after, opts.value ?? 0, pad);
  if (mode !== 'reflect' && mode !== 'replicate' && mode !== 'circular') {
    throw new ValueError(
      `pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got '${String(mode)}'`,
    );
  }
  if (opts.value !== undefined && opts.value !== 0) {
    throw new ValueError(`pad: a fill value only applies to constant padding, not '${mode}'`);
  }
  if (m < 1 || m > 3 || (x.ndim !== m + 1 && x.ndim !== m + 2)) {
    throw new ShapeError(
      `pad: ${mode} padding of ${m} dims needs a ${m + 1}-d or ${m + 2}-d input, got ${fmt(x.shape)}`,
    );
  }
  if (x.dtype !== 'float32')
    throw new DTypeError(`pad: ${mode} padding needs float32, got ${x.dtype}`);
  let out = x;
  const temps: Tensor[] = [];
  for (let d = x.ndim - m; d < x.ndim; d++) {
    const n = x.shape[d];
    const [lo, hi] = [before[d], after[d]];
    // Negative amounts crop. Circular padding wraps within what is left after cropping (a..b),
    // reflect and replicate read the whole dim, as PyTorch does.
    const a = Math.max(0, -lo);
    const b = n - Math.max(0, -hi);
    const kept = b - a;
    const limit = mode === 'reflect' ? n - 1 : mode === 'circular' ? kept : Infinity;
    if (n === 0 || kept < 0 || lo > limit || hi > limit || n + lo + hi < 0) {
      throw new ValueError(
        `pad: ${mode} padding ${fmt(pad)} does not fit dim ${d} (size ${n}) of the input ${fmt(x.shape)}` +
          (mode === 'reflect' ? '; reflect padding must be smaller than the dim' : ''),
      );
    }
    if (lo === 0 && hi === 0) continue;
    const index = new Int32Array(n + lo + hi);
    for (let i = 0; i < index.length; i++) {
      const j = i - lo;
      if (mode === 'replicate') index[i] = Math.min(Math.max(j, 0), n - 1);
      else if (mode === 'reflect') index[i] = j < 0 ? -j : j >= n ? 2 * (n - 1) - j : j;
      else index[i] = a + ((((i - Math.max(lo, 0)) % kept) + kept) % kept);
    }
    const idx = Tensor.empty([index.length], 'int32');
    new Int32Array(wasm().memory.buffer, idx.ptr, index.length).set(index);
    if (out !== x) temps.push(out);
    out = indexSelect(out, d, idx);
    temps.push(idx);
  }
  if (out === x) return reshape(x, x.shape, 'pad');
  releaseIntermediates(out, temps);
  return out;
}

/** Constant padding: the input's overlap with the output is copied into a filled tensor. */
function padConstant(
  x: Tensor,
  before: number[],
  after: number[],
  value: number,
  pad: readonly number[],
): Tensor {
  const shape = x.shape.map((s, d) => s + before[d] + after[d]);
  if (shape.some((s) => s < 0)) {
    throw new ShapeError(`pad: padding ${fmt(pad)} crops the input ${fmt(x.shape)} below size 0`);
  }
  // The copied block: `region` elements per dim, from x at `srcAt`, into out at `dstAt`.
  const region = x.shape.map((s, d) =>
    Math.max(0, s + Math.min(before[d], 0) + Math.min(after[d], 0)),
  );
  const srcAt = x.shape.map((_, d) => Math.max(0, -before[d]));
  const dstAt = x.shape.map((_, d) => Math.max(0, before[d]));
  const xs = contiguousStrides(x.shape);
  const os = contiguousStrides(shape);
  const offset = (at: number[], strides: number[]) => at.reduce((a, v, d) => a + v * strides[d], 0);
  const out = full(shape, value, { dtype: x.dtype });
  const copyBlock = numel(region) > 0;
  if (copyBlock) copyStrided(x, offset(srcAt, xs), out, offset(dstAt, os), region, xs, os);
  return record(out, 'pad', [x], (g) => {
    const gx = Tensor.empty(x.shape, 'float32');
    fillWords(gx.ptr, gx.size, 0);
    if (copyBlock) copyStrided(g, offset(dstAt, os), gx, offset(srcAt, xs), region, os, xs);
    return [gx];
  });
}

/** Sizes of a 2-d window option: a number for both dims or a pair. */
type Pair = number | readonly [number, number];

export interface UnfoldOptions {
  dilation?: Pair;
  padding?: Pair;
  stride?: Pair;
}

function pair(op: string, name: string, v: Pair, min: number): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (
    (typeof v !== 'number' && v.length !== 2) ||
    !p.every((s) => Number.isInteger(s) && s >= min)
  ) {
    throw new ValueError(
      `${op}: ${name} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`,
    );
  }
  return p;
}

/** The window geometry in the order the kernels take it. */
interface Geometry {
  h: number;
  w: number;
  k: [number, number];
  d: [number, number];
  p: [number, number];
  s: [number, number];
  oh: number;
  ow: number;
}

function geometry(
  op: string,
  h: number,
  w: number,
  kernelSize: Pair,
  opts: UnfoldOptions,
  shapeForMessage: readonly number[],
): Geometry {
  const k = pair(op, 'kernelSize', kernelSize, 1);
  const d = pair(op, 'dilation', opts.dilation ?? 1, 1);
  const p = pair(op, 'padding', opts.padding ?? 0, 0);
  const s = pair(op, 'stride', opts.stride ?? 1, 1);
  const blocks = (n: number, i: 0 | 1) =>
    Math.floor((n + 2 * p[i] - d[i] * (k[i] - 1) - 1) / s[i]) + 1;
  const oh = blocks(h, 0);
  const ow = blocks(w, 1);
  if (oh < 1 || ow < 1) {
    throw new ShapeError(
      `${op}: kernel ${fmt(k)} with dilation ${fmt(d)} and padding ${fmt(p)} does not fit the spatial size ${fmt([h, w])} of ${fmt(shapeForMessage)} (${oh} x ${ow} blocks)`,
    );
  }
  return { h, w, k, d, p, s, oh, ow };
}

function runWindow(
  fn: 'unfold_f32' | 'fold_f32',
  src: Tensor,
  dst: Tensor,
  g: Geometry,
  planes: number,
): void {
  // Planes are independent: each is unfolded (or folded, its sums in one order) on one thread.
  splitItems(fn, planes, planes * g.k[0] * g.k[1] * g.oh * g.ow, (begin, end) => [
    src.ptr,
    dst.ptr,
    g.h,
    g.w,
    g.k[0],
    g.k[1],
    g.d[0],
    g.d[1],
    g.p[0],
    g.p[1],
    g.s[0],
    g.s[1],
    g.oh,
    g.ow,
    begin,
    end,
  ]);
}

/**
 * `torch.nn.functional.unfold` (im2col): `[N, C, H, W]` (or `[C, H, W]`) to
 * `[N, C * kh * kw, L]`, one column per window position, zero where a window covers padding.
 */
export function unfold(x: Tensor, kernelSize: Pair, opts: UnfoldOptions = {}): Tensor {
  if (x.ndim !== 3 && x.ndim !== 4) {
    throw new ShapeError(`unfold: expected a 3-d or 4-d input [N, C, H, W], got ${fmt(x.shape)}`);
  }
  if (x.dtype !== 'float32') throw new DTypeError(`unfold: expected float32, got ${x.dtype}`);
  const [h, w] = x.shape.slice(-2);
  const g = geometry('unfold', h, w, kernelSize, opts, x.shape);
  const lead = x.shape.slice(0, -2);
  const planes = numel(lead);
  const c = lead[lead.length - 1];
  const out = Tensor.empty([...lead.slice(0, -1), c * g.k[0] * g.k[1], g.oh * g.ow], 'float32');
  runWindow('unfold_f32', x, out, g, planes);
  return record(out, 'unfold', [x], (grad) => {
    const gx = Tensor.empty(x.shape, 'float32');
    runWindow('fold_f32', grad, gx, g, planes);
    return [gx];
  });
}

/**
 * `torch.nn.functional.fold` (col2im), the adjoint of `unfold`: `[N, C * kh * kw, L]` (or
 * unbatched) to `[N, C, outputSize...]`, summing overlapping window entries.
 */
export function fold(
  x: Tensor,
  outputSize: Pair,
  kernelSize: Pair,
  opts: UnfoldOptions = {},
): Tensor {
  if (x.ndim !== 2 && x.ndim !== 3) {
    throw new ShapeError(
      `fold: expected a 2-d or 3-d input [N, C * kh * kw, L], got ${fmt(x.shape)}`,
    );
  }
  if (x.dtype !== 'float32') throw new DTypeError(`fold: expected float32, got ${x.dtype}`);
  const [h, w] = pair('fold', 'outputSize', outputSize, 1);
  const g = geometry('fold', h, w, kernelSize, opts, x.shape);
  const [ck, l] = x.shape.slice(-2);
  const kk = g.k[0] * g.k[1];
  if (ck % kk !== 0) {
    throw new ShapeError(
      `fold: dim -2 of the input ${fmt(x.shape)} must be a multiple of the kernel size ${fmt(g.k)} (${kk})`,
    );
  }
  if (l !== g.oh * g.ow) {
    throw new ShapeError(
      `fold: input ${fmt(x.shape)} has ${l} blocks but outputSize ${fmt([h, w])} gives ${g.oh} x ${g.ow} = ${g.oh * g.ow}`,
    );
  }
  const lead = [...x.shape.slice(0, -2), ck / kk];
  const planes = numel(lead);
  const out = Tensor.empty([...lead, h, w], 'float32');
  runWindow('fold_f32', x, out, g, planes);
  return record(out, 'fold', [x], (grad) => {
    const gx = Tensor.empty(x.shape, 'float32');
    runWindow('unfold_f32', grad, gx, g, planes);
    return [gx];
  });
}
