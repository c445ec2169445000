// `nb.nn.init`: PyTorch's torch.nn.init in camelCase. Each function overwrites a tensor in
// place (under noGrad, so parameters can be re-initialised outside a no-grad block) and
// returns it. Random fills draw a fresh tensor from the core's generators and copy it in,
// so they follow `nb.manualSeed`.
import { DTypeError, ValueError, fmt } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/node.js';
import { normal, tensor, uniform } from '../ops/creation.js';

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

/**
 * A (semi-)orthogonal matrix scaled by `gain`, as torch.nn.init.orthogonal_: the tensor is seen
 * as `[rows, cols]` (dims after the first flattened); a normal matrix is factored Q·R (of its
 * transpose when rows < cols) and Q's columns get the signs of R's diagonal, which makes Q
 * uniformly (Haar) distributed. Rows (or columns, whichever are fewer) are orthonormal.
 */
export function orthogonal_(t: Tensor, gain = 1): Tensor {
  if (t.ndim < 2) {
    throw new ValueError(
      `orthogonal_: needs a tensor with at least 2 dims, got shape ${fmt(t.shape)}`,
    );
  }
  if (t.size === 0) return t; // PyTorch leaves empty tensors alone
  const rows = t.shape[0];
  const cols = t.size / rows;
  return fillWith('orthogonal_', t, () => {
    const a = normal([rows, cols], 0, 1);
    const flat = Float64Array.from(a.toArray() as Float32Array);
    a.dispose();
    const q =
      rows < cols
        ? transposed(orthonormalColumns(transposed(flat, rows, cols), cols, rows), cols, rows)
        : orthonormalColumns(flat, rows, cols);
    return tensor(
      Float32Array.from(q, (v) => v * gain),
      { shape: t.shape },
    );
  });
}

/** A row-major `[r, c]` matrix transposed to `[c, r]`. */
function transposed(m: Float64Array, r: number, c: number): Float64Array {
  const out = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = m[i * c + j];
  return out;
}

/**
 * Q of the thin QR of a row-major `[m, n]` matrix (m >= n) with R's diagonal positive, by
 * Gram-Schmidt applied twice per column (which keeps Q orthogonal to rounding in float64).
 * Positive diag(R) is exactly PyTorch's `q * sign(diag(r))`.
 */
function orthonormalColumns(a: Float64Array, m: number, n: number): Float64Array {
  const q = new Float64Array(m * n);
  const v = new Float64Array(m);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < m; i++) v[i] = a[i * n + j];
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        let dot = 0;
        for (let i = 0; i < m; i++) dot += q[i * n + k] * v[i];
        for (let i = 0; i < m; i++) v[i] -= dot * q[i * n + k];
      }
    }
    let norm = 0;
    for (let i = 0; i < m; i++) norm += v[i] * v[i];
    norm = Math.sqrt(norm);
    for (let i = 0; i < m; i++) q[i * n + j] = v[i] / norm;
  }
  return q;
}

const SQRT_PI = Math.sqrt(Math.PI);

/** erf(x) in float64: its Taylor series for |x| <= 2, else from erfc. */
export function erf(x: number): number {
  if (Math.abs(x) > 2) return Math.sign(x) * (1 - erfc(Math.abs(x)));
  let term = x;
  let sum = x;
  for (let n = 1; n < 100; n++) {
    term *= (-x * x) / n;
    const t = term / (2 * n + 1);
    sum += t;
    if (Math.abs(t) <= 1e-17 * Math.abs(sum)) break;
  }
  return (2 / SQRT_PI) * sum;
}

/** erfc(x) in float64: a continued fraction for x >= 2 (no cancellation in the tail). */
export function erfc(x: number): number {
  if (x < 2) return 1 - erf(x);
  let k = x;
  for (let n = 80; n >= 1; n--) k = x + n / 2 / k;
  return Math.exp(-x * x) / (SQRT_PI * k);
}

/**
 * erf⁻¹(y) for y in (-1, 1): Winitzki's closed-form estimate refined by Newton steps on erf
 * (on erfc near ±1, where 1 - |y| carries the information).
 */
export function erfinv(y: number): number {
  if (y <= -1) return y === -1 ? -Infinity : NaN;
  if (y >= 1) return y === 1 ? Infinity : NaN;
  const s = Math.sign(y);
  const ay = Math.abs(y);
  const A = 0.147;
  const l = Math.log(1 - ay * ay);
  const b = 2 / (Math.PI * A) + l / 2;
  let x = Math.sqrt(Math.sqrt(b * b - l / A) - b);
  for (let i = 0; i < 6; i++) {
    const f = ay < 0.5 ? erf(x) - ay : 1 - ay - erfc(x);
    const step = f / ((2 / SQRT_PI) * Math.exp(-x * x));
    x -= step;
    if (Math.abs(step) <= 1e-15 * Math.abs(x)) break;
  }
  return s * x;
}

/** The standard normal CDF Φ(z). */
function normCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/**
 * N(mean, std²) truncated to [a, b], as torch.nn.init.trunc_normal_: uniform draws in
 * [2Φ(α) - 1, 2Φ(β) - 1] (α, β the standardised bounds) mapped through √2·erf⁻¹, so no draw
 * is rejected; results are clamped to [a, b] against rounding.
 */
export function truncNormal_(t: Tensor, mean = 0, std = 1, a = -2, b = 2): Tensor {
  for (const [k, v] of [
    ['mean', mean],
    ['std', std],
    ['a', a],
    ['b', b],
  ] as const) {
    if (!Number.isFinite(v)) throw new ValueError(`truncNormal_: ${k} must be finite, got ${v}`);
  }
  if (!(std > 0)) throw new ValueError(`truncNormal_: std must be > 0, got ${std}`);
  if (!(a < b)) throw new ValueError(`truncNormal_: needs a < b, got a = ${a}, b = ${b}`);
  const lo = 2 * normCdf((a - mean) / std) - 1;
  const hi = 2 * normCdf((b - mean) / std) - 1;
  return fillWith('truncNormal_', t, () => {
    const u = uniform(t.shape, lo, hi);
    const draws = u.toArray() as Float32Array;
    u.dispose();
    const out = draws.map((v) => {
      const x = mean + std * Math.SQRT2 * erfinv(v);
      return Math.min(b, Math.max(a, x));
    });
    return tensor(out, { shape: t.shape });
  });
}
