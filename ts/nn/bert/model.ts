// BERT as Hugging Face's transformers builds it: modules and fields carry HF's names
// (bert.encoder.layer.0.attention.self.query.weight, …) so HF state dicts load strictly and
// ours load in torch. Post-LN encoder layers, word + position + token-type embeddings, the
// fused scaledDotProductAttention with HF's additive padding mask ((1 - mask) · float32.min,
// [B, 1, 1, T]), a tanh pooler over the first token, an MLM head tied to the word embeddings
// and a sequence-classification head.
import { DTypeError, ShapeError, fmt } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { noGrad } from '../../autograd/node.js';
import { arange, tensor, zeros } from '../../ops/creation.js';
import { Module, Parameter, layerRunner } from '../module.js';
import { Dropout, Embedding, LayerNorm, Linear, ModuleList } from '../layers.js';
import { binaryCrossEntropyWithLogits, crossEntropy, mseLoss } from '../losses.js';
import * as F from '../functional.js';
import * as init from '../init.js';
import { fromHfSafetensors, loadHuggingFace, type HfLoadResult } from '../hf.js';
import { BertConfig, type BertActivation, type BertConfigOptions } from './config.js';

const FLOAT32_MIN = -3.4028234663852886e38;

function activate(x: Tensor, act: BertActivation): Tensor {
  if (act === 'relu') return F.relu(x);
  if (act === 'tanh') return F.tanh(x);
  return F.gelu(x, { approximate: act === 'gelu_new' ? 'tanh' : 'none' });
}

function asConfig(config: BertConfig | BertConfigOptions): BertConfig {
  return config instanceof BertConfig ? config : new BertConfig(config);
}

/** Word, position and token-type embeddings, summed, then LayerNorm and dropout. */
export class BertEmbeddings extends Module {
  word_embeddings: Embedding;
  position_embeddings: Embedding;
  token_type_embeddings: Embedding;
  LayerNorm: LayerNorm;
  dropout: Dropout;

  constructor(readonly config: BertConfig) {
    super();
    const c = config;
    this.word_embeddings = new Embedding(c.vocabSize, c.hiddenSize, { paddingIdx: c.padTokenId });
    this.position_embeddings = new Embedding(c.maxPositionEmbeddings, c.hiddenSize);
    this.token_type_embeddings = new Embedding(c.typeVocabSize, c.hiddenSize);
    this.LayerNorm = new LayerNorm(c.hiddenSize, { eps: c.layerNormEps });
    this.dropout = new Dropout(c.hiddenDropoutProb);
  }

  /** ids, token types and positions int32 [B, T] ([T] positions broadcast) → [B, T, H]. */
  forward(inputIds: Tensor, tokenTypeIds: Tensor, positionIds: Tensor): Tensor {
    const x = this.word_embeddings
      .forward(inputIds)
      .add(this.token_type_embeddings.forward(tokenTypeIds))
      .add(this.position_embeddings.forward(positionIds));
    return this.dropout.forward(this.LayerNorm.forward(x));
  }
}

/** Multi-head self-attention with separate query/key/value projections (HF's BertSelfAttention). */
export class BertSelfAttention extends Module {
  query: Linear;
  key: Linear;
  value: Linear;
  dropout: Dropout;

  constructor(readonly config: BertConfig) {
    super();
    const H = config.hiddenSize;
    this.query = new Linear(H, H);
    this.key = new Linear(H, H);
    this.value = new Linear(H, H);
    this.dropout = new Dropout(config.attentionProbsDropoutProb);
  }

