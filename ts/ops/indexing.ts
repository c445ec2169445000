// Indexing for tokens and labels: indexSelect (embedding lookups), gather/scatterAdd
// (picking and spreading per-position values), oneHot. Index tensors are int32 and are
// range-checked in the core before any kernel reads them.
import { DTypeError, IndexError, ShapeError, fmt } from '../errors.js';
import { MAX_DIMS, ReduceOp } from '../wasm/abi.js';
import { wasm } from '../wasm/core.js';
import { i32View, writeDims } from '../wasm/heap.js';
import { contiguousStrides, normDim, numel } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { record } from '../autograd/node.js';
import { copyStrided } from './copy.js';

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

function zeros(shape: readonly number[]): Tensor {
  const t = Tensor.empty(shape, 'float32');
  wasm().fill_u32(t.ptr, t.size, 0);
  return t;
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
  if (out.size > 0)
    wasm().index_select_u32(x.ptr, index.ptr, out.ptr, outer, size, inner, index.size);
  return record(
    out,
    'indexSelect',
    [x],
    (g) => {
      const gx = zeros(x.shape);
      if (g.size > 0)
        wasm().index_add_f32(g.ptr, index.ptr, gx.ptr, outer, size, inner, index.size);
      return [gx];
    },
    [index],
  );
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
    wasm().gather_u32(x.ptr, x.size, index.ptr, out.ptr, nd, ps, px, d);
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
    wasm().scatter_add_f32(dst.ptr, dst.size, index.ptr, src.ptr, src.size, nd, ps, pd, pss, d);
  }
  return dst;
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
      let gsrc: Tensor | null = null;
      if (src.requiresGrad) {
        const picked = gather(g, d, index);
        gsrc = zeros(src.shape);
        copyStrided(
          picked,
          0,
          gsrc,
          0,
          index.shape,
          contiguousStrides(index.shape),
          contiguousStrides(src.shape),
        );
        picked.dispose();
      }
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
  if (out.size > 0) wasm().one_hot_i32(index.ptr, out.ptr, index.size, classes);
  return out;
}
