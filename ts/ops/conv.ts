// Convolutions (`conv1d`, `conv2d`, `convTranspose2d`): option checking and the reduction of
// every form to a batched 2-d convolution, which runs the fused kernels (ts/ops/conv-kernel.ts).
// The composition they are tested against stays here: `unfold` turns every receptive field
// into a column, one (grouped, batched) matmul with the weight gives the output, and `fold` is
// the transposed convolution's col2im; autograd derives its backward.
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { matmul } from './matmul.js';
import { fold, pad, unfold } from './pad.js';
import { fused } from './fusion.js';
import { conv2dFused } from './conv-kernel.js';

/** An int for every spatial dim, or one per dim; 'same' and 'valid' as in PyTorch. */
export type ConvPadding = number | readonly number[] | 'same' | 'valid';

export interface ConvOptions {
  /** Default 1. */
  stride?: number | readonly number[];
  /** Zero padding on both sides of every spatial dim, 'valid' (none) or 'same' (the output
   * keeps the input's size; stride 1 only; an odd total puts the extra element after). */
  padding?: ConvPadding;
  /** Default 1. */
  dilation?: number | readonly number[];
  /** Input and output channels split into this many independent groups; default 1. */
  groups?: number;
}

export interface ConvTransposeOptions {
  stride?: number | readonly number[];
  /** `dilation · (kernel - 1) - padding` zero padding is added to both sides of the input. */
  padding?: number | readonly number[];
  /** Extra size added to one side of the output (smaller than stride or dilation). */
  outputPadding?: number | readonly number[];
  groups?: number;
  dilation?: number | readonly number[];
}

/** `v` as `n` integers >= min (one number for all dims, or a tuple of n). */
export function convTuple(op: string, name: string, v: unknown, n: number, min: number): number[] {
  const t = typeof v === 'number' ? Array<number>(n).fill(v) : Array.isArray(v) ? [...v] : null;
  if (!t || t.length !== n || !t.every((s) => Number.isInteger(s) && s >= min)) {
    throw new ValueError(
      `${op}: ${name} must be an integer >= ${min} or ${n} of them, got ${JSON.stringify(v)}`,
    );
  }
  return t as number[];
}

function checkGroups(op: string, groups: unknown): number {
  if (typeof groups !== 'number' || !Number.isInteger(groups) || groups < 1) {
    throw new ValueError(`${op}: groups must be a positive integer, got ${String(groups)}`);
  }
  return groups;
}

function checkFloat(op: string, what: string, t: Tensor): void {
  if (t.dtype !== 'float32') throw new DTypeError(`${op}: ${what} must be float32, got ${t.dtype}`);
}

function checkBias(op: string, bias: Tensor | null | undefined, outChannels: number): void {
  if (!bias) return;
  checkFloat(op, 'bias', bias);
  if (bias.ndim !== 1 || bias.shape[0] !== outChannels) {
    throw new ShapeError(
      `${op}: bias must be [${outChannels}] (one per output channel), got ${fmt(bias.shape)}`,
    );
  }
}

/** Checks an input of `nd` spatial dims (batched or not); returns it batched. */
function batchedInput(op: string, x: Tensor, nd: number): Tensor {
  checkFloat(op, 'input', x);
  if (x.ndim !== nd + 1 && x.ndim !== nd + 2) {
    throw new ShapeError(
      `${op}: expected a ${nd + 1}-D (unbatched) or ${nd + 2}-D (batched) input, got ${fmt(x.shape)}`,
    );
  }
  return x.ndim === nd + 2 ? x : x.unsqueeze(0);
}

/**
 * Resolves `padding` for kernel `k` and dilation `d`: symmetric amounts for unfold, plus the
 * explicit [lo, hi] pairs (from the last dim back, as `pad` takes them) when 'same' needs an
 * odd total.
 */
export function convPadding(
  op: string,
  padding: ConvPadding,
  k: readonly number[],
  d: readonly number[],
  stride: readonly number[],
): { symmetric: number[]; explicit: number[] | null } {
  const n = k.length;
  if (padding === 'valid') return { symmetric: Array<number>(n).fill(0), explicit: null };
  if (padding === 'same') {
    if (stride.some((s) => s !== 1)) {
      throw new ValueError(`${op}: padding='same' is not supported for strided convolutions`);
    }
    const total = k.map((ki, i) => d[i] * (ki - 1));
    const lo = total.map((t) => Math.floor(t / 2));
    if (total.every((t, i) => t === 2 * lo[i])) return { symmetric: lo, explicit: null };
    const explicit: number[] = [];
    for (let i = n - 1; i >= 0; i--) explicit.push(lo[i], total[i] - lo[i]);
    return { symmetric: Array<number>(n).fill(0), explicit };
  }
  if (typeof padding === 'string') {
    throw new ValueError(
      `${op}: invalid padding string '${padding}', should be one of 'valid', 'same'`,
    );
  }
  return { symmetric: convTuple(op, 'padding', padding, n, 0), explicit: null };
}

