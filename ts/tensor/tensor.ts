// The Tensor: a shape, a dtype and a block of wasm memory, plus autograd bookkeeping.
// Methods are thin: each forwards to the op function in ts/ops, where forward and backward
// live side by side.
import { DisposedError, DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import { isGradEnabled, noGrad, type GradNode } from '../autograd/node.js';
import { backward as runBackward, type BackwardOptions } from '../autograd/backward.js';
import { f32View, i32View } from '../wasm/heap.js';
import type { DType, TypedArray } from './dtype.js';
import { broadcastShapes, numel, type Shape } from './shape.js';
import { Storage } from './storage.js';
import { setTensorCheck, track, untrack, type Scope } from './scope.js';
import { step, type Release } from './steps.js';
import * as E from '../ops/elementwise.js';
import * as R from '../ops/reduce.js';
import * as M from '../ops/math.js';
import * as S from '../ops/shape.js';
import * as I from '../ops/indexing.js';
import { matmul, type MatmulOptions } from '../ops/matmul.js';
import { softmax, logSoftmax } from '../ops/softmax.js';
import { broadcastTo, castTo, clone, copyStrided } from '../ops/copy.js';
import { fullLike } from '../ops/creation.js';
import * as Sort from '../ops/sort.js';
import { multinomial, type MultinomialOptions } from '../ops/random.js';

export type Scalar = number;
export type TensorLike = Tensor | Scalar;
type Dims = number | readonly number[];

let nextId = 1;

export class Tensor implements Disposable {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly size: number;
  /** The gradient accumulated by `backward()`, owned by this tensor. */
  grad: Tensor | null = null;
  /** @internal */ _storage: Storage | null;
  /** @internal */ _node: GradNode | null = null;
  /** @internal */ _scope: Scope | null = null;
  /** @internal Registered with the FinalizationRegistry (only while no scope owns it). */
  _guarded = false;
  /** @internal Held by `keep()`: never released by a scope or a step boundary. */
  _kept = false;
  /** @internal The step at which an op last read this tensor (see steps.ts). */
  _lastRead = 0;
  /** @internal The loop driver whose step it was made in (see steps.ts). */
  _home: object | null = null;
  /** @internal Why a step boundary released it, for the error a later use throws. */
  _release: Release | null = null;
  /** @internal Set by `retainGrad()`: backward also stores this non-leaf tensor's gradient. */
  _retainsGrad = false;
  private _requiresGrad = false;

  /** @internal Use the creation functions (`nb.tensor`, `nb.zeros`, ...) instead. */
  constructor(
    storage: Storage,
    shape: Shape,
    readonly dtype: DType,
  ) {
    this._storage = storage;
    this.shape = Object.freeze([...shape]);
    this.size = numel(shape);
    track(this);
  }

  /** @internal An uninitialised tensor with its own storage. */
  static empty(shape: Shape, dtype: DType = 'float32'): Tensor {
    return new Tensor(Storage.forTensor(shape, dtype), shape, dtype);
  }

  /** @internal A tensor sharing this one's storage under another shape (same size). */
  _alias(shape: Shape): Tensor {
    return new Tensor(this.storage().retain(), shape, this.dtype);
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** @internal The storage, or a DisposedError if this tensor was disposed. */
  storage(): Storage {
    if (this._storage === null) {
      const r = this._release;
      throw new DisposedError(
        r
          ? `tensor ${fmt(this.shape)} ${this.dtype} was released automatically at step ${r.step} (${r.boundary}): no op had read it since step ${r.lastRead}, before that loop's previous step (${r.previous}). A tensor made in a loop lives until its loop advances twice without using it; hold it longer with nb.keep(t) (and dispose() it when done)`
          : `tensor ${fmt(this.shape)} ${this.dtype} was used after dispose()`,
      );
    }
    this._lastRead = step;
    return this._storage;
  }

  /** @internal Byte offset of the data in wasm memory (checks the tensor is alive). */
  get ptr(): number {
    return this.storage().ptr;
  }

  get isDisposed(): boolean {
    return this._storage === null;
  }

  get requiresGrad(): boolean {
    return this._requiresGrad;
  }

  set requiresGrad(v: boolean) {
    if (v && this.dtype !== 'float32') {
      throw new DTypeError(
        `requiresGrad: only float32 tensors can require gradients, got ${this.dtype}`,
      );
    }
    if (!v && this._node !== null) {
      throw new ValueError(
        'requiresGrad: cannot turn off gradients of a non-leaf tensor; use detach()',
      );
    }
    this._requiresGrad = v;
  }

  /** Sets `requiresGrad` in place and returns this tensor (PyTorch's `requires_grad_`). */
  requiresGrad_(v = true): this {
    this.requiresGrad = v;
    return this;
  }

  /** True for tensors not produced by a recorded op (user-created, or detached). */
  get isLeaf(): boolean {
    return this._node === null;
  }

  /** The name of the op that produced this tensor, or null for a leaf. */
  get gradFn(): string | null {
    return this._node?.name ?? null;
  }

  /** Frees the memory (shared views keep it alive). Safe to call twice. */
  dispose(): void {
    if (this._storage === null) return;
    untrack(this);
    this._storage.release();
    this._storage = null;
    // `_node` stays: a backward that reaches this tensor still routes gradients through it,
    // and fails with DisposedError only if it needs the freed data.
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  // ------------------------------------------------------------------ reading

  /** A typed-array copy of the data (Float32Array or Int32Array). */
  toArray(): TypedArray {
    const view =
      this.dtype === 'float32' ? f32View(this.ptr, this.size) : i32View(this.ptr, this.size);
    return view.slice();
  }

  /** The data as nested arrays (a number for a 0-d tensor). */
  tolist(): unknown {
    const flat = Array.from(this.toArray());
    const build = (dim: number, offset: number, stride: number): unknown => {
      if (dim === this.ndim) return flat[offset];
      const n = this.shape[dim];
      const inner = stride / Math.max(n, 1);
      return Array.from({ length: n }, (_, i) => build(dim + 1, offset + i * inner, inner));
    };
    return build(0, 0, this.size);
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) {
      throw new ValueError(
        `item: only one-element tensors can be read as a number, got shape ${fmt(this.shape)}`,
      );
    }
    return this.toArray()[0];
  }

  toString(): string {
    const body = this.isDisposed ? '<disposed>' : JSON.stringify(this.tolist());
    return `tensor(${body}, shape=${fmt(this.shape)}, dtype=${this.dtype}${this.requiresGrad ? ', requiresGrad=true' : ''})`;
  }

  // ------------------------------------------------------------------ autograd

  /**
   * Accumulates d(this)/d(leaf) into every leaf's `.grad`; `grad` defaults to 1 for scalars.
   * The graph is freed afterwards, so a second backward through it throws unless this one
   * passed `{ retainGraph: true }`.
   */
  backward(grad?: Tensor | null, opts: BackwardOptions = {}): void {
    runBackward(this, grad ?? undefined, opts);
  }

  /** Makes `backward()` also store this non-leaf tensor's gradient in `.grad`. */
  retainGrad(): this {
    if (!this.requiresGrad) {
      throw new ValueError(`retainGrad: tensor ${fmt(this.shape)} does not require grad`);
    }
    if (this._node !== null) this._retainsGrad = true;
    return this;
  }

  /** A tensor sharing this data with no gradient history. */
  detach(): Tensor {
    return this._alias(this.shape);
  }

  clone(): Tensor {
    return clone(this);
  }

  to(dtype: DType): Tensor {
    return castTo(this, dtype);
  }

  float(): Tensor {
    return castTo(this, 'float32');
  }

  int(): Tensor {
    return castTo(this, 'int32');
  }

  // ------------------------------------------------------------------ in place

  /** Overwrites this tensor's data with `src` (broadcast to this shape, cast to this dtype). */
  copy_(src: TensorLike): this {
    inPlace(this, 'copy_', () => {
      if (typeof src === 'number') return fullLike(this, src);
      const shape = broadcastShapes('copy_', this.shape, src.shape);
      if (shape.length !== this.ndim || shape.some((d, i) => d !== this.shape[i])) {
        throw new ShapeError(
          `copy_: source ${fmt(src.shape)} does not broadcast to ${fmt(this.shape)}`,
        );
      }
      return broadcastTo(src, this.shape);
    });
    return this;
  }
  fill_(value: number): this {
    return this.copy_(value);
  }
  zero_(): this {
    return this.copy_(0);
  }
  add_(other: TensorLike): this {
    inPlace(this, 'add_', () => E.add(this, other));
    return this;
  }
  sub_(other: TensorLike): this {
    inPlace(this, 'sub_', () => E.sub(this, other));
    return this;
  }
  mul_(other: TensorLike): this {
    inPlace(this, 'mul_', () => E.mul(this, other));
    return this;
  }
  div_(other: TensorLike): this {
    inPlace(this, 'div_', () => E.div(this, other));
    return this;
  }

  // ------------------------------------------------------------------ elementwise

  add(other: TensorLike): Tensor {
    return E.add(this, other);
  }
  sub(other: TensorLike): Tensor {
    return E.sub(this, other);
  }
  mul(other: TensorLike): Tensor {
    return E.mul(this, other);
  }
  div(other: TensorLike): Tensor {
    return E.div(this, other);
  }
  pow(exponent: TensorLike): Tensor {
    return E.pow(this, exponent);
  }
  maximum(other: TensorLike): Tensor {
    return E.maximum(this, other);
  }
  minimum(other: TensorLike): Tensor {
    return E.minimum(this, other);
  }
  neg(): Tensor {
    return E.neg(this);
  }
  exp(): Tensor {
    return E.exp(this);
  }
  log(): Tensor {
    return E.log(this);
  }
  sqrt(): Tensor {
    return E.sqrt(this);
  }
  rsqrt(): Tensor {
    return E.rsqrt(this);
  }
  abs(): Tensor {
    return E.abs(this);
  }
  square(): Tensor {
    return E.square(this);
  }
  reciprocal(): Tensor {
    return E.reciprocal(this);
  }
  sign(): Tensor {
    return E.sign(this);
  }
  /** Clamps into `[min, max]`; bounds may be numbers or tensors that broadcast. */
  clamp(min?: TensorLike | null, max?: TensorLike | null): Tensor {
    return E.clamp(this, min, max);
  }
  relu(): Tensor {
    return E.relu(this);
  }
  sigmoid(): Tensor {
    return E.sigmoid(this);
  }
  tanh(): Tensor {
    return E.tanh(this);
  }
  gelu(opts: { approximate?: 'none' | 'tanh' } = {}): Tensor {
    return E.gelu(this, opts);
  }
  leakyRelu(negativeSlope = 0.01): Tensor {
    return E.leakyRelu(this, negativeSlope);
  }
  eq(other: TensorLike): Tensor {
    return E.eq(this, other);
  }
  ne(other: TensorLike): Tensor {
    return E.ne(this, other);
  }
  lt(other: TensorLike): Tensor {
    return E.lt(this, other);
  }
  le(other: TensorLike): Tensor {
    return E.le(this, other);
  }
  gt(other: TensorLike): Tensor {
    return E.gt(this, other);
  }
  ge(other: TensorLike): Tensor {
    return E.ge(this, other);
  }
  /** `value` where `mask` is non-zero, else this tensor's element. */
  maskedFill(mask: Tensor, value: number): Tensor {
    return E.maskedFill(this, mask, value);
  }
  /** PyTorch's `x.where(cond, y)`: this where `cond`, else `other`. */
  where(cond: Tensor, other: TensorLike): Tensor {
    return E.where(cond, this, other);
  }
  sin(): Tensor {
    return M.sin(this);
  }
  cos(): Tensor {
    return M.cos(this);
  }
  erf(): Tensor {
    return M.erf(this);
  }
  log1p(): Tensor {
    return M.log1p(this);
  }
  expm1(): Tensor {
    return M.expm1(this);
  }
  floor(): Tensor {
    return M.floor(this);
  }
  ceil(): Tensor {
    return M.ceil(this);
  }
  /** Rounds half to even; `{decimals}` as PyTorch's keyword. */
  round(opts: M.RoundOptions = {}): Tensor {
    return M.round(this, opts);
  }
  /** int32 mask: 1 where NaN. */
  isnan(): Tensor {
    return M.isnan(this);
  }
  /** int32 mask: 1 where finite. */
  isfinite(): Tensor {
    return M.isfinite(this);
  }
  softplus(opts: M.SoftplusOptions = {}): Tensor {
    return M.softplus(this, opts);
  }
  silu(): Tensor {
    return M.silu(this);
  }
  mish(): Tensor {
    return M.mish(this);
  }
  hardtanh(opts: M.HardtanhOptions = {}): Tensor {
    return M.hardtanh(this, opts);
  }
  elu(opts: M.EluOptions = {}): Tensor {
    return M.elu(this, opts);
  }
  /** Product of all elements, or along `dim`. */
  prod(dim?: number, keepdim = false): Tensor {
    return M.prod(this, dim, keepdim);
  }
  cumsum(dim: number): Tensor {
    return M.cumsum(this, dim);
  }
  /** Vector p-norm (torch.linalg.vector_norm semantics; 'fro' is the 2-norm). */
  norm(p: M.NormOrd = 2, dim?: Dims, keepdim = false): Tensor {
    return M.norm(this, p, dim, keepdim);
  }
  /** int32: 1 where any element (along `dim`) is non-zero. */
  any(dim?: Dims, keepdim = false): Tensor {
    return M.any(this, dim, keepdim);
  }
  /** int32: 1 where all elements (along `dim`) are non-zero. */
  all(dim?: Dims, keepdim = false): Tensor {
    return M.all(this, dim, keepdim);
  }

  // ------------------------------------------------------------------ softmax

  softmax(dim: number): Tensor {
    return softmax(this, dim);
  }
  logSoftmax(dim: number): Tensor {
    return logSoftmax(this, dim);
  }

  // ------------------------------------------------------------------ reductions

  sum(dim?: Dims, keepdim = false): Tensor {
    return R.sum(this, dim, keepdim);
  }
  mean(dim?: Dims, keepdim = false): Tensor {
    return R.mean(this, dim, keepdim);
  }
  /** Maximum values along `dim` (use `argmax` for the indices). */
  max(dim?: Dims, keepdim = false): Tensor {
    return R.max(this, dim, keepdim);
  }
  min(dim?: Dims, keepdim = false): Tensor {
    return R.min(this, dim, keepdim);
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return R.argmax(this, dim, keepdim);
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return R.argmin(this, dim, keepdim);
  }
  logsumexp(dim: Dims, keepdim = false): Tensor {
    return R.logsumexp(this, dim, keepdim);
  }
  /**
   * Variance with Bessel's `correction` (1 = unbiased, PyTorch's default):
   * `var(dim, keepdim, correction)`, `var(dim, { correction, keepdim })` or `var({ correction })`.
   */
  var(
    dim?: Dims | null | R.VarOptions,
    keepdim?: boolean | R.VarOptions,
    correction?: number,
  ): Tensor {
    return R.variance(this, dim, keepdim, correction);
  }
  std(
    dim?: Dims | null | R.VarOptions,
    keepdim?: boolean | R.VarOptions,
    correction?: number,
  ): Tensor {
    return R.std(this, dim, keepdim, correction);
  }

  // ------------------------------------------------------------------ shape

  reshape(shape: readonly number[]): Tensor {
    return S.reshape(this, shape);
  }
  view(shape: readonly number[]): Tensor {
    return S.reshape(this, shape, 'view');
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return S.flatten(this, startDim, endDim);
  }
  squeeze(dim?: Dims): Tensor {
    return S.squeeze(this, dim);
  }
  unsqueeze(dim: number): Tensor {
    return S.unsqueeze(this, dim);
  }
  transpose(dim0: number, dim1: number): Tensor {
    return S.transpose(this, dim0, dim1);
  }
  permute(dims: readonly number[]): Tensor {
    return S.permute(this, dims);
  }
  /** The last two dims swapped (PyTorch's `mT`); needs ndim >= 2, as in PyTorch. */
  get mT(): Tensor {
    if (this.ndim < 2) {
      throw new ShapeError(
        `mT: needs a matrix or a batch of matrices (ndim >= 2), got shape ${fmt(this.shape)}`,
      );
    }
    return S.transpose(this, -2, -1);
  }
  /**
   * All dims reversed (PyTorch's `T`); a 0-d or 1-d tensor comes back as a view of the same
   * data, as in PyTorch.
   */
  get T(): Tensor {
    if (this.ndim < 2) return S.reshape(this, this.shape, 'T');
    return S.permute(
      this,
      this.shape.map((_, i) => this.ndim - 1 - i),
    );
  }
  expand(shape: readonly number[]): Tensor {
    return S.expand(this, shape);
  }
  expandAs(other: Tensor): Tensor {
    return S.expand(this, other.shape);
  }
  /** Tensors are always stored contiguously, so this returns the tensor itself. */
  contiguous(): Tensor {
    this.storage();
    return this;
  }
  slice(dim: number, start?: number | null, end?: number | null, step = 1): Tensor {
    return S.slice(this, dim, start, end, step);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return S.narrow(this, dim, start, length);
  }
  split(sizeOrSections: number | readonly number[], dim = 0): Tensor[] {
    return S.split(this, sizeOrSections, dim);
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return S.chunk(this, chunks, dim);
  }

  // ------------------------------------------------------------------ indexing

  indexSelect(dim: number, index: Tensor): Tensor {
    return I.indexSelect(this, dim, index);
  }
  gather(dim: number, index: Tensor): Tensor {
    return I.gather(this, dim, index);
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return I.scatterAdd(this, dim, index, src);
  }
  oneHot(numClasses = -1): Tensor {
    return I.oneHot(this, numClasses);
  }

  // ------------------------------------------------------------------ shape, sort, sample

  tril(diagonal = 0): Tensor {
    return S.tril(this, diagonal);
  }
  triu(diagonal = 0): Tensor {
    return S.triu(this, diagonal);
  }
  flip(dims: Dims): Tensor {
    return S.flip(this, dims);
  }
  /** Rotates along `dims`, or over the flattened tensor when `dims` is omitted. */
  roll(shifts: Dims, dims?: Dims): Tensor {
    return S.roll(this, shifts, dims);
  }
  repeat(repeats: readonly number[]): Tensor {
    return S.repeat(this, repeats);
  }
  tile(dims: readonly number[]): Tensor {
    return S.tile(this, dims);
  }
  /** Out-of-place `scatter_`: `src` (or one value) written at `index` along `dim`. */
  scatter(dim: number, index: Tensor, src: Tensor | number): Tensor {
    return I.scatter(this, dim, index, src);
  }
  maskedSelect(mask: Tensor): Tensor {
    return I.maskedSelect(this, mask);
  }
  nonzero(opts: { asTuple: true }): Tensor[];
  nonzero(opts?: I.NonzeroOptions): Tensor;
  nonzero(opts: I.NonzeroOptions = {}): Tensor | Tensor[] {
    return I.nonzero(this, opts);
  }
  /** `[values, indices]` of the `k` largest (or smallest) entries along `dim`. */
  topk(k: number, dim = -1, largest = true, sorted = true): [Tensor, Tensor] {
    return Sort.topk(this, k, dim, largest, sorted);
  }
  /** `[values, indices]` sorted along `dim` (stable). */
  sort(dim = -1, descending = false, opts: Sort.SortOptions = {}): [Tensor, Tensor] {
    return Sort.sort(this, dim, descending, opts);
  }
  argsort(dim = -1, descending = false, opts: Sort.SortOptions = {}): Tensor {
    return Sort.argsort(this, dim, descending, opts);
  }
  multinomial(numSamples: number, opts: MultinomialOptions = {}): Tensor {
    return multinomial(this, numSamples, opts);
  }

  // ------------------------------------------------------------------ linear algebra

  matmul(other: Tensor, opts?: MatmulOptions): Tensor {
    return matmul(this, other, opts);
  }
}

/**
 * Runs an out-of-place computation without recording and writes its result into `t`.
 * Like PyTorch, a leaf that requires grad may only be updated in place under `noGrad`.
 */
function inPlace(t: Tensor, op: string, compute: () => Tensor): void {
  if (t.requiresGrad && isGradEnabled()) {
    throw new ValueError(
      `${op}: a tensor that requires grad cannot be modified in place outside noGrad()`,
    );
  }
  const r = noGrad(compute);
  try {
    if (r.shape.length !== t.shape.length || r.shape.some((s, i) => s !== t.shape[i])) {
      throw new ShapeError(
        `${op}: result shape ${fmt(r.shape)} does not fit the tensor's shape ${fmt(t.shape)}`,
      );
    }
    const src = r.dtype === t.dtype ? r : castTo(r, t.dtype);
    copyStrided(src, 0, t, 0, [t.size], [1], [1]);
    t.storage().version++;
    if (src !== r) src.dispose();
  } finally {
    r.dispose();
  }
}

export function isTensor(v: unknown): v is Tensor {
  return v instanceof Tensor;
}
setTensorCheck(isTensor);
