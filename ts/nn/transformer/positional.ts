// Positional encodings: a learned table, the fixed sinusoids of "Attention Is All You Need"
// (laid out as PyTorch's transformer tutorial: sin in even columns, cos in odd), and rotary
// embeddings (RoPE, rotate-half layout as in GPT-NeoX/LLaMA). All compose existing ops, so
// autograd needs nothing new.
import { ShapeError, ValueError, fmt } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { tensor, zeros } from '../../ops/creation.js';
import { cat } from '../../ops/shape.js';
import { Module, Parameter, pyFloat } from '../module.js';
import { Dropout } from '../layers.js';
import * as init from '../init.js';

function checkPositive(op: string, name: string, v: number, even = false): void {
  if (!Number.isInteger(v) || v <= 0 || (even && v % 2 !== 0)) {
    throw new ValueError(
      `${op}: ${name} must be a positive${even ? ' even' : ''} integer, got ${v}`,
    );
  }
}

/**
 * The `[length, dModel]` sinusoid table: column `2i` is `sin(pos / 10000^(2i/dModel))`, column
 * `2i + 1` the matching cos (computed in float64, stored float32).
 */
export function sinusoidalPositionalEncoding(length: number, dModel: number): Tensor {
  if (!Number.isInteger(length) || length < 0) {
    throw new ValueError(
      `sinusoidalPositionalEncoding: length must be a non-negative integer, got ${length}`,
    );
  }
  checkPositive('sinusoidalPositionalEncoding', 'dModel', dModel);
  const out = new Float32Array(length * dModel);
  for (let pos = 0; pos < length; pos++) {
    for (let i = 0; i < dModel; i += 2) {
      const angle = pos * Math.exp((-i * Math.log(10000)) / dModel);
      out[pos * dModel + i] = Math.sin(angle);
      if (i + 1 < dModel) out[pos * dModel + i + 1] = Math.cos(angle);
    }
  }
  return tensor(out, { shape: [length, dModel] });
}

/** Where the sequence dim is: [L, N, E] by default, [N, L, E] with batchFirst, or [L, E]. */
function seqLen(op: string, x: Tensor, dModel: number, batchFirst: boolean): number {
  if ((x.ndim !== 2 && x.ndim !== 3) || x.shape[x.ndim - 1] !== dModel) {
    throw new ShapeError(
      `${op}: input ${fmt(x.shape)} must be [L, N, ${dModel}], [N, L, ${dModel}] (batchFirst) or [L, ${dModel}]`,
    );
  }
  return x.ndim === 3 && batchFirst ? x.shape[1] : x.shape[0];
}

/** The `[L, E]` table rows shaped to add onto `x`. */
function alignTo(table: Tensor, x: Tensor, batchFirst: boolean): Tensor {
  if (x.ndim === 2 || batchFirst) return table; // [L, E] broadcasts over a leading N
  return table.unsqueeze(1); // [L, 1, E] over [L, N, E]
}

export interface PositionalOptions {
  /** Longest sequence the table covers (default 5000). */
  maxLen?: number;
  /** Dropout after the addition (default 0). */
  dropout?: number;
  /** Inputs are [N, L, E] (default false: [L, N, E]). */
  batchFirst?: boolean;
}

/** Adds the fixed sinusoid table, then dropout. The table is a non-persistent buffer `pe`. */
export class SinusoidalPositionalEncoding extends Module {
  dropout: Dropout;
  readonly maxLen: number;
  readonly batchFirst: boolean;

  constructor(
    readonly dModel: number,
    opts: PositionalOptions = {},
  ) {
    super();
    this.maxLen = opts.maxLen ?? 5000;
    checkPositive('SinusoidalPositionalEncoding', 'maxLen', this.maxLen);
    this.batchFirst = opts.batchFirst ?? false;
    this.dropout = new Dropout(opts.dropout ?? 0);
    this.registerBuffer('pe', sinusoidalPositionalEncoding(this.maxLen, dModel), false);
  }

  forward(x: Tensor): Tensor {
    const L = seqLen('SinusoidalPositionalEncoding', x, this.dModel, this.batchFirst);
    if (L > this.maxLen) {
      throw new ShapeError(
        `SinusoidalPositionalEncoding: sequence length ${L} exceeds maxLen ${this.maxLen}`,
      );
    }
    const rows = this.buffer('pe').narrow(0, 0, L);
    return this.dropout.forward(x.add(alignTo(rows, x, this.batchFirst)));
  }

