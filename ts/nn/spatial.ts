// Spatial helpers of convolutional networks: `dropout2d` / Dropout2d (whole channels zeroed)
// and Upsample (the module form of `interpolate`).
import { ValueError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { releaseIntermediates } from '../autograd/node.js';
import { drawRandom } from '../ops/random.js';
import { interpolate, type InterpolateMode } from '../ops/interpolate.js';
import { Module, pyFloat } from './module.js';

/**
 * `torch.nn.functional.dropout2d`: zeroes whole channels (the first two dims pick a channel,
 * as PyTorch reads a 3-D input as [N, C, L]) with probability p and scales the rest by
 * 1 / (1 - p). Returns `x` itself when not training or when p = 0.
 */
export function dropout2d(x: Tensor, opts: { p?: number; training?: boolean } = {}): Tensor {
  const p = opts.p ?? 0.5;
  if (!(p >= 0 && p <= 1)) throw new ValueError(`dropout2d: p must be in [0, 1], got ${p}`);
  if (x.ndim !== 3 && x.ndim !== 4) {
    throw new ValueError(`dropout2d: expected a 3-D or 4-D input, got ${x.ndim}-D`);
  }
  if (!(opts.training ?? true) || p === 0) return x;
  const mask = Tensor.empty([x.shape[0], x.shape[1], ...Array<number>(x.ndim - 2).fill(1)]);
  drawRandom('rng_bernoulli_f32', mask.ptr, mask.size, 1 - p, p === 1 ? 0 : 1 / (1 - p));
  const out = x.mul(mask);
  releaseIntermediates(out, [mask]);
  return out;
}

/** `torch.nn.Dropout2d`. */
export class Dropout2d extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new ValueError(`Dropout2d: p must be in [0, 1], got ${p}`);
  }

  forward(x: Tensor): Tensor {
    return dropout2d(x, { p: this.p, training: this.training });
  }

  override extraRepr(): string {
    return `p=${pyFloat(this.p)}, inplace=False`;
  }
}

export interface UpsampleOptions {
  size?: number | readonly number[] | null;
  scaleFactor?: number | readonly number[] | null;
  /** Default 'nearest'. */
  mode?: InterpolateMode;
  alignCorners?: boolean | null;
}

/** `torch.nn.Upsample`. */
export class Upsample extends Module {
  readonly size: number | readonly number[] | null;
  readonly scaleFactor: number | readonly number[] | null;
  readonly mode: InterpolateMode;
  readonly alignCorners: boolean | null;

  constructor(opts: UpsampleOptions = {}) {
    super();
    this.size = opts.size ?? null;
    this.scaleFactor = opts.scaleFactor ?? null;
    this.mode = opts.mode ?? 'nearest';
    this.alignCorners = opts.alignCorners ?? null;
  }

  forward(x: Tensor): Tensor {
    return interpolate(x, {
      size: this.size,
      scaleFactor: this.scaleFactor,
      mode: this.mode,
      alignCorners: this.alignCorners,
    });
  }

  override extraRepr(): string {
    const f = (v: number | readonly number[]) =>
      typeof v === 'number' ? pyFloat(v) : `(${v.map(pyFloat).join(', ')})`;
    const what =
      this.scaleFactor !== null
        ? `scale_factor=${f(this.scaleFactor)}`
        : `size=${typeof this.size === 'number' ? this.size : `(${(this.size ?? []).join(', ')})`}`;
    return `${what}, mode=${this.mode}`;
  }
}
