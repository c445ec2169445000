// Losses with PyTorch 1.13 semantics, as functions (`crossEntropy(input, target, opts)`) and as
// Modules (`new CrossEntropyLoss(opts).forward(input, target)`).
// - crossEntropy is one fused core kernel (log-softmax + NLL, forward and backward) over rows
//   of logits; N-d inputs move their class dim last first.
// - The binary cross-entropies record PyTorch's own derivative formulas: autograd through the
//   stable forward would get the wrong slope at a logit of exactly 0 (|x| and relu kinks) and
//   NaN at probabilities of exactly 0 or 1 (0 * inf through the clamped log).
// - mseLoss, l1Loss and nllLoss compose public ops, so autograd derives their backward.
// Every loss runs in `tidy`, which frees its intermediates except those the graph still needs.
import { DTypeError, IndexError, ShapeError, ValueError, fmt } from '../errors.js';
import { wasm } from '../wasm/core.js';
import { f32View, i32View } from '../wasm/heap.js';
import { broadcastShapes, sameShape, type Shape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { noGrad, record } from '../autograd/node.js';
import * as E from '../ops/elementwise.js';
import { splitItems } from '../ops/parallel.js';
import { mean, sum } from '../ops/reduce.js';
import { flatten, permute, reshape, squeeze, unsqueeze } from '../ops/shape.js';
import { gather, indexSelect } from '../ops/indexing.js';
import { Module } from './module.js';

export type Reduction = 'mean' | 'sum' | 'none';

export interface ReductionOptions {
  /** 'mean' (default) averages, 'sum' adds, 'none' returns the per-element losses. */
  reduction?: Reduction;
}

export interface WeightedLossOptions extends ReductionOptions {
  /** Rescaling weights: one per class (crossEntropy, nllLoss), or broadcastable to the input. */
  weight?: Tensor;
}

export interface BCEWithLogitsOptions extends WeightedLossOptions {
  /** Weight of the positive term, broadcastable to the input (one per class, last dim). */
  posWeight?: Tensor;
}

export interface NLLLossOptions extends WeightedLossOptions {
  /** Targets equal to this contribute nothing and are not counted by 'mean' (default -100). */
  ignoreIndex?: number;
}

export interface CrossEntropyOptions extends NLLLossOptions {
  /** ε in [0, 1]: targets become (1 - ε) · target + ε / C (default 0). */
  labelSmoothing?: number;
}

const DEFAULT_IGNORE = -100;

// ------------------------------------------------------------------ option and input checks

function checkReduction(op: string, r: unknown = 'mean'): Reduction {
  if (r !== 'mean' && r !== 'sum' && r !== 'none') {
    throw new ValueError(`${op}: reduction must be 'mean', 'sum' or 'none', got ${String(r)}`);
  }
  return r;
}

function checkIgnoreIndex(op: string, v: number): number {
  if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) {
    throw new ValueError(`${op}: ignoreIndex must be a 32-bit integer, got ${v}`);
  }
  return v;
}

function checkSmoothing(op: string, v: number): number {
  if (!(v >= 0 && v <= 1)) {
    throw new ValueError(`${op}: labelSmoothing must be in [0, 1], got ${v}`);
  }
  return v;
}

function checkFloat(op: string, what: string, t: Tensor): void {
  if (t.dtype !== 'float32') throw new DTypeError(`${op}: ${what} must be float32, got ${t.dtype}`);
}

/** Float input and target of one shape (PyTorch warns and broadcasts; here it is an error). */
function checkPair(op: string, input: Tensor, target: Tensor): void {
  checkFloat(op, 'input', input);
  checkFloat(op, 'target', target);
  if (!sameShape(input.shape, target.shape)) {
    throw new ShapeError(
      `${op}: target ${fmt(target.shape)} must have the input's shape ${fmt(input.shape)}`,
    );
  }
}

