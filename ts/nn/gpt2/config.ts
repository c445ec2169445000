// GPT2Config: Hugging Face's GPT-2 hyper-parameters under camelCased names, with HF's
// defaults (the 124M model). `GPT2Config.fromJSON` reads a HF `config.json` (snake_case keys).
import { ValueError } from '../../errors.js';

export type GPT2Activation = 'gelu_new' | 'gelu' | 'relu';

export interface GPT2ConfigOptions {
  vocabSize?: number;
  nPositions?: number;
  nEmbd?: number;
  nLayer?: number;
  nHead?: number;
  /** Width of the MLP; null means 4 · nEmbd. */
  nInner?: number | null;
  /** 'gelu_new' is the tanh approximation (GPT-2's), 'gelu' the exact erf form. */
  activationFunction?: GPT2Activation;
  residPdrop?: number;
  embdPdrop?: number;
  attnPdrop?: number;
  layerNormEpsilon?: number;
  initializerRange?: number;
  /** Divide attention scores by sqrt(headDim) (default true). */
  scaleAttnWeights?: boolean;
  /** lm_head.weight is transformer.wte.weight (default true). */
  tieWordEmbeddings?: boolean;
}

// HF config.json key → our field.
const HF_KEYS: Record<string, keyof GPT2ConfigOptions> = {
  vocab_size: 'vocabSize',
  n_positions: 'nPositions',
  n_embd: 'nEmbd',
  n_layer: 'nLayer',
  n_head: 'nHead',
  n_inner: 'nInner',
  activation_function: 'activationFunction',
  resid_pdrop: 'residPdrop',
  embd_pdrop: 'embdPdrop',
  attn_pdrop: 'attnPdrop',
  layer_norm_epsilon: 'layerNormEpsilon',
  initializer_range: 'initializerRange',
  scale_attn_weights: 'scaleAttnWeights',
  tie_word_embeddings: 'tieWordEmbeddings',
};

const OP = 'GPT2Config';

export class GPT2Config {
  readonly vocabSize: number;
  readonly nPositions: number;
  readonly nEmbd: number;
  readonly nLayer: number;
  readonly nHead: number;
  readonly nInner: number | null;
  readonly activationFunction: GPT2Activation;
  readonly residPdrop: number;
  readonly embdPdrop: number;
  readonly attnPdrop: number;
  readonly layerNormEpsilon: number;
  readonly initializerRange: number;
  readonly scaleAttnWeights: boolean;
  readonly tieWordEmbeddings: boolean;

  constructor(opts: GPT2ConfigOptions = {}) {
    this.vocabSize = posInt('vocabSize', opts.vocabSize ?? 50257);
    this.nPositions = posInt('nPositions', opts.nPositions ?? 1024);
    this.nEmbd = posInt('nEmbd', opts.nEmbd ?? 768);
    this.nLayer = posInt('nLayer', opts.nLayer ?? 12);
    this.nHead = posInt('nHead', opts.nHead ?? 12);
    this.nInner = opts.nInner == null ? null : posInt('nInner', opts.nInner);
    if (this.nEmbd % this.nHead !== 0) {
      throw new ValueError(`${OP}: nEmbd ${this.nEmbd} must be divisible by nHead ${this.nHead}`);
    }
    const act = opts.activationFunction ?? 'gelu_new';
    if (act !== 'gelu_new' && act !== 'gelu' && act !== 'relu') {
      throw new ValueError(
        `${OP}: activationFunction must be 'gelu_new', 'gelu' or 'relu', got ${String(act)}`,
      );
    }
    this.activationFunction = act;
    this.residPdrop = prob('residPdrop', opts.residPdrop ?? 0.1);
    this.embdPdrop = prob('embdPdrop', opts.embdPdrop ?? 0.1);
    this.attnPdrop = prob('attnPdrop', opts.attnPdrop ?? 0.1);
    this.layerNormEpsilon = opts.layerNormEpsilon ?? 1e-5;
    this.initializerRange = opts.initializerRange ?? 0.02;
    for (const [k, v] of [
      ['layerNormEpsilon', this.layerNormEpsilon],
      ['initializerRange', this.initializerRange],
    ] as const) {
      if (!(Number.isFinite(v) && v >= 0))
        throw new ValueError(`${OP}: ${k} must be a finite number >= 0, got ${v}`);
    }
    this.scaleAttnWeights = opts.scaleAttnWeights ?? true;
    this.tieWordEmbeddings = opts.tieWordEmbeddings ?? true;
  }

  /** The MLP width: nInner, or 4 · nEmbd when it is null. */
  get innerDim(): number {
    return this.nInner ?? 4 * this.nEmbd;
  }

  get headDim(): number {
    return this.nEmbd / this.nHead;
  }

  /**
   * A config from a Hugging Face `config.json` object (snake_case keys; keys that do not
   * shape the model, such as `architectures` or `bos_token_id`, are ignored). camelCase keys
   * are accepted too.
   */
  static fromJSON(obj: Record<string, unknown>): GPT2Config {
    if (typeof obj !== 'object' || obj === null) {
      throw new ValueError(`${OP}.fromJSON: expected an object, got ${String(obj)}`);
    }
    const opts: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) {
      const field = HF_KEYS[k] ?? (Object.values(HF_KEYS).includes(k as never) ? k : null);
      if (field) opts[field] = v;
    }
    return new GPT2Config(opts as GPT2ConfigOptions);
  }

  /** The config as a Hugging Face `config.json` object. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { model_type: 'gpt2' };
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
