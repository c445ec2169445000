// GroupNorm and RMSNorm, as functions and Modules. Both compose existing ops (mean, variance,
// rsqrt, broadcasting arithmetic), so autograd derives their backward; a fused kernel like
// LayerNorm's can replace them where a profile asks for it.
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import * as E from '../ops/elementwise.js';
import { mean, variance } from '../ops/reduce.js';
import { reshape } from '../ops/shape.js';
import { ones, zeros } from '../ops/creation.js';
import { Module, Parameter, pyBool, pyFloat, pyTuple } from './module.js';
import * as init from './init.js';

/** float32's machine epsilon, 2⁻²³: RMSNorm's eps when none is given (PyTorch 2.4). */
export const FLOAT32_EPS = 2 ** -23;

function checkFloat(op: string, what: string, t: Tensor): void {
  if (t.dtype !== 'float32') throw new DTypeError(`${op}: ${what} must be float32, got ${t.dtype}`);
}

function checkEps(op: string, eps: number): number {
  if (!(eps >= 0) || !Number.isFinite(eps)) {
    throw new ValueError(`${op}: eps must be a finite number >= 0, got ${eps}`);
  }
  return eps;
}

function checkCount(op: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) {
    throw new ValueError(`${op}: ${name} must be a positive integer, got ${v}`);
  }
}

/** A per-element affine parameter `p` must have exactly `shape`. */
function checkAffine(op: string, what: string, p: Tensor | null, shape: readonly number[]): void {
  if (!p) return;
  checkFloat(op, what, p);
  if (p.ndim !== shape.length || p.shape.some((s, i) => s !== shape[i])) {
    throw new ShapeError(`${op}: ${what} ${fmt(p.shape)} must have shape ${fmt(shape)}`);
  }
}

export interface GroupNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  /** Added to the variance; default 1e-5. */
  eps?: number;
}

/**
 * Group normalisation of `[N, C, *]`: the C channels split into `numGroups` groups, each
 * normalised over its channels and all trailing dims to zero mean and unit (biased)
 * variance, then scaled by `weight` and shifted by `bias` (`[C]` each) per channel.
 */
export function groupNorm(x: Tensor, numGroups: number, opts: GroupNormOptions = {}): Tensor {
  const op = 'groupNorm';
  checkFloat(op, 'input', x);
  checkCount(op, 'numGroups', numGroups);
  const eps = checkEps(op, opts.eps ?? 1e-5);
  if (x.ndim < 2) {
    throw new ShapeError(
      `${op}: input must be [N, C, *] with at least 2 dims, got ${fmt(x.shape)}`,
    );
  }
  const [n, c] = x.shape;
  if (c % numGroups !== 0) {
    throw new ShapeError(
      `${op}: ${c} channels of input ${fmt(x.shape)} do not split into ${numGroups} groups`,
    );
  }
  const { weight = null, bias = null } = opts;
  checkAffine(op, 'weight', weight, [c]);
  checkAffine(op, 'bias', bias, [c]);
  return tidy(() => {
    const g = reshape(x, [n, numGroups, -1]);
    const mu = mean(g, 2, true);
    const rstd = E.rsqrt(E.add(variance(g, 2, true, 0), eps));
    let y = reshape(E.mul(E.sub(g, mu), rstd), x.shape);
    // [C] → [C, 1, …] broadcasts over the trailing dims.
    const perChannel = [c, ...x.shape.slice(2).map(() => 1)];
    if (weight) y = E.mul(y, reshape(weight, perChannel));
    if (bias) y = E.add(y, reshape(bias, perChannel));
    return y;
  });
}

/** `nn.GroupNorm(numGroups, numChannels, {eps, affine})`: weight ones and bias zeros, `[C]`. */
export class GroupNorm extends Module {
  readonly eps: number;
  readonly affine: boolean;
  weight: Tensor | null;
  bias: Tensor | null;

