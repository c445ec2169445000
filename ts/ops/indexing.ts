// Indexing for tokens and labels: indexSelect (embedding lookups), gather/scatterAdd
// (picking and spreading per-position values), oneHot. Index tensors are int32 and are
// range-checked in the core before any kernel reads them.
import { DTypeError, IndexError, ShapeError, ValueError, fmt } from '../errors.js';
import { MAX_DIMS, ReduceOp } from '../wasm/abi.js';
import { wasm } from '../wasm/core.js';
import { SPLIT_MIN_ELEMENTS, runSplitOrWhole, splitItems } from './parallel.js';
import { f32View, i32View, writeDims } from '../wasm/heap.js';
import { broadcastShapes, contiguousStrides, normDim, numel, sameShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { noGrad, record, releaseIntermediates } from '../autograd/node.js';
import { broadcastTo, copyStrided } from './copy.js';
import { zeros } from './creation.js';
import { ne } from './elementwise.js';
import { expand, reshape } from './shape.js';

function checkIndex(op: string, index: Tensor, limit: number, what: string): void {
  if (index.dtype !== 'int32') {
    throw new DTypeError(`${op}: index must be int32, got ${index.dtype}`);
  }
  const bad = wasm().index_check_i32(index.ptr, index.size, limit);
  if (bad >= 0) {
    const value = i32View(index.ptr + 4 * bad, 1)[0];
    throw new IndexError(
      `${op}: index ${value} at position ${bad} is out of range for ${what} (size ${limit})`,
    );
  }
}

/** `x` restricted to the entries `index` selects along `dim` (an embedding lookup on dim 0). */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  const d = normDim('indexSelect', dim, x.ndim, x.shape);
  if (index.ndim > 1)
    throw new ShapeError(`indexSelect: index must be 0-d or 1-d, got shape ${fmt(index.shape)}`);
  const size = x.ndim === 0 ? 1 : x.shape[d];
  checkIndex('indexSelect', index, size, `dim ${d} of shape ${fmt(x.shape)}`);
  const outer = numel(x.shape.slice(0, d));
  const inner = numel(x.shape.slice(d + 1));
  const shape = x.ndim === 0 ? [] : [...x.shape];
  if (x.ndim > 0) shape[d] = index.size;
  const out = Tensor.empty(shape, x.dtype);
  if (out.size > 0) {
    // Each selected row is one copy: the pool splits over the index's positions.
    const args = (b: number, e: number): number[] => [
      x.ptr,
      index.ptr,
      out.ptr,
      outer,
      size,
      inner,
      index.size,
      b,
      e,
    ];
    splitItems('index_select_u32', index.size, out.size, args);
  }
  return record(
    out,
    'indexSelect',
    [x],
    (g) => {
      const gx = zeros(x.shape);
      indexAddInto(g, index, gx, outer, size, inner);
      return [gx];
    },
    [index],
  );
}

/**
 * `dst[o, index[j], i] += g[o, j, i]` in place (`dst` as `[outer, size, inner]`): the backward
 * of indexSelect and of an embedding lookup. Repeated indices add in index order; the pool
 * splits over the columns `i`, each of which adds alone, so every thread count gives the same bits.
 */
export function indexAddInto(
  g: Tensor,
  index: Tensor,
  dst: Tensor,
  outer: number,
  size: number,
  inner: number,
): void {
  if (g.size === 0) return;
  runSplitOrWhole({
    fn: 'index_add_f32',
    length: inner,
    align: 4,
    work: g.size,
    minWork: SPLIT_MIN_ELEMENTS,
    args: (b, e) => [g.ptr, index.ptr, dst.ptr, outer, size, inner, index.size, b, e],
  });
}