  override extraRepr(): string {
    return `d_model=${this.dModel}, max_len=${this.maxLen}`;
  }
}

/** Adds a learned `[maxLen, dModel]` table (`weight`, initialised N(0, 1) like nn.Embedding). */
export class LearnedPositionalEncoding extends Module {
  weight: Tensor;
  dropout: Dropout;
  readonly batchFirst: boolean;

  constructor(
    readonly maxLen: number,
    readonly dModel: number,
    opts: Omit<PositionalOptions, 'maxLen'> = {},
  ) {
    super();
    checkPositive('LearnedPositionalEncoding', 'maxLen', maxLen);
    checkPositive('LearnedPositionalEncoding', 'dModel', dModel);
    this.weight = Parameter(zeros([maxLen, dModel]));
    init.normal_(this.weight);
    this.dropout = new Dropout(opts.dropout ?? 0);
    this.batchFirst = opts.batchFirst ?? false;
  }

  forward(x: Tensor): Tensor {
    const L = seqLen('LearnedPositionalEncoding', x, this.dModel, this.batchFirst);
    if (L > this.maxLen) {
      throw new ShapeError(
        `LearnedPositionalEncoding: sequence length ${L} exceeds maxLen ${this.maxLen}`,
      );
    }
    return this.dropout.forward(x.add(alignTo(this.weight.narrow(0, 0, L), x, this.batchFirst)));
  }

  override extraRepr(): string {
    return `max_len=${this.maxLen}, d_model=${this.dModel}`;
  }
}

export interface RotaryTables {
  /** [length, dim]: cos of each position's angle, the half-width table repeated twice. */
  cos: Tensor;
  /** [length, dim]: the matching sin. */
  sin: Tensor;
}

/**
 * RoPE tables for `length` positions (from `offset`) and an even head width `dim`: position `p`
 * turns pair `(x_i, x_{i + dim/2})` by `p · base^(-2i/dim)`.
 */
export function rotaryEmbedding(
  length: number,
  dim: number,
  opts: { base?: number; offset?: number } = {},
): RotaryTables {
  checkPositive('rotaryEmbedding', 'dim', dim, true);
  const base = opts.base ?? 10000;
  const offset = opts.offset ?? 0;
  if (!(base > 0))
    throw new ValueError(`rotaryEmbedding: base must be positive, got ${pyFloat(base)}`);
  const half = dim / 2;
  const c = new Float32Array(length * dim);
  const s = new Float32Array(length * dim);
  for (let p = 0; p < length; p++) {
    for (let i = 0; i < half; i++) {
      const a = (p + offset) * Math.pow(base, (-2 * i) / dim);
      c[p * dim + i] = c[p * dim + i + half] = Math.cos(a);
      s[p * dim + i] = s[p * dim + i + half] = Math.sin(a);
    }
  }
  return { cos: tensor(c, { shape: [length, dim] }), sin: tensor(s, { shape: [length, dim] }) };
}

/**
 * Rotates `x [..., L, dim]` (queries or keys, any leading dims) by the tables of
 * `rotaryEmbedding(L, dim)`: `x · cos + rotateHalf(x) · sin` with
 * `rotateHalf([a, b]) = [-b, a]` over the two halves of the last dim.
 */
export function applyRotaryEmbedding(x: Tensor, tables: RotaryTables): Tensor {
  const { cos, sin } = tables;
  const [L, D] = x.shape.slice(-2);
  if (
    x.ndim < 2 ||
    cos.ndim !== 2 ||
    cos.shape[0] !== L ||
    cos.shape[1] !== D ||
    sin.shape.some((v, i) => v !== cos.shape[i])
  ) {
    throw new ShapeError(
      `applyRotaryEmbedding: input ${fmt(x.shape)} must end in [L, dim] matching the tables ${fmt(cos.shape)}`,
    );
  }
  const half = D / 2;
  const a = x.narrow(-1, 0, half);
  const b = x.narrow(-1, half, half);
  const rotated = cat([b.neg(), a], -1);
  return x.mul(cos).add(rotated.mul(sin));
}