  /** `x [B, T, H]`, additive mask [B, 1, 1, T] or null → context [B, T, H]. */
  forward(x: Tensor, mask: Tensor | null): Tensor {
    const { hiddenSize: E, numAttentionHeads: nh, headDim: hd } = this.config;
    const [B, T] = x.shape;
    const heads = (t: Tensor): Tensor => t.reshape([B, T, nh, hd]).permute([0, 2, 1, 3]);
    const out = F.scaledDotProductAttention(
      heads(this.query.forward(x)),
      heads(this.key.forward(x)),
      heads(this.value.forward(x)),
      { attnMask: mask, dropoutP: this.training ? this.dropout.p : 0, scale: 1 / Math.sqrt(hd) },
    );
    return out.permute([0, 2, 1, 3]).reshape([B, T, E]);
  }
}

/** dense → dropout → LayerNorm(· + residual): BertSelfOutput and BertOutput. */
export class BertSelfOutput extends Module {
  dense: Linear;
  LayerNorm: LayerNorm;
  dropout: Dropout;

  constructor(config: BertConfig, inFeatures = config.hiddenSize) {
    super();
    this.dense = new Linear(inFeatures, config.hiddenSize);
    this.LayerNorm = new LayerNorm(config.hiddenSize, { eps: config.layerNormEps });
    this.dropout = new Dropout(config.hiddenDropoutProb);
  }

  forward(h: Tensor, residual: Tensor): Tensor {
    return this.LayerNorm.forward(this.dropout.forward(this.dense.forward(h)).add(residual));
  }
}

/** HF's BertOutput: the feed-forward block's down projection, same shape as BertSelfOutput. */
export class BertOutput extends BertSelfOutput {
  constructor(config: BertConfig) {
    super(config, config.intermediateSize);
  }
}

export class BertAttention extends Module {
  self: BertSelfAttention;
  output: BertSelfOutput;

  constructor(config: BertConfig) {
    super();
    this.self = new BertSelfAttention(config);
    this.output = new BertSelfOutput(config);
  }

  forward(x: Tensor, mask: Tensor | null): Tensor {
    return this.output.forward(this.self.forward(x, mask), x);
  }
}

/** The feed-forward block's up projection and activation. */
export class BertIntermediate extends Module {
  dense: Linear;

  constructor(readonly config: BertConfig) {
    super();
    this.dense = new Linear(config.hiddenSize, config.intermediateSize);
  }

  forward(x: Tensor): Tensor {
    return activate(this.dense.forward(x), this.config.hiddenAct);
  }
}

/** One post-LN encoder layer: attention, then the feed-forward block. */
export class BertLayer extends Module {
  attention: BertAttention;
  intermediate: BertIntermediate;
  output: BertOutput;

  constructor(config: BertConfig) {
    super();
    this.attention = new BertAttention(config);
    this.intermediate = new BertIntermediate(config);
    this.output = new BertOutput(config);
  }

  forward(x: Tensor, mask: Tensor | null): Tensor {
    const a = this.attention.forward(x, mask);
    return this.output.forward(this.intermediate.forward(a), a);
  }
}

export class BertEncoder extends Module {
  layer: ModuleList<BertLayer>;

  constructor(config: BertConfig) {
    super();
    this.layer = new ModuleList(
      Array.from({ length: config.numHiddenLayers }, () => new BertLayer(config)),
    );
  }

  /** Under noGrad each layer frees its intermediates when it returns (`layerRunner`). */
  forward(x: Tensor, mask: Tensor | null): Tensor {
    const run = layerRunner(this);
    for (const l of this.layer) {
      const input = x;
      x = run(() => l.forward(input, mask));
    }
    return x;
  }
}

/** tanh(dense(first token's hidden state)). */
export class BertPooler extends Module {
  dense: Linear;

  constructor(config: BertConfig) {
    super();
    this.dense = new Linear(config.hiddenSize, config.hiddenSize);
  }

  forward(hidden: Tensor): Tensor {
    const [B, , H] = hidden.shape;
    return F.tanh(this.dense.forward(hidden.narrow(1, 0, 1).reshape([B, H])));
  }
}

