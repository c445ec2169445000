// Shape ops. Tensors are always contiguous: reshape-like ops share storage (no copy), and
// permute, expand, slice and cat copy through one strided kernel.
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import { wasm } from '../wasm/core.js';
import {
  contiguousStrides,
  inferShape,
  normDim,
  normDims,
  sameShape,
  type Shape,
} from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { record, recordMulti, releaseIntermediates } from '../autograd/node.js';
import { copyStrided, gatherStrided, sumTo } from './copy.js';
import { i32View } from '../wasm/heap.js';
import { noGrad } from '../autograd/node.js';
import { arange } from './creation.js';
import { ge, le, sub, where } from './elementwise.js';
import { indexSelect } from './indexing.js';
import { fillWords } from './parallel.js';

/** PyTorch refuses to slice or concatenate a 0-d tensor: it has no dim to index. */
function notScalar(op: string, x: Tensor, what = 'a 0-d tensor'): void {
  if (x.ndim === 0) throw new ShapeError(`${op}: cannot be applied to ${what} (shape [])`);
}

/** A view with another shape of the same size; `view` is the same here (all tensors are contiguous). */
export function reshape(x: Tensor, shape: readonly number[], op = 'reshape'): Tensor {
  const target = inferShape(op, x.shape, shape);
  const out = x._alias(target);
  return record(out, op, [x], (g) => [g._alias(x.shape)]);
}

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  const s = normDim('flatten', startDim, x.ndim, x.shape);
  const e = normDim('flatten', endDim, x.ndim, x.shape);
  if (x.ndim === 0) return reshape(x, [1], 'flatten'); // dims 0 and -1 only, as in PyTorch
  if (s > e)
    throw new ShapeError(
      `flatten: startDim ${startDim} comes after endDim ${endDim} for shape ${fmt(x.shape)}`,
    );
  const merged = x.shape.slice(s, e + 1).reduce((a, b) => a * b, 1);
  return reshape(x, [...x.shape.slice(0, s), merged, ...x.shape.slice(e + 1)], 'flatten');
}

/** Removes size-1 dims (all of them, or the given ones when they have size 1). */
export function squeeze(x: Tensor, dim?: number | readonly number[]): Tensor {
  const dims = dim === undefined ? x.shape.map((_, i) => i) : normDims('squeeze', dim, x.shape);
  return reshape(
    x,
    x.shape.filter((s, i) => !(s === 1 && dims.includes(i))),
    'squeeze',
  );
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normDim('unsqueeze', dim, x.ndim + 1, x.shape);
  return reshape(x, [...x.shape.slice(0, d), 1, ...x.shape.slice(d)], 'unsqueeze');
}

/** Reorders dims; `dims` must be a permutation of `0..ndim-1` (negatives allowed). */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  const perm = dims.map((d) => normDim('permute', d, x.ndim, x.shape));
  if (perm.length !== x.ndim || new Set(perm).size !== perm.length) {
    throw new ShapeError(
      `permute: ${fmt(dims)} is not a permutation of the dims of shape ${fmt(x.shape)}`,
    );
  }
  const strides = contiguousStrides(x.shape);
  const out = gatherStrided(
    x,
    perm.map((d) => x.shape[d]),
    perm.map((d) => strides[d]),
  );
  const inverse = new Array<number>(perm.length);
  perm.forEach((d, i) => (inverse[d] = i));
  return record(out, 'permute', [x], (g) => [permute(g, inverse)]);
}

export function transpose(x: Tensor, dim0: number, dim1: number): Tensor {
  const a = normDim('transpose', dim0, x.ndim, x.shape);
  const b = normDim('transpose', dim1, x.ndim, x.shape);
  if (x.ndim === 0) return reshape(x, [], 'transpose'); // dims 0 and -1 name the tensor itself
  const perm = x.shape.map((_, i) => i);
  [perm[a], perm[b]] = [perm[b], perm[a]];
  return permute(x, perm);
}