/** Checks the shape rule shared by gather and scatterAdd: index fits `other` outside `dim`. */
function checkGatherShapes(op: string, x: Tensor, d: number, index: Tensor, src?: Tensor): void {
  if (index.ndim !== x.ndim) {
    throw new ShapeError(
      `${op}: index ${fmt(index.shape)} must have as many dims as the input ${fmt(x.shape)}`,
    );
  }
  if (x.ndim > MAX_DIMS)
    throw new ShapeError(`${op}: at most ${MAX_DIMS} dims are supported, got ${fmt(x.shape)}`);
  index.shape.forEach((s, i) => {
    if ((i !== d && s > x.shape[i]) || (src && s > src.shape[i])) {
      throw new ShapeError(
        `${op}: index ${fmt(index.shape)} is larger than the input ${fmt(x.shape)}${src ? ` or src ${fmt(src.shape)}` : ''} at dim ${i}`,
      );
    }
  });
}

/** `out[p] = x[p with p[dim] replaced by index[p]]`; out has index's shape. */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  const d = normDim('gather', dim, x.ndim, x.shape);
  checkGatherShapes('gather', x, d, index);
  checkIndex('gather', index, x.shape[d] ?? 1, `dim ${d} of shape ${fmt(x.shape)}`);
  const out = Tensor.empty(index.shape, x.dtype);
  if (out.size > 0) {
    const nd = Math.max(x.ndim, 1);
    const [ps, px] = writeDims(
      x.ndim ? index.shape : [1],
      x.ndim ? contiguousStrides(x.shape) : [1],
    );
    // Rows of the index's first dim write apart: the pool splits over them.
    const rows = x.ndim ? index.shape[0] : 1;
    const args = (b: number, e: number): number[] => [
      x.ptr,
      x.size,
      index.ptr,
      out.ptr,
      nd,
      ps,
      px,
      d,
      b,
      e,
    ];
    splitItems('gather_u32', rows, out.size, args);
  }
  return record(out, 'gather', [x], (g) => [scatterInto(zeros(x.shape), d, index, g)], [index]);
}

/** `dst[... index[p] ...] += src[p]` in place, for p over index's shape. */
function scatterInto(dst: Tensor, d: number, index: Tensor, src: Tensor): Tensor {
  if (index.size > 0) {
    const nd = Math.max(dst.ndim, 1);
    const [ps, pd, pss] = writeDims(
      dst.ndim ? index.shape : [1],
      dst.ndim ? contiguousStrides(dst.shape) : [1],
      dst.ndim ? contiguousStrides(src.shape) : [1],
    );
    // Rows of the index's first dim add onto separate rows of `dst` unless they index dim 0
    // itself: only then does the pool split over them (each element's additions keep their order).
    const rows = dst.ndim ? index.shape[0] : 1;
    runSplitOrWhole({
      fn: 'scatter_add_f32',
      length: rows,
      align: 1,
      work: index.size,
      minWork: d === 0 ? Infinity : SPLIT_MIN_ELEMENTS,
      args: (b, e) => [dst.ptr, dst.size, index.ptr, src.ptr, src.size, nd, ps, pd, pss, d, b, e],
    });
  }
  return dst;
}

/**
 * The gradient of a scatter's `src`: `g` gathered at `index`, zero where `src` reaches past the
 * index's extent (those elements were never scattered).
 */
function srcGrad(g: Tensor, d: number, index: Tensor, srcShape: readonly number[]): Tensor {
  const picked = gather(g, d, index);
  const out = zeros(srcShape);
  copyStrided(
    picked,
    0,
    out,
    0,
    index.shape,
    contiguousStrides(index.shape),
    contiguousStrides(srcShape),
  );
  picked.dispose();
  return out;
}

