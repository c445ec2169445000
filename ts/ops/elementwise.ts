// Elementwise ops: unary math and activations, broadcasting binary ops, comparisons, where.
// Each differentiable op records its backward right where its forward runs.
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import { BinaryOp, CmpOp, MAX_DIMS, UnaryOp } from '../wasm/abi.js';
import { writeDims } from '../wasm/heap.js';
import { promote, type DType } from '../tensor/dtype.js';
import {
  broadcastShapes,
  broadcastStrides,
  collapseDims,
  sameShape,
  type Shape,
} from '../tensor/shape.js';
import { Tensor, type TensorLike } from '../tensor/tensor.js';
import { noGrad, record } from '../autograd/node.js';
import { castTo, sumTo } from './copy.js';
import { full } from './creation.js';
import { SPLIT_MIN_ELEMENTS, runSplitOrWhole, splitFlat } from './parallel.js';

// ------------------------------------------------------------------ helpers

/** The float32 version of `x`, and whether it is a temporary cast to dispose afterwards. */
function asFloat(x: Tensor): Tensor {
  return x.dtype === 'float32' ? x : castTo(x, 'float32');
}

function disposeTemp(t: Tensor, original: Tensor): void {
  if (t !== original) t.dispose();
}

/** A 0-d tensor holding `v`, for the few ops that need a scalar operand in memory. */
function scalarTensor(v: number, dtype: DType): Tensor {
  return full([], v, { dtype });
}

/** Dtype for `tensor op scalar`: an integer tensor stays integer only with an integer scalar. */
function scalarDType(t: Tensor, v: number): DType {
  return t.dtype === 'int32' && Number.isInteger(v) ? 'int32' : 'float32';
}

/** `shape` with its operands' broadcast strides, contiguous dims merged; at most MAX_DIMS. */
function collapsed(op: string, shape: Shape, operands: readonly Shape[]) {
  const c = collapseDims(
    shape,
    operands.map((s) => broadcastStrides(s, shape)),
  );
  if (c.shape.length > MAX_DIMS) {
    throw new ShapeError(
      `${op}: at most ${MAX_DIMS} non-trivial dims are supported, got shape ${fmt(shape)}`,
    );
  }
  return c;
}

type BroadcastKernel = 'binary_f32' | 'binary_i32' | 'compare_f32' | 'compare_i32';

/** Runs a two-operand broadcasting kernel into a new tensor of dtype `outDType`. */
function broadcast2(
  op: string,
  kernel: BroadcastKernel,
  code: number,
  a: Tensor,
  b: Tensor,
  outDType: DType,
): Tensor {
  // Equal shapes (the common case) are one contiguous run: skip the broadcast bookkeeping.
  const same = sameShape(a.shape, b.shape);
  const shape = same ? a.shape : broadcastShapes(op, a.shape, b.shape);
  const out = Tensor.empty(shape, outDType);
  if (out.size === 0) return out;
  if (same && kernel === 'binary_f32') {
    splitFlat('binary_flat_f32', out.size, (at, n) => [
      code,
      a.ptr + at,
      b.ptr + at,
      out.ptr + at,
      n,
    ]);
    return out;
  }
  const c = same
    ? { shape: [out.size], strides: [[1], [1]] }
    : collapsed(op, shape, [a.shape, b.shape]);
  splitRows(kernel, [code, a.ptr, b.ptr], out, c);
  return out;
}

/**
 * A broadcasting kernel (`(...head, out, ndim, shape, ...strides, begin, end)`) split over the
 * pool by indices of the first collapsed dim. Cut points keep every share's first element at a
 * multiple of 4 from the start, so a flat (one-row) run splits its SIMD body and scalar tail
 * exactly as the whole call does.
 */