/** A float weight that broadcasts to `shape` without enlarging it. */
function checkBroadcastWeight(op: string, what: string, w: Tensor, shape: Shape): void {
  checkFloat(op, what, w);
  const fits = w.ndim <= shape.length && sameShape(broadcastShapes(op, w.shape, shape), shape);
  if (!fits) {
    throw new ShapeError(
      `${op}: ${what} ${fmt(w.shape)} must broadcast to the input ${fmt(shape)}`,
    );
  }
}

/** Probabilities must lie in [0, 1], as PyTorch checks (NaN fails too). */
function checkProbabilities(op: string, input: Tensor): void {
  const v = f32View(input.ptr, input.size);
  for (let i = 0; i < v.length; i++) {
    if (!(v[i] >= 0 && v[i] <= 1)) {
      throw new ValueError(`${op}: input values must be in [0, 1], got ${v[i]} at position ${i}`);
    }
  }
}

/** The class dim's size: dim 1, or dim 0 of an unbatched `[C]` input. */
function classCount(op: string, input: Tensor): number {
  if (input.ndim === 0) throw new ShapeError(`${op}: input must have a class dim, got shape []`);
  const c = input.shape[input.ndim === 1 ? 0 : 1];
  if (c === 0) throw new ShapeError(`${op}: input ${fmt(input.shape)} has no classes`);
  return c;
}

/** The shape of a class-index target: the input's without its class dim. */
function indexShape(input: Tensor): number[] {
  return input.ndim === 1 ? [] : [input.shape[0], ...input.shape.slice(2)];
}

function checkClassWeight(op: string, weight: Tensor | undefined, classes: number): void {
  if (!weight) return;
  checkFloat(op, 'weight', weight);
  if (weight.ndim !== 1 || weight.size !== classes) {
    throw new ShapeError(
      `${op}: weight ${fmt(weight.shape)} must have one entry per class, [${classes}]`,
    );
  }
}

/** An int32 class-index target of the input's shape minus the class dim, with values in range. */
function checkClassTarget(op: string, input: Tensor, target: Tensor, ignoreIndex: number): void {
  const want = indexShape(input);
  if (target.dtype !== 'int32') {
    const why = sameShape(target.shape, input.shape)
      ? ' (probability targets need crossEntropy)'
      : '';
    throw new DTypeError(
      `${op}: class-index target must be int32, got ${target.dtype} of shape ${fmt(target.shape)}${why}`,
    );
  }
  if (!sameShape(target.shape, want)) {
    throw new ShapeError(
      `${op}: target ${fmt(target.shape)} must be ${fmt(want)} (class indices) for input ${fmt(input.shape)}`,
    );
  }
  const classes = classCount(op, input);
  const bad = wasm().class_target_check_i32(target.ptr, target.size, classes, ignoreIndex);
  if (bad >= 0) {
    const value = i32View(target.ptr + 4 * bad, 1)[0];
    throw new IndexError(
      `${op}: target ${value} at position ${bad} is out of range for ${classes} classes (ignoreIndex ${ignoreIndex})`,
    );
  }
}

function reduce(loss: Tensor, reduction: Reduction): Tensor {
  if (reduction === 'none') return loss;
  return reduction === 'sum' ? sum(loss) : mean(loss);
}

// ------------------------------------------------------------------ regression losses

/** Mean squared error `(input - target)²`. */
export function mseLoss(input: Tensor, target: Tensor, opts: ReductionOptions = {}): Tensor {
  const reduction = checkReduction('mseLoss', opts.reduction);
  checkPair('mseLoss', input, target);
  return tidy(() => reduce(E.square(E.sub(input, target)), reduction));
}

/** Mean absolute error `|input - target|` (gradient sign(input - target), 0 at a tie). */
export function l1Loss(input: Tensor, target: Tensor, opts: ReductionOptions = {}): Tensor {
  const reduction = checkReduction('l1Loss', opts.reduction);
  checkPair('l1Loss', input, target);
  return tidy(() => reduce(E.abs(E.sub(input, target)), reduction));
}

