// `nb.nn.init`: PyTorch's torch.nn.init in camelCase. Each function overwrites a tensor in
// place (under noGrad, so parameters can be re-initialised outside a no-grad block) and
// returns it. Random fills draw a fresh tensor from the core's generators and copy it in,
// so they follow `nb.manualSeed`.
import { DTypeError, ValueError, fmt } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/node.js';
import { normal, uniform } from '../ops/creation.js';

export type Nonlinearity =
  | 'linear'
  | 'conv1d'
  | 'conv2d'
  | 'conv3d'
  | 'conv_transpose1d'
  | 'conv_transpose2d'
  | 'conv_transpose3d'
  | 'sigmoid'
  | 'tanh'
  | 'relu'
  | 'leaky_relu'
  | 'leakyRelu'
  | 'selu';

export type FanMode = 'fanIn' | 'fanOut' | 'fan_in' | 'fan_out';

export interface KaimingOptions {
  /** Negative slope of the leaky ReLU that follows (used only with 'leaky_relu'); default 0. */
  a?: number;
  /** 'fanIn' preserves the forward pass's variance, 'fanOut' the backward's; default 'fanIn'. */
  mode?: FanMode;
  /** Default 'leaky_relu' (with a = 0 that is ReLU's gain, √2), as in PyTorch. */
  nonlinearity?: Nonlinearity;
}

const LINEAR_GAIN = new Set<string>([
  'linear',
  'conv1d',
  'conv2d',
  'conv3d',
  'conv_transpose1d',
  'conv_transpose2d',
  'conv_transpose3d',
  'sigmoid',
]);

/** The recommended gain for a nonlinearity (torch.nn.init.calculate_gain). */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  if (LINEAR_GAIN.has(nonlinearity)) return 1;
  switch (nonlinearity) {
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu':
    case 'leakyRelu': {
      const slope = param ?? 0.01;
      if (!Number.isFinite(slope)) {
        throw new ValueError(`calculateGain: negative slope ${slope} is not a finite number`);
      }
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case 'selu':
      return 3 / 4;
    default:
      throw new ValueError(`calculateGain: unsupported nonlinearity ${String(nonlinearity)}`);
  }
}

/** Fan-in and fan-out as PyTorch counts them: dims 1 and 0 times the receptive field. */
export function calculateFanInAndFanOut(t: Tensor): { fanIn: number; fanOut: number } {
  if (t.ndim < 2) {
    throw new ValueError(
      `init: fan in and fan out need a tensor with at least 2 dims, got shape ${fmt(t.shape)}`,
    );
  }
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: t.shape[1] * receptive, fanOut: t.shape[0] * receptive };
}

/** Copies a fresh draw into `t` without recording a graph. */
function fillWith(op: string, t: Tensor, draw: () => Tensor): Tensor {
  if (t.dtype !== 'float32') {
    throw new DTypeError(`${op}: random initialisation needs a float32 tensor, got ${t.dtype}`);
  }
  noGrad(() => {
    const r = draw();
    try {
      t.copy_(r);
    } finally {
      r.dispose();
    }
  });
  return t;
}

export function uniform_(t: Tensor, a = 0, b = 1): Tensor {
  return fillWith('uniform_', t, () => uniform(t.shape, a, b));
}

export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  return fillWith('normal_', t, () => normal(t.shape, mean, std));
}

export function constant_(t: Tensor, value: number): Tensor {
  noGrad(() => t.fill_(value));
  return t;
}

export function zeros_(t: Tensor): Tensor {
  return constant_(t, 0);
}

export function ones_(t: Tensor): Tensor {
  return constant_(t, 1);
}

/** Glorot uniform: U(-a, a) with a = gain·√(6 / (fanIn + fanOut)). */
export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = calculateFanInAndFanOut(t);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -bound, bound);
}

/** Glorot normal: N(0, gain²·2 / (fanIn + fanOut)). */
export function xavierNormal_(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = calculateFanInAndFanOut(t);
  return normal_(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)));
}

/** The standard deviation He initialisation aims for: gain / √fan. */
function kaimingStd(op: string, t: Tensor, opts: KaimingOptions): number | null {
  const mode = opts.mode ?? 'fanIn';
  if (!['fanIn', 'fanOut', 'fan_in', 'fan_out'].includes(mode)) {
    throw new ValueError(`${op}: mode must be 'fanIn' or 'fanOut', got ${String(mode)}`);
  }
  const { fanIn, fanOut } = calculateFanInAndFanOut(t);
  // PyTorch skips zero-element tensors (with a warning) instead of dividing by a zero fan.
  if (t.size === 0) return null;
  const fan = mode === 'fanIn' || mode === 'fan_in' ? fanIn : fanOut;
  return calculateGain(opts.nonlinearity ?? 'leaky_relu', opts.a ?? 0) / Math.sqrt(fan);
}

/** He uniform: U(-b, b) with b = √3 · gain / √fan. */
export function kaimingUniform_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const std = kaimingStd('kaimingUniform_', t, opts);
  if (std === null) return t;
  const bound = Math.sqrt(3) * std;
  return uniform_(t, -bound, bound);
}

/** He normal: N(0, gain² / fan). */
export function kaimingNormal_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const std = kaimingStd('kaimingNormal_', t, opts);
  if (std === null) return t;
  return normal_(t, 0, std);
}