function splitRows(
  fn: BroadcastKernel | 'where_u32',
  head: readonly number[],
  out: Tensor,
  c: { shape: readonly number[]; strides: readonly (readonly number[])[] },
): void {
  const [ps, ...strides] = writeDims(c.shape, ...c.strides);
  const row = out.size / c.shape[0]!;
  runSplitOrWhole({
    fn,
    length: c.shape[0]!,
    align: row % 4 === 0 ? 1 : row % 2 === 0 ? 2 : 4,
    work: out.size,
    minWork: SPLIT_MIN_ELEMENTS,
    redo: true, // out of place
    args: (begin, end) => [...head, out.ptr, c.shape.length, ps, ...strides, begin, end],
  });
}

/** Runs `unary_f32` into a new float tensor. */
function unaryKernel(x: Tensor, code: number, p0 = 0, p1 = 0): Tensor {
  const out = Tensor.empty(x.shape, 'float32');
  splitFlat('unary_f32', x.size, (at, n) => [code, x.ptr + at, out.ptr + at, n, p0, p1]);
  return out;
}

/** Runs `unary_bwd_f32`: `g * op'(saved)`. */
function unaryBackward(code: number, saved: Tensor, g: Tensor, p0 = 0, p1 = 0): Tensor {
  const out = Tensor.empty(g.shape, 'float32');
  splitFlat('unary_bwd_f32', g.size, (at, n) => [
    code,
    saved.ptr + at,
    g.ptr + at,
    out.ptr + at,
    n,
    p0,
    p1,
  ]);
  return out;
}

/**
 * A differentiable float unary op. `savesOutput` says whether the backward kernel reads the
 * forward output (exp, sqrt, rsqrt, relu, sigmoid, tanh) or the input (all others).
 * @internal Shared with ts/ops/math.ts.
 */
export function unaryOp(
  name: string,
  x: Tensor,
  code: number,
  savesOutput: boolean,
  p0 = 0,
  p1 = 0,
): Tensor {
  const xf = asFloat(x);
  const out = unaryKernel(xf, code, p0, p1);
  disposeTemp(xf, x);
  return record(out, name, [x], (g) => [unaryBackward(code, savesOutput ? out : x, g, p0, p1)]);
}

// ------------------------------------------------------------------ unary math and activations

export const neg = (x: Tensor): Tensor =>
  x.dtype === 'int32'
    ? intBinary('neg', BinaryOp.SUB, 0, x)
    : unaryOp('neg', x, UnaryOp.NEG, false);
export const exp = (x: Tensor): Tensor => unaryOp('exp', x, UnaryOp.EXP, true);
export const log = (x: Tensor): Tensor => unaryOp('log', x, UnaryOp.LOG, false);
export const sqrt = (x: Tensor): Tensor => unaryOp('sqrt', x, UnaryOp.SQRT, true);
export const rsqrt = (x: Tensor): Tensor => unaryOp('rsqrt', x, UnaryOp.RSQRT, true);
export const abs = (x: Tensor): Tensor =>
  x.dtype === 'int32' ? maximum(x, neg(x)) : unaryOp('abs', x, UnaryOp.ABS, false);
export const square = (x: Tensor): Tensor =>
  x.dtype === 'int32' ? mul(x, x) : unaryOp('square', x, UnaryOp.SQUARE, false);
export const reciprocal = (x: Tensor): Tensor =>
  unaryOp('reciprocal', x, UnaryOp.RECIPROCAL, false);
/** -1, 0 or 1 (0 for NaN, as PyTorch); an int32 tensor keeps its dtype. */
export const sign = (x: Tensor): Tensor =>
  x.dtype === 'int32' ? intSign(x) : unaryOp('sign', x, UnaryOp.SIGN, false);

function intSign(x: Tensor): Tensor {
  const pos = gt(x, 0);
  const negs = lt(x, 0);
  const out = sub(pos, negs);
  pos.dispose();
  negs.dispose();
  return out;
}
export const relu = (x: Tensor): Tensor => unaryOp('relu', x, UnaryOp.RELU, true);
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', x, UnaryOp.SIGMOID, true);
export const tanh = (x: Tensor): Tensor => unaryOp('tanh', x, UnaryOp.TANH, true);