// ------------------------------------------------------------------ binary cross-entropy

/** `log(x)` and `log(1 - x)`, each clamped at -100 like PyTorch (so 0 and 1 stay finite). */
function clampedLogs(x: Tensor): [Tensor, Tensor] {
  return [E.clamp(E.log(x), -100), E.clamp(E.log(E.sub(1, x)), -100)];
}

/**
 * Binary cross-entropy of probabilities `input` in [0, 1] against `target` (soft labels allowed):
 * `-weight · (target · log(input) + (1 - target) · log(1 - input))`, logs clamped at -100.
 */
export function binaryCrossEntropy(
  input: Tensor,
  target: Tensor,
  opts: WeightedLossOptions = {},
): Tensor {
  const op = 'binaryCrossEntropy';
  const reduction = checkReduction(op, opts.reduction);
  checkPair(op, input, target);
  const w = opts.weight;
  if (w) checkBroadcastWeight(op, 'weight', w, input.shape);
  checkProbabilities(op, input);
  return tidy(() => reduce(bceElementwise(input, target, w), reduction));
}

function bceElementwise(x: Tensor, y: Tensor, w: Tensor | undefined): Tensor {
  const out = noGrad(() =>
    tidy(() => {
      const [lx, l1x] = clampedLogs(x);
      const l = E.neg(E.add(E.mul(y, lx), E.mul(E.sub(1, y), l1x)));
      return w ? E.mul(l, w) : l;
    }),
  );
  const saved = w ? [w] : [];
  return record(
    out,
    'binaryCrossEntropy',
    [x, y],
    (g) =>
      tidy(() => {
        const gw = w ? E.mul(g, w) : g;
        // PyTorch's slope: (x - y) / max(x (1 - x), 1e-12), finite at x = 0 and x = 1.
        const gx = x.requiresGrad
          ? E.div(E.mul(gw, E.sub(x, y)), E.clamp(E.mul(x, E.sub(1, x)), 1e-12))
          : null;
        // d/dy of the clamped forward (PyTorch's unclamped form is ±inf at 0 and 1).
        let gy: Tensor | null = null;
        if (y.requiresGrad) {
          const [lx, l1x] = clampedLogs(x);
          gy = E.mul(gw, E.sub(l1x, lx));
        }
        return [gx, gy];
      }),
    saved,
  );
}

/**
 * Binary cross-entropy on logits, stable for any `input`:
 * `(1 - y) · x + (1 + (posWeight - 1) · y) · softplus(-x)`, with
 * `softplus(-x) = max(-x, 0) + log(1 + exp(-|x|))`; without posWeight this is
 * `max(x, 0) - x · y + log(1 + exp(-|x|))`. Both weights broadcast to the input.
 */
export function binaryCrossEntropyWithLogits(
  input: Tensor,
  target: Tensor,
  opts: BCEWithLogitsOptions = {},
): Tensor {
  const op = 'binaryCrossEntropyWithLogits';
  const reduction = checkReduction(op, opts.reduction);
  checkPair(op, input, target);
  const { weight: w, posWeight: pw } = opts;
  if (w) checkBroadcastWeight(op, 'weight', w, input.shape);
  if (pw) checkBroadcastWeight(op, 'posWeight', pw, input.shape);
  return tidy(() => reduce(bceLogitsElementwise(input, target, w, pw), reduction));
}

/** `softplus(-x) = -log(sigmoid(x))` without overflow for any x. */
function softplusNeg(x: Tensor): Tensor {
  return E.add(E.relu(E.neg(x)), E.log(E.add(E.exp(E.neg(E.abs(x))), 1)));
}

