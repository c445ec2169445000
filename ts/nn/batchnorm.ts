// Batch normalisation: `batchNorm` (torch.nn.functional.batch_norm) and the BatchNorm1d /
// BatchNorm2d modules, with PyTorch's buffers (running_mean, running_var, num_batches_tracked)
// in the state dict. Training normalises with the batch's biased variance and moves the running
// statistics toward the batch's mean and unbiased variance; eval mode uses the running ones.
// Runs the fused kernel pair (ts/ops/batchnorm-kernel.ts); the composition from reductions and
// broadcasting arithmetic below is its definition (nb.composed).
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/node.js';
import { ones, zeros } from '../ops/creation.js';
import { mean, variance } from '../ops/reduce.js';
import { Module, Parameter, pyBool, pyFloat } from './module.js';
import * as init from './init.js';
import { fused } from '../ops/fusion.js';
import { batchNormFused } from '../ops/batchnorm-kernel.js';

export interface BatchNormOptions {
  /** Running estimates to use (eval) or update in place (training); null for none. */
  runningMean?: Tensor | null;
  runningVar?: Tensor | null;
  weight?: Tensor | null;
  bias?: Tensor | null;
  /** Normalise with batch statistics and update the running ones; default false. */
  training?: boolean;
  /** Weight of the new batch in the running update; default 0.1. */
  momentum?: number;
  eps?: number;
}

/** The per-channel vectors reshaped to broadcast over [N, C, ...]. */
function perChannel(t: Tensor, ndim: number): Tensor {
  return t.reshape([t.shape[0], ...Array<number>(ndim - 2).fill(1)]);
}

/** `torch.nn.functional.batch_norm` over x [N, C, ...] (channels in dim 1). */
export function batchNorm(x: Tensor, opts: BatchNormOptions = {}): Tensor {
  const op = 'batchNorm';
  if (x.dtype !== 'float32') throw new DTypeError(`${op}: expected float32, got ${x.dtype}`);
  if (x.ndim < 2) throw new ShapeError(`${op}: expected an input [N, C, ...], got ${fmt(x.shape)}`);
  const c = x.shape[1];
  const eps = opts.eps ?? 1e-5;
  const momentum = opts.momentum ?? 0.1;
  const training = opts.training ?? false;
  for (const [name, t] of [
    ['runningMean', opts.runningMean],
    ['runningVar', opts.runningVar],
    ['weight', opts.weight],
    ['bias', opts.bias],
  ] as const) {
    if (t && (t.ndim !== 1 || t.shape[0] !== c || t.dtype !== 'float32')) {
      throw new ShapeError(
        `${op}: ${name} must be float32 [${c}] for input ${fmt(x.shape)}, got ${t.dtype} ${fmt(t.shape)}`,
      );
    }
  }
  const n = x.size / Math.max(c, 1);
  const useBatch = training || !opts.runningMean || !opts.runningVar;
  if (training && n <= 1) {
    throw new ValueError(
      `${op}: expected more than 1 value per channel when training, got input size ${fmt(x.shape)}`,
    );
  }
  if (fused.batchNorm && x.size > 0) {
    const running = useBatch ? null : ([opts.runningMean, opts.runningVar] as [Tensor, Tensor]);
    const r = batchNormFused(x, running, opts.weight ?? null, opts.bias ?? null, eps);
    if (training) updateRunning(opts, r.mean!, r.var!, n, momentum);
    r.var?.dispose(); // read only by the running update
    return r.y;
  }
  const dims = [0, ...Array.from({ length: x.ndim - 2 }, (_, i) => i + 2)];
  let mu: Tensor;
  let varForNorm: Tensor;
  if (useBatch) {
    mu = mean(x, dims);
    varForNorm = variance(x, dims, false, 0);
    if (training) updateRunning(opts, mu, varForNorm, n, momentum);
  } else {
    mu = opts.runningMean!;
    varForNorm = opts.runningVar!;
  }
  let y = x.sub(perChannel(mu, x.ndim)).mul(perChannel(varForNorm.add(eps).rsqrt(), x.ndim));
  if (opts.weight) y = y.mul(perChannel(opts.weight, x.ndim));
  if (opts.bias) y = y.add(perChannel(opts.bias, x.ndim));
  return y;
}

/**
 * Moves the running statistics (when given) toward the batch's mean and unbiased variance:
 * `r = (1 - momentum) · r + momentum · batch`, the variance scaled by n / (n - 1) first.
 */
function updateRunning(
  opts: BatchNormOptions,
  mu: Tensor,
  biasedVar: Tensor,
  n: number,
  momentum: number,
): void {
  const rm = opts.runningMean;
  const rv = opts.runningVar;
  if (!rm || !rv) return;
  noGrad(() => {
    rm.copy_(rm.mul(1 - momentum).add(mu.detach().mul(momentum)));
    const unbiased = biasedVar.detach().mul(n / (n - 1));
    rv.copy_(rv.mul(1 - momentum).add(unbiased.mul(momentum)));
  });
}

export interface BatchNormModuleOptions {
  /** Default 1e-5. */
  eps?: number;
  /** Default 0.1; null for a cumulative moving average (1 / numBatchesTracked). */
  momentum?: number | null;
  /** Learnable weight and bias; default true. */
  affine?: boolean;
  /** Keep running statistics (and use them in eval mode); default true. */
  trackRunningStats?: boolean;
}