/** GELU: exact erf form by default, `{approximate: 'tanh'}` for the tanh approximation. */
export function gelu(x: Tensor, opts: { approximate?: 'none' | 'tanh' } = {}): Tensor {
  const approx = opts.approximate ?? 'none';
  if (approx !== 'none' && approx !== 'tanh') {
    throw new ValueError(`gelu: approximate must be 'none' or 'tanh', got ${String(approx)}`);
  }
  return unaryOp('gelu', x, approx === 'tanh' ? UnaryOp.GELU_TANH : UnaryOp.GELU, false);
}

export function leakyRelu(x: Tensor, negativeSlope = 0.01): Tensor {
  return unaryOp('leakyRelu', x, UnaryOp.LEAKY_RELU, false, negativeSlope);
}

/**
 * Clamps into `[min, max]`; either bound may be omitted (null/undefined). Bounds may be
 * tensors that broadcast with `x` (the result takes the broadcast shape, as in PyTorch).
 */
export function clamp(x: Tensor, min?: TensorLike | null, max?: TensorLike | null): Tensor {
  if ((min === undefined || min === null) && (max === undefined || max === null)) {
    throw new ValueError('clamp: at least one of min and max must be given');
  }
  if (typeof min === 'object' || typeof max === 'object') {
    return clampTensor(x, min ?? null, max ?? null);
  }
  if (x.dtype === 'int32') {
    let out = x;
    if (min !== undefined && min !== null) out = maximum(out, min);
    if (max !== undefined && max !== null) out = minimum(out, max);
    return out;
  }
  const lo = min ?? -Infinity;
  const hi = max ?? Infinity;
  return unaryOp('clamp', x, UnaryOp.CLAMP, false, lo, hi);
}

/**
 * clamp with a tensor bound: `minimum(maximum(x, min), max)`, with PyTorch's gradient routing
 * (clamp_backward and clamp_backward_min_max): `x` gets `g` where `min <= x <= max`; `min`
 * gets it where `x < min` (and `min < max` when both are given), `max` where `x > max` (or
 * where `max < min`, since then the result is `max`).
 */
function clampTensor(x: Tensor, min: TensorLike | null, max: TensorLike | null): Tensor {
  const bounds = [min, max].filter((v): v is Tensor => v !== null && typeof v !== 'number');
  broadcastShapes('clamp', x.shape, ...bounds.map((b) => b.shape));
  const out = noGrad(() => {
    const lo = min === null ? x : maximum(x, min);
    const r = max === null ? lo : minimum(lo, max);
    if (lo !== x && lo !== r) lo.dispose();
    return r === x ? x.clone() : r;
  });
  const inputs = [x, ...bounds];
  const both = (a: Tensor, b: Tensor, fn: (a: Tensor, b: Tensor) => Tensor): Tensor => {
    const r = fn(a, b);
    a.dispose();
    b.dispose();
    return r;
  };
  const gradWhere = (mask: Tensor, g: Tensor, shape: Shape): Tensor => {
    const full = where(mask, g, 0);
    mask.dispose();
    return reduceTo(full, shape, g);
  };
  return record(out, 'clamp', inputs, (g) => {
    const grads: (Tensor | null)[] = [];
    if (x.requiresGrad) {
      const mask =
        min !== null && max !== null
          ? both(ge(x, min), le(x, max), mul)
          : min !== null
            ? ge(x, min)
            : le(x, max as TensorLike);
      grads.push(gradWhere(mask, g, x.shape));
    } else grads.push(null);
    if (min !== null && typeof min !== 'number') {
      grads.push(
        min.requiresGrad
          ? gradWhere(max !== null ? both(lt(x, min), lt(min, max), mul) : lt(x, min), g, min.shape)
          : null,
      );
    }
    if (max !== null && typeof max !== 'number') {
      grads.push(
        max.requiresGrad
          ? gradWhere(
              min !== null ? both(gt(x, max), lt(max, min), maximum) : gt(x, max),
              g,
              max.shape,
            )
          : null,
      );
    }
    return grads;
  });
}

