// The LoRA wrappers (PEFT's lora.Linear and lora.Embedding): `y = base(x) + s · B(A(drop(x)))`
// with s = alpha / r (alpha / √r with rsLoRA). The base layer is kept as a hidden field and
// its weight and bias are re-exposed under their own names, so the model's state-dict keys do
// not change; the adapter's parameters are marked so `stateDict()` leaves them out.
import { ValueError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { noGrad } from '../../autograd/node.js';
import { zeros } from '../../ops/creation.js';
import { Module, Parameter, isParameter, markAdapter, pyFloat } from '../module.js';
import { Dropout, Embedding, Linear } from '../layers.js';
import { Identity } from '../containers.js';
import { Conv1D } from '../gpt2/model.js';
import { MultiheadAttention } from '../transformer/attention.js';
import * as F from '../functional.js';
import * as init from '../init.js';

/** What every LoRA wrapper shares: rank, scaling, merge state and the hidden base layer. */
export abstract class LoraLayer extends Module {
  /** True while `B·A·s` is added into the base weight (forward then skips the adapter). */
  merged = false;
  readonly scaling: number;

  constructor(
    /** The wrapped layer; hidden (non-enumerable) so it adds no `base_layer.` to any name. */
    readonly base_layer: Module,
    readonly r: number,
    readonly loraAlpha: number,
    useRslora: boolean,
  ) {
    super();
    Object.defineProperty(this, 'base_layer', { enumerable: false });
    this.scaling = useRslora ? loraAlpha / Math.sqrt(r) : loraAlpha / r;
    // train()/eval() walk the visible tree only: the hidden base follows this wrapper's mode.
    Object.defineProperty(base_layer, 'training', {
      get: () => this.training,
      set: (v: boolean) => (this.training = v),
      enumerable: true,
      configurable: true,
    });
    // The base's parameters and submodules (MultiheadAttention's out_proj) under their own
    // names, read and written through to the base layer.
    for (const [k, v] of Object.entries(base_layer)) {
      if (!(v === null || isParameter(v) || v instanceof Module) || k in this) continue;
      Object.defineProperty(this, k, {
        get: () => (base_layer as unknown as Record<string, unknown>)[k],
        set: (v) => ((base_layer as unknown as Record<string, unknown>)[k] = v),
        enumerable: true,
        configurable: true,
      });
    }
  }

  /** `s · B A` in the layout of the base weight. */
  abstract deltaWeight(): Tensor;

  /** Gives the base layer back its own `training` flag (when the wrapper is removed). */
  detachBase(): Module {
    Object.defineProperty(this.base_layer, 'training', {
      value: this.training,
      writable: true,
      enumerable: true,
      configurable: true,
    });
    return this.base_layer;
  }

  /** The base parameter the adapter's delta belongs to. */
  protected baseWeight(): Tensor {
    return (this.base_layer as unknown as { weight: Tensor }).weight;
  }

  /** Adds the adapter into the base weight (no-op when merged). */
  merge(): void {
    if (this.merged) return;
    noGrad(() => {
      const d = this.deltaWeight();
      this.baseWeight().add_(d);
      d.dispose();
    });
    this.merged = true;
  }

  /** Subtracts the adapter from the base weight again (no-op when not merged). */
  unmerge(): void {
    if (!this.merged) return;
    noGrad(() => {
      const d = this.deltaWeight();
      this.baseWeight().sub_(d);
      d.dispose();
    });
    this.merged = false;
  }

  protected loraRepr(): string {
    return `r=${this.r}, lora_alpha=${pyFloat(this.loraAlpha)}, scaling=${pyFloat(this.scaling)}`;
  }
}

/** LoRA around a `Linear` (or GPT-2's `Conv1D`, whose weight is [in, out]: fan_in_fan_out). */
export class LoraLinear extends LoraLayer {
  declare weight: Tensor;
  declare bias: Tensor | null;
  lora_dropout: Module;
  /** [r, in] as a bias-free Linear: Kaiming-uniform (a = √5), as PEFT. */
  lora_A: Linear;
  /** [out, r] as a bias-free Linear: zeros, so the wrapped layer starts equal to the base. */
  lora_B: Linear;
  readonly fanInFanOut: boolean;

  constructor(
    base: Linear | Conv1D,
    opts: { r: number; alpha: number; dropout: number; useRslora: boolean },
  ) {
    super(base, opts.r, opts.alpha, opts.useRslora);
    this.fanInFanOut = base instanceof Conv1D;
    const [inF, outF] =
      base instanceof Conv1D ? [base.nx, base.nf] : [base.inFeatures, base.outFeatures];
    this.lora_dropout = opts.dropout > 0 ? new Dropout(opts.dropout) : new Identity();
    this.lora_A = new Linear(inF, opts.r, { bias: false });
    this.lora_B = new Linear(opts.r, outF, { bias: false });
    init.kaimingUniform_(this.lora_A.weight, { a: Math.sqrt(5) });
    init.zeros_(this.lora_B.weight);
    markAdapter(this.lora_A);
    markAdapter(this.lora_B);
  }

  forward(x: Tensor): Tensor {
    const y = (this.base_layer as unknown as { forward(t: Tensor): Tensor }).forward(x);
    if (this.merged) return y;
    const h = (this.lora_dropout as unknown as { forward(t: Tensor): Tensor }).forward(x);
    return y.add(this.lora_B.forward(this.lora_A.forward(h)).mul(this.scaling));
  }

  deltaWeight(): Tensor {
    const d = this.lora_B.weight.matmul(this.lora_A.weight).mul(this.scaling);
    return this.fanInFanOut ? d.mT : d;
  }

  override extraRepr(): string {
    return `${this.base_layer.extraRepr()}, ${this.loraRepr()}`;
  }
}

/**
 * LoRA around an `Embedding` (PEFT's rule): `lora_embedding_A` [r, num] starts at zeros and
 * `lora_embedding_B` [dim, r] N(0, 1); the path is `embedding(x, Aᵀ) Bᵀ s`, with the base's
 * padding index and no dropout (PEFT applies none to embeddings).
 */
export class LoraEmbedding extends LoraLayer {
  declare weight: Tensor;
  lora_embedding_A: Tensor;
  lora_embedding_B: Tensor;

  constructor(base: Embedding, opts: { r: number; alpha: number; useRslora: boolean }) {
    super(base, opts.r, opts.alpha, opts.useRslora);
    this.lora_embedding_A = Parameter(zeros([opts.r, base.numEmbeddings]));
    this.lora_embedding_B = Parameter(zeros([base.embeddingDim, opts.r]));
    init.normal_(this.lora_embedding_B);
    markAdapter([this.lora_embedding_A, this.lora_embedding_B]);
  }

  forward(indices: Tensor): Tensor {
    const base = this.base_layer as Embedding;
    const y = base.forward(indices);
    if (this.merged) return y;
    const a = F.embedding(indices, this.lora_embedding_A.mT, { paddingIdx: base.paddingIdx });
    return y.add(a.matmul(this.lora_embedding_B.mT).mul(this.scaling));
  }

  deltaWeight(): Tensor {
    return this.lora_embedding_B.matmul(this.lora_embedding_A).mT.mul(this.scaling);
  }

  override extraRepr(): string {
    return `${this.base_layer.extraRepr()}, ${this.loraRepr()}`;
  }
}

/**
 * LoRA on the packed input projection of `MultiheadAttention` (kdim = vdim = embedDim):
 * `in_proj_weight + s · B A` with A [r, E] and B [3E, r], formed each call and used in place
 * of the base weight for that call (B = 0 at the start). The adapter sees the weight, not the
 * inputs, so no dropout applies. The out projection is a Linear: target `out_proj` for it.
 */
export class LoraMultiheadAttention extends LoraLayer {
  lora_A: Linear;
  lora_B: Linear;

  constructor(base: MultiheadAttention, opts: { r: number; alpha: number; useRslora: boolean }) {
    super(base, opts.r, opts.alpha, opts.useRslora);
    const E = base.embedDim;
    this.lora_A = new Linear(E, opts.r, { bias: false });
    this.lora_B = new Linear(opts.r, 3 * E, { bias: false });
    init.kaimingUniform_(this.lora_A.weight, { a: Math.sqrt(5) });
    init.zeros_(this.lora_B.weight);
    markAdapter(this.lora_A);
    markAdapter(this.lora_B);
  }

  protected override baseWeight(): Tensor {
    return (this.base_layer as MultiheadAttention).in_proj_weight!;
  }

  forward(...args: unknown[]): unknown {
    const base = this.base_layer as MultiheadAttention;
    const call = base.forward as (...a: unknown[]) => unknown;
    if (this.merged) return call(...args);
    const w = base.in_proj_weight!;
    const d = this.deltaWeight();
    base.in_proj_weight = w.add(d);
    try {
      return call(...args);
    } finally {
      base.in_proj_weight = w;
    }
  }

  deltaWeight(): Tensor {
    return this.lora_B.weight.matmul(this.lora_A.weight).mul(this.scaling);
  }

  override extraRepr(): string {
    return `embed_dim=${(this.base_layer as MultiheadAttention).embedDim}, ${this.loraRepr()}`;
  }
}

/** Throws the ValueError PEFT would for a target LoRA cannot wrap (before anything is made). */
export function checkLoraTarget(path: string, m: Module): void {
  if (m instanceof Linear || m instanceof Conv1D || m instanceof Embedding) return;
  if (m instanceof MultiheadAttention && m.in_proj_weight) return;
  throw new ValueError(
    `lora.apply: target module '${path}' is a ${m.constructor.name}${m instanceof MultiheadAttention ? ' with separate q/k/v projections' : ''}; LoRA supports Linear, Embedding, Conv1D and MultiheadAttention's packed in-projection`,
  );
}

/** The wrapper for `m` (checked by checkLoraTarget). */
export function wrapLora(
  path: string,
  m: Module,
  opts: { r: number; alpha: number; dropout: number; useRslora: boolean },
): LoraLayer {
  checkLoraTarget(path, m);
  if (m instanceof Embedding) return new LoraEmbedding(m, opts);
  if (m instanceof MultiheadAttention) return new LoraMultiheadAttention(m, opts);
  return new LoraLinear(m as Linear | Conv1D, opts);
}
