// nn.MultiheadAttention with torch.nn's parameter names (in_proj_weight, in_proj_bias,
// out_proj.*, or q/k/v_proj_weight when kdim/vdim differ), so state dicts move both ways. The
// field names are torch's snake_case because module fields are the state-dict names.
// needWeights=false runs the fused scaledDotProductAttention kernel (PyTorch's fast path);
// needWeights=true builds the weights explicitly, since they are returned.
import { DTypeError, ShapeError, ValueError, fmt } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { noGrad } from '../../autograd/node.js';
import { full, zeros } from '../../ops/creation.js';
import { where } from '../../ops/elementwise.js';
import { Module, Parameter } from '../module.js';
import { Linear } from '../layers.js';
import * as F from '../functional.js';
import * as init from '../init.js';

export interface MultiheadAttentionOptions {
  /** Dropout on the attention weights while training (default 0). */
  dropout?: number;
  /** Biases of the input and output projections (default true). */
  bias?: boolean;
  /** Key width (default embedDim); different from embedDim gives separate projections. */
  kdim?: number | null;
  /** Value width (default embedDim). */
  vdim?: number | null;
  /** Inputs and output are [N, L, E] instead of [L, N, E] (default false). */
  batchFirst?: boolean;
}

export interface MultiheadAttentionForwardOptions {
  /**
   * [N, S] (or [S] unbatched). int32 as torch's bool: non-zero marks a key to IGNORE
   * (padding); float32 is added to the scores.
   */
  keyPaddingMask?: Tensor | null;
  /** Also return the attention weights (default true, as torch). */
  needWeights?: boolean;
  /**
   * [L, S] or [N·numHeads, L, S]. int32 as torch's bool: non-zero marks a position that may
   * NOT be attended; float32 is added to the scores.
   */
  attnMask?: Tensor | null;
  /** Average the returned weights over heads ([N, L, S]) rather than [N, H, L, S] (default true). */
  averageAttnWeights?: boolean;
  /** With no attnMask, hides keys after each query (a causal mask); default false. */
  isCausal?: boolean;
}

/** The out_proj class torch uses (its name shows in the repr); a plain Linear. */
export class NonDynamicallyQuantizableLinear extends Linear {}

const OP = 'MultiheadAttention';

/** Multi-head attention: `Concat(head₁..head_H) W_o`, `head_i = Attention(Q W_qᵢ, K W_kᵢ, V W_vᵢ)`. */
export class MultiheadAttention extends Module {
  // Declared in torch's registration order: field order is state-dict order.
  /** [3·E, E] when kdim = vdim = E, else null. */
  in_proj_weight: Tensor | null = null;
  /** [E, E], [E, kdim], [E, vdim] when kdim or vdim differ from E, else null. */
  q_proj_weight: Tensor | null = null;
  k_proj_weight: Tensor | null = null;
  v_proj_weight: Tensor | null = null;
  /** [3·E], or null with `{bias: false}`. */
  in_proj_bias: Tensor | null = null;
  out_proj: NonDynamicallyQuantizableLinear;
  readonly kdim: number;
  readonly vdim: number;
  readonly headDim: number;
  readonly dropout: number;
  readonly batchFirst: boolean;