export interface BertForwardOptions {
  /**
   * [B, T], 1 for tokens to attend to and 0 for padding, or [B, T, T], 1 where query t may
   * attend to key s (int32 or float32); default all 1.
   */
  attentionMask?: Tensor | null;
  /** int32 [B, T] segment ids in [0, typeVocabSize); default zeros. */
  tokenTypeIds?: Tensor | null;
  /** int32 [B, T] or [T] positions; default 0, …, T - 1. */
  positionIds?: Tensor | null;
}

export interface BertModelOutput {
  /** [B, T, hiddenSize]: the last encoder layer's output. */
  lastHiddenState: Tensor;
  /** [B, hiddenSize]: the pooler's output; null without a pooling layer. */
  poolerOutput: Tensor | null;
}

export interface BertModelOptions {
  /** Build the pooler (default true; BertForMaskedLM has none, as HF). */
  addPoolingLayer?: boolean;
}

/** HF's buffers that older BERT checkpoints store (not weights). */
const HF_BUFFERS = [/(^|\.)embeddings\.(position_ids|token_type_ids)$/];
const POOLER = /(^|\.)pooler\./;

/** HF's base model: embeddings, numHiddenLayers encoder layers and the pooler. */
export class BertModel extends Module {
  embeddings: BertEmbeddings;
  encoder: BertEncoder;
  pooler: BertPooler | null;
  readonly config: BertConfig;

  constructor(config: BertConfig | BertConfigOptions = {}, opts: BertModelOptions = {}) {
    super();
    const c = asConfig(config);
    this.config = c;
    this.embeddings = new BertEmbeddings(c);
    this.encoder = new BertEncoder(c);
    this.pooler = (opts.addPoolingLayer ?? true) ? new BertPooler(c) : null;
    initBert(this, c);
  }

  forward(inputIds: Tensor, opts: BertForwardOptions = {}): BertModelOutput {
    const c = this.config;
    const [B, T] = checkIds('BertModel', inputIds);
    if (T > c.maxPositionEmbeddings) {
      throw new ShapeError(
        `BertModel: ${T} positions exceed maxPositionEmbeddings ${c.maxPositionEmbeddings}`,
      );
    }
    const types = opts.tokenTypeIds ?? zeros([B, T], { dtype: 'int32' });
    if (
      types.dtype !== 'int32' ||
      types.ndim !== 2 ||
      types.shape[0] !== B ||
      types.shape[1] !== T
    ) {
      throw new ShapeError(
        `BertModel: tokenTypeIds ${types.dtype} ${fmt(types.shape)} must be int32 [${B}, ${T}] like inputIds`,
      );
    }
    const pos = opts.positionIds ?? arange(0, T, 1, { dtype: 'int32' });
    const okPos =
      pos.dtype === 'int32' &&
      ((pos.ndim === 1 && pos.shape[0] === T) ||
        (pos.ndim === 2 && pos.shape[1] === T && (pos.shape[0] === B || pos.shape[0] === 1)));
    if (!okPos) {
      throw new ShapeError(
        `BertModel: positionIds ${pos.dtype} ${fmt(pos.shape)} must be int32 [${T}] or [${B}, ${T}]`,
      );
    }
    const mask = extendedMask(opts.attentionMask ?? null, B, T);
    const x = this.embeddings.forward(inputIds, types, pos);
    const lastHiddenState = this.encoder.forward(x, mask);
    return {
      lastHiddenState,
      poolerOutput: this.pooler ? this.pooler.forward(lastHiddenState) : null,
    };
  }

  /**
   * Loads a Hugging Face BertModel state dict as it is: strict, except that the buffers older
   * checkpoints carry (`embeddings.position_ids`, `embeddings.token_type_ids`) are dropped, a
   * file without a pooler leaves the pooler at its initialisation, and a head model's file
   * (keys under `bert.`) loads its base with the head's keys dropped, as HF does.
   */
  loadHuggingFace(dict: Record<string, Tensor>): HfLoadResult {
    return loadHuggingFace(this, dict, {
      basePrefix: 'bert',
      ignore: this.pooler ? HF_BUFFERS : [...HF_BUFFERS, POOLER],
      optional: POOLER,
    });
  }

