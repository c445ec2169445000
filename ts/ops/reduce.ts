// Reductions over one or more dims. Runs of adjacent dims reduce in one kernel call over a
// [outer, r, inner] view; separate runs chain (sum, max, min and logsumexp all compose).
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import { ArgOp, ReduceOp } from '../wasm/abi.js';
import { pool, wasm } from '../wasm/core.js';
import { normDim, normDims, numel } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { noGrad, record, releaseIntermediates } from '../autograd/node.js';
import { broadcastTo, castTo } from './copy.js';
import { full } from './creation.js';
import * as E from './elementwise.js';
import { SPLIT_MIN_ELEMENTS, runSplit, runSplitOrWhole, splitItems } from './parallel.js';
import { f32View } from '../wasm/heap.js';

type Dims = number | readonly number[] | undefined;

/**
 * The dims to reduce. A 0-d tensor accepts dim 0 and -1 as PyTorch does, and reducing it over
 * that dim is the identity, so the dim (which has no size) drops out here.
 */
function reduceDims(op: string, dim: Dims, shape: readonly number[]): number[] {
  return normDims(op, dim, shape).filter((d) => d < shape.length);
}

/** Groups sorted dims into runs of consecutive dims. */
function runs(dims: number[]): number[][] {
  const out: number[][] = [];
  for (const d of dims) {
    const last = out[out.length - 1];
    if (last && last[last.length - 1] === d - 1) last.push(d);
    else out.push([d]);
  }
  return out;
}

/** Shape after reducing `dims`: size 1 there (keepdim) or removed. */
function reducedShape(shape: readonly number[], dims: number[], keepdim: boolean): number[] {
  return keepdim
    ? shape.map((s, i) => (dims.includes(i) ? 1 : s))
    : shape.filter((_, i) => !dims.includes(i));
}

/** Runs `reduce_f32`/`reduce_i32` over `dims`, returning a keepdim-shaped result. */
function reduceKeep(op: string, x: Tensor, code: number, dims: number[]): Tensor {
  if (dims.some((d) => x.shape[d] === 0) && code !== ReduceOp.SUM) {
    throw new ShapeError(`${op}: cannot reduce over a zero-size dim of shape ${fmt(x.shape)}`);
  }
  let cur = x;
  for (const run of runs(dims).reverse()) {
    const shape = [...cur.shape];
    const outer = numel(shape.slice(0, run[0]));
    const r = numel(run.map((d) => shape[d]));
    const inner = numel(shape.slice(run[run.length - 1] + 1));
    for (const d of run) shape[d] = 1;
    const out = Tensor.empty(shape, cur.dtype);
    if (r === 0) wasm().fill_u32(out.ptr, out.size, 0);
    else if (out.size > 0) {
      const src = cur;
      if (src.dtype === 'float32' && outer * inner === 1) {
        if (!splitWhole(code, src, out, r))
          wasm().reduce_f32(code, src.ptr, out.ptr, 1, r, 1, 0, 1);
      } else if (src.dtype === 'float32') {
        // Each [r, inner] block reduces alone, and within one each column: the pool splits
        // by blocks when there are several, else by columns (a bias gradient's sum(0)), at
        // multiples of 4 so SIMD lanes and the scalar tail cover the same columns.
        const byColumns = outer < 8 && inner >= 64;
        runSplitOrWhole({
          fn: 'reduce_f32',
          length: byColumns ? inner : outer,
          align: byColumns ? 4 : 1,
          work: src.size,
          minWork: SPLIT_MIN_ELEMENTS,
          redo: true,
          args: (b, e) =>
            byColumns
              ? [code, src.ptr, out.ptr, outer, r, inner, b, e]
              : [...blocks(code, src, out, r, inner, b, e), 0, inner],
        });
      } else {
        splitItems('reduce_i32', outer, src.size, (b, e) => blocks(code, src, out, r, inner, b, e));
      }
    }
    if (cur !== x) cur.dispose();
    cur = out;
  }
  return cur === x ? x.clone() : cur;
}

/**
 * `(code, x, out, count, r, inner)` for the `[r, inner]` blocks `b..e` of `x` and their
 * `[inner]` rows of `out`, addressed by offset: the arguments of the block reduction kernels.
 */
