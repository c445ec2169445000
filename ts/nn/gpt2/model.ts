// GPT-2 as Hugging Face's transformers builds it: modules and fields carry HF's names
// (transformer.h.0.attn.c_attn.weight, …) so HF state dicts load strictly and ours load in
// torch. Pre-LN blocks, Conv1D projections ([in, out] weights), the fused
// scaledDotProductAttention with a causal mask, learned positions, and an LM head tied to the
// token embedding. A key/value cache (`pastKeyValues`) makes decoding cost one position.
import { DTypeError, ShapeError, ValueError, fmt } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { noGrad } from '../../autograd/node.js';
import { arange, full, zeros } from '../../ops/creation.js';
import { cat } from '../../ops/shape.js';
import { Module, Parameter, asOneCall, layerRunner } from '../module.js';
import { Dropout, Embedding, LayerNorm, Linear, ModuleList } from '../layers.js';
import { crossEntropy } from '../losses.js';
import * as F from '../functional.js';
import * as init from '../init.js';
import { fromHfSafetensors, loadHuggingFace, type HfLoadResult, type HfLoadSpec } from '../hf.js';
import { GPT2Config, type GPT2ConfigOptions } from './config.js';
import { generate, type GenerateOptions } from './generate.js';

/** One layer's cache: keys and values, each [B, nHead, length, headDim]. */
export type LayerPast = [Tensor, Tensor];

/**
 * Hugging Face's Conv1D: a linear layer with the weight stored transposed, `y = x · W + b`,
 * W [nx, nf] (in, out), b [nf]. Arguments in HF's order: `new Conv1D(nf, nx)`.
 */
export class Conv1D extends Module {
  /** [nx, nf]. */
  weight: Tensor;
  /** [nf]. */
  bias: Tensor;

  constructor(
    readonly nf: number,
    readonly nx: number,
  ) {
    super();
    for (const [k, v] of [
      ['nf', nf],
      ['nx', nx],
    ] as const) {
      if (!Number.isInteger(v) || v <= 0) {
        throw new ValueError(`Conv1D: ${k} must be a positive integer, got ${v}`);
      }
    }
    this.weight = Parameter(zeros([nx, nf]));
    this.bias = Parameter(zeros([nf]));
    this.resetParameters();
  }

  /** HF's Conv1D: weight N(0, 0.02), bias zeros. */
  resetParameters(std = 0.02): void {
    init.normal_(this.weight, 0, std);
    init.zeros_(this.bias);
  }

  forward(x: Tensor): Tensor {
    if (x.ndim < 1 || x.shape[x.ndim - 1] !== this.nx) {
      throw new ShapeError(`Conv1D: input ${fmt(x.shape)} must end in nx = ${this.nx}`);
    }
    return x.matmul(this.weight).add(this.bias);
  }

  override extraRepr(): string {
    return `nf=${this.nf}, nx=${this.nx}`;
  }
}

/** How a forward masks attention: causal top-left (no past), none (one new token), or a tensor. */
interface AttnMasking {
  isCausal: boolean;
  mask: Tensor | null;
}

/** Causal multi-head self-attention with a packed q/k/v projection (HF's GPT2Attention). */
export class GPT2Attention extends Module {
  c_attn: Conv1D;
  c_proj: Conv1D;
  attn_dropout: Dropout;
  resid_dropout: Dropout;

  constructor(readonly config: GPT2Config) {
    super();
    const E = config.nEmbd;
    this.c_attn = new Conv1D(3 * E, E);
    this.c_proj = new Conv1D(E, E);
    this.attn_dropout = new Dropout(config.attnPdrop);
    this.resid_dropout = new Dropout(config.residPdrop);
  }