function bceLogitsElementwise(
  x: Tensor,
  y: Tensor,
  w: Tensor | undefined,
  pw: Tensor | undefined,
): Tensor {
  /** The positive term's weight `1 + (pw - 1) y`, or null for 1. */
  const logWeight = (): Tensor | null => (pw ? E.add(E.mul(E.sub(pw, 1), y), 1) : null);
  const out = noGrad(() =>
    tidy(() => {
      const sp = softplusNeg(x);
      const lw = logWeight();
      const l = E.add(E.mul(E.sub(1, y), x), lw ? E.mul(lw, sp) : sp);
      return w ? E.mul(l, w) : l;
    }),
  );
  return record(
    out,
    'binaryCrossEntropyWithLogits',
    [x, y],
    (g) =>
      tidy(() => {
        const gw = w ? E.mul(g, w) : g;
        const lw = logWeight();
        // d/dx = sigmoid(x) · lw - pw · y (sigmoid(x) - y without posWeight).
        const slope = (): Tensor =>
          pw && lw ? E.sub(E.mul(E.sigmoid(x), lw), E.mul(pw, y)) : E.sub(E.sigmoid(x), y);
        const gx = x.requiresGrad ? E.mul(gw, slope()) : null;
        // d/dy = -x + (pw - 1) · softplus(-x).
        const gy = y.requiresGrad
          ? E.mul(gw, pw ? E.sub(E.mul(E.sub(pw, 1), softplusNeg(x)), x) : E.neg(x))
          : null;
        return [gx, gy];
      }),
    [...(w ? [w] : []), ...(pw ? [pw] : [])],
  );
}

// ------------------------------------------------------------------ negative log-likelihood

/**
 * Negative log-likelihood of log-probabilities `input` (`[N, C]`, `[N, C, d...]` or `[C]`) at
 * int32 class indices `target` (`[N]`, `[N, d...]` or `[]`): `-weight[t] · input[t]`, 0 where
 * `t == ignoreIndex`; 'mean' divides by the summed weights of the targets not ignored.
 */
export function nllLoss(input: Tensor, target: Tensor, opts: NLLLossOptions = {}): Tensor {
  const op = 'nllLoss';
  const reduction = checkReduction(op, opts.reduction);
  const ignoreIndex = checkIgnoreIndex(op, opts.ignoreIndex ?? DEFAULT_IGNORE);
  checkFloat(op, 'input', input);
  const classes = classCount(op, input);
  checkClassTarget(op, input, target, ignoreIndex);
  checkClassWeight(op, opts.weight, classes);
  const weight = opts.weight;
  return tidy(() => {
    const cls = input.ndim === 1 ? 0 : 1;
    const keep = E.ne(target, ignoreIndex);
    const safe = E.where(keep, target, 0); // ignored targets read class 0, then weigh 0
    const picked = squeeze(gather(input, cls, unsqueeze(safe, cls)), cls);
    // PyTorch does not differentiate the class weights.
    const wt = noGrad(() => {
      const mask = keep.float();
      if (!weight) return mask;
      return E.mul(reshape(indexSelect(weight, 0, flatten(safe)), target.shape), mask);
    });
    const loss = E.neg(E.mul(picked, wt));
    if (reduction === 'none') return loss;
    const total = sum(loss);
    return reduction === 'sum' ? total : E.div(total, sum(wt));
  });
}

// ------------------------------------------------------------------ cross-entropy

/**
 * Cross-entropy of logits `input` (`[N, C]`, `[N, C, d...]` with classes on dim 1, or `[C]`)
 * against int32 class indices (`[N]`, `[N, d...]`, `[]`) or float32 class probabilities of the
 * input's shape, as `torch.nn.functional.cross_entropy`: `weight` rescales classes, targets
 * equal to `ignoreIndex` count for nothing, `labelSmoothing` mixes in the uniform distribution.
 * 'mean' divides by the summed target weights of the rows not ignored (class indices) or by
 * the number of rows (probabilities). One fused, max-shifted kernel computes it.
 */