/** Out-of-place `scatter_add`: a copy of `x` with `src` added at the positions `index` names. */
export function scatterAdd(x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  const d = normDim('scatterAdd', dim, x.ndim, x.shape);
  if (x.dtype !== 'float32' || src.dtype !== 'float32') {
    throw new DTypeError(
      `scatterAdd: expected float32 input and src, got ${x.dtype} and ${src.dtype}`,
    );
  }
  if (src.ndim !== x.ndim) {
    throw new ShapeError(
      `scatterAdd: src ${fmt(src.shape)} must have as many dims as the input ${fmt(x.shape)}`,
    );
  }
  checkGatherShapes('scatterAdd', x, d, index, src);
  checkIndex('scatterAdd', index, x.shape[d] ?? 1, `dim ${d} of shape ${fmt(x.shape)}`);
  const out = Tensor.empty(x.shape, 'float32');
  copyStrided(x, 0, out, 0, [x.size], [1], [1]);
  scatterInto(out, d, index, src);
  return record(
    out,
    'scatterAdd',
    [x, src],
    (g) => {
      // d src = g gathered at index (zero where src was not scattered).
      const gsrc = src.requiresGrad ? srcGrad(g, d, index, src.shape) : null;
      return [g, gsrc];
    },
    [index],
  );
}

/** One-hot int32 encoding: shape `[...index.shape, numClasses]`; -1 infers max + 1. */
export function oneHot(index: Tensor, numClasses = -1): Tensor {
  if (index.dtype !== 'int32')
    throw new DTypeError(`oneHot: index must be int32, got ${index.dtype}`);
  let classes = numClasses;
  if (classes === -1) {
    if (index.size === 0)
      throw new ShapeError('oneHot: cannot infer numClasses from an empty tensor');
    const m = Tensor.empty([], 'int32');
    wasm().reduce_i32(ReduceOp.MAX, index.ptr, m.ptr, 1, index.size, 1);
    classes = m.item() + 1;
    m.dispose();
  }
  if (!Number.isInteger(classes) || classes < 1) {
    throw new ShapeError(`oneHot: numClasses must be a positive integer, got ${numClasses}`);
  }
  checkIndex('oneHot', index, classes, `${classes} classes`);
  const out = Tensor.empty([...index.shape, classes], 'int32');
  splitItems('one_hot_i32', out.size > 0 ? index.size : 0, out.size, (b, e) => [
    index.ptr + 4 * b,
    out.ptr + 4 * b * classes,
    e - b,
    classes,
  ]);
  return out;
}

// ------------------------------------------------------------------ scatter, masks, nonzero

/** Writes `src` (a tensor, or one value for every position) into `dst` in place at `index`. */
function scatterWrite(dst: Tensor, d: number, index: Tensor, src: Tensor | number): void {
  if (index.size === 0) return;
  const nd = Math.max(dst.ndim, 1);
  const one = typeof src === 'number' ? Tensor.empty([], dst.dtype) : null;
  if (one) {
    const view = dst.dtype === 'float32' ? f32View(one.ptr, 1) : i32View(one.ptr, 1);
    view[0] = src as number;
  }
  const s = one ?? (src as Tensor);
  const [ps, pd, pss] = writeDims(
    dst.ndim ? index.shape : [1],
    dst.ndim ? contiguousStrides(dst.shape) : [1],
    one || !dst.ndim ? new Array<number>(nd).fill(0) : contiguousStrides(s.shape),
  );
  wasm().scatter_u32(dst.ptr, dst.size, index.ptr, s.ptr, s.size, nd, ps, pd, pss, d);
  one?.dispose();
}

/**
 * Out-of-place `scatter`: a copy of `x` with `src[p]` (or the scalar `value`) written at
 * position `p` with dim `dim` replaced by `index[p]`. Where two positions name the same element
 * the later (row-major) one wins. Gradients: `x` gets `g` except where written, `src` gets `g`
 * gathered at `index`.
 */