  /** `x [B, T, E]` → `[y [B, T, E], this layer's keys/values with the past (or null)]`. */
  forward(
    x: Tensor,
    past: LayerPast | null,
    masking: AttnMasking,
    useCache: boolean,
  ): [Tensor, LayerPast | null] {
    const { nEmbd: E, nHead: H, headDim: hd } = this.config;
    const [B, T] = x.shape;
    const heads = (t: Tensor): Tensor => t.reshape([B, T, H, hd]).permute([0, 2, 1, 3]);
    const [q0, k0, v0] = this.c_attn.forward(x).split(E, -1);
    const q = heads(q0);
    let k = heads(k0);
    let v = heads(v0);
    if (past) {
      k = cat([past[0], k], 2);
      v = cat([past[1], v], 2);
    }
    const out = F.scaledDotProductAttention(q, k, v, {
      isCausal: masking.isCausal,
      attnMask: masking.mask,
      dropoutP: this.training ? this.attn_dropout.p : 0,
      scale: this.config.scaleAttnWeights ? 1 / Math.sqrt(hd) : 1,
    });
    const y = this.c_proj.forward(out.permute([0, 2, 1, 3]).reshape([B, T, E]));
    return [this.resid_dropout.forward(y), useCache ? [k, v] : null];
  }
}

/** The feed-forward block: c_fc → activation → c_proj → dropout (HF's GPT2MLP). */
export class GPT2MLP extends Module {
  c_fc: Conv1D;
  c_proj: Conv1D;
  dropout: Dropout;

  constructor(readonly config: GPT2Config) {
    super();
    this.c_fc = new Conv1D(config.innerDim, config.nEmbd);
    this.c_proj = new Conv1D(config.nEmbd, config.innerDim);
    this.dropout = new Dropout(config.residPdrop);
  }

  forward(x: Tensor): Tensor {
    const h = this.c_fc.forward(x);
    const act = this.config.activationFunction;
    const a =
      act === 'relu' ? F.relu(h) : F.gelu(h, { approximate: act === 'gelu_new' ? 'tanh' : 'none' });
    return this.dropout.forward(this.c_proj.forward(a));
  }
}

/** A pre-LN block: x + attn(ln_1(x)), then + mlp(ln_2(·)) (HF's GPT2Block). */
export class GPT2Block extends Module {
  ln_1: LayerNorm;
  attn: GPT2Attention;
  ln_2: LayerNorm;
  mlp: GPT2MLP;

  constructor(config: GPT2Config) {
    super();
    const eps = config.layerNormEpsilon;
    this.ln_1 = new LayerNorm(config.nEmbd, { eps });
    this.attn = new GPT2Attention(config);
    this.ln_2 = new LayerNorm(config.nEmbd, { eps });
    this.mlp = new GPT2MLP(config);
  }

  forward(
    x: Tensor,
    past: LayerPast | null,
    masking: AttnMasking,
    useCache: boolean,
  ): [Tensor, LayerPast | null] {
    const [a, present] = this.attn.forward(this.ln_1.forward(x), past, masking, useCache);
    const h = x.add(a);
    return [h.add(this.mlp.forward(this.ln_2.forward(h))), present];
  }
}

export interface GPT2ForwardOptions {
  /** Per layer [keys, values], each [B, nHead, Tpast, headDim], from an earlier call. */
  pastKeyValues?: readonly LayerPast[] | null;
  /** Return this call's keys/values (past + new) for the next call (default true, as HF). */
  useCache?: boolean;
  /**
   * [B, Tpast + T], 1 for tokens to attend to and 0 for padding (HF's attention_mask, int32
   * or float32). Hidden keys get float32's lowest value added, as HF does.
   */
  attentionMask?: Tensor | null;
  /** int32 [B, T] or [T] positions; default Tpast, …, Tpast + T - 1. */
  positionIds?: Tensor | null;
}

export interface GPT2ModelOutput {
  /** [B, T, nEmbd] after the final LayerNorm. */
  lastHiddenState: Tensor;
  /** Per layer [keys, values], [B, nHead, Tpast + T, headDim]; null with useCache false. */
  pastKeyValues: LayerPast[] | null;
}

const FLOAT32_MIN = -3.4028234663852886e38;

