// Making tensors: from JavaScript data, constants, ranges and random draws. All filling
// happens in the core; JavaScript only copies user-supplied data in.
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import { isDType, type DType } from '../tensor/dtype.js';
import { checkShape, numel } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { wasm } from '../wasm/core.js';
import { f32View, i32View, writeDims } from '../wasm/heap.js';
import { drawRandom } from './random.js';
import { fillWords } from './parallel.js';
import { castTo } from './copy.js';

export interface TensorOptions {
  dtype?: DType;
  requiresGrad?: boolean;
}

export interface FromDataOptions extends TensorOptions {
  /** Shape for flat data (a typed array or flat list); inferred from nesting otherwise. */
  shape?: readonly number[];
}

export type NestedArray = number | boolean | readonly NestedArray[];

function finish(t: Tensor, opts: TensorOptions): Tensor {
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

function resolveDType(op: string, opts: TensorOptions, inferred: DType): DType {
  const d = opts.dtype ?? (opts.requiresGrad ? 'float32' : inferred);
  if (!isDType(d))
    throw new DTypeError(`${op}: unknown dtype ${String(d)} (use 'float32' or 'int32')`);
  return d;
}

function inferNested(data: NestedArray): { shape: number[]; flat: number[] } {
  const shape: number[] = [];
  let probe: NestedArray = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0] as NestedArray;
    if (probe === undefined) break;
  }
  const flat: number[] = [];
  const walk = (v: NestedArray, dim: number): void => {
    if (Array.isArray(v)) {
      if (dim >= shape.length || v.length !== shape[dim]) {
        throw new ShapeError(
          `tensor: ragged nested array (expected ${shape[dim] ?? 'a number'} at depth ${dim})`,
        );
      }
      for (const x of v) walk(x as NestedArray, dim + 1);
    } else {
      if (dim !== shape.length)
        throw new ShapeError(`tensor: ragged nested array (a number at depth ${dim})`);
      flat.push(typeof v === 'boolean' ? Number(v) : (v as number));
    }
  };
  walk(data, 0);
  return { shape, flat };
}

/** Builds a tensor from nested arrays, a number, or a typed array (with `shape`). */
export function tensor(
  data: NestedArray | Float32Array | Int32Array | ArrayLike<number>,
  opts: FromDataOptions = {},
): Tensor {
  let flat: ArrayLike<number>;
  let shape: number[];
  let inferred: DType;
  if (data instanceof Float32Array || data instanceof Int32Array) {
    flat = data;
    shape = opts.shape ? [...opts.shape] : [data.length];
    inferred = data instanceof Int32Array ? 'int32' : 'float32';
  } else if (typeof data === 'number' || typeof data === 'boolean' || Array.isArray(data)) {
    const n = inferNested(data as NestedArray);
    flat = n.flat;
    shape = opts.shape ? [...opts.shape] : n.shape;
    inferred = n.flat.every(Number.isInteger) && n.flat.length > 0 ? 'int32' : 'float32';
  } else if (data && typeof (data as ArrayLike<number>).length === 'number') {
    flat = Array.from(data as ArrayLike<number>);
    shape = opts.shape ? [...opts.shape] : [flat.length];
    inferred = 'float32';
  } else {
    throw new ValueError('tensor: data must be a number, nested arrays or a typed array');
  }
  checkShape('tensor', shape);
  if (numel(shape) !== flat.length) {
    throw new ShapeError(
      `tensor: shape ${fmt(shape)} needs ${numel(shape)} values, got ${flat.length}`,
    );
  }
  const dtype = resolveDType('tensor', opts, inferred);
  const t = Tensor.empty(shape, dtype);
  (dtype === 'float32' ? f32View(t.ptr, t.size) : i32View(t.ptr, t.size)).set(flat);
  return finish(t, opts);
}

/** A tensor of `shape` filled with `value`. */
export function full(shape: readonly number[], value: number, opts: TensorOptions = {}): Tensor {
  checkShape('full', shape);
  const dtype = resolveDType('full', opts, 'float32');
  const t = Tensor.empty(shape, dtype);
  fillWords(t.ptr, t.size, bitsOf(value, dtype));
  return finish(t, opts);
}

const bitBuf = new DataView(new ArrayBuffer(4));
function bitsOf(v: number, dtype: DType): number {
  if (dtype === 'float32') bitBuf.setFloat32(0, v, true);
  else bitBuf.setInt32(0, v, true);
  return bitBuf.getUint32(0, true);
}

export function zeros(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return full(shape, 0, opts);
}

export function ones(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return full(shape, 1, opts);
}

export function zerosLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return full(t.shape, 0, { dtype: t.dtype, ...opts });
}

export function onesLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return full(t.shape, 1, { dtype: t.dtype, ...opts });
}

export function fullLike(t: Tensor, value: number, opts: TensorOptions = {}): Tensor {
  return full(t.shape, value, { dtype: t.dtype, ...opts });
}