  constructor(
    readonly embedDim: number,
    readonly numHeads: number,
    opts: MultiheadAttentionOptions = {},
  ) {
    super();
    for (const [name, v] of [
      ['embedDim', embedDim],
      ['numHeads', numHeads],
    ] as const) {
      if (!Number.isInteger(v) || v <= 0) {
        throw new ValueError(`${OP}: ${name} must be a positive integer, got ${v}`);
      }
    }
    if (embedDim % numHeads !== 0) {
      throw new ValueError(`${OP}: embedDim ${embedDim} must be divisible by numHeads ${numHeads}`);
    }
    const p = opts.dropout ?? 0;
    if (!(p >= 0 && p <= 1)) throw new ValueError(`${OP}: dropout must be in [0, 1], got ${p}`);
    this.kdim = opts.kdim ?? embedDim;
    this.vdim = opts.vdim ?? embedDim;
    this.headDim = embedDim / numHeads;
    this.dropout = p;
    this.batchFirst = opts.batchFirst ?? false;
    const E = embedDim;
    if (this.sameEmbedDim) {
      this.in_proj_weight = Parameter(zeros([3 * E, E]));
    } else {
      this.q_proj_weight = Parameter(zeros([E, E]));
      this.k_proj_weight = Parameter(zeros([E, this.kdim]));
      this.v_proj_weight = Parameter(zeros([E, this.vdim]));
    }
    const bias = opts.bias ?? true;
    if (bias) this.in_proj_bias = Parameter(zeros([3 * E]));
    this.out_proj = new NonDynamicallyQuantizableLinear(E, E, { bias });
    this.resetParameters();
  }

  /** Whether q, k and v share one packed `in_proj_weight` (kdim = vdim = embedDim). */
  get sameEmbedDim(): boolean {
    return this.kdim === this.embedDim && this.vdim === this.embedDim;
  }

  /** torch's `_reset_parameters`: xavier-uniform projections, zero biases. */
  resetParameters(): void {
    for (const w of [
      this.in_proj_weight,
      this.q_proj_weight,
      this.k_proj_weight,
      this.v_proj_weight,
    ]) {
      if (w) init.xavierUniform_(w);
    }
    if (this.in_proj_bias) init.zeros_(this.in_proj_bias);
    if (this.out_proj.bias) init.zeros_(this.out_proj.bias);
  }

  /**
   * `query [L, N, E]`, `key [S, N, kdim]`, `value [S, N, vdim]` ([N, ·, ·] with batchFirst;
   * unbatched [L, E] etc. too) → `[output (like query), weights or null]`, the weights
   * `[N, L, S]` averaged over heads or `[N, H, L, S]`.
   */
  forward(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    opts: MultiheadAttentionForwardOptions = {},
  ): [Tensor, Tensor | null] {
    const needWeights = opts.needWeights ?? true;
    const E = this.embedDim;
    const H = this.numHeads;
    const batched = query.ndim === 3;
    if (
      (query.ndim !== 2 && query.ndim !== 3) ||
      key.ndim !== query.ndim ||
      value.ndim !== query.ndim
    ) {
      throw new ShapeError(
        `${OP}: query ${fmt(query.shape)}, key ${fmt(key.shape)} and value ${fmt(value.shape)} must all be 3-D (batched) or 2-D (unbatched)`,
      );
    }
    // Work in [N, L, E].
    const toNLE = (t: Tensor): Tensor =>
      !batched ? t.unsqueeze(0) : this.batchFirst ? t : t.transpose(0, 1);
    const [q0, k0, v0] = [query, key, value].map(toNLE);
    const [N, L] = q0.shape;
    const S = k0.shape[1];
    if (
      q0.shape[2] !== E ||
      k0.shape[2] !== this.kdim ||
      v0.shape[2] !== this.vdim ||
      k0.shape[0] !== N ||
      v0.shape[0] !== N ||
      v0.shape[1] !== S
    ) {
      throw new ShapeError(
        `${OP}: query ${fmt(query.shape)}, key ${fmt(key.shape)} and value ${fmt(value.shape)} do not fit embedDim ${E}, kdim ${this.kdim}, vdim ${this.vdim}${this.batchFirst ? ' (batchFirst)' : ''}`,
      );
    }
    const [wq, wk, wv] = this.sameEmbedDim
      ? [0, 1, 2].map((i) => this.in_proj_weight!.narrow(0, i * E, E))
      : [this.q_proj_weight!, this.k_proj_weight!, this.v_proj_weight!];
    const [bq, bk, bv] = this.in_proj_bias
      ? [0, 1, 2].map((i) => this.in_proj_bias!.narrow(0, i * E, E))
      : [null, null, null];
    // [N, len, E] → [N, H, len, headDim]
    const heads = (t: Tensor, len: number): Tensor =>
      t.reshape([N, len, H, this.headDim]).permute([0, 2, 1, 3]);
    const q = heads(F.linear(q0, wq, bq), L);
    const k = heads(F.linear(k0, wk, bk), S);
    const v = heads(F.linear(v0, wv, bv), S);
    const causalOnly = (opts.isCausal ?? false) && !opts.attnMask && !opts.keyPaddingMask;
    const mask = causalOnly ? null : this.combinedMask(opts, N, L, S, batched);
    const p = this.training ? this.dropout : 0;
    let out: Tensor;
    let weights: Tensor | null = null;
    if (!needWeights) {
      out = F.scaledDotProductAttention(q, k, v, {
        attnMask: mask,
        isCausal: causalOnly,
        dropoutP: p,
      });
    } else {
      let s = q.matmul(k.transpose(-2, -1)).mul(1 / Math.sqrt(this.headDim));
      const m = causalOnly ? causalMask(L, S) : mask;
      if (m) s = s.add(m);
      let w = F.softmax(s, -1);
      if (p > 0) w = F.dropout(w, { p });
      out = w.matmul(v);
      weights = (opts.averageAttnWeights ?? true) ? w.mean(1) : w;
      if (!batched) weights = weights.squeeze(0);
    }
    // [N, H, L, hd] → [N, L, E]
    let y = this.out_proj.forward(out.permute([0, 2, 1, 3]).reshape([N, L, E]));
    y = !batched ? y.squeeze(0) : this.batchFirst ? y : y.transpose(0, 1);
    return [y, weights];
  }