function blocks(
  code: number,
  x: Tensor,
  out: Tensor,
  r: number,
  inner: number,
  b: number,
  e: number,
): number[] {
  return [code, x.ptr + 4 * b * r * inner, out.ptr + 4 * b * inner, e - b, r, inner];
}

/** A whole-tensor reduction is cut into this many subtrees of its pairwise tree (one per thread, up to 8). */
const WHOLE_PARTS_DEPTH = 3;

/**
 * Whole-tensor reductions split from this many elements, by op (on 2 threads, best of 300):
 * sums run at about 10 a nanosecond, and 2^16 broke even (5.8 against 6.3 µs) where 2^17
 * gained (12.0 against 8.6 µs); max and min (NaN-aware folds) broke even at 2^15 and gained at
 * 2^16 (24 against 18 µs); logsumexp (an exponential each) broke even at 2^14 and gained at
 * 2^15 (56 against 37 µs).
 */
const WHOLE_SPLIT_MIN: Record<number, number> = {
  [ReduceOp.SUM]: 1 << 17,
  [ReduceOp.MAX]: 1 << 16,
  [ReduceOp.MIN]: 1 << 16,
  [ReduceOp.LOGSUMEXP]: 1 << 15,
};

/**
 * A whole-tensor argmax or argmin (a fold, then a scan for the first extreme) splits from this
 * many elements: on 2 threads, best of 300, 2^15 broke even (17-41 against 17-21 µs) and 2^16
 * gained (34-53 against 26-32 µs; 2^20: 530-750 against 360-400 µs).
 */
const WHOLE_ARG_SPLIT_MIN = 1 << 16;

/**
 * `out[0]` = the whole reduction (sum, max, min or logsumexp) of `n` floats over the pool, or
 * false (nothing run) when it would not split. The kernel reduces pairwise: halves,
 * recursively, down to leaves of 256. Each thread reduces whole subtrees at depth 3
 * (`reduce_parts_f32`), and `combine_parts_f32` adds those back in tree order, repeating the
 * top three levels of the one-thread sum, or folds the extremes: so the result is its bits.
 * A logsumexp takes two passes, the maximum and then the sum of exponentials shifted by it.
 */
function splitWhole(op: number, x: Tensor, out: Tensor, n: number): boolean {
  // Most whole sums in a training step (a loss) are small: no buffer for parts then.
  const minWork = WHOLE_SPLIT_MIN[op];
  if (pool() === null || n < minWork) return false;
  const count = 1 << WHOLE_PARTS_DEPTH;
  const parts = Tensor.empty([count], 'float32');
  try {
    const pass = (code: number, shift: number): boolean =>
      runSplit({
        fn: 'reduce_parts_f32',
        length: count,
        align: 1,
        work: n,
        minWork,
        redo: true,
        args: (b, e) => [code, x.ptr, n, WHOLE_PARTS_DEPTH, shift, parts.ptr, b, e],
      });
    let shift = 0;
    if (op === ReduceOp.LOGSUMEXP) {
      if (!pass(ReduceOp.MAX, 0)) return false;
      wasm().combine_parts_f32(ReduceOp.MAX, parts.ptr, WHOLE_PARTS_DEPTH, 0, out.ptr);
      shift = f32View(out.ptr, 1)[0];
    }
    if (!pass(op, shift)) return false;
    wasm().combine_parts_f32(op, parts.ptr, WHOLE_PARTS_DEPTH, shift, out.ptr);
    return true;
  } finally {
    parts.dispose();
  }
}

/**
 * `out[0]` = the whole-tensor argmax or argmin of `x` over the pool, or false (nothing run)
 * when it would not split: each thread finds the first extreme of whole subtrees (the parts of
 * `splitWhole`), and `combine_arg_parts_f32` takes them in order, keeping the first of ties
 * and the first NaN, which is the index one thread's scan finds.
 */