/** `[start, end)` in steps of `step`; `arange(n)` is `[0, n)`. Int32 when all bounds are integers. */
export function arange(start: number, end?: number, step = 1, opts: TensorOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0 || !Number.isFinite(step))
    throw new ValueError(`arange: step must be non-zero and finite, got ${step}`);
  const n = Math.max(0, Math.ceil((end - start) / step));
  const ints = [start, end, step].every(Number.isInteger);
  const dtype = resolveDType('arange', opts, ints ? 'int32' : 'float32');
  const t = Tensor.empty([n], dtype);
  if (dtype === 'int32') wasm().arange_i32(t.ptr, n, start, step);
  else wasm().arange_f32(t.ptr, n, start, step);
  return finish(t, opts);
}

/** An `n×m` identity matrix (`m` defaults to `n`). */
export function eye(n: number, m = n, opts: TensorOptions = {}): Tensor {
  const t = zeros([n, m], opts);
  const k = Math.min(n, m);
  if (k > 0) {
    // One strided fill: the diagonal is every (m + 1)-th element.
    const one = full([1], 1, { dtype: t.dtype });
    wasm().copy_strided_u32(one.ptr, t.ptr, 1, ...diagDims(k, m + 1), 0, k);
    one.dispose();
  }
  return t;
}

function diagDims(k: number, stride: number): [number, number, number] {
  const [a, b, c] = writeDims([k], [0], [stride]);
  return [a, b, c];
}

/** Uniform in `[0, 1)`. */
export function rand(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return uniform(shape, 0, 1, opts);
}

/** Uniform in `[low, high)`. */
export function uniform(
  shape: readonly number[],
  low: number,
  high: number,
  opts: TensorOptions = {},
): Tensor {
  checkShape('rand', shape);
  const t = Tensor.empty(shape, resolveDType('rand', opts, 'float32'));
  if (t.dtype !== 'float32') throw new DTypeError(`rand: dtype must be float32, got ${t.dtype}`);
  drawRandom('rng_uniform_f32', t.ptr, t.size, low, high);
  return finish(t, opts);
}

/** Standard normal (or `mean`, `std` via `normal`). */
export function randn(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return normal(shape, 0, 1, opts);
}

export function normal(
  shape: readonly number[],
  mean: number,
  std: number,
  opts: TensorOptions = {},
): Tensor {
  checkShape('randn', shape);
  const t = Tensor.empty(shape, resolveDType('randn', opts, 'float32'));
  if (t.dtype !== 'float32') throw new DTypeError(`randn: dtype must be float32, got ${t.dtype}`);
  drawRandom('rng_normal_f32', t.ptr, t.size, mean, std);
  return finish(t, opts);
}

/** Integers uniform in `[low, high)`, int32 unless `dtype` says otherwise. */
export function randint(
  low: number,
  high: number,
  shape: readonly number[],
  opts: TensorOptions = {},
): Tensor {
  checkShape('randint', shape);
  if (!Number.isInteger(low) || !Number.isInteger(high) || high <= low) {
    throw new ValueError(`randint: need integers low < high, got low=${low}, high=${high}`);
  }
  // The kernel draws int32 values, so both bounds must be int32 (high is exclusive).
  if (low < -(2 ** 31) || high > 2 ** 31 - 1) {
    throw new ValueError(
      `randint: low=${low} and high=${high} must lie in int32's range [-2147483648, 2147483647]`,
    );
  }
  const dtype = resolveDType('randint', opts, 'int32');
  const ints = Tensor.empty(shape, 'int32');
  drawRandom('rng_randint_i32', ints.ptr, ints.size, low, high);
  if (dtype === 'int32') return ints;
  const t = castTo(ints, 'float32');
  ints.dispose();
  return finish(t, opts);
}

/**
 * `torch.linspace`: `steps` evenly spaced values from `start` to `end` inclusive (float32).
 * Like PyTorch, the first half counts up from `start` and the second half down from `end`,
 * so both ends are exact.
 */
export function linspace(
  start: number,
  end: number,
  steps: number,
  opts: TensorOptions = {},
): Tensor {
  if (!Number.isInteger(steps) || steps < 0) {
    throw new ValueError(`linspace: steps must be a non-negative integer, got ${steps}`);
  }
  if (!Number.isFinite(start) || !Number.isFinite(end)) {
    throw new ValueError(`linspace: start and end must be finite, got ${start} and ${end}`);
  }
  const dtype = resolveDType('linspace', opts, 'float32');
  if (dtype !== 'float32') throw new DTypeError(`linspace: dtype must be float32, got ${dtype}`);
  const t = Tensor.empty([steps], 'float32');
  if (steps === 1) wasm().fill_u32(t.ptr, 1, bitsOf(start, 'float32'));
  if (steps > 1) {
    const step = (end - start) / (steps - 1);
    const half = Math.floor(steps / 2);
    wasm().arange_f32(t.ptr, half, start, step);
    wasm().arange_f32(t.ptr + 4 * half, steps - half, end - (steps - 1 - half) * step, step);
  }
  return finish(t, opts);
}