/** `x * scale + shift` in one pass, differentiable in `x`. */
function affine(name: string, x: Tensor, scale: number, shift: number): Tensor {
  return unaryOp(name, x, UnaryOp.AFFINE, false, scale, shift);
}

// ------------------------------------------------------------------ binary arithmetic

/** An int32 binary op with a scalar or tensor on either side; no gradient. */
function intBinary(op: string, code: number, a: TensorLike, b: TensorLike): Tensor {
  const ta = typeof a === 'number' ? scalarTensor(a, 'int32') : a;
  const tb = typeof b === 'number' ? scalarTensor(b, 'int32') : b;
  const out = broadcast2(op, 'binary_i32', code, ta, tb, 'int32');
  if (ta !== a) ta.dispose();
  if (tb !== b) tb.dispose();
  return out;
}

function bothNumbers(op: string, a: TensorLike, b: TensorLike): never | void {
  if (typeof a === 'number' && typeof b === 'number') {
    throw new ValueError(`${op}: at least one operand must be a tensor, got two numbers`);
  }
}

/** The float32 form of two tensors for a float op (integer operands are cast). */
function floatPair(a: Tensor, b: Tensor): [Tensor, Tensor] {
  return [asFloat(a), asFloat(b)];
}

/** A float broadcasting op between tensors with a backward given the saved operands. */
function floatBinary(
  op: string,
  code: number,
  a: Tensor,
  b: Tensor,
  backward: (g: Tensor, a: Tensor, b: Tensor, out: Tensor) => [Tensor | null, Tensor | null],
): Tensor {
  const [af, bf] = floatPair(a, b);
  const out = broadcast2(op, 'binary_f32', code, af, bf, 'float32');
  disposeTemp(af, a);
  disposeTemp(bf, b);
  return record(out, op, [a, b], (g) => {
    const [ga, gb] = backward(g, a, b, out);
    return [ga && reduceTo(ga, a.shape, g), gb && reduceTo(gb, b.shape, g)];
  });
}

/** Sums a broadcast gradient to `shape`, disposing the unreduced one when a new tensor was made. */
function reduceTo(grad: Tensor, shape: Shape, g: Tensor): Tensor {
  const r = sumTo(grad, shape);
  if (r !== grad && grad !== g) grad.dispose();
  return r;
}

function isIntPair(a: Tensor, b: TensorLike): boolean {
  return a.dtype === 'int32' && (typeof b === 'number' ? Number.isInteger(b) : b.dtype === 'int32');
}

export function add(a: TensorLike, b: TensorLike): Tensor {
  bothNumbers('add', a, b);
  if (typeof a === 'number') return add(b, a);
  if (isIntPair(a, b)) return intBinary('add', BinaryOp.ADD, a, b);
  if (typeof b === 'number') return affine('add', a, 1, b);
  return floatBinary('add', BinaryOp.ADD, a, b, (g) => [g, g]);
}

export function sub(a: TensorLike, b: TensorLike): Tensor {
  bothNumbers('sub', a, b);
  if (typeof a === 'number') {
    const t = b as Tensor;
    return isIntPair(t, a) ? intBinary('sub', BinaryOp.SUB, a, t) : affine('sub', t, -1, a);
  }
  if (isIntPair(a, b)) return intBinary('sub', BinaryOp.SUB, a, b);
  if (typeof b === 'number') return affine('sub', a, 1, -b);
  return floatBinary('sub', BinaryOp.SUB, a, b, (g) => [g, neg(g)]);
}