export function scatter(x: Tensor, dim: number, index: Tensor, src: Tensor | number): Tensor {
  const d = normDim('scatter', dim, x.ndim, x.shape);
  if (typeof src !== 'number') {
    if (src.dtype !== x.dtype) {
      throw new DTypeError(`scatter: src dtype ${src.dtype} differs from the input's ${x.dtype}`);
    }
    if (src.ndim !== x.ndim) {
      throw new ShapeError(
        `scatter: src ${fmt(src.shape)} must have as many dims as the input ${fmt(x.shape)}`,
      );
    }
  } else if (x.dtype === 'int32' && !Number.isInteger(src)) {
    throw new ValueError(`scatter: value ${src} is not an integer for an int32 input`);
  }
  checkGatherShapes('scatter', x, d, index, typeof src === 'number' ? undefined : src);
  checkIndex('scatter', index, x.shape[d] ?? 1, `dim ${d} of shape ${fmt(x.shape)}`);
  const out = Tensor.empty(x.shape, x.dtype);
  copyStrided(x, 0, out, 0, [x.size], [1], [1]);
  scatterWrite(out, d, index, src);
  const inputs = typeof src === 'number' ? [x] : [x, src];
  return record(
    out,
    'scatter',
    inputs,
    (g) => {
      let gx: Tensor | null = null;
      if (x.requiresGrad) {
        gx = Tensor.empty(g.shape, 'float32');
        copyStrided(g, 0, gx, 0, [g.size], [1], [1]);
        scatterWrite(gx, d, index, 0);
      }
      if (typeof src === 'number') return [gx];
      const gsrc = src.requiresGrad ? srcGrad(g, d, index, src.shape) : null;
      return [gx, gsrc];
    },
    [index],
  );
}

export interface NonzeroOptions {
  /** Return one 1-D index tensor per dim instead of one `[n, ndim]` tensor. */
  asTuple?: boolean;
}

/**
 * `torch.nonzero`: the int32 coordinates of the non-zero elements, `[n, ndim]` in row-major
 * order, or (with `asTuple`) one `[n]` tensor per dim.
 */
export function nonzero(x: Tensor, opts: { asTuple: true }): Tensor[];
export function nonzero(x: Tensor, opts?: NonzeroOptions): Tensor;
export function nonzero(x: Tensor, opts: NonzeroOptions = {}): Tensor | Tensor[] {
  const mask = x.dtype === 'int32' ? x : noGrad(() => ne(x, 0));
  const core = wasm();
  const count = core.count_nonzero_i32(mask.ptr, mask.size);
  const out = Tensor.empty([count, x.ndim], 'int32');
  if (count > 0 && x.ndim > 0) {
    const [ps] = writeDims(x.shape);
    core.nonzero_i32(mask.ptr, mask.size, x.ndim, ps, out.ptr);
  }
  if (mask !== x) mask.dispose();
  if (!opts.asTuple) return out;
  // torch treats a 0-d input as 1-d here: one tensor of zeros.
  if (x.ndim === 0) {
    const zerosOut = Tensor.empty([count], 'int32');
    core.fill_u32(zerosOut.ptr, count, 0);
    out.dispose();
    return [zerosOut];
  }
  const cols = x.shape.map((_, j) => {
    const col = Tensor.empty([count], 'int32');
    copyStrided(out, j, col, 0, [count], [x.ndim], [1]);
    return col;
  });
  out.dispose();
  return cols;
}

/**
 * `torch.masked_select`: the elements of `x` where the int32 `mask` is non-zero, as a 1-D
 * tensor in row-major order; `x` and `mask` broadcast together. The gradient scatters back.
 */
export function maskedSelect(x: Tensor, mask: Tensor): Tensor {
  if (mask.dtype !== 'int32') {
    throw new DTypeError(
      `maskedSelect: the mask must be an int32 mask (from a comparison), got ${mask.dtype}`,
    );
  }
  const shape = broadcastShapes('maskedSelect', x.shape, mask.shape);
  const m = sameShape(mask.shape, shape) ? mask : broadcastTo(mask, shape);
  // Flat positions of the selected elements: nonzero of the flattened mask, [n, 1] -> [n].
  const flatMask = m._alias([m.size]);
  const pos = nonzero(flatMask);
  const flatPos = pos._alias([pos.shape[0]]);
  const wide = sameShape(x.shape, shape) ? x : expand(x, shape);
  const flat = reshape(wide, [wide.size], 'maskedSelect');
  const temps = [
    flatMask,
    pos,
    flatPos,
    flat,
    ...(m !== mask ? [m] : []),
    ...(wide !== x ? [wide] : []),
  ];
  const out = indexSelect(flat, 0, flatPos);
  releaseIntermediates(out, temps);
  return out;
}