/** Repeats size-1 dims (and prepends new ones) to reach `shape`; -1 keeps a dim. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const off = shape.length - x.ndim;
  const target = shape.map((s, i) => (s === -1 && i >= off ? x.shape[i - off] : s));
  const ok =
    off >= 0 &&
    target.every(
      (s, i) =>
        Number.isInteger(s) &&
        s >= 0 &&
        (i < off || x.shape[i - off] === s || x.shape[i - off] === 1),
    );
  if (!ok) throw new ShapeError(`expand: cannot expand shape ${fmt(x.shape)} to ${fmt(shape)}`);
  if (sameShape(target, x.shape)) return reshape(x, target, 'expand');
  const own = contiguousStrides(x.shape);
  const strides = target.map((_, i) => (i < off || x.shape[i - off] === 1 ? 0 : own[i - off]));
  const out = gatherStrided(x, target, strides);
  return record(out, 'expand', [x], (g) => [sumTo(g, x.shape)]);
}

/** Python-style `start:end:step` along `dim` (negative and out-of-range bounds clamp). */
export function slice(
  x: Tensor,
  dim: number,
  start?: number | null,
  end?: number | null,
  step = 1,
): Tensor {
  notScalar('slice', x);
  const d = normDim('slice', dim, x.ndim, x.shape);
  if (!Number.isInteger(step) || step <= 0) {
    throw new ValueError(`slice: step must be a positive integer, got ${step}`);
  }
  const n = x.shape[d];
  const clampIdx = (v: number | null | undefined, dflt: number): number => {
    if (v === undefined || v === null) return dflt;
    if (!Number.isInteger(v)) throw new ValueError(`slice: bounds must be integers, got ${v}`);
    return Math.min(Math.max(v < 0 ? v + n : v, 0), n);
  };
  const lo = clampIdx(start, 0);
  const hi = Math.max(clampIdx(end, n), lo);
  const len = Math.ceil((hi - lo) / step);
  const strides = contiguousStrides(x.shape);
  const shape = [...x.shape];
  shape[d] = len;
  const srcStrides = [...strides];
  srcStrides[d] *= step;
  const out = gatherStrided(x, shape, srcStrides, lo * strides[d]);
  return record(out, 'slice', [x], (g) => {
    const gx = Tensor.empty(x.shape, 'float32');
    fillWords(gx.ptr, gx.size, 0);
    copyStrided(g, 0, gx, lo * strides[d], shape, contiguousStrides(shape), srcStrides);
    return [gx];
  });
}

export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  notScalar('narrow', x);
  const d = normDim('narrow', dim, x.ndim, x.shape);
  const s = start < 0 ? start + x.shape[d] : start;
  if (
    !Number.isInteger(s) ||
    !Number.isInteger(length) ||
    s < 0 ||
    length < 0 ||
    s + length > x.shape[d]
  ) {
    throw new ShapeError(
      `narrow: start ${start} and length ${length} do not fit dim ${dim} of shape ${fmt(x.shape)}`,
    );
  }
  return slice(x, d, s, s + length);
}

/** Joins tensors along an existing dim; all other dims must match. */
export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new ValueError('cat: expected a non-empty list of tensors');
  const first = tensors[0];
  tensors.forEach((t, i) => notScalar('cat', t, `the 0-d tensor at position ${i}`));
  const d = normDim('cat', dim, first.ndim, first.shape);
  const dtype = first.dtype;
  for (const t of tensors) {
    const fits = t.ndim === first.ndim && t.shape.every((s, i) => i === d || s === first.shape[i]);
    if (!fits) {
      throw new ShapeError(
        `cat: shapes ${tensors.map((u) => fmt(u.shape)).join(', ')} differ outside dim ${d}`,
      );
    }
    if (t.dtype !== dtype) throw new DTypeError(`cat: mixed dtypes ${dtype} and ${t.dtype}`);
  }
  const shape = [...first.shape];
  shape[d] = tensors.reduce((acc, t) => acc + t.shape[d], 0);
  const out = Tensor.empty(shape, dtype);
  const outStrides = contiguousStrides(shape);
  const offsets: number[] = [];
  let at = 0;
  for (const t of tensors) {
    offsets.push(at);
    copyStrided(t, 0, out, at * outStrides[d], t.shape, contiguousStrides(t.shape), outStrides);
    at += t.shape[d];
  }
  return record(out, 'cat', tensors, (g) =>
    tensors.map((t, i) =>
      t.requiresGrad ? slice(g, d, offsets[i], offsets[i] + t.shape[d]) : null,
    ),
  );
}

/** Joins tensors along a new dim; all shapes must be equal. */
export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new ValueError('stack: expected a non-empty list of tensors');
  const shape: Shape = tensors[0].shape;
  if (!tensors.every((t) => sameShape(t.shape, shape))) {
    throw new ShapeError(
      `stack: all shapes must be equal, got ${tensors.map((t) => fmt(t.shape)).join(', ')}`,
    );
  }
  const d = normDim('stack', dim, shape.length + 1, shape);
  const parts = tensors.map((t) => unsqueeze(t, d));
  const out = cat(parts, d);
  releaseIntermediates(out, parts);
  return out;
}