/** HF's pattern for the attention-mask buffers older checkpoints store (not parameters). */
const HF_BUFFER = /(^|\.)h\.\d+\.attn\.(bias|masked_bias)$/;
const HF_SPEC: HfLoadSpec = { basePrefix: 'transformer', ignore: [HF_BUFFER] };

/** HF's base model: embeddings, nLayer blocks and the final LayerNorm (no head). */
export class GPT2Model extends Module {
  wte: Embedding;
  wpe: Embedding;
  drop: Dropout;
  h: ModuleList<GPT2Block>;
  ln_f: LayerNorm;
  readonly config: GPT2Config;

  constructor(config: GPT2Config | GPT2ConfigOptions = {}) {
    super();
    const c = config instanceof GPT2Config ? config : new GPT2Config(config);
    this.wte = new Embedding(c.vocabSize, c.nEmbd);
    this.wpe = new Embedding(c.nPositions, c.nEmbd);
    this.drop = new Dropout(c.embdPdrop);
    this.h = new ModuleList(Array.from({ length: c.nLayer }, () => new GPT2Block(c)));
    this.ln_f = new LayerNorm(c.nEmbd, { eps: c.layerNormEpsilon });
    this.config = c;
    initGPT2(this, c);
  }

  forward(inputIds: Tensor, opts: GPT2ForwardOptions = {}): GPT2ModelOutput {
    const c = this.config;
    if (inputIds.dtype !== 'int32') {
      throw new DTypeError(`GPT2Model: inputIds must be int32, got ${inputIds.dtype}`);
    }
    if (inputIds.ndim !== 2 || inputIds.shape[1] === 0) {
      throw new ShapeError(
        `GPT2Model: inputIds must be [batch, seq] with seq > 0, got ${fmt(inputIds.shape)}`,
      );
    }
    const [B, T] = inputIds.shape;
    const past = opts.pastKeyValues ?? null;
    const P = past ? checkPast(past, c, B) : 0;
    if (P + T > c.nPositions) {
      throw new ValueError(
        `GPT2Model: ${P} cached + ${T} new positions exceed nPositions ${c.nPositions}`,
      );
    }
    const useCache = opts.useCache ?? true;
    const pos = opts.positionIds ?? arange(P, P + T, 1, { dtype: 'int32' });
    const okPos =
      pos.dtype === 'int32' &&
      ((pos.ndim === 1 && pos.shape[0] === T) ||
        (pos.ndim === 2 && pos.shape[1] === T && (pos.shape[0] === B || pos.shape[0] === 1)));
    if (!okPos) {
      throw new ShapeError(
        `GPT2Model: positionIds ${pos.dtype} ${fmt(pos.shape)} must be int32 [${T}] or [${B}, ${T}]`,
      );
    }
    let x = this.wte.forward(inputIds).add(this.wpe.forward(pos));
    x = this.drop.forward(x);
    const masking = attnMasking(opts.attentionMask ?? null, B, T, P);
    const presents: LayerPast[] = [];
    // Under noGrad each block frees its intermediates when it returns (its output and its
    // keys/values, which hold the past, are what survive).
    const run = layerRunner(this);
    for (let i = 0; i < c.nLayer; i++) {
      const input = x;
      const [y, present] = run(() =>
        this.h[i].forward(input, past ? past[i] : null, masking, useCache),
      );
      x = y;
      if (present) presents.push(present);
    }
    return { lastHiddenState: this.ln_f.forward(x), pastKeyValues: useCache ? presents : null };
  }

  /**
   * Loads a Hugging Face GPT2Model state dict as it is: strict, except that the attention-mask
   * buffers older checkpoints carry (`h.{i}.attn.bias`, `h.{i}.attn.masked_bias`) are dropped.
   * A GPT2LMHeadModel file (keys under `transformer.`) loads too: its `lm_head.weight` is
   * dropped, as HF does when it builds a base model from it.
   */
  loadHuggingFace(dict: Record<string, Tensor>): HfLoadResult {
    return loadHuggingFace(this, dict, HF_SPEC);
  }

