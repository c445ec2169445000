// Reductions over one or more dims. Runs of adjacent dims reduce in one kernel call over a
// [outer, r, inner] view; separate runs chain (sum, max, min and logsumexp all compose).
import { ShapeError, fmt } from '../errors.js';
import { ArgOp, ReduceOp } from '../wasm/abi.js';
import { wasm } from '../wasm/core.js';
import { normDim, normDims, numel } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { record, releaseIntermediates } from '../autograd/node.js';
import { broadcastTo, castTo } from './copy.js';
import { full } from './creation.js';
import * as E from './elementwise.js';

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
      const kernel = cur.dtype === 'float32' ? wasm().reduce_f32 : wasm().reduce_i32;
      kernel(code, cur.ptr, out.ptr, outer, r, inner);
    }
    if (cur !== x) cur.dispose();
    cur = out;
  }
  return cur === x ? x.clone() : cur;
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
  return record(
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
  return record(
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
  );
}

/** Variance with `correction` (1 = Bessel's, PyTorch's default); differentiable by composition. */
export function variance(x: Tensor, dim: Dims, keepdim = false, correction = 1): Tensor {
  const dims = reduceDims('var', dim, x.shape);
  const n = numel(dims.map((d) => x.shape[d]));
  const mu = mean(x, dims, true);
  const centered = E.sub(x, mu);
  const sq = E.square(centered);
  const total = sum(sq, dims, keepdim);
  const out = E.div(total, Math.max(n - correction, 0));
  releaseIntermediates(out, [mu, centered, sq, total]);
  return out;
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
    wasm().argreduce_f32(code, xf.ptr, out.ptr, 1, x.size, 1);
  } else {
    const d = normDim(op, dim, x.ndim, x.shape);
    if (x.ndim === 0) {
      out = full([], 0, { dtype: 'int32' });
    } else {
      const outer = numel(x.shape.slice(0, d));
      const inner = numel(x.shape.slice(d + 1));
      out = Tensor.empty(reducedShape(x.shape, [d], keepdim), 'int32');
      if (out.size > 0) wasm().argreduce_f32(code, xf.ptr, out.ptr, outer, x.shape[d], inner);
    }
  }
  if (xf !== x) xf.dispose();
  return out;
}

export const argmax = (x: Tensor, dim?: number, keepdim = false): Tensor =>
  argExtremum('argmax', x, dim, keepdim);
export const argmin = (x: Tensor, dim?: number, keepdim = false): Tensor =>
  argExtremum('argmin', x, dim, keepdim);