  /** attnMask and keyPaddingMask (and isCausal) as one float mask [N|1, H|1, L, S], or null. */
  private combinedMask(
    opts: MultiheadAttentionForwardOptions,
    N: number,
    L: number,
    S: number,
    batched: boolean,
  ): Tensor | null {
    const H = this.numHeads;
    let mask: Tensor | null = null;
    const am = opts.attnMask ?? (opts.isCausal ? causalMask(L, S) : null);
    if (am) {
      checkMaskDType('attnMask', am);
      const ok2 = am.ndim === 2 && am.shape[0] === L && am.shape[1] === S;
      const ok3 = am.ndim === 3 && am.shape[0] === N * H && am.shape[1] === L && am.shape[2] === S;
      if (!ok2 && !ok3) {
        throw new ShapeError(
          `${OP}: attnMask ${fmt(am.shape)} must be [${L}, ${S}] or [${N * H}, ${L}, ${S}] (N·numHeads, L, S)`,
        );
      }
      const f = additive(am);
      mask = ok3 ? f.reshape([N, H, L, S]) : f;
    }
    const kp = opts.keyPaddingMask;
    if (kp) {
      checkMaskDType('keyPaddingMask', kp);
      const want = batched ? [N, S] : [S];
      if (kp.ndim !== want.length || kp.shape.some((s, i) => s !== want[i])) {
        throw new ShapeError(
          `${OP}: keyPaddingMask ${fmt(kp.shape)} must be ${fmt(want)} (batch, source length)`,
        );
      }
      const f = additive(kp).reshape([N, 1, 1, S]);
      mask = mask ? mask.add(f) : f;
    }
    return mask;
  }
}

/** A torch-style mask (int32 non-zero = hidden, float32 added) as an additive float mask. */
function additive(m: Tensor): Tensor {
  return m.dtype === 'float32' ? m : noGrad(() => where(m, -Infinity, 0));
}

function checkMaskDType(name: string, m: Tensor): void {
  if (m.dtype !== 'int32' && m.dtype !== 'float32') {
    throw new DTypeError(
      `${OP}: ${name} must be int32 (non-zero = masked) or float32, got ${m.dtype}`,
    );
  }
}

/** `-inf` above the diagonal of an [L, S] float mask. */
export function causalMask(L: number, S: number): Tensor {
  return noGrad(() => full([L, S], -Infinity).triu(1));
}
