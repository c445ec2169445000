// Math unary ops (sin, cos, erf, log1p, expm1, rounding, NaN tests) and the smooth
// activations (softplus, SiLU, Mish, hardtanh, ELU). Each runs one `unary_f32` kernel code
// whose backward sits beside it in crate/src/kernels (special.rs, elementwise.rs).
// The new reductions live in reduce.ts and are re-exported here, so ts/index.ts takes every
// op of this family from one module.
import { DTypeError, ValueError } from '../errors.js';
import { UnaryOp } from '../wasm/abi.js';
import { noGrad } from '../autograd/node.js';
import { Tensor } from '../tensor/tensor.js';
import { fullLike } from './creation.js';
import * as E from './elementwise.js';

export { prod, cumsum, norm, std, any, all, type NormOrd, type VarOptions } from './reduce.js';

// ------------------------------------------------------------------ unary math

export const sin = (x: Tensor): Tensor => E.unaryOp('sin', x, UnaryOp.SIN, false);
export const cos = (x: Tensor): Tensor => E.unaryOp('cos', x, UnaryOp.COS, false);
export const erf = (x: Tensor): Tensor => E.unaryOp('erf', x, UnaryOp.ERF, false);
export const log1p = (x: Tensor): Tensor => E.unaryOp('log1p', x, UnaryOp.LOG1P, false);
export const expm1 = (x: Tensor): Tensor => E.unaryOp('expm1', x, UnaryOp.EXPM1, false);

/** Rounding of an int32 tensor is the identity (a copy), as in PyTorch. */
function rounding(name: string, x: Tensor, code: number, p0 = 0, p1 = 0): Tensor {
  return x.dtype === 'int32' ? x.clone() : E.unaryOp(name, x, code, false, p0, p1);
}

export const floor = (x: Tensor): Tensor => rounding('floor', x, UnaryOp.FLOOR);
export const ceil = (x: Tensor): Tensor => rounding('ceil', x, UnaryOp.CEIL);

export interface RoundOptions {
  /** Digits after the decimal point (negative: to tens, hundreds, ...); default 0. */
  decimals?: number;
}

/**
 * Rounds half to even. With `decimals`, PyTorch's float32 formula: `round(x * 10^d) / 10^d`
 * (or `round(x / 10^-d) * 10^-d` for negative `d`), so e.g. 1.005 rounds as its f32 value does.
 */
export function round(x: Tensor, opts: RoundOptions = {}): Tensor {
  const d = opts.decimals ?? 0;
  if (!Number.isInteger(d)) throw new ValueError(`round: decimals must be an integer, got ${d}`);
  if (d !== 0 && x.dtype === 'int32') {
    throw new DTypeError(`round: decimals=${d} needs a float32 tensor, got int32`);
  }
  return rounding('round', x, UnaryOp.ROUND, 10 ** Math.abs(d), Math.sign(d));
}

/** 1 where `x` is NaN, else 0 (int32; no gradient). */
export function isnan(x: Tensor): Tensor {
  return x.dtype === 'int32' ? fullLike(x, 0) : E.ne(x, x);
}

/** 1 where `x` is neither infinite nor NaN, else 0 (int32; no gradient). */
export function isfinite(x: Tensor): Tensor {
  if (x.dtype === 'int32') return fullLike(x, 1);
  const a = noGrad(() => E.abs(x));
  const out = E.lt(a, Infinity);
  a.dispose();
  return out;
}

// ------------------------------------------------------------------ activations

function checkNumber(op: string, name: string, v: number): void {
  if (typeof v !== 'number' || Number.isNaN(v)) {
    throw new ValueError(`${op}: ${name} must be a number, got ${String(v)}`);
  }
}

export interface SoftplusOptions {
  /** Default 1. */
  beta?: number;
  /** Above `beta * x > threshold` the result is `x` itself; default 20. */
  threshold?: number;
}

/** `log(1 + exp(beta x)) / beta`, and `x` where `beta x > threshold` (PyTorch's rule). */
export function softplus(x: Tensor, opts: SoftplusOptions = {}): Tensor {
  const beta = opts.beta ?? 1;
  const threshold = opts.threshold ?? 20;
  checkNumber('softplus', 'beta', beta);
  checkNumber('softplus', 'threshold', threshold);
  if (beta === 0 || !Number.isFinite(beta)) {
    throw new ValueError(`softplus: beta must be finite and non-zero, got ${beta}`);
  }
  return E.unaryOp('softplus', x, UnaryOp.SOFTPLUS, false, beta, threshold);
}

/** `x * sigmoid(x)` (also called swish). */
export const silu = (x: Tensor): Tensor => E.unaryOp('silu', x, UnaryOp.SILU, false);

/** `x * tanh(softplus(x))`. */
export const mish = (x: Tensor): Tensor => E.unaryOp('mish', x, UnaryOp.MISH, false);

export interface HardtanhOptions {
  /** Default -1. */
  minVal?: number;
  /** Default 1. */
  maxVal?: number;
}

/**
 * Clamps into `[minVal, maxVal]`. Its gradient, as PyTorch's `hardtanh_backward`, is zero at
 * the bounds themselves (clamp passes it there), so it has its own kernel code.
 */
export function hardtanh(x: Tensor, opts: HardtanhOptions = {}): Tensor {
  const lo = opts.minVal ?? -1;
  const hi = opts.maxVal ?? 1;
  checkNumber('hardtanh', 'minVal', lo);
  checkNumber('hardtanh', 'maxVal', hi);
  if (lo > hi) {
    throw new ValueError(`hardtanh: minVal (${lo}) cannot be greater than maxVal (${hi})`);
  }
  return E.unaryOp('hardtanh', x, UnaryOp.HARDTANH, false, lo, hi);
}

export interface EluOptions {
  /** Scale of the negative part, `alpha * (exp(x) - 1)`; default 1. */
  alpha?: number;
}

export function elu(x: Tensor, opts: EluOptions = {}): Tensor {
  const alpha = opts.alpha ?? 1;
  checkNumber('elu', 'alpha', alpha);
  return E.unaryOp('elu', x, UnaryOp.ELU, false, alpha);
}