  constructor(
    readonly numGroups: number,
    readonly numChannels: number,
    opts: { eps?: number; affine?: boolean } = {},
  ) {
    super();
    checkCount('GroupNorm', 'numGroups', numGroups);
    checkCount('GroupNorm', 'numChannels', numChannels);
    if (numChannels % numGroups !== 0) {
      throw new ValueError(
        `GroupNorm: numChannels ${numChannels} must be divisible by numGroups ${numGroups}`,
      );
    }
    this.eps = checkEps('GroupNorm', opts.eps ?? 1e-5);
    this.affine = opts.affine ?? true;
    this.weight = this.affine ? Parameter(ones([numChannels])) : null;
    this.bias = this.affine ? Parameter(zeros([numChannels])) : null;
  }

  resetParameters(): void {
    if (this.weight) init.ones_(this.weight);
    if (this.bias) init.zeros_(this.bias);
  }

  forward(x: Tensor): Tensor {
    if (x.ndim >= 2 && x.shape[1] !== this.numChannels) {
      throw new ShapeError(
        `GroupNorm: input ${fmt(x.shape)} has ${x.shape[1]} channels, expected ${this.numChannels}`,
      );
    }
    return groupNorm(x, this.numGroups, { weight: this.weight, bias: this.bias, eps: this.eps });
  }

  override extraRepr(): string {
    const eps = pyFloat(this.eps);
    return `${this.numGroups}, ${this.numChannels}, eps=${eps}, affine=${pyBool(this.affine)}`;
  }
}

export interface RMSNormOptions {
  weight?: Tensor | null;
  /** Added to the mean square; null (default) means float32's machine epsilon. */
  eps?: number | null;
}

/**
 * Root-mean-square normalisation over the trailing `normalizedShape` dims (PyTorch 2.4's
 * `rms_norm`): `x / √(mean(x²) + eps) · weight`.
 */
export function rmsNorm(
  x: Tensor,
  normalizedShape: number | readonly number[],
  opts: RMSNormOptions = {},
): Tensor {
  const op = 'rmsNorm';
  checkFloat(op, 'input', x);
  const shape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
  const k = shape.length;
  const tail = x.shape.slice(x.ndim - k);
  if (k === 0 || k > x.ndim || tail.some((s, i) => s !== shape[i])) {
    throw new ShapeError(
      `${op}: input ${fmt(x.shape)} must end with normalizedShape ${fmt(shape)}`,
    );
  }
  const eps = checkEps(op, opts.eps ?? FLOAT32_EPS);
  const weight = opts.weight ?? null;
  checkAffine(op, 'weight', weight, shape);
  return tidy(() => {
    const dims = shape.map((_, i) => x.ndim - k + i);
    const y = E.mul(x, E.rsqrt(E.add(mean(E.square(x), dims, true), eps)));
    return weight ? E.mul(y, weight) : y;
  });
}

/** `nn.RMSNorm(normalizedShape, {eps, elementwiseAffine})` (PyTorch 2.4); weight ones. */
export class RMSNorm extends Module {
  readonly normalizedShape: readonly number[];
  /** null: float32's machine epsilon at run time, as PyTorch's `eps=None`. */
  readonly eps: number | null;
  readonly elementwiseAffine: boolean;
  weight: Tensor | null;

  constructor(
    normalizedShape: number | readonly number[],
    opts: { eps?: number | null; elementwiseAffine?: boolean } = {},
  ) {
    super();
    const shape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    if (shape.length === 0) throw new ValueError('RMSNorm: normalizedShape must not be empty');
    shape.forEach((s) => checkCount('RMSNorm', 'normalizedShape', s));
    this.normalizedShape = Object.freeze(shape);
    this.eps = opts.eps ?? null;
    if (this.eps !== null) checkEps('RMSNorm', this.eps);
    this.elementwiseAffine = opts.elementwiseAffine ?? true;
    this.weight = this.elementwiseAffine ? Parameter(ones(shape)) : null;
  }

  resetParameters(): void {
    if (this.weight) init.ones_(this.weight);
  }

  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.normalizedShape, { weight: this.weight, eps: this.eps });
  }

  override extraRepr(): string {
    const eps = this.eps === null ? 'None' : pyFloat(this.eps);
    const affine = pyBool(this.elementwiseAffine);
    return `${pyTuple(this.normalizedShape)}, eps=${eps}, elementwise_affine=${affine}`;
  }
}