  /** A GPT2Model with weights from a Hugging Face safetensors file (see `loadHuggingFace`). */
  static fromSafetensors(
    bytes: Uint8Array | ArrayBuffer,
    config: GPT2Config | GPT2ConfigOptions,
  ): GPT2Model {
    return fromHfSafetensors(new GPT2Model(config), bytes);
  }
}

export interface GPT2LMForwardOptions extends GPT2ForwardOptions {
  /**
   * int32 [B, T]: the inputs themselves for language modelling. As HF, they are shifted
   * inside (logits at t predict labels at t + 1) and -100 marks positions to ignore.
   */
  labels?: Tensor | null;
}

export interface GPT2LMOutput {
  /** [B, T, vocabSize]. */
  logits: Tensor;
  /** Per layer [keys, values], [B, nHead, Tpast + T, headDim]; null with useCache false. */
  pastKeyValues: LayerPast[] | null;
  /** Mean next-token cross-entropy over non-ignored labels; null without labels. */
  loss: Tensor | null;
}

/** GPT2Model plus a bias-free LM head, tied to `transformer.wte.weight` by default. */
export class GPT2LMHeadModel extends Module {
  transformer: GPT2Model;
  lm_head: Linear;
  readonly config: GPT2Config;

  constructor(config: GPT2Config | GPT2ConfigOptions = {}) {
    super();
    const c = config instanceof GPT2Config ? config : new GPT2Config(config);
    this.config = c;
    this.transformer = new GPT2Model(c);
    this.lm_head = new Linear(c.nEmbd, c.vocabSize, { bias: false });
    if (c.tieWordEmbeddings) {
      this.lm_head.weight.dispose();
      this.lm_head.weight = this.transformer.wte.weight;
    } else {
      init.normal_(this.lm_head.weight, 0, c.initializerRange);
    }
  }

  forward(inputIds: Tensor, opts: GPT2LMForwardOptions = {}): GPT2LMOutput {
    const { lastHiddenState, pastKeyValues } = this.transformer.forward(inputIds, opts);
    const logits = this.lm_head.forward(lastHiddenState);
    const labels = opts.labels ?? null;
    return { logits, pastKeyValues, loss: labels ? lmLoss(logits, labels) : null };
  }

  /**
   * Continues `inputIds` (int32 [B, T]) by up to `maxNewTokens` tokens → int32 [B, T + new]:
   * greedy with `doSample: false` or temperature 0, else temperature / topK / topP sampling
   * (`seed` makes it reproducible). Runs under noGrad with the KV cache; call `eval()` first
   * to switch dropout off, as with HF.
   */
  generate(inputIds: Tensor, opts: GenerateOptions = {}): Tensor {
    // One step boundary per generate (it runs under noGrad, like an inference call), however
    // many forwards it makes: a loop of generate calls stays flat and the prompt stays alive.
    return noGrad(() =>
      asOneCall(this, [inputIds, opts.attentionMask], () => generate(this, inputIds, opts)),
    );
  }

  /**
   * Loads a Hugging Face GPT2LMHeadModel state dict as it is: strict, with or without
   * `lm_head.weight` when tied, dropping the attention-mask buffers of older checkpoints
   * (`transformer.h.{i}.attn.bias`, `.masked_bias`). A GPT2Model file (no `transformer.`
   * prefix) loads into `transformer` (with a tied head; an untied head stays missing).
   */
  loadHuggingFace(dict: Record<string, Tensor>): HfLoadResult {
    return loadHuggingFace(this, dict, HF_SPEC);
  }

  /** A GPT2LMHeadModel with weights from a Hugging Face safetensors file. */
  static fromSafetensors(
    bytes: Uint8Array | ArrayBuffer,
    config: GPT2Config | GPT2ConfigOptions,
  ): GPT2LMHeadModel {
    return fromHfSafetensors(new GPT2LMHeadModel(config), bytes);
  }
}