/** Splits along `dim` into pieces of `size` (the last may be smaller) or of the given sizes. */
export function split(x: Tensor, sizeOrSections: number | readonly number[], dim = 0): Tensor[] {
  const d = normDim('split', dim, x.ndim, x.shape);
  const n = x.shape[d];
  let sizes: number[];
  if (typeof sizeOrSections === 'number') {
    if (!Number.isInteger(sizeOrSections) || sizeOrSections <= 0) {
      throw new ValueError(`split: size must be a positive integer, got ${sizeOrSections}`);
    }
    sizes = [];
    for (let at = 0; at < n; at += sizeOrSections) sizes.push(Math.min(sizeOrSections, n - at));
  } else {
    sizes = [...sizeOrSections];
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total !== n || sizes.some((s) => !Number.isInteger(s) || s < 0)) {
      throw new ShapeError(
        `split: sections ${fmt(sizes)} do not add up to dim ${d} of shape ${fmt(x.shape)} (${n})`,
      );
    }
  }
  // One node for all pieces: its backward writes every piece's gradient into ONE buffer and
  // zeroes only the regions of pieces that got none.
  const strides = contiguousStrides(x.shape);
  const starts: number[] = [];
  const shapes: Shape[] = [];
  let at = 0;
  const pieces = sizes.map((s) => {
    const shape = [...x.shape];
    shape[d] = s;
    starts.push(at);
    shapes.push(shape);
    const piece = gatherStrided(x, shape, strides, at * strides[d]);
    at += s;
    return piece;
  });
  return recordMulti(pieces, 'split', [x], (gs) => {
    const gx = Tensor.empty(x.shape, 'float32');
    let zero: Tensor | null = null;
    gs.forEach((g, i) => {
      const off = starts[i] * strides[d];
      if (g) {
        copyStrided(g, 0, gx, off, shapes[i], contiguousStrides(shapes[i]), strides);
        return;
      }
      if (!zero) {
        zero = Tensor.empty([1], 'float32');
        wasm().fill_u32(zero.ptr, 1, 0);
      }
      copyStrided(
        zero,
        0,
        gx,
        off,
        shapes[i],
        shapes[i].map(() => 0),
        strides,
      );
    });
    (zero as Tensor | null)?.dispose();
    return [gx];
  });
}

/** Splits into `chunks` pieces of ceil(n / chunks) (PyTorch's rule: possibly fewer pieces). */
export function chunk(x: Tensor, chunks: number, dim = 0): Tensor[] {
  if (!Number.isInteger(chunks) || chunks <= 0)
    throw new ValueError(`chunk: chunks must be a positive integer, got ${chunks}`);
  const d = normDim('chunk', dim, x.ndim, x.shape);
  const size = Math.max(1, Math.ceil(x.shape[d] / chunks));
  return split(x, size, d);
}

// ------------------------------------------------------------------ triangles, flips, rolls, repeats

/** `x` indexed along `d` by the given positions: one indexSelect, so its gradient scatter-adds. */
export function selectAlong(x: Tensor, d: number, positions: Int32Array): Tensor {
  const idx = Tensor.empty([positions.length], 'int32');
  i32View(idx.ptr, positions.length).set(positions);
  const out = indexSelect(x, d, idx);
  releaseIntermediates(out, [idx]);
  return out;
}

/** `tril` (keep `col - row <= diagonal`) and `triu` (keep `col - row >= diagonal`) of the last two dims. */
function triangle(op: 'tril' | 'triu', x: Tensor, diagonal: number): Tensor {
  if (x.ndim < 2) {
    throw new ShapeError(`${op}: input must have at least 2 dims, got shape ${fmt(x.shape)}`);
  }
  if (!Number.isInteger(diagonal)) {
    throw new ValueError(`${op}: diagonal must be an integer, got ${diagonal}`);
  }
  const [n, m] = x.shape.slice(-2);
  const keep = noGrad(() => {
    const rows = arange(n);
    const column = reshape(rows, [n, 1]);
    const cols = arange(m);
    const offset = sub(cols, column);
    const mask = op === 'tril' ? le(offset, diagonal) : ge(offset, diagonal);
    [rows, column, cols, offset].forEach((t) => t.dispose());
    return mask;
  });
  const out = where(keep, x, 0);
  releaseIntermediates(out, [keep]);
  return out;
}