export function crossEntropy(
  input: Tensor,
  target: Tensor,
  opts: CrossEntropyOptions = {},
): Tensor {
  const op = 'crossEntropy';
  const reduction = checkReduction(op, opts.reduction);
  const ignoreIndex = checkIgnoreIndex(op, opts.ignoreIndex ?? DEFAULT_IGNORE);
  const eps = checkSmoothing(op, opts.labelSmoothing ?? 0);
  checkFloat(op, 'input', input);
  const classes = classCount(op, input);
  checkClassWeight(op, opts.weight, classes);
  const weight = opts.weight ?? null;
  const probs = isProbabilityTarget(op, input, target);
  if (probs && ignoreIndex >= 0) {
    throw new ValueError(
      `${op}: ignoreIndex ${ignoreIndex} is not supported for class-probability targets`,
    );
  }
  if (!probs) checkClassTarget(op, input, target, ignoreIndex);
  return tidy(() => {
    const x = toRows(input, classes);
    const rows = x.shape[0];
    const { loss, total } = probs
      ? { loss: ceProbRows(x, toRows(target, classes), weight, eps), total: rows }
      : ceIndexRows(x, reshape(target, [rows]), weight, ignoreIndex, eps);
    if (reduction === 'none') return reshape(loss, indexShape(input));
    const s = sum(loss);
    return reduction === 'sum' ? s : E.div(s, total);
  });
}

/**
 * True for float32 class probabilities (the input's shape), false for class indices (the
 * input's shape without the class dim, checked by `checkClassTarget`). Throws for a
 * probability-shaped int32 target and for a float32 target of neither shape.
 */
function isProbabilityTarget(op: string, input: Tensor, target: Tensor): boolean {
  const likeInput = sameShape(target.shape, input.shape);
  if (target.dtype !== 'float32') {
    if (likeInput) {
      throw new DTypeError(
        `${op}: a target of the input's shape ${fmt(input.shape)} holds class probabilities and must be float32, got ${target.dtype}`,
      );
    }
    return false;
  }
  if (sameShape(target.shape, indexShape(input))) return false;
  if (!likeInput) {
    throw new ShapeError(
      `${op}: a float32 target holds class probabilities and must have the input's shape ${fmt(input.shape)}, got ${fmt(target.shape)}`,
    );
  }
  return true;
}

/** `[C]`, `[N, C]` or `[N, C, d...]` as `[rows, C]` rows of classes (class dim moved last). */
function toRows(x: Tensor, classes: number): Tensor {
  if (x.ndim === 2) return x;
  if (x.ndim === 1) return reshape(x, [1, classes]);
  const last = x.shape.map((_, i) => i).filter((i) => i !== 1);
  return reshape(permute(x, [...last, 1]), [-1, classes]);
}

/** Per-row losses against class indices, and the 'mean' divisor Σ weight[t] (not ignored). */
function ceIndexRows(
  x: Tensor,
  t: Tensor,
  weight: Tensor | null,
  ignoreIndex: number,
  eps: number,
): { loss: Tensor; total: number } {
  const [rows, classes] = x.shape;
  const loss = Tensor.empty([rows], 'float32');
  const lse = Tensor.empty([rows, 2], 'float32'); // (max, log Σ exp(x - max)) per row
  const wptr = (): number => (weight ? weight.ptr : 0);
  // The divisor is one pass over the targets in order, so its sum is the same for any split.
  splitItems('cross_entropy_f32', rows, rows * classes, (b, e) => [
    x.ptr + 4 * b * classes,
    t.ptr + 4 * b,
    wptr(),
    loss.ptr + 4 * b,
    lse.ptr + 8 * b,
    e - b,
    classes,
    ignoreIndex,
    eps,
  ]);
  const total =
    rows > 0 ? wasm().class_weight_total_i32(t.ptr, wptr(), rows, classes, ignoreIndex) : 0;
  const backward = (g: Tensor): [Tensor] => {
    const dx = Tensor.empty(x.shape, 'float32');
    splitItems('cross_entropy_bwd_f32', rows, rows * classes, (b, e) => [
      x.ptr + 4 * b * classes,
      t.ptr + 4 * b,
      wptr(),
      lse.ptr + 8 * b,
      g.ptr + 4 * b,
      dx.ptr + 4 * b * classes,
      e - b,
      classes,
      ignoreIndex,
      eps,
    ]);
    return [dx];
  };
  const saved = [t, lse, ...(weight ? [weight] : [])];
  return { loss: record(loss, 'crossEntropy', [x], backward, saved), total };
}