function splitWholeArg(code: number, x: Tensor, out: Tensor): boolean {
  const n = x.size;
  if (pool() === null || n < WHOLE_ARG_SPLIT_MIN) return false;
  const count = 1 << WHOLE_PARTS_DEPTH;
  const parts = Tensor.empty([count], 'int32');
  try {
    const ran = runSplit({
      fn: 'arg_parts_f32',
      length: count,
      align: 1,
      work: n,
      minWork: WHOLE_ARG_SPLIT_MIN,
      redo: true,
      args: (b, e) => [code, x.ptr, n, WHOLE_PARTS_DEPTH, parts.ptr, b, e],
    });
    if (ran) wasm().combine_arg_parts_f32(code, x.ptr, n, parts.ptr, WHOLE_PARTS_DEPTH, out.ptr);
    return ran;
  } finally {
    parts.dispose();
  }
}

/** Drops the kept dims of a keepdim-shaped result unless `keepdim`. */
function finish(kept: Tensor, x: Tensor, dims: number[], keepdim: boolean): Tensor {
  if (keepdim) return kept;
  const out = kept._alias(reducedShape(x.shape, dims, false));
  kept.dispose();
  return out;
}

/** The gradient of a reduction, reshaped to keepdim form and broadcast back to `x`'s shape. */
function spread(g: Tensor, x: Tensor, dims: number[]): Tensor {
  const kept = g._alias(reducedShape(x.shape, dims, true));
  const out = broadcastTo(kept, x.shape);
  kept.dispose();
  return out;
}

export function sum(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  const dims = reduceDims('sum', dim, x.shape);
  const out = finish(reduceKeep('sum', x, ReduceOp.SUM, dims), x, dims, keepdim);
  return record(out, 'sum', [x], (g) => [spread(g, x, dims)]);
}

export function mean(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  const dims = reduceDims('mean', dim, x.shape);
  const count = numel(dims.map((d) => x.shape[d]));
  const xf = x.dtype === 'float32' ? x : castTo(x, 'float32');
  const total = sum(xf, dims, keepdim);
  const out = E.div(total, count);
  releaseIntermediates(out, [total]);
  if (xf !== x) xf.dispose();
  return out;
}

/** Max (or min) values; the gradient is shared evenly among tied maxima, like `torch.amax`. */
function extremum(op: 'max' | 'min', x: Tensor, dim: Dims, keepdim: boolean): Tensor {
  const dims = reduceDims(op, dim, x.shape);
  const kept = reduceKeep(op, x, op === 'max' ? ReduceOp.MAX : ReduceOp.MIN, dims);
  const out = finish(kept.clone(), x, dims, keepdim);
  return recordKept(kept, out, () =>
    record(
      out,
      op,
      [x],
      (g) => {
        const hits = E.eq(x, kept).float();
        const count = sum(hits, dims, true);
        const gk = g._alias(kept.shape);
        const share = E.div(gk, count);
        const gx = E.mul(hits, share);
        [hits, count, gk, share].forEach((t) => t.dispose());
        return [gx];
      },
      [kept],
    ),
  );
}

export const max = (x: Tensor, dim?: Dims, keepdim = false): Tensor =>
  extremum('max', x, dim, keepdim);
export const min = (x: Tensor, dim?: Dims, keepdim = false): Tensor =>
  extremum('min', x, dim, keepdim);

/** `log(sum(exp(x)))` over `dim`, computed stably in one kernel. */
export function logsumexp(x: Tensor, dim: Dims, keepdim = false): Tensor {
  const dims = reduceDims('logsumexp', dim, x.shape);
  const xf = x.dtype === 'float32' ? x : castTo(x, 'float32');
  const kept = reduceKeep('logsumexp', xf, ReduceOp.LOGSUMEXP, dims);
  if (xf !== x) xf.dispose();
  const out = finish(kept.clone(), x, dims, keepdim);
  return recordKept(kept, out, () =>
    record(
      out,
      'logsumexp',
      [x],
      (g) => {
        // d/dx = softmax(x) = exp(x - lse), scaled by the incoming gradient.
        const shifted = E.sub(x, kept);
        const p = E.exp(shifted);
        const gk = g._alias(kept.shape);
        const gx = E.mul(p, gk);
        [shifted, p, gk].forEach((t) => t.dispose());
        return [gx];
      },
      [kept],
    ),
  );
}