abstract class BatchNormNd extends Module {
  weight: Tensor | null;
  bias: Tensor | null;
  readonly eps: number;
  readonly momentum: number | null;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;

  constructor(
    private readonly op: string,
    private readonly ranks: readonly number[],
    readonly numFeatures: number,
    opts: BatchNormModuleOptions,
  ) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures < 1) {
      throw new ValueError(`${op}: numFeatures must be a positive integer, got ${numFeatures}`);
    }
    this.eps = opts.eps ?? 1e-5;
    if (!(this.eps >= 0) || !Number.isFinite(this.eps)) {
      throw new ValueError(`${op}: eps must be a finite number >= 0, got ${opts.eps}`);
    }
    this.momentum = opts.momentum === undefined ? 0.1 : opts.momentum;
    if (this.momentum !== null && !(this.momentum >= 0 && this.momentum <= 1)) {
      throw new ValueError(`${op}: momentum must be in [0, 1] or null, got ${this.momentum}`);
    }
    this.affine = opts.affine ?? true;
    this.trackRunningStats = opts.trackRunningStats ?? true;
    this.weight = this.affine ? Parameter(ones([numFeatures])) : null;
    this.bias = this.affine ? Parameter(zeros([numFeatures])) : null;
    if (this.trackRunningStats) {
      this.registerBuffer('running_mean', zeros([numFeatures]));
      this.registerBuffer('running_var', ones([numFeatures]));
      this.registerBuffer('num_batches_tracked', zeros([], { dtype: 'int32' }));
    }
  }

  /** [numFeatures], or null without trackRunningStats. */
  get runningMean(): Tensor | null {
    return this.trackRunningStats ? this.buffer('running_mean') : null;
  }
  get runningVar(): Tensor | null {
    return this.trackRunningStats ? this.buffer('running_var') : null;
  }
  /** Training batches seen (int32 scalar), or null without trackRunningStats. */
  get numBatchesTracked(): Tensor | null {
    return this.trackRunningStats ? this.buffer('num_batches_tracked') : null;
  }

  /** Running statistics back to mean 0, variance 1, no batches. */
  resetRunningStats(): void {
    if (!this.trackRunningStats) return;
    noGrad(() => {
      init.zeros_(this.runningMean!);
      init.ones_(this.runningVar!);
      this.numBatchesTracked!.copy_(zeros([], { dtype: 'int32' }));
    });
  }

  resetParameters(): void {
    this.resetRunningStats();
    if (this.weight) init.ones_(this.weight);
    if (this.bias) init.zeros_(this.bias);
  }

  forward(x: Tensor): Tensor {
    if (!this.ranks.includes(x.ndim)) {
      throw new ShapeError(
        `${this.op}: expected a ${this.ranks.map((r) => `${r}-D`).join(' or ')} input, got ${fmt(x.shape)}`,
      );
    }
    if (x.shape[1] !== this.numFeatures) {
      throw new ShapeError(
        `${this.op}: input ${fmt(x.shape)} has ${x.shape[1]} channels in dim 1, expected numFeatures ${this.numFeatures}`,
      );
    }
    // Checked before num_batches_tracked moves, so a rejected batch changes nothing.
    if (this.training && x.size / this.numFeatures <= 1) {
      throw new ValueError(
        `${this.op}: expected more than 1 value per channel when training, got input size ${fmt(x.shape)}`,
      );
    }
    let momentum = this.momentum ?? 0;
    if (this.training && this.trackRunningStats) {
      const tracked = this.numBatchesTracked!;
      noGrad(() => tracked.copy_(tracked.add(1)));
      // momentum null: the cumulative average, each batch weighted 1 / batches so far.
      if (this.momentum === null) momentum = 1 / (tracked.item() as number);
    }
    const useBatch = this.training || !this.trackRunningStats;
    return batchNorm(x, {
      runningMean: !this.training || this.trackRunningStats ? this.runningMean : null,
      runningVar: !this.training || this.trackRunningStats ? this.runningVar : null,
      weight: this.weight,
      bias: this.bias,
      training: useBatch,
      momentum,
      eps: this.eps,
    });
  }

  override extraRepr(): string {
    const m = this.momentum === null ? 'None' : pyFloat(this.momentum);
    return `${this.numFeatures}, eps=${pyFloat(this.eps)}, momentum=${m}, affine=${pyBool(this.affine)}, track_running_stats=${pyBool(this.trackRunningStats)}`;
  }
}

/** `torch.nn.BatchNorm2d`: x [N, C, H, W], statistics per channel. */
export class BatchNorm2d extends BatchNormNd {
  constructor(numFeatures: number, opts: BatchNormModuleOptions = {}) {
    super('BatchNorm2d', [4], numFeatures, opts);
  }
}

/** `torch.nn.BatchNorm1d`: x [N, C] or [N, C, L], statistics per channel. */
export class BatchNorm1d extends BatchNormNd {
  constructor(numFeatures: number, opts: BatchNormModuleOptions = {}) {
    super('BatchNorm1d', [2, 3], numFeatures, opts);
  }
}