  /** A BertModel with weights from a Hugging Face safetensors file (see `loadHuggingFace`). */
  static fromSafetensors(
    bytes: Uint8Array | ArrayBuffer,
    config: BertConfig | BertConfigOptions,
  ): BertModel {
    return fromHfSafetensors(new BertModel(config), bytes);
  }
}

/** dense → activation → LayerNorm (HF's BertPredictionHeadTransform). */
export class BertPredictionHeadTransform extends Module {
  dense: Linear;
  LayerNorm: LayerNorm;

  constructor(readonly config: BertConfig) {
    super();
    this.dense = new Linear(config.hiddenSize, config.hiddenSize);
    this.LayerNorm = new LayerNorm(config.hiddenSize, { eps: config.layerNormEps });
  }

  forward(x: Tensor): Tensor {
    return this.LayerNorm.forward(activate(this.dense.forward(x), this.config.hiddenAct));
  }
}

/**
 * transform → decoder (tied to the word embeddings) + bias. As HF, `decoder.bias` IS `bias`:
 * the state dict names it twice (`cls.predictions.bias`, `cls.predictions.decoder.bias`).
 */
export class BertLMPredictionHead extends Module {
  transform: BertPredictionHeadTransform;
  decoder: Linear;
  bias: Tensor;

  constructor(config: BertConfig) {
    super();
    this.transform = new BertPredictionHeadTransform(config);
    this.decoder = new Linear(config.hiddenSize, config.vocabSize);
    this.bias = Parameter(zeros([config.vocabSize]));
    this.decoder.bias!.dispose();
    this.decoder.bias = this.bias;
  }

  forward(x: Tensor): Tensor {
    return this.decoder.forward(this.transform.forward(x));
  }
}

/** HF's BertOnlyMLMHead. */
export class BertOnlyMLMHead extends Module {
  predictions: BertLMPredictionHead;

  constructor(config: BertConfig) {
    super();
    this.predictions = new BertLMPredictionHead(config);
  }

  forward(x: Tensor): Tensor {
    return this.predictions.forward(x);
  }
}

export interface BertLabelsOptions extends BertForwardOptions {
  /**
   * BertForMaskedLM: int32 [B, T] token ids, -100 where no prediction is scored.
   * BertForSequenceClassification: int32 [B] classes (cross-entropy); float32 [B] or [B, 1]
   * targets with numLabels 1 (mean squared error); float32 [B, numLabels] multi-hot targets
   * (binary cross-entropy with logits), as HF's problem types.
   */
  labels?: Tensor | null;
}

export interface BertHeadOutput {
  /** MLM: [B, T, vocabSize]; classification: [B, numLabels]. */
  logits: Tensor;
  /** The loss against `labels`; null without labels. */
  loss: Tensor | null;
}

/** BertModel (no pooler) plus the MLM head. */
export class BertForMaskedLM extends Module {
  bert: BertModel;
  cls: BertOnlyMLMHead;
  readonly config: BertConfig;

  constructor(config: BertConfig | BertConfigOptions = {}) {
    super();
    const c = asConfig(config);
    this.config = c;
    this.bert = new BertModel(c, { addPoolingLayer: false });
    this.cls = new BertOnlyMLMHead(c);
    initBert(this.cls, c);
    const dec = this.cls.predictions.decoder;
    if (c.tieWordEmbeddings) {
      dec.weight.dispose();
      dec.weight = this.bert.embeddings.word_embeddings.weight;
    }
  }

  forward(inputIds: Tensor, opts: BertLabelsOptions = {}): BertHeadOutput {
    const { lastHiddenState } = this.bert.forward(inputIds, opts);
    const logits = this.cls.forward(lastHiddenState);
    const labels = opts.labels ?? null;
    return { logits, loss: labels ? mlmLoss(logits, labels) : null };
  }