/** PyTorch's keyword arguments of `var`/`std`. */
export interface VarOptions {
  /** Subtracted from the count in the divisor: 1 (default) is Bessel's, 0 the population. */
  correction?: number;
  keepdim?: boolean;
}

/** An options object in the `dim` slot: `t.var({ correction: 0 })` reduces everything. */
function isVarOptions(v: unknown): v is VarOptions {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `(keepdim, correction)` from either the positional form or an options object. */
function varArgs(
  op: string,
  keepdimOrOpts: boolean | VarOptions | undefined,
  correction: number | undefined,
): [boolean, number] {
  if (typeof keepdimOrOpts === 'object' && keepdimOrOpts !== null) {
    if (correction !== undefined) {
      throw new ValueError(`${op}: pass correction either in the options object or positionally`);
    }
    return varArgs(op, keepdimOrOpts.keepdim ?? false, keepdimOrOpts.correction ?? 1);
  }
  const c = correction ?? 1;
  if (typeof c !== 'number' || !Number.isFinite(c)) {
    throw new ValueError(`${op}: correction must be a finite number, got ${String(c)}`);
  }
  return [keepdimOrOpts ?? false, c];
}

/**
 * Variance with `correction` (1 = Bessel's, PyTorch's default); differentiable by composition.
 * `var(dim, keepdim, correction)` or PyTorch's keywords: `var(dim, { correction, keepdim })`;
 * `dim` null or undefined reduces everything.
 */
export function variance(
  x: Tensor,
  dim?: Dims | null | VarOptions,
  keepdimOrOpts?: boolean | VarOptions,
  correctionArg?: number,
): Tensor {
  if (isVarOptions(dim)) return variance(x, null, dim, keepdimOrOpts as undefined);
  const [keepdim, correction] = varArgs('var', keepdimOrOpts, correctionArg);
  const dims = reduceDims('var', dim ?? undefined, x.shape);
  const n = numel(dims.map((d) => x.shape[d]));
  const mu = mean(x, dims, true);
  const centered = E.sub(x, mu);
  const sq = E.square(centered);
  const total = sum(sq, dims, keepdim);
  const out = E.div(total, Math.max(n - correction, 0));
  releaseIntermediates(out, [mu, centered, sq, total]);
  return out;
}

/** Standard deviation: the square root of `variance`, with the same arguments. */
export function std(
  x: Tensor,
  dim?: Dims | null | VarOptions,
  keepdimOrOpts?: boolean | VarOptions,
  correction?: number,
): Tensor {
  if (isVarOptions(dim)) return std(x, null, dim, keepdimOrOpts as undefined);
  const [keepdim, c] = varArgs('std', keepdimOrOpts, correction);
  const v = variance(x, dim, keepdim, c);
  const out = E.sqrt(v);
  releaseIntermediates(out, [v]);
  return out;
}

/** `[outer, r, inner]` around `dim`; a 0-d tensor is one element along its only "dim". */
function around(x: Tensor, d: number): [number, number, number] {
  if (x.ndim === 0) return [1, 1, 1];
  return [numel(x.shape.slice(0, d)), x.shape[d], numel(x.shape.slice(d + 1))];
}

/**
 * Product of all elements, or along `dim`. The gradient is the product of the other
 * elements (no division), so zeros get PyTorch's gradient. int32 stays int32 (wrapping).
 */
export function prod(x: Tensor, dim?: number, keepdim = false): Tensor {
  const d = dim === undefined ? null : normDim('prod', dim, x.ndim, x.shape);
  const [outer, r, inner] = d === null ? [1, x.size, 1] : around(x, d);
  const shape =
    d === null
      ? keepdim
        ? x.shape.map(() => 1)
        : []
      : reducedShape(x.shape, x.ndim === 0 ? [] : [d], keepdim);
  const out = Tensor.empty(shape, x.dtype);
  if (outer * inner > 0) {
    const fn = x.dtype === 'float32' ? 'prod_f32' : 'prod_i32';
    splitItems(fn, outer, x.size, (b, e) => [x.ptr, out.ptr, outer, r, inner, b, e]);
  }
  return record(out, 'prod', [x], (g) => {
    const gx = Tensor.empty(x.shape, 'float32');
    if (x.size > 0)
      splitItems('prod_bwd_f32', outer, x.size, (b, e) => [
        x.ptr,
        g.ptr,
        gx.ptr,
        outer,
        r,
        inner,
        b,
        e,
      ]);
    return [gx];
  });
}

/** Running sum along `dim` (same shape and dtype); f32 sums accumulate in f64 as PyTorch's. */
export function cumsum(x: Tensor, dim: number): Tensor {
  const d = normDim('cumsum', dim, x.ndim, x.shape);
  const [outer, r, inner] = around(x, d);
  const scan = (src: Tensor, reverse: number): Tensor => {
    const out = Tensor.empty(src.shape, src.dtype);
    if (src.size > 0) {
      const fn = src.dtype === 'float32' ? 'cumsum_f32' : 'cumsum_i32';
      splitItems(fn, outer, src.size, (b, e) => [src.ptr, out.ptr, outer, r, inner, reverse, b, e]);
    }
    return out;
  };
  // The gradient of a prefix sum is the suffix sum of the gradient.
  return record(scan(x, 0), 'cumsum', [x], (g) => [scan(g, 1)]);
}

/** 1 where any element (along `dim`) is non-zero; NaN counts as true. int32 result. */
export function any(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  const dims = reduceDims('any', dim, x.shape);
  const hits = E.ne(x, 0);
  const count = sum(hits, dims, keepdim);
  const out = E.gt(count, 0);
  hits.dispose();
  count.dispose();
  return out;
}

/** 1 where every element (along `dim`) is non-zero; true over an empty dim. int32 result. */
export function all(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  const dims = reduceDims('all', dim, x.shape);
  const zeros = E.eq(x, 0);
  const count = sum(zeros, dims, keepdim);
  const out = E.eq(count, 0);
  zeros.dispose();
  count.dispose();
  return out;
}

/** The order of a vector norm: a number (Infinity and -Infinity too) or 'fro' (= 2). */
export type NormOrd = number | 'fro';

/**
 * The vector `p`-norm over `dim` (all elements by default), following
 * `torch.linalg.vector_norm(x, ord=p, dim, keepdim)`: p = 2 (default) or 'fro' (the same
 * value, as `torch.norm(p='fro')`), 1, any p > 0, 0 (count of non-zeros), Infinity (max |x|)
 * and -Infinity (min |x|). Gradients are PyTorch's, including 0 (not NaN) at a zero norm.
 */
export function norm(x: Tensor, p: NormOrd = 2, dim?: Dims, keepdim = false): Tensor {
  const ord = p === 'fro' ? 2 : p;
  if (typeof ord !== 'number' || Number.isNaN(ord) || (ord < 0 && ord !== -Infinity)) {
    throw new ValueError(
      `norm: p must be a number >= 0, Infinity, -Infinity or 'fro', got ${String(p)}`,
    );
  }
  if (x.dtype !== 'float32') {
    throw new DTypeError(`norm: expected a float32 tensor, got ${x.dtype}`);
  }
  const dims = reduceDims('norm', dim, x.shape);
  if (!Number.isFinite(ord) && dims.some((d) => x.shape[d] === 0)) {
    throw new ShapeError(
      `norm: the ${ord}-norm of an empty dim is undefined, shape ${fmt(x.shape)}`,
    );
  }
  const kept = noGrad(() => normKeep(x, ord, dims));
  const out = finish(kept.clone(), x, dims, keepdim);
  return recordKept(kept, out, () =>
    record(
      out,
      'norm',
      [x],
      (g) => {
        const gk = g._alias(kept.shape);
        const gx = normBackward(x, ord, dims, kept, gk);
        gk.dispose();
        return [gx];
      },
      [kept],
    ),
  );
}

/** Runs `rec` (a `record` call saving `kept`) and frees `kept` when no graph was recorded. */
function recordKept(kept: Tensor, out: Tensor, rec: () => Tensor): Tensor {
  rec();
  if (out._node === null) kept.dispose();
  return out;
}

/** The norm with reduced dims kept (size 1), computed from existing ops. */
function normKeep(x: Tensor, p: number, dims: number[]): Tensor {
  const temps: Tensor[] = [];
  const t = <T extends Tensor>(v: T): T => (temps.push(v), v);
  let out: Tensor;
  if (p === 2) out = E.sqrt(t(sum(t(E.square(x)), dims, true)));
  else if (p === 1) out = sum(t(E.abs(x)), dims, true);
  else if (p === Infinity) out = max(t(E.abs(x)), dims, true);
  else if (p === -Infinity) out = min(t(E.abs(x)), dims, true);
  else if (p === 0) out = sum(t(t(E.ne(x, 0)).float()), dims, true);
  else out = E.pow(t(sum(t(E.pow(t(E.abs(x)), p)), dims, true)), 1 / p);
  temps.forEach((v) => v.dispose());
  return out;
}

/** PyTorch's norm_backward, with `gk` and `n` (the norm) in keepdim shape. */
function normBackward(x: Tensor, p: number, dims: number[], n: Tensor, gk: Tensor): Tensor {
  const temps: Tensor[] = [];
  const t = <T extends Tensor>(v: T): T => (temps.push(v), v);
  let gx: Tensor;
  if (p === 0) {
    gx = E.mul(x, 0);
  } else if (p === 1) {
    gx = E.mul(t(E.sign(x)), gk);
  } else if (!Number.isFinite(p)) {
    // The gradient of max |x| (min |x|), shared evenly by the elements that attain it.
    const a = t(E.abs(x));
    const hits = t(E.maximum(t(E.eq(a, n)), t(E.ne(a, a))));
    const share = t(E.div(gk, t(sum(t(hits.float()), dims, true))));
    gx = E.mul(t(E.mul(t(E.sign(x)), hits)), share);
  } else {
    // x |x|^(p-2) g / n^(p-1) written as sgn(x) |x|^(p-1) (0 at x = 0), and 0 where n = 0.
    const scale = t(E.where(t(E.eq(n, 0)), 0, t(E.div(gk, t(E.pow(n, p - 1))))));
    const scaled =
      p === 2
        ? x
        : t(E.where(t(E.eq(x, 0)), 0, t(E.mul(t(E.sign(x)), t(E.pow(t(E.abs(x)), p - 1))))));
    gx = E.mul(scaled, scale);
  }
  temps.forEach((v) => v.dispose());
  return gx;
}

function argExtremum(
  op: 'argmax' | 'argmin',
  x: Tensor,
  dim: number | undefined,
  keepdim: boolean,
): Tensor {
  const code = op === 'argmax' ? ArgOp.MAX : ArgOp.MIN;
  if (x.size === 0)
    throw new ShapeError(`${op}: cannot reduce an empty tensor of shape ${fmt(x.shape)}`);
  const xf = x.dtype === 'float32' ? x : castTo(x, 'float32');
  let out: Tensor;
  if (dim === undefined) {
    out = Tensor.empty(keepdim ? x.shape.map(() => 1) : [], 'int32');
    if (!splitWholeArg(code, xf, out)) wasm().argreduce_f32(code, xf.ptr, out.ptr, 1, x.size, 1);
  } else {
    const d = normDim(op, dim, x.ndim, x.shape);
    if (x.ndim === 0) {
      out = full([], 0, { dtype: 'int32' });
    } else {
      const outer = numel(x.shape.slice(0, d));
      const inner = numel(x.shape.slice(d + 1));
      const picks = Tensor.empty(reducedShape(x.shape, [d], keepdim), 'int32');
      const r = x.shape[d];
      if (picks.size > 0)
        splitItems('argreduce_f32', outer, x.size, (b, e) =>
          blocks(code, xf, picks, r, inner, b, e),
        );
      out = picks;
    }
  }
  if (xf !== x) xf.dispose();
  return out;
}

export const argmax = (x: Tensor, dim?: number, keepdim = false): Tensor =>
  argExtremum('argmax', x, dim, keepdim);
export const argmin = (x: Tensor, dim?: number, keepdim = false): Tensor =>
  argExtremum('argmin', x, dim, keepdim);