/**
 * The batched 2-d convolution every public form reduces to: x [N, C, H, W], weight
 * [Co, C / groups, kh, kw], symmetric zero padding already resolved. Runs the fused kernels
 * (ts/ops/conv-kernel.ts) unless composition is asked for or an operand is empty.
 */
function conv2dBatched(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  stride: number[],
  padding: number[],
  dilation: number[],
  groups: number,
): Tensor {
  if (fused.conv && x.size > 0 && weight.size > 0) {
    return conv2dFused(x, weight, bias, stride, padding, dilation, groups);
  }
  return conv2dComposed(x, weight, bias, stride, padding, dilation, groups);
}

/** The definition: unfold every window into a column, then one (grouped, batched) GEMM. */
function conv2dComposed(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  stride: number[],
  padding: number[],
  dilation: number[],
  groups: number,
): Tensor {
  const [n, , h, w] = x.shape;
  const [co, cig, kh, kw] = weight.shape;
  const blocks = (size: number, i: number, k: number) =>
    Math.floor((size + 2 * padding[i] - dilation[i] * (k - 1) - 1) / stride[i]) + 1;
  const oh = blocks(h, 0, kh);
  const ow = blocks(w, 1, kw);
  const cols = unfold(x, [kh, kw], {
    stride: [stride[0], stride[1]],
    padding: [padding[0], padding[1]],
    dilation: [dilation[0], dilation[1]],
  });
  const k = cig * kh * kw;
  const l = oh * ow;
  // [Co, K] · [N, K, L], or per group [g, Co/g, K] · [N, g, K, L].
  const y =
    groups === 1
      ? matmul(weight.reshape([co, k]), cols)
      : matmul(weight.reshape([groups, co / groups, k]), cols.reshape([n, groups, k, l]));
  const out = y.reshape([n, co, oh, ow]);
  return bias ? out.add(bias.reshape([co, 1, 1])) : out;
}

/** Shared by conv1d and conv2d: `nd` spatial dims, weight [Co, C / groups, ...kernel]. */
function convNd(
  op: string,
  nd: number,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null | undefined,
  opts: ConvOptions,
): Tensor {
  const xb = batchedInput(op, x, nd);
  checkFloat(op, 'weight', weight);
  if (weight.ndim !== nd + 2) {
    throw new ShapeError(
      `${op}: weight must be ${nd + 2}-D [outChannels, inChannels / groups, ...kernel], got ${fmt(weight.shape)}`,
    );
  }
  const groups = checkGroups(op, opts.groups ?? 1);
  const [co, cig] = weight.shape;
  const kernel = weight.shape.slice(2);
  if (co % groups !== 0) {
    throw new ShapeError(
      `${op}: given groups=${groups}, expected weight to be divisible by ${groups} at dimension 0, but got weight of size ${fmt(weight.shape)}`,
    );
  }
  if (xb.shape[1] !== cig * groups) {
    throw new ShapeError(
      `${op}: given groups=${groups}, weight of size ${fmt(weight.shape)}, expected input ${fmt(x.shape)} to have ${cig * groups} channels, but got ${xb.shape[1]} channels`,
    );
  }
  checkBias(op, bias, co);
  const stride = convTuple(op, 'stride', opts.stride ?? 1, nd, 1);
  const dilation = convTuple(op, 'dilation', opts.dilation ?? 1, nd, 1);
  const pads = convPadding(op, opts.padding ?? 0, kernel, dilation, stride);
  let input = pads.explicit ? pad(xb, pads.explicit) : xb;
  const spatial = input.shape.slice(2);
  const fits = spatial.every(
    (s, i) => s + 2 * pads.symmetric[i] >= dilation[i] * (kernel[i] - 1) + 1,
  );
  if (!fits) {
    throw new ShapeError(
      `${op}: kernel ${fmt(kernel)} with dilation ${fmt(dilation)} and padding ${fmt(pads.symmetric)} is larger than the padded input ${fmt(x.shape)}`,
    );
  }
  // conv1d is conv2d over a height of 1.
  const two = (v: number[], fill: number) => (nd === 2 ? v : [fill, v[0]]);
  let w2 = weight;
  if (nd === 1) {
    input = input.unsqueeze(2);
    w2 = weight.unsqueeze(2);
  }
  const out = conv2dBatched(
    input,
    w2,
    bias ?? null,
    two(stride, 1),
    two(pads.symmetric, 0),
    two(dilation, 1),
    groups,
  );
  const outNd = nd === 1 ? out.squeeze(2) : out;
  return x.ndim === nd + 2 ? outNd : outNd.squeeze(0);
}

