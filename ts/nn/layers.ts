// The standard layers (Linear, Embedding, LayerNorm, Dropout, Flatten) and the containers
// (Sequential, ModuleList). Parameters are fields created with Parameter(), in the order
// PyTorch registers them, so state-dict keys and their order match torch.nn.
import { IndexError, ValueError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/node.js';
import { ones, tensor, zeros } from '../ops/creation.js';
import { Module, Parameter, pyBool, pyFloat, pyTuple } from './module.js';
import * as F from './functional.js';
import * as init from './init.js';

function checkSize(op: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) {
    throw new ValueError(`${op}: ${name} must be a non-negative integer, got ${v}`);
  }
}

/** `y = x · weightᵀ + bias` over the last dim. */
export class Linear extends Module {
  /** [outFeatures, inFeatures]. */
  weight: Tensor;
  /** [outFeatures], or null with `{bias: false}`. */
  bias: Tensor | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean } = {},
  ) {
    super();
    checkSize('Linear', 'inFeatures', inFeatures);
    checkSize('Linear', 'outFeatures', outFeatures);
    this.weight = Parameter(zeros([outFeatures, inFeatures]));
    this.bias = (opts.bias ?? true) ? Parameter(zeros([outFeatures])) : null;
    this.resetParameters();
  }

  /**
   * PyTorch's default: kaiming-uniform with a = √5 on the weight, which is U(±1/√in), and
   * the same bound for the bias.
   */
  resetParameters(): void {
    init.kaimingUniform_(this.weight, { a: Math.sqrt(5) });
    if (this.bias) {
      const bound = this.inFeatures > 0 ? 1 / Math.sqrt(this.inFeatures) : 0;
      init.uniform_(this.bias, -bound, bound);
    }
  }

  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }

  override extraRepr(): string {
    const bias = pyBool(this.bias !== null);
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${bias}`;
  }
}

/** Zeroes elements with probability p while training; the identity after `eval()`. */
export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new ValueError(`Dropout: p must be in [0, 1], got ${p}`);
  }

  forward(x: Tensor): Tensor {
    return F.dropout(x, { p: this.p, training: this.training });
  }

  override extraRepr(): string {
    return `p=${pyFloat(this.p)}, inplace=False`;
  }
}

/** Merges dims startDim..endDim into one (by default everything but the batch dim). */
export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }

  forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }

  override extraRepr(): string {
    return `start_dim=${this.startDim}, end_dim=${this.endDim}`;
  }
}

export interface EmbeddingOptions {
  /** This row starts at zero and never receives a gradient; negative counts from the end. */
  paddingIdx?: number | null;
}

/** A lookup table: int32 indices of any shape → [...shape, embeddingDim]. */
export class Embedding extends Module {
  /** [numEmbeddings, embeddingDim], initialised N(0, 1). */
  weight: Tensor;
  /** The padding row in [0, numEmbeddings), or null. */
  readonly paddingIdx: number | null;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    opts: EmbeddingOptions = {},
  ) {
    super();
    checkSize('Embedding', 'numEmbeddings', numEmbeddings);
    checkSize('Embedding', 'embeddingDim', embeddingDim);
    const pad = opts.paddingIdx ?? null;
    if (pad !== null && (!Number.isInteger(pad) || pad < -numEmbeddings || pad >= numEmbeddings)) {
      throw new IndexError(
        `Embedding: paddingIdx ${pad} is out of range for ${numEmbeddings} embeddings`,
      );
    }
    this.paddingIdx = pad !== null && pad < 0 ? pad + numEmbeddings : pad;
    this.weight = Parameter(zeros([numEmbeddings, embeddingDim]));
    this.resetParameters();
  }

  resetParameters(): void {
    init.normal_(this.weight);
    const pad = this.paddingIdx;
    if (pad === null) return;
    // maskedFill writes an exact +0 (multiplying by a 0/1 mask would leave -0 for negatives).
    const isPad = new Int32Array(this.numEmbeddings);
    isPad[pad] = 1;
    const mask = tensor(isPad, { shape: [this.numEmbeddings, 1] });
    noGrad(() => {
      const zeroed = this.weight.maskedFill(mask, 0);
      this.weight.copy_(zeroed);
      zeroed.dispose();
    });
    mask.dispose();
  }

  forward(indices: Tensor): Tensor {
    return F.embedding(indices, this.weight, { paddingIdx: this.paddingIdx });
  }

  override extraRepr(): string {
    const pad = this.paddingIdx === null ? '' : `, padding_idx=${this.paddingIdx}`;
    return `${this.numEmbeddings}, ${this.embeddingDim}${pad}`;
  }
}

export interface LayerNormOptions {
  /** Added to the variance before the square root; default 1e-5. */
  eps?: number;
  /** Learnable per-element weight (ones) and bias (zeros); default true. */
  elementwiseAffine?: boolean;
  /** With elementwiseAffine, whether to learn a bias too; default true. */
  bias?: boolean;
}

/** Normalises the trailing `normalizedShape` dims to zero mean and unit (biased) variance. */
export class LayerNorm extends Module {
  readonly normalizedShape: readonly number[];
  readonly eps: number;
  readonly elementwiseAffine: boolean;
  weight: Tensor | null;
  bias: Tensor | null;

  constructor(normalizedShape: number | readonly number[], opts: LayerNormOptions = {}) {
    super();
    const shape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    if (shape.length === 0) throw new ValueError('LayerNorm: normalizedShape must not be empty');
    shape.forEach((s) => checkSize('LayerNorm', 'normalizedShape', s));
    this.normalizedShape = Object.freeze(shape);
    this.eps = opts.eps ?? 1e-5;
    this.elementwiseAffine = opts.elementwiseAffine ?? true;
    this.weight = this.elementwiseAffine ? Parameter(ones(shape)) : null;
    this.bias = this.elementwiseAffine && (opts.bias ?? true) ? Parameter(zeros(shape)) : null;
  }

  resetParameters(): void {
    if (this.weight) init.ones_(this.weight);
    if (this.bias) init.zeros_(this.bias);
  }

  forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }

  override extraRepr(): string {
    const shape = pyTuple(this.normalizedShape);
    return `${shape}, eps=${pyFloat(this.eps)}, elementwise_affine=${pyBool(this.elementwiseAffine)}`;
  }
}

/** A module that maps one tensor to one tensor (what Sequential chains). */
type TensorToTensor = { forward(x: Tensor): Tensor };

/**
 * Modules stored under the field names '0', '1', …, which is how PyTorch names a container's
 * children in state-dict keys. JavaScript enumerates integer keys first and in numeric order,
 * so discovery order is index order.
 */
abstract class IndexedModules<M extends Module> extends Module {
  [index: number]: M;
  private count = 0;

  constructor(modules: readonly M[]) {
    super();
    for (const m of modules) this.append(m);
  }

  get length(): number {
    return this.count;
  }

  /** Adds a module at the end (index `length`). */
  append(module: M): this {
    if (!(module instanceof Module)) {
      throw new ValueError(
        `${this.constructor.name}.append: expected a Module, got ${String(module)}`,
      );
    }
    this[this.count++] = module;
    return this;
  }

  /** The module at `i`; negative indices count from the end, like `Array.prototype.at`. */
  at(i: number): M {
    const j = i < 0 ? i + this.count : i;
    if (!Number.isInteger(j) || j < 0 || j >= this.count) {
      throw new IndexError(
        `${this.constructor.name}.at: index ${i} is out of range for ${this.count} modules`,
      );
    }
    return this[j];
  }

  *[Symbol.iterator](): Generator<M> {
    for (let i = 0; i < this.count; i++) yield this[i];
  }
}

/** Applies its modules in order: `forward(x)` is `mₙ(…m₁(m₀(x)))`. */
export class Sequential extends IndexedModules<Module> {
  constructor(...modules: Module[]) {
    super(modules);
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this) y = (m as unknown as TensorToTensor).forward(y);
    return y;
  }
}

/** A list of submodules whose parameters are registered; the owner's forward calls them. */
export class ModuleList<M extends Module = Module> extends IndexedModules<M> {
  constructor(modules: Iterable<M> = []) {
    super([...modules]);
  }

  forward(): never {
    throw new ValueError('ModuleList: has no forward(); call its modules from your own forward');
  }
}