export function mul(a: TensorLike, b: TensorLike): Tensor {
  bothNumbers('mul', a, b);
  if (typeof a === 'number') return mul(b, a);
  if (isIntPair(a, b)) return intBinary('mul', BinaryOp.MUL, a, b);
  if (typeof b === 'number') return affine('mul', a, b, 0);
  return floatBinary('mul', BinaryOp.MUL, a, b, (g, x, y) => [
    x.requiresGrad ? mul(g, y) : null,
    y.requiresGrad ? mul(g, x) : null,
  ]);
}

/** True division (integer operands give a float result, as in PyTorch). */
export function div(a: TensorLike, b: TensorLike): Tensor {
  bothNumbers('div', a, b);
  if (typeof a === 'number') return mul(reciprocal(b as Tensor), a);
  if (typeof b === 'number') return unaryOp('div', a, UnaryOp.DIV_SCALAR, false, b);
  return floatBinary('div', BinaryOp.DIV, a, b, (g, _x, y, out) => [
    a.requiresGrad ? div(g, y) : null,
    y.requiresGrad ? neg(div(mul(g, out), y)) : null,
  ]);
}

/** `a ** b` with a tensor or scalar on either side. */
export function pow(a: TensorLike, b: TensorLike): Tensor {
  bothNumbers('pow', a, b);
  if (typeof a === 'number') return unaryOp('pow', b as Tensor, UnaryOp.RPOW_SCALAR, false, a);
  if (typeof b === 'number') return unaryOp('pow', a, UnaryOp.POW_SCALAR, false, b);
  return floatBinary('pow', BinaryOp.POW, a, b, (g, x, y, out) => [
    x.requiresGrad ? mul(g, mul(y, pow(x, sub(y, 1)))) : null,
    // d/dy x^y = x^y ln x, taken as 0 where x == 0 and y >= 0 (PyTorch's convention).
    y.requiresGrad ? where(x.eq(0).mul(y.ge(0)), 0, mul(g, mul(out, log(x)))) : null,
  ]);
}

/** Weight of `a` in the gradient of max/min: 1 where `a` wins, 0.5 on ties (PyTorch's rule). */
function winnerWeight(a: Tensor, b: Tensor, cmp: 'gt' | 'lt'): Tensor {
  const wins = cmp === 'gt' ? gt(a, b) : lt(a, b);
  const ties = eq(a, b);
  const w = add(wins, mul(ties.float(), 0.5));
  wins.dispose();
  ties.dispose();
  return w;
}

function extremum(op: 'maximum' | 'minimum', a: TensorLike, b: TensorLike): Tensor {
  bothNumbers(op, a, b);
  if (typeof a === 'number') return extremum(op, b, a);
  const code = op === 'maximum' ? BinaryOp.MAXIMUM : BinaryOp.MINIMUM;
  if (isIntPair(a, b)) return intBinary(op, code, a, b);
  if (typeof b === 'number') {
    return op === 'maximum'
      ? unaryOp(op, a, UnaryOp.CLAMP, false, b, Infinity)
      : unaryOp(op, a, UnaryOp.CLAMP, false, -Infinity, b);
  }
  return floatBinary(op, code, a, b, (g, x, y) => {
    const w = winnerWeight(x, y, op === 'maximum' ? 'gt' : 'lt');
    const ga = mul(g, w);
    const gb = sub(g, ga);
    w.dispose();
    return [ga, gb];
  });
}

export const maximum = (a: TensorLike, b: TensorLike): Tensor => extremum('maximum', a, b);
export const minimum = (a: TensorLike, b: TensorLike): Tensor => extremum('minimum', a, b);

// ------------------------------------------------------------------ comparisons

const FLIPPED: Record<number, number> = {
  [CmpOp.EQ]: CmpOp.EQ,
  [CmpOp.NE]: CmpOp.NE,
  [CmpOp.LT]: CmpOp.GT,
  [CmpOp.LE]: CmpOp.GE,
  [CmpOp.GT]: CmpOp.LT,
  [CmpOp.GE]: CmpOp.LE,
};

