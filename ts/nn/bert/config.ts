// BertConfig: Hugging Face's BERT hyper-parameters under camelCased names, with HF's defaults
// (bert-base). `BertConfig.fromJSON` reads a HF `config.json` (snake_case keys).
import { ValueError } from '../../errors.js';

export type BertActivation = 'gelu' | 'gelu_new' | 'relu' | 'tanh';

export interface BertConfigOptions {
  vocabSize?: number;
  hiddenSize?: number;
  numHiddenLayers?: number;
  numAttentionHeads?: number;
  intermediateSize?: number;
  /** 'gelu' is the exact erf form (BERT's), 'gelu_new' the tanh approximation. */
  hiddenAct?: BertActivation;
  hiddenDropoutProb?: number;
  attentionProbsDropoutProb?: number;
  maxPositionEmbeddings?: number;
  typeVocabSize?: number;
  initializerRange?: number;
  layerNormEps?: number;
  padTokenId?: number;
  /** cls.predictions.decoder.weight is bert.embeddings.word_embeddings.weight (default true). */
  tieWordEmbeddings?: boolean;
  /** Classes of BertForSequenceClassification (HF's default 2; 1 means regression). */
  numLabels?: number;
  /** Dropout before the classifier; null means hiddenDropoutProb. */
  classifierDropout?: number | null;
}

// HF config.json key → our field.
const HF_KEYS: Record<string, keyof BertConfigOptions> = {
  vocab_size: 'vocabSize',
  hidden_size: 'hiddenSize',
  num_hidden_layers: 'numHiddenLayers',
  num_attention_heads: 'numAttentionHeads',
  intermediate_size: 'intermediateSize',
  hidden_act: 'hiddenAct',
  hidden_dropout_prob: 'hiddenDropoutProb',
  attention_probs_dropout_prob: 'attentionProbsDropoutProb',
  max_position_embeddings: 'maxPositionEmbeddings',
  type_vocab_size: 'typeVocabSize',
  initializer_range: 'initializerRange',
  layer_norm_eps: 'layerNormEps',
  pad_token_id: 'padTokenId',
  tie_word_embeddings: 'tieWordEmbeddings',
  num_labels: 'numLabels',
  classifier_dropout: 'classifierDropout',
};

const OP = 'BertConfig';
const ACTS: readonly BertActivation[] = ['gelu', 'gelu_new', 'relu', 'tanh'];

export class BertConfig {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  readonly intermediateSize: number;
  readonly hiddenAct: BertActivation;
  readonly hiddenDropoutProb: number;
  readonly attentionProbsDropoutProb: number;
  readonly maxPositionEmbeddings: number;
  readonly typeVocabSize: number;
  readonly initializerRange: number;
  readonly layerNormEps: number;
  readonly padTokenId: number;
  readonly tieWordEmbeddings: boolean;
  readonly numLabels: number;
  readonly classifierDropout: number | null;

  constructor(opts: BertConfigOptions = {}) {
    this.vocabSize = posInt('vocabSize', opts.vocabSize ?? 30522);
    this.hiddenSize = posInt('hiddenSize', opts.hiddenSize ?? 768);
    this.numHiddenLayers = posInt('numHiddenLayers', opts.numHiddenLayers ?? 12);
    this.numAttentionHeads = posInt('numAttentionHeads', opts.numAttentionHeads ?? 12);
    this.intermediateSize = posInt('intermediateSize', opts.intermediateSize ?? 3072);
    if (this.hiddenSize % this.numAttentionHeads !== 0) {
      throw new ValueError(
        `${OP}: hiddenSize ${this.hiddenSize} must be divisible by numAttentionHeads ${this.numAttentionHeads}`,
      );
    }
    const act = opts.hiddenAct ?? 'gelu';
    if (!ACTS.includes(act)) {
      throw new ValueError(
        `${OP}: hiddenAct must be one of ${ACTS.join(', ')}, got ${String(act)}`,
      );
    }
    this.hiddenAct = act;
    this.hiddenDropoutProb = prob('hiddenDropoutProb', opts.hiddenDropoutProb ?? 0.1);
    this.attentionProbsDropoutProb = prob(
      'attentionProbsDropoutProb',
      opts.attentionProbsDropoutProb ?? 0.1,
    );
    this.maxPositionEmbeddings = posInt('maxPositionEmbeddings', opts.maxPositionEmbeddings ?? 512);
    this.typeVocabSize = posInt('typeVocabSize', opts.typeVocabSize ?? 2);
    this.initializerRange = nonNeg('initializerRange', opts.initializerRange ?? 0.02);
    this.layerNormEps = nonNeg('layerNormEps', opts.layerNormEps ?? 1e-12);
    const pad = opts.padTokenId ?? 0;
    if (!Number.isInteger(pad) || pad < 0 || pad >= this.vocabSize) {
      throw new ValueError(`${OP}: padTokenId must be in [0, ${this.vocabSize}), got ${pad}`);
    }
    this.padTokenId = pad;
    this.tieWordEmbeddings = opts.tieWordEmbeddings ?? true;
    this.numLabels = posInt('numLabels', opts.numLabels ?? 2);
    this.classifierDropout =
      opts.classifierDropout == null ? null : prob('classifierDropout', opts.classifierDropout);
  }

  get headDim(): number {
    return this.hiddenSize / this.numAttentionHeads;
  }

  /**
   * A config from a Hugging Face `config.json` object (snake_case keys; keys that do not
   * shape the model, such as `architectures` or `model_type`, are ignored). camelCase keys
   * are accepted too. HF's `id2label` gives numLabels when num_labels is absent.
   */
  static fromJSON(obj: Record<string, unknown>): BertConfig {
    if (typeof obj !== 'object' || obj === null) {
      throw new ValueError(`${OP}.fromJSON: expected an object, got ${String(obj)}`);
    }
    const opts: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) {
      const field = HF_KEYS[k] ?? (Object.values(HF_KEYS).includes(k as never) ? k : null);
      if (field) opts[field] = v;
    }
    const id2label = obj.id2label;
    if (opts.numLabels === undefined && id2label && typeof id2label === 'object') {
      opts.numLabels = Object.keys(id2label).length;
    }
    return new BertConfig(opts as BertConfigOptions);
  }

  /** The config as a Hugging Face `config.json` object. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { model_type: 'bert' };
    for (const [k, field] of Object.entries(HF_KEYS)) out[k] = this[field];
    return out;
  }
}

function posInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v <= 0) {
    throw new ValueError(`${OP}: ${name} must be a positive integer, got ${v}`);
  }
  return v;
}

function prob(name: string, v: number): number {
  if (!(v >= 0 && v < 1)) throw new ValueError(`${OP}: ${name} must be in [0, 1), got ${v}`);
  return v;
}

function nonNeg(name: string, v: number): number {
  if (!(Number.isFinite(v) && v >= 0))
    throw new ValueError(`${OP}: ${name} must be a finite number >= 0, got ${v}`);
  return v;
}