  /**
   * Loads a Hugging Face BertForMaskedLM (or BertForPreTraining: its next-sentence head and
   * pooler are dropped) state dict as it is, with or without the tied
   * `cls.predictions.decoder.weight` and `cls.predictions.decoder.bias`; a BertModel file
   * loads into `bert` and leaves the MLM head at its initialisation.
   */
  loadHuggingFace(dict: Record<string, Tensor>): HfLoadResult {
    return loadHuggingFace(this, dict, {
      basePrefix: 'bert',
      ignore: [...HF_BUFFERS, POOLER, /^cls\.seq_relationship\./],
      newHeadAllowed: true,
    });
  }

  static fromSafetensors(
    bytes: Uint8Array | ArrayBuffer,
    config: BertConfig | BertConfigOptions,
  ): BertForMaskedLM {
    return fromHfSafetensors(new BertForMaskedLM(config), bytes);
  }
}

/** BertModel, dropout on the pooled output, and a linear classifier. */
export class BertForSequenceClassification extends Module {
  bert: BertModel;
  dropout: Dropout;
  classifier: Linear;
  readonly config: BertConfig;

  constructor(config: BertConfig | BertConfigOptions = {}) {
    super();
    const c = asConfig(config);
    this.config = c;
    this.bert = new BertModel(c);
    this.dropout = new Dropout(c.classifierDropout ?? c.hiddenDropoutProb);
    this.classifier = new Linear(c.hiddenSize, c.numLabels);
    initBert(this.classifier, c);
  }

  get numLabels(): number {
    return this.config.numLabels;
  }

  forward(inputIds: Tensor, opts: BertLabelsOptions = {}): BertHeadOutput {
    const { poolerOutput } = this.bert.forward(inputIds, opts);
    const logits = this.classifier.forward(this.dropout.forward(poolerOutput!));
    const labels = opts.labels ?? null;
    return { logits, loss: labels ? classificationLoss(logits, labels) : null };
  }

  /**
   * Loads a Hugging Face BertForSequenceClassification state dict as it is; a BertModel
   * file, or another head's file (BertForMaskedLM, BertForPreTraining), loads into `bert`
   * and leaves the classifier at its initialisation (HF's fine-tuning start). A file without
   * a pooler (BertForMaskedLM's) leaves the pooler at its initialisation too.
   */
  loadHuggingFace(dict: Record<string, Tensor>): HfLoadResult {
    return loadHuggingFace(this, dict, {
      basePrefix: 'bert',
      ignore: HF_BUFFERS,
      newHeadAllowed: true,
      optional: POOLER,
    });
  }

  static fromSafetensors(
    bytes: Uint8Array | ArrayBuffer,
    config: BertConfig | BertConfigOptions,
  ): BertForSequenceClassification {
    return fromHfSafetensors(new BertForSequenceClassification(config), bytes);
  }
}

/** HF's MLM loss: cross-entropy over every position, ignoring -100, mean. */
export function mlmLoss(logits: Tensor, labels: Tensor): Tensor {
  const [B, T, V] = logits.shape;
  if (
    labels.dtype !== 'int32' ||
    labels.ndim !== 2 ||
    labels.shape[0] !== B ||
    labels.shape[1] !== T
  ) {
    throw new ShapeError(
      `BertForMaskedLM: labels ${labels.dtype} ${fmt(labels.shape)} must be int32 [${B}, ${T}] like the inputs`,
    );
  }
  return crossEntropy(logits.reshape([B * T, V]), labels.reshape([B * T]), { ignoreIndex: -100 });
}