/** The lower triangle of the last two dims (PyTorch's `tril`), zero above `diagonal`. */
export function tril(x: Tensor, diagonal = 0): Tensor {
  return triangle('tril', x, diagonal);
}

/** The upper triangle of the last two dims (PyTorch's `triu`), zero below `diagonal`. */
export function triu(x: Tensor, diagonal = 0): Tensor {
  return triangle('triu', x, diagonal);
}

/** Reverses the order of elements along each of `dims`. */
export function flip(x: Tensor, dims: number | readonly number[]): Tensor {
  const ds = normDims('flip', dims, x.shape);
  let out = x;
  const temps: Tensor[] = [];
  for (const d of ds) {
    const n = x.shape[d];
    if (out !== x) temps.push(out);
    out = selectAlong(
      out,
      d,
      Int32Array.from({ length: n }, (_, i) => n - 1 - i),
    );
  }
  if (out === x) return reshape(x, x.shape, 'flip');
  releaseIntermediates(out, temps);
  return out;
}

/**
 * Rotates elements by `shifts` along `dims` (those pushed past the end come back at the
 * start). Without `dims` the tensor is rolled as if flattened, then restored to its shape.
 */
export function roll(
  x: Tensor,
  shifts: number | readonly number[],
  dims?: number | readonly number[],
): Tensor {
  const sh = typeof shifts === 'number' ? [shifts] : [...shifts];
  if (sh.some((s) => !Number.isInteger(s))) {
    throw new ValueError(`roll: shifts must be integers, got ${fmt(sh)}`);
  }
  if (dims === undefined) {
    if (sh.length !== 1) {
      throw new ShapeError(`roll: without dims, shifts must be one number, got ${fmt(sh)}`);
    }
    const flat = reshape(x, [x.size], 'roll');
    const rolled = roll(flat, sh[0], 0);
    const out = reshape(rolled, x.shape, 'roll');
    releaseIntermediates(out, [flat, rolled]);
    return out;
  }
  const dl = typeof dims === 'number' ? [dims] : [...dims];
  if (dl.length !== sh.length) {
    throw new ShapeError(`roll: shifts ${fmt(sh)} and dims ${fmt(dl)} must have the same length`);
  }
  let out = x;
  const temps: Tensor[] = [];
  dl.forEach((dim, k) => {
    const d = normDim('roll', dim, x.ndim, x.shape);
    const n = x.shape[d];
    if (n === 0) return;
    const s = ((sh[k] % n) + n) % n;
    if (s === 0) return;
    if (out !== x) temps.push(out);
    out = selectAlong(
      out,
      d,
      Int32Array.from({ length: n }, (_, i) => (i - s + n) % n),
    );
  });
  if (out === x) return reshape(x, x.shape, 'roll');
  releaseIntermediates(out, temps);
  return out;
}

/**
 * PyTorch's `Tensor.repeat`: tiles the tensor `repeats[i]` times along dim `i`; extra leading
 * repeats add new dims. A reshape, an expand and a reshape, so the gradient sums the copies.
 */
export function repeat(x: Tensor, repeats: readonly number[]): Tensor {
  if (repeats.length < x.ndim || repeats.some((r) => !Number.isInteger(r) || r < 0)) {
    throw new ShapeError(
      `repeat: repeats ${fmt(repeats)} must be non-negative integers, at least one per dim of shape ${fmt(x.shape)}`,
    );
  }
  const shape = [...repeats.slice(0, repeats.length - x.ndim).map(() => 1), ...x.shape];
  const spread = reshape(
    x,
    shape.flatMap((s) => [1, s]),
    'repeat',
  );
  const wide = expand(
    spread,
    shape.flatMap((s, i) => [repeats[i], s]),
  );
  const out = reshape(
    wide,
    shape.map((s, i) => s * repeats[i]),
    'repeat',
  );
  releaseIntermediates(out, [spread, wide]);
  return out;
}

/** `torch.tile`: `repeat` with `dims` padded by leading 1s when shorter than the rank. */
export function tile(x: Tensor, dims: readonly number[]): Tensor {
  const full = [...new Array<number>(Math.max(0, x.ndim - dims.length)).fill(1), ...dims];
  if (full.some((r) => !Number.isInteger(r) || r < 0)) {
    throw new ShapeError(`tile: dims ${fmt(dims)} must be non-negative integers`);
  }
  return repeat(x, full);
}