/** HF's causal-LM loss: logits at t against labels at t + 1, ignoreIndex -100, mean. */
export function lmLoss(logits: Tensor, labels: Tensor): Tensor {
  const [B, T, V] = logits.shape;
  if (
    labels.dtype !== 'int32' ||
    labels.ndim !== 2 ||
    labels.shape[0] !== B ||
    labels.shape[1] !== T
  ) {
    throw new ShapeError(
      `GPT2LMHeadModel: labels ${labels.dtype} ${fmt(labels.shape)} must be int32 [${B}, ${T}] like the inputs`,
    );
  }
  const n = B * (T - 1);
  const shifted = logits.narrow(1, 0, T - 1).reshape([n, V]);
  const targets = labels.narrow(1, 1, T - 1).reshape([n]);
  return crossEntropy(shifted, targets, { ignoreIndex: -100 });
}

/** HF's `_init_weights`: N(0, initializerRange) weights, zero biases, LayerNorm ones/zeros,
 * and every `c_proj.weight` N(0, initializerRange / sqrt(2 · nLayer)). */
function initGPT2(model: GPT2Model, c: GPT2Config): void {
  const std = c.initializerRange;
  for (const m of model.modules()) {
    if (m instanceof Conv1D) m.resetParameters(std);
    else if (m instanceof Embedding) init.normal_(m.weight, 0, std);
    else if (m instanceof LayerNorm) m.resetParameters();
  }
  for (const [name, p] of model.namedParameters()) {
    if (name.endsWith('c_proj.weight')) init.normal_(p, 0, std / Math.sqrt(2 * c.nLayer));
  }
}

function checkPast(past: readonly LayerPast[], c: GPT2Config, B: number): number {
  if (past.length !== c.nLayer) {
    throw new ValueError(
      `GPT2Model: pastKeyValues has ${past.length} layers, the model ${c.nLayer}`,
    );
  }
  const P = past[0][0].shape[2];
  for (const [i, [k, v]] of past.entries()) {
    for (const t of [k, v]) {
      const s = t.shape;
      if (t.ndim !== 4 || s[0] !== B || s[1] !== c.nHead || s[2] !== P || s[3] !== c.headDim) {
        throw new ShapeError(
          `GPT2Model: pastKeyValues[${i}] holds ${fmt(s)}; expected [${B}, ${c.nHead}, ${P}, ${c.headDim}] (batch, heads, past, headDim)`,
        );
      }
    }
  }
  return P;
}

/**
 * The attention masking of one forward: isCausal when nothing is cached (SDPA's top-left
 * triangle is then right); no mask for one new token after a cache; else an explicit float
 * mask, causal aligned bottom-right (query i sees keys up to P + i), plus HF's padding term.
 */
function attnMasking(attentionMask: Tensor | null, B: number, T: number, P: number): AttnMasking {
  const S = P + T;
  if (!attentionMask)
    return P === 0
      ? { isCausal: true, mask: null }
      : T === 1
        ? { isCausal: false, mask: null }
        : { isCausal: false, mask: causal(T, P) };
  const m = attentionMask;
  if (
    (m.dtype !== 'int32' && m.dtype !== 'float32') ||
    m.ndim !== 2 ||
    m.shape[0] !== B ||
    m.shape[1] !== S
  ) {
    throw new ShapeError(
      `GPT2Model: attentionMask ${m.dtype} ${fmt(m.shape)} must be int32 or float32 [${B}, ${S}] (batch, past + new)`,
    );
  }
  return noGrad(() => {
    // HF's (1 - mask) · float32.min: finite, so a row of padding never turns into NaN.
    const pad = m.float().reshape([B, 1, 1, S]).neg().add(1).mul(FLOAT32_MIN);
    return { isCausal: false, mask: T === 1 ? pad : pad.add(causal(T, P)) };
  });
}

/** [T, P + T] float mask: 0 where key j <= P + i, -inf after. */
function causal(T: number, P: number): Tensor {
  return noGrad(() => full([T, P + T], -Infinity).triu(P + 1));
}