function compare(op: string, code: number, a: TensorLike, b: TensorLike): Tensor {
  bothNumbers(op, a, b);
  if (typeof a === 'number') return compare(op, FLIPPED[code], b, a);
  const tb = typeof b === 'number' ? scalarTensor(b, scalarDType(a, b)) : b;
  const dtype = promote(a.dtype, tb.dtype);
  const [af, bf] = dtype === 'float32' ? floatPair(a, tb) : [a, tb];
  const out = broadcast2(
    op,
    dtype === 'float32' ? 'compare_f32' : 'compare_i32',
    code,
    af,
    bf,
    'int32',
  );
  disposeTemp(af, a);
  disposeTemp(bf, tb);
  if (tb !== b) tb.dispose();
  return out;
}

export const eq = (a: TensorLike, b: TensorLike): Tensor => compare('eq', CmpOp.EQ, a, b);
export const ne = (a: TensorLike, b: TensorLike): Tensor => compare('ne', CmpOp.NE, a, b);
export const lt = (a: TensorLike, b: TensorLike): Tensor => compare('lt', CmpOp.LT, a, b);
export const le = (a: TensorLike, b: TensorLike): Tensor => compare('le', CmpOp.LE, a, b);
export const gt = (a: TensorLike, b: TensorLike): Tensor => compare('gt', CmpOp.GT, a, b);
export const ge = (a: TensorLike, b: TensorLike): Tensor => compare('ge', CmpOp.GE, a, b);

// ------------------------------------------------------------------ selection

function checkMask(op: string, cond: Tensor): void {
  if (cond.dtype !== 'int32') {
    throw new DTypeError(
      `${op}: the condition must be an int32 mask (from a comparison), got ${cond.dtype}`,
    );
  }
}

/** `cond ? a : b` elementwise with broadcasting; `a` and `b` may be scalars. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  checkMask('where', cond);
  const dtype =
    typeof a === 'number' && typeof b === 'number'
      ? Number.isInteger(a) && Number.isInteger(b)
        ? 'int32'
        : 'float32'
      : typeof a === 'number'
        ? scalarDType(b as Tensor, a)
        : typeof b === 'number'
          ? scalarDType(a, b)
          : promote(a.dtype, b.dtype);
  const ta =
    typeof a === 'number' ? scalarTensor(a, dtype) : a.dtype === dtype ? a : castTo(a, dtype);
  const tb =
    typeof b === 'number' ? scalarTensor(b, dtype) : b.dtype === dtype ? b : castTo(b, dtype);
  const shape = broadcastShapes('where', cond.shape, ta.shape, tb.shape);
  const out = Tensor.empty(shape, dtype);
  if (out.size > 0) {
    const c = collapsed('where', shape, [cond.shape, ta.shape, tb.shape]);
    splitRows('where_u32', [cond.ptr, ta.ptr, tb.ptr], out, c);
  }
  if (ta !== a) ta.dispose();
  if (tb !== b) tb.dispose();
  const inputs = [a, b].filter((v): v is Tensor => typeof v !== 'number');
  return record(
    out,
    'where',
    inputs,
    (g) => {
      const grads: (Tensor | null)[] = [];
      if (typeof a !== 'number')
        grads.push(a.requiresGrad ? reduceTo(where(cond, g, 0), a.shape, g) : null);
      if (typeof b !== 'number')
        grads.push(b.requiresGrad ? reduceTo(where(cond, 0, g), b.shape, g) : null);
      return grads;
    },
    [cond],
  );
}

/** `x` with `value` written where `mask` is non-zero; `mask` broadcasts to `x`'s shape. */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  checkMask('maskedFill', mask);
  const shape = broadcastShapes('maskedFill', x.shape, mask.shape);
  if (shape.length !== x.ndim || shape.some((s, i) => s !== x.shape[i])) {
    throw new ShapeError(
      `maskedFill: mask ${fmt(mask.shape)} must broadcast to the tensor's shape ${fmt(x.shape)}`,
    );
  }
  return where(mask, value, x);
}