/** Per-row losses against class probabilities `t` (`[rows, C]`); differentiable in both. */
function ceProbRows(x: Tensor, t: Tensor, weight: Tensor | null, eps: number): Tensor {
  const [rows, classes] = x.shape;
  const loss = Tensor.empty([rows], 'float32');
  const lse = Tensor.empty([rows, 2], 'float32');
  const wptr = (): number => (weight ? weight.ptr : 0);
  splitItems('cross_entropy_prob_f32', rows, rows * classes, (b, e) => [
    x.ptr + 4 * b * classes,
    t.ptr + 4 * b * classes,
    wptr(),
    loss.ptr + 4 * b,
    lse.ptr + 8 * b,
    e - b,
    classes,
    eps,
  ]);
  const backward = (g: Tensor): [Tensor | null, Tensor | null] => {
    const dx = x.requiresGrad ? Tensor.empty(x.shape, 'float32') : null;
    const dt = t.requiresGrad ? Tensor.empty(t.shape, 'float32') : null;
    // An absent gradient stays 0 (the kernel's "not needed") in every share.
    const at = (d: Tensor | null, b: number): number => (d ? d.ptr + 4 * b * classes : 0);
    splitItems('cross_entropy_prob_bwd_f32', rows, rows * classes, (b, e) => [
      x.ptr + 4 * b * classes,
      t.ptr + 4 * b * classes,
      wptr(),
      lse.ptr + 8 * b,
      g.ptr + 4 * b,
      at(dx, b),
      at(dt, b),
      e - b,
      classes,
      eps,
    ]);
    return [dx, dt];
  };
  return record(loss, 'crossEntropy', [x, t], backward, [lse, ...(weight ? [weight] : [])]);
}

// ------------------------------------------------------------------ modules

/** `nn.MSELoss`. */
export class MSELoss extends Module {
  readonly reduction: Reduction;

  constructor(opts: ReductionOptions = {}) {
    super();
    this.reduction = checkReduction('MSELoss', opts.reduction);
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return mseLoss(input, target, { reduction: this.reduction });
  }
}

/** `nn.L1Loss`. */
export class L1Loss extends Module {
  readonly reduction: Reduction;

  constructor(opts: ReductionOptions = {}) {
    super();
    this.reduction = checkReduction('L1Loss', opts.reduction);
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return l1Loss(input, target, { reduction: this.reduction });
  }
}

/** A loss whose `weight` is a buffer (in the state dict, as in PyTorch's `_WeightedLoss`). */
abstract class WeightedLoss extends Module {
  readonly reduction: Reduction;
  private readonly weighted: boolean;

  constructor(op: string, opts: WeightedLossOptions) {
    super();
    this.reduction = checkReduction(op, opts.reduction);
    this.weighted = opts.weight !== undefined;
    if (opts.weight) this.registerBuffer('weight', opts.weight);
  }

  get weight(): Tensor | undefined {
    return this.weighted ? this.buffer('weight') : undefined;
  }
}

/** `nn.BCELoss`: binary cross-entropy of probabilities. */
export class BCELoss extends WeightedLoss {
  constructor(opts: WeightedLossOptions = {}) {
    super('BCELoss', opts);
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return binaryCrossEntropy(input, target, { weight: this.weight, reduction: this.reduction });
  }
}

/** `nn.BCEWithLogitsLoss`: binary cross-entropy of logits; `posWeight` is buffer `pos_weight`. */
export class BCEWithLogitsLoss extends WeightedLoss {
  private readonly hasPosWeight: boolean;

