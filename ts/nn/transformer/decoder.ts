// nn.TransformerDecoderLayer and nn.TransformerDecoder, with torch.nn's submodule names
// (self_attn, multihead_attn, linear1, dropout, linear2, norm1..3, dropout1..3; layers.N, norm).
import { ValueError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { Module } from '../module.js';
import { Dropout, LayerNorm, Linear, ModuleList } from '../layers.js';
import { MultiheadAttention } from './attention.js';
import {
  activate,
  cloneLayer,
  layerConfig,
  residual,
  type LayerConfig,
  type TransformerLayerOptions,
} from './encoder.js';

export interface DecoderForwardOptions {
  /** [T, T] or [N·nhead, T, T]; int32 non-zero = may not attend, float32 added. */
  tgtMask?: Tensor | null;
  /** [T, S] or [N·nhead, T, S], for the attention over `memory`. */
  memoryMask?: Tensor | null;
  /** [N, T]; int32 non-zero = padding to ignore. */
  tgtKeyPaddingMask?: Tensor | null;
  /** [N, S]; int32 non-zero = padding to ignore. */
  memoryKeyPaddingMask?: Tensor | null;
  /** Without tgtMask, a causal mask on the self-attention. */
  tgtIsCausal?: boolean;
  /** Without memoryMask, a causal mask (top-left aligned) on the attention over memory. */
  memoryIsCausal?: boolean;
}

/** Self-attention, attention over the encoder's memory, then a feed-forward block. */
export class TransformerDecoderLayer extends Module {
  self_attn: MultiheadAttention;
  multihead_attn: MultiheadAttention;
  linear1: Linear;
  dropout: Dropout;
  linear2: Linear;
  norm1: LayerNorm;
  norm2: LayerNorm;
  norm3: LayerNorm;
  dropout1: Dropout;
  dropout2: Dropout;
  dropout3: Dropout;
  readonly config: LayerConfig;

  constructor(
    readonly dModel: number,
    readonly nhead: number,
    opts: TransformerLayerOptions = {},
  ) {
    super();
    const c = layerConfig('TransformerDecoderLayer', opts);
    this.config = c;
    const mha = { dropout: c.dropout, bias: c.bias, batchFirst: c.batchFirst };
    this.self_attn = new MultiheadAttention(dModel, nhead, mha);
    this.multihead_attn = new MultiheadAttention(dModel, nhead, mha);
    this.linear1 = new Linear(dModel, c.dimFeedforward, { bias: c.bias });
    this.dropout = new Dropout(c.dropout);
    this.linear2 = new Linear(c.dimFeedforward, dModel, { bias: c.bias });
    const ln = { eps: c.layerNormEps, bias: c.bias };
    this.norm1 = new LayerNorm(dModel, ln);
    this.norm2 = new LayerNorm(dModel, ln);
    this.norm3 = new LayerNorm(dModel, ln);
    this.dropout1 = new Dropout(c.dropout);
    this.dropout2 = new Dropout(c.dropout);
    this.dropout3 = new Dropout(c.dropout);
  }

  get normFirst(): boolean {
    return this.config.normFirst;
  }

  /** `tgt [T, N, E]`, `memory [S, N, E]` ([N, ·, E] with batchFirst) → like `tgt`. */
  forward(tgt: Tensor, memory: Tensor, opts: DecoderForwardOptions = {}): Tensor {
    const sa = (x: Tensor): Tensor => {
      const [y] = this.self_attn.forward(x, x, x, {
        attnMask: opts.tgtMask,
        keyPaddingMask: opts.tgtKeyPaddingMask,
        isCausal: opts.tgtIsCausal,
        needWeights: false,
      });
      return this.dropout1.forward(y);
    };
    const mha = (x: Tensor): Tensor => {
      const [y] = this.multihead_attn.forward(x, memory, memory, {
        attnMask: opts.memoryMask,
        keyPaddingMask: opts.memoryKeyPaddingMask,
        isCausal: opts.memoryIsCausal,
        needWeights: false,
      });
      return this.dropout2.forward(y);
    };
    const ff = (x: Tensor): Tensor => {
      const h = this.dropout.forward(activate(this.linear1.forward(x), this.config.activation));
      return this.dropout3.forward(this.linear2.forward(h));
    };
    const nf = this.config.normFirst;
    const x = residual(residual(tgt, this.norm1, sa, nf), this.norm2, mha, nf);
    return residual(x, this.norm3, ff, nf);
  }

  /** A copy with the same configuration and parameter values. */
  clone(): TransformerDecoderLayer {
    return cloneLayer(
      this,
      () => new TransformerDecoderLayer(this.dModel, this.nhead, this.config),
    );
  }
}

/** `numLayers` copies of `decoderLayer` (each a deep copy, as torch), then an optional norm. */
export class TransformerDecoder extends Module {
  layers: ModuleList<TransformerDecoderLayer>;
  norm: Module | null;

  constructor(
    decoderLayer: TransformerDecoderLayer,
    readonly numLayers: number,
    opts: { norm?: Module | null } = {},
  ) {
    super();
    if (!Number.isInteger(numLayers) || numLayers < 0) {
      throw new ValueError(
        `TransformerDecoder: numLayers must be a non-negative integer, got ${numLayers}`,
      );
    }
    this.layers = new ModuleList(Array.from({ length: numLayers }, () => decoderLayer.clone()));
    this.norm = opts.norm ?? null;
  }

  forward(tgt: Tensor, memory: Tensor, opts: DecoderForwardOptions = {}): Tensor {
    let x = tgt;
    for (const layer of this.layers) x = layer.forward(x, memory, opts);
    if (this.norm) x = (this.norm as unknown as { forward(t: Tensor): Tensor }).forward(x);
    return x;
  }
}