/** HF's problem types: regression (numLabels 1), single-label (int labels), multi-label. */
export function classificationLoss(logits: Tensor, labels: Tensor): Tensor {
  const [B, C] = logits.shape;
  const op = 'BertForSequenceClassification';
  if (C === 1) {
    if (labels.dtype !== 'float32' || labels.size !== B || labels.shape[0] !== B) {
      throw new ShapeError(
        `${op}: with numLabels 1 (regression) labels ${labels.dtype} ${fmt(labels.shape)} must be float32 [${B}]`,
      );
    }
    return mseLoss(logits.reshape([B]), labels.reshape([B]));
  }
  if (labels.dtype === 'int32') {
    if (labels.ndim !== 1 || labels.shape[0] !== B) {
      throw new ShapeError(`${op}: labels int32 ${fmt(labels.shape)} must be [${B}] classes`);
    }
    return crossEntropy(logits, labels);
  }
  if (labels.ndim !== 2 || labels.shape[0] !== B || labels.shape[1] !== C) {
    throw new ShapeError(
      `${op}: float labels ${fmt(labels.shape)} must be [${B}, ${C}] multi-hot targets`,
    );
  }
  return binaryCrossEntropyWithLogits(logits, labels);
}

function checkIds(op: string, ids: Tensor): [number, number] {
  if (ids.dtype !== 'int32')
    throw new DTypeError(`${op}: inputIds must be int32, got ${ids.dtype}`);
  if (ids.ndim !== 2 || ids.shape[1] === 0 || ids.shape[0] === 0) {
    throw new ShapeError(
      `${op}: inputIds must be [batch, seq] with both > 0, got ${fmt(ids.shape)}`,
    );
  }
  return [ids.shape[0], ids.shape[1]];
}

/**
 * HF's extended attention mask (`get_extended_attention_mask`): (1 - mask) · float32.min, a
 * [B, T] key mask as [B, 1, 1, T] and a [B, T, T] query-by-key mask as [B, 1, T, T]; null for none.
 */
function extendedMask(m: Tensor | null, B: number, T: number): Tensor | null {
  if (!m) return null;
  const is2d = m.ndim === 2 && m.shape[0] === B && m.shape[1] === T;
  const is3d = m.ndim === 3 && m.shape[0] === B && m.shape[1] === T && m.shape[2] === T;
  if ((m.dtype !== 'int32' && m.dtype !== 'float32') || !(is2d || is3d)) {
    throw new ShapeError(
      `BertModel: attentionMask ${m.dtype} ${fmt(m.shape)} must be int32 or float32 [${B}, ${T}] like inputIds, or [${B}, ${T}, ${T}] (query by key)`,
    );
  }
  const shape = is2d ? [B, 1, 1, T] : [B, 1, T, T];
  return noGrad(() => m.float().reshape(shape).neg().add(1).mul(FLOAT32_MIN));
}

/**
 * HF's `_init_weights`: Linear weights N(0, initializerRange) with zero biases, embeddings
 * N(0, initializerRange) with the padding row zeroed, LayerNorm ones/zeros, the MLM bias zeros.
 */
function initBert(root: Module, c: BertConfig): void {
  const std = c.initializerRange;
  for (const m of root.modules()) {
    if (m instanceof Linear) {
      init.normal_(m.weight, 0, std);
      if (m.bias) init.zeros_(m.bias);
    } else if (m instanceof Embedding) {
      init.normal_(m.weight, 0, std);
      if (m.paddingIdx !== null) zeroRow(m.weight, m.paddingIdx);
    } else if (m instanceof LayerNorm) m.resetParameters();
    else if (m instanceof BertLMPredictionHead) init.zeros_(m.bias);
  }
}

function zeroRow(w: Tensor, row: number): void {
  const [n] = w.shape;
  const isRow = new Int32Array(n);
  isRow[row] = 1;
  const mask = tensor(isRow, { shape: [n, 1] });
  noGrad(() => {
    const zeroed = w.maskedFill(mask, 0);
    w.copy_(zeroed);
    zeroed.dispose();
  });
  mask.dispose();
}