  constructor(opts: BCEWithLogitsOptions = {}) {
    super('BCEWithLogitsLoss', opts);
    this.hasPosWeight = opts.posWeight !== undefined;
    if (opts.posWeight) this.registerBuffer('pos_weight', opts.posWeight);
  }

  get posWeight(): Tensor | undefined {
    return this.hasPosWeight ? this.buffer('pos_weight') : undefined;
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return binaryCrossEntropyWithLogits(input, target, {
      weight: this.weight,
      posWeight: this.posWeight,
      reduction: this.reduction,
    });
  }
}

/** `nn.NLLLoss`: negative log-likelihood of log-probabilities. */
export class NLLLoss extends WeightedLoss {
  readonly ignoreIndex: number;

  constructor(opts: NLLLossOptions = {}) {
    super('NLLLoss', opts);
    this.ignoreIndex = checkIgnoreIndex('NLLLoss', opts.ignoreIndex ?? DEFAULT_IGNORE);
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return nllLoss(input, target, {
      weight: this.weight,
      ignoreIndex: this.ignoreIndex,
      reduction: this.reduction,
    });
  }
}

/** `nn.CrossEntropyLoss`: fused log-softmax + NLL of logits. */
export class CrossEntropyLoss extends WeightedLoss {
  readonly ignoreIndex: number;
  readonly labelSmoothing: number;

  constructor(opts: CrossEntropyOptions = {}) {
    super('CrossEntropyLoss', opts);
    this.ignoreIndex = checkIgnoreIndex('CrossEntropyLoss', opts.ignoreIndex ?? DEFAULT_IGNORE);
    this.labelSmoothing = checkSmoothing('CrossEntropyLoss', opts.labelSmoothing ?? 0);
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return crossEntropy(input, target, {
      weight: this.weight,
      ignoreIndex: this.ignoreIndex,
      reduction: this.reduction,
      labelSmoothing: this.labelSmoothing,
    });
  }
}

// ------------------------------------------------------------------ smooth L1, Huber, KL divergence

export interface SmoothL1Options extends ReductionOptions {
  /** Where the loss turns from quadratic to linear (default 1); 0 gives the L1 loss. */
  beta?: number;
}

export interface HuberOptions extends ReductionOptions {
  /** Where the loss turns from quadratic to linear (default 1); must be positive. */
  delta?: number;
}

export type KLDivReduction = Reduction | 'batchmean';

export interface KLDivOptions {
  /**
   * 'mean' (default, as PyTorch: over every element), 'batchmean' (sum over the batch size,
   * the true KL divergence per sample), 'sum' or 'none'.
   */
  reduction?: KLDivReduction;
  /** True when the target holds log-probabilities too (default false: probabilities). */
  logTarget?: boolean;
}

function checkThreshold(op: string, name: string, v: number, allowZero: boolean): number {
  if (!Number.isFinite(v) || v < 0 || (v === 0 && !allowZero)) {
    throw new ValueError(`${op}: ${name} must be ${allowZero ? '>= 0' : '> 0'}, got ${v}`);
  }
  return v;
}

function checkKLReduction(op: string, r: unknown = 'mean'): KLDivReduction {
  if (r !== 'mean' && r !== 'sum' && r !== 'none' && r !== 'batchmean') {
    throw new ValueError(
      `${op}: reduction must be 'mean', 'batchmean', 'sum' or 'none', got ${String(r)}`,
    );
  }
  return r;
}

/**
 * `d = |input - target|`, then `0.5 d² / beta` where `d < beta` and `d - 0.5 beta` elsewhere
 * (`beta = 0` is the L1 loss, as PyTorch). Autograd runs through `where`, which routes each
 * element's gradient to the branch it took.
 */
