// nn.TransformerEncoderLayer and nn.TransformerEncoder, with torch.nn's submodule names
// (self_attn, linear1, dropout, linear2, norm1, norm2, dropout1, dropout2; layers.N, norm), so
// state dicts move both ways. Attention runs with needWeights=false: the fused kernel.
import { ValueError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { noGrad } from '../../autograd/node.js';
import { Module, layerRunner } from '../module.js';
import { Dropout, LayerNorm, Linear, ModuleList } from '../layers.js';
import * as F from '../functional.js';
import { MultiheadAttention } from './attention.js';

export type TransformerActivation = 'relu' | 'gelu';

export interface TransformerLayerOptions {
  /** Width of the feed-forward block (default 2048). */
  dimFeedforward?: number;
  /** Dropout after attention, inside and after the feed-forward block (default 0.1). */
  dropout?: number;
  /** Feed-forward activation (default 'relu'). */
  activation?: TransformerActivation;
  /** LayerNorm eps (default 1e-5). */
  layerNormEps?: number;
  /** Inputs are [N, L, E] instead of [L, N, E] (default false). */
  batchFirst?: boolean;
  /** Pre-norm (LayerNorm before each block) instead of post-norm (default false). */
  normFirst?: boolean;
  /** Biases in the linear layers and LayerNorms (default true). */
  bias?: boolean;
}

export interface EncoderForwardOptions {
  /** [L, L] or [N·nhead, L, L]; int32 non-zero = may not attend, float32 added (as torch). */
  srcMask?: Tensor | null;
  /** [N, L]; int32 non-zero = padding to ignore, float32 added. */
  srcKeyPaddingMask?: Tensor | null;
  /** Without srcMask, a causal mask. */
  isCausal?: boolean;
}

/** Resolved options, kept so a layer can be copied (TransformerEncoder's clones). */
export interface LayerConfig {
  dimFeedforward: number;
  dropout: number;
  activation: TransformerActivation;
  layerNormEps: number;
  batchFirst: boolean;
  normFirst: boolean;
  bias: boolean;
}

export function layerConfig(op: string, opts: TransformerLayerOptions): LayerConfig {
  const activation = opts.activation ?? 'relu';
  if (activation !== 'relu' && activation !== 'gelu') {
    throw new ValueError(`${op}: activation must be 'relu' or 'gelu', got ${String(activation)}`);
  }
  return {
    dimFeedforward: opts.dimFeedforward ?? 2048,
    dropout: opts.dropout ?? 0.1,
    activation,
    layerNormEps: opts.layerNormEps ?? 1e-5,
    batchFirst: opts.batchFirst ?? false,
    normFirst: opts.normFirst ?? false,
    bias: opts.bias ?? true,
  };
}

export function activate(x: Tensor, a: TransformerActivation): Tensor {
  return a === 'relu' ? F.relu(x) : F.gelu(x);
}

/**
 * One residual sub-block in either norm order: `x + f(norm(x))` (normFirst) or
 * `norm(x + f(x))` (PyTorch's default post-norm). Shared by the encoder and decoder layers.
 */
export function residual(
  x: Tensor,
  norm: LayerNorm,
  f: (x: Tensor) => Tensor,
  normFirst: boolean,
): Tensor {
  return normFirst ? x.add(f(norm.forward(x))) : norm.forward(x.add(f(x)));
}

/** A fresh module of the same class and configuration holding copies of `m`'s parameters. */
export function cloneLayer<M extends Module>(m: M, make: () => M): M {
  const copy = make();
  noGrad(() => copy.loadStateDict(m.stateDict()));
  return copy;
}

/** Self-attention then a feed-forward block, each with a residual and a LayerNorm. */
export class TransformerEncoderLayer extends Module {
  self_attn: MultiheadAttention;
  linear1: Linear;
  dropout: Dropout;
  linear2: Linear;
  norm1: LayerNorm;
  norm2: LayerNorm;
  dropout1: Dropout;
  dropout2: Dropout;
  readonly config: LayerConfig;

  constructor(
    readonly dModel: number,
    readonly nhead: number,
    opts: TransformerLayerOptions = {},
  ) {
    super();
    const c = layerConfig('TransformerEncoderLayer', opts);
    this.config = c;
    this.self_attn = new MultiheadAttention(dModel, nhead, {
      dropout: c.dropout,
      bias: c.bias,
      batchFirst: c.batchFirst,
    });
    this.linear1 = new Linear(dModel, c.dimFeedforward, { bias: c.bias });
    this.dropout = new Dropout(c.dropout);
    this.linear2 = new Linear(c.dimFeedforward, dModel, { bias: c.bias });
    this.norm1 = new LayerNorm(dModel, { eps: c.layerNormEps, bias: c.bias });
    this.norm2 = new LayerNorm(dModel, { eps: c.layerNormEps, bias: c.bias });
    this.dropout1 = new Dropout(c.dropout);
    this.dropout2 = new Dropout(c.dropout);
  }

  get normFirst(): boolean {
    return this.config.normFirst;
  }

  /** `src [L, N, E]` ([N, L, E] with batchFirst, or unbatched [L, E]) → same shape. */
  forward(src: Tensor, opts: EncoderForwardOptions = {}): Tensor {
    const sa = (x: Tensor): Tensor => {
      const [y] = this.self_attn.forward(x, x, x, {
        attnMask: opts.srcMask,
        keyPaddingMask: opts.srcKeyPaddingMask,
        isCausal: opts.isCausal,
        needWeights: false,
      });
      return this.dropout1.forward(y);
    };
    const ff = (x: Tensor): Tensor => {
      const h = this.dropout.forward(activate(this.linear1.forward(x), this.config.activation));
      return this.dropout2.forward(this.linear2.forward(h));
    };
    const nf = this.config.normFirst;
    return residual(residual(src, this.norm1, sa, nf), this.norm2, ff, nf);
  }

  /** A copy with the same configuration and parameter values. */
  clone(): TransformerEncoderLayer {
    return cloneLayer(
      this,
      () => new TransformerEncoderLayer(this.dModel, this.nhead, this.config),
    );
  }
}

/** TransformerEncoder.forward's options: torch names the attention mask `mask` there. */
export interface TransformerEncoderForwardOptions {
  /** [L, L] or [N·nhead, L, L]; int32 non-zero = may not attend, float32 added (as torch). */
  mask?: Tensor | null;
  /** [N, L]; int32 non-zero = padding to ignore, float32 added. */
  srcKeyPaddingMask?: Tensor | null;
  /** Without mask, a causal mask. */
  isCausal?: boolean;
}

export interface EncoderOptions {
  /** A final LayerNorm (or any module) applied after the last layer. */
  norm?: Module | null;
}

/** `numLayers` copies of `encoderLayer` (as torch, each a deep copy), then an optional norm. */
export class TransformerEncoder extends Module {
  layers: ModuleList<TransformerEncoderLayer>;
  norm: Module | null;

  constructor(
    encoderLayer: TransformerEncoderLayer,
    readonly numLayers: number,
    opts: EncoderOptions = {},
  ) {
    super();
    if (!Number.isInteger(numLayers) || numLayers < 0) {
      throw new ValueError(
        `TransformerEncoder: numLayers must be a non-negative integer, got ${numLayers}`,
      );
    }
    this.layers = new ModuleList(Array.from({ length: numLayers }, () => encoderLayer.clone()));
    this.norm = opts.norm ?? null;
  }

  forward(src: Tensor, opts: TransformerEncoderForwardOptions = {}): Tensor {
    const layerOpts: EncoderForwardOptions = {
      srcMask: opts.mask,
      srcKeyPaddingMask: opts.srcKeyPaddingMask,
      isCausal: opts.isCausal,
    };
    let x = src;
    // Under noGrad each layer frees its intermediates when it returns.
    const run = layerRunner(this);
    for (const layer of this.layers) {
      const input = x;
      x = run(() => layer.forward(input, layerOpts));
    }
    if (this.norm) x = (this.norm as unknown as { forward(t: Tensor): Tensor }).forward(x);
    return x;
  }
}
