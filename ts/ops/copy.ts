// Moving data: copies, casts, strided copies (the engine under permute/expand/slice/cat) and
// the summing copy that reduces a broadcast gradient back to its input's shape.
import { DTypeError, ShapeError, fmt } from '../errors.js';
import type { DType } from '../tensor/dtype.js';
import {
  broadcastStrides,
  collapseDims,
  contiguousStrides,
  numel,
  sameShape,
  type Shape,
} from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { pool, wasm } from '../wasm/core.js';
import { writeDims } from '../wasm/heap.js';
import { SPLIT_MIN_ELEMENTS, addInto, fillWords, runSplitOrWhole, splitFlat } from './parallel.js';
import { record } from '../autograd/node.js';

/** Runs `copy_strided_u32` over `shape`, reading `src` at `srcStrides` and writing `dst` at `dstStrides`. */
export function copyStrided(
  src: Tensor,
  srcOffset: number,
  dst: Tensor,
  dstOffset: number,
  shape: Shape,
  srcStrides: number[],
  dstStrides: number[],
): void {
  if (shape.some((s) => s === 0)) return;
  stridedByRows('copy_strided_u32', src.ptr + 4 * srcOffset, dst.ptr + 4 * dstOffset, shape, [
    srcStrides,
    dstStrides,
  ]);
}

/**
 * Runs a strided copy export over `shape` (dims merged first), split over the pool by rows of
 * the first dim when the copy is large and those rows write apart (a destination row's span
 * ends before the next row starts), so each element is written by the one thread, with the
 * same operations as on one.
 */
function stridedByRows(
  fn: 'copy_strided_u32' | 'accumulate_strided_f32',
  src: number,
  dst: number,
  shape: Shape,
  strides: [number[], number[]],
): void {
  const c = collapseDims(shape, strides);
  const [ss, ds] = c.strides;
  const [pShape, pSrc, pDst] = writeDims(c.shape, ss, ds);
  const n = c.shape.length;
  const rows = c.shape[0];
  // Most copies in a training step are small: straight to the kernel, no split set up.
  if (pool() === null || numel(c.shape) < SPLIT_MIN_ELEMENTS || rows < 2) {
    wasm()[fn](src, dst, n, pShape, pSrc, pDst, 0, rows);
    return;
  }
  let span = 1;
  for (let d = 1; d < n; d++) span += (c.shape[d] - 1) * ds[d];
  runSplitOrWhole({
    fn,
    length: rows,
    align: 1,
    work: ds[0] >= span ? numel(c.shape) : 0,
    minWork: SPLIT_MIN_ELEMENTS,
    redo: fn === 'copy_strided_u32',
    args: (b, e) => [src, dst, n, pShape, pSrc, pDst, b, e],
  });
}

/** A new contiguous tensor of `shape` read from `src` with the given strides and offset. */
export function gatherStrided(src: Tensor, shape: Shape, strides: number[], offset = 0): Tensor {
  const out = Tensor.empty(shape, src.dtype);
  copyStrided(src, offset, out, 0, shape, strides, contiguousStrides(shape));
  return out;
}

/** A copy of `x` with its own storage; differentiable. */
export function clone(x: Tensor): Tensor {
  const out = Tensor.empty(x.shape, x.dtype);
  copyStrided(x, 0, out, 0, [x.size], [1], [1]);
  return record(out, 'clone', [x], (g) => [g]);
}

/** `dst += src` in place (same shape, float32); used to accumulate gradients. */
export function addInPlace(dst: Tensor, src: Tensor): void {
  if (!sameShape(dst.shape, src.shape) || dst.dtype !== 'float32' || src.dtype !== 'float32') {
    throw new ShapeError(
      `addInPlace: ${fmt(dst.shape)} ${dst.dtype} += ${fmt(src.shape)} ${src.dtype}`,
    );
  }
  addInto(dst.ptr, src.ptr, dst.size);
}

/** Converts to `dtype`; returns `x` itself when it already has it, as PyTorch does. */
export function castTo(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  const out = Tensor.empty(x.shape, dtype);
  // Split by elements over the pool: each converts alone (cuts at multiples of 4 keep SIMD
  // body and tail the same elements), and integer results carry no gradient.
  const fn = dtype === 'int32' ? 'cast_f32_i32' : 'cast_i32_f32';
  splitFlat(fn, x.size, (at, n) => [x.ptr + at, out.ptr + at, n]);
  return out;
}

/**
 * Sums `g` (shaped like a broadcast result) down to `shape`, the shape of the input that was
 * broadcast: the backward of every broadcasting op. Returns `g` itself when nothing was broadcast.
 */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  if (g.dtype !== 'float32') throw new DTypeError(`sumTo: expected float32, got ${g.dtype}`);
  const out = Tensor.empty(shape, 'float32');
  fillWords(out.ptr, out.size, 0);
  accumulateStrided(g, out, g.shape, contiguousStrides(g.shape), broadcastStrides(shape, g.shape));
  return out;
}

/** `dst[dstStrides·i] += src[srcStrides·i]` over `shape` (dst strides may be 0). */
export function accumulateStrided(
  src: Tensor,
  dst: Tensor,
  shape: Shape,
  srcStrides: number[],
  dstStrides: number[],
  dstOffset = 0,
): void {
  if (shape.some((s) => s === 0)) return;
  stridedByRows('accumulate_strided_f32', src.ptr, dst.ptr + 4 * dstOffset, shape, [
    srcStrides,
    dstStrides,
  ]);
}

/** A contiguous copy of `x` broadcast to `shape` (no gradient; ops' backward passes use it). */
export function broadcastTo(x: Tensor, shape: Shape): Tensor {
  if (sameShape(x.shape, shape)) return clone(x);
  return gatherStrided(x, shape, broadcastStrides(x.shape, shape));
}