/** `torch.nn.functional.conv2d`: x [N, C, H, W] or [C, H, W], weight [Co, C / groups, kh, kw]. */
export function conv2d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  opts: ConvOptions = {},
): Tensor {
  return convNd('conv2d', 2, x, weight, bias, opts);
}

/** `torch.nn.functional.conv1d`: x [N, C, L] or [C, L], weight [Co, C / groups, k]. */
export function conv1d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  opts: ConvOptions = {},
): Tensor {
  return convNd('conv1d', 1, x, weight, bias, opts);
}

/**
 * `torch.nn.functional.conv_transpose2d` (the gradient of conv2d with respect to its input):
 * x [N, Cin, H, W] or unbatched, weight [Cin, Co / groups, kh, kw]. Output size per dim:
 * (H - 1) · stride - 2 · padding + dilation · (k - 1) + outputPadding + 1.
 */
export function convTranspose2d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  opts: ConvTransposeOptions = {},
): Tensor {
  const op = 'convTranspose2d';
  const xb = batchedInput(op, x, 2);
  checkFloat(op, 'weight', weight);
  if (weight.ndim !== 4) {
    throw new ShapeError(
      `${op}: weight must be 4-D [inChannels, outChannels / groups, kH, kW], got ${fmt(weight.shape)}`,
    );
  }
  const groups = checkGroups(op, opts.groups ?? 1);
  const [cin, cog, kh, kw] = weight.shape;
  if (cin % groups !== 0) {
    throw new ShapeError(
      `${op}: given groups=${groups}, expected weight to be divisible by ${groups} at dimension 0, but got weight of size ${fmt(weight.shape)}`,
    );
  }
  if (xb.shape[1] !== cin) {
    throw new ShapeError(
      `${op}: given transposed=1, weight of size ${fmt(weight.shape)}, expected input ${fmt(x.shape)} to have ${cin} channels, but got ${xb.shape[1]} channels`,
    );
  }
  const co = cog * groups;
  checkBias(op, bias, co);
  const stride = convTuple(op, 'stride', opts.stride ?? 1, 2, 1);
  const padding = convTuple(op, 'padding', opts.padding ?? 0, 2, 0);
  const dilation = convTuple(op, 'dilation', opts.dilation ?? 1, 2, 1);
  const outPad = convTuple(op, 'outputPadding', opts.outputPadding ?? 0, 2, 0);
  if (outPad.some((p, i) => p >= stride[i] && p >= dilation[i])) {
    throw new ValueError(
      `${op}: output padding must be smaller than either stride or dilation, got outputPadding ${fmt(outPad)}, stride ${fmt(stride)}, dilation ${fmt(dilation)}`,
    );
  }
  const [n, , h, w] = xb.shape;
  const k = [kh, kw];
  const size = [h, w].map(
    (s, i) => (s - 1) * stride[i] - 2 * padding[i] + dilation[i] * (k[i] - 1) + outPad[i] + 1,
  );
  if (size.some((s) => s < 1)) {
    throw new ShapeError(
      `${op}: input ${fmt(x.shape)} with kernel ${fmt(k)}, stride ${fmt(stride)}, padding ${fmt(padding)} gives an empty output ${fmt(size)}`,
    );
  }
  // fold reads one column per window of the output; an output padding at least the stride
  // (possible under dilation) makes one more window, which sees zeros.
  const windows = size.map(
    (s, i) => Math.floor((s + 2 * padding[i] - dilation[i] * (k[i] - 1) - 1) / stride[i]) + 1,
  );
  const input =
    windows[0] > h || windows[1] > w ? pad(xb, [0, windows[1] - w, 0, windows[0] - h]) : xb;
  const l = windows[0] * windows[1];
  // Per group: [Cin/g, Co/g · kh · kw]ᵀ · [Cin/g, L] → the columns fold sums into the output.
  const cols = matmul(
    weight.reshape([groups, cin / groups, cog * kh * kw]),
    input.reshape([n, groups, cin / groups, l]),
    { transA: true },
  );
  let out = fold(cols.reshape([n, co * kh * kw, l]), [size[0], size[1]], [kh, kw], {
    stride: [stride[0], stride[1]],
    padding: [padding[0], padding[1]],
    dilation: [dilation[0], dilation[1]],
  });
  if (bias) out = out.add(bias.reshape([co, 1, 1]));
  return x.ndim === 4 ? out : out.squeeze(0);
}