export function smoothL1Loss(input: Tensor, target: Tensor, opts: SmoothL1Options = {}): Tensor {
  const op = 'smoothL1Loss';
  const reduction = checkReduction(op, opts.reduction);
  const beta = checkThreshold(op, 'beta', opts.beta ?? 1, true);
  checkPair(op, input, target);
  return tidy(() => {
    const d = E.abs(E.sub(input, target));
    if (beta === 0) return reduce(d, reduction);
    const quad = E.div(E.mul(E.square(d), 0.5), beta);
    return reduce(E.where(E.lt(d, beta), quad, E.sub(d, 0.5 * beta)), reduction);
  });
}

/** `0.5 d²` where `d = |input - target| < delta`, `delta (d - 0.5 delta)` elsewhere. */
export function huberLoss(input: Tensor, target: Tensor, opts: HuberOptions = {}): Tensor {
  const op = 'huberLoss';
  const reduction = checkReduction(op, opts.reduction);
  const delta = checkThreshold(op, 'delta', opts.delta ?? 1, false);
  checkPair(op, input, target);
  return tidy(() => {
    const d = E.abs(E.sub(input, target));
    const linear = E.mul(E.sub(d, 0.5 * delta), delta);
    return reduce(E.where(E.lt(d, delta), E.mul(E.square(d), 0.5), linear), reduction);
  });
}

/**
 * Kullback-Leibler divergence with `input` as log-probabilities (PyTorch's `kl_div`):
 * pointwise `target · (log target - input)`, taken as 0 where target is 0, or with `logTarget`
 * `exp(target) · (target - input)`. At a target of exactly 0 the target's gradient is 0 here
 * (PyTorch's is -inf); the input's gradient is the same.
 */
export function klDiv(input: Tensor, target: Tensor, opts: KLDivOptions = {}): Tensor {
  const op = 'klDiv';
  const r = checkKLReduction(op, opts.reduction);
  checkPair(op, input, target);
  return tidy(() => {
    let pointwise: Tensor;
    if (opts.logTarget) {
      pointwise = E.mul(E.exp(target), E.sub(target, input));
    } else {
      const pos = E.gt(target, 0);
      // log reads 1 where the target is not positive, so no 0 · -inf reaches the graph
      const tLogT = E.mul(target, E.log(E.where(pos, target, 1)));
      pointwise = E.sub(E.where(pos, tLogT, 0), E.mul(target, input));
    }
    if (r !== 'batchmean') return reduce(pointwise, r);
    return E.div(sum(pointwise), input.ndim > 0 ? input.shape[0] : 1);
  });
}

/** `nn.SmoothL1Loss`. */
export class SmoothL1Loss extends Module {
  readonly reduction: Reduction;
  readonly beta: number;

  constructor(opts: SmoothL1Options = {}) {
    super();
    this.reduction = checkReduction('SmoothL1Loss', opts.reduction);
    this.beta = checkThreshold('SmoothL1Loss', 'beta', opts.beta ?? 1, true);
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return smoothL1Loss(input, target, { beta: this.beta, reduction: this.reduction });
  }
}

/** `nn.HuberLoss`. */
export class HuberLoss extends Module {
  readonly reduction: Reduction;
  readonly delta: number;

  constructor(opts: HuberOptions = {}) {
    super();
    this.reduction = checkReduction('HuberLoss', opts.reduction);
    this.delta = checkThreshold('HuberLoss', 'delta', opts.delta ?? 1, false);
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return huberLoss(input, target, { delta: this.delta, reduction: this.reduction });
  }
}

/** `nn.KLDivLoss`: `forward(input, target)` with `input` as log-probabilities. */
export class KLDivLoss extends Module {
  readonly reduction: KLDivReduction;
  readonly logTarget: boolean;

  constructor(opts: KLDivOptions = {}) {
    super();
    this.reduction = checkKLReduction('KLDivLoss', opts.reduction);
    this.logTarget = opts.logTarget ?? false;
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return klDiv(input, target, { reduction: this.reduction, logTarget: this.logTarget });
  }
}
