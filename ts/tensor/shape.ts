// Pure shape arithmetic: sizes, strides, dims, broadcasting. No memory is touched here.
import { ShapeError, fmt } from '../errors.js';

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/** Row-major strides, in elements. */
export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = acc;
    acc *= shape[d];
  }
  return strides;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

/** Resolves a possibly negative `dim` for a tensor of rank `ndim`, or throws naming `op`. */
export function normDim(op: string, dim: number, ndim: number, shape?: Shape): number {
  const n = Math.max(ndim, 1);
  if (!Number.isInteger(dim) || dim < -n || dim >= n) {
    const where = shape ? ` for shape ${fmt(shape)}` : ` for a ${ndim}-d tensor`;
    throw new ShapeError(`${op}: dim ${dim} is out of range${where} (expected ${-n}..${n - 1})`);
  }
  return dim < 0 ? dim + n : dim;
}

/** Normalises a dim or list of dims into sorted unique dims; `undefined` means all. */
export function normDims(
  op: string,
  dims: number | readonly number[] | undefined,
  shape: Shape,
): number[] {
  if (dims === undefined) return shape.map((_, i) => i);
  const list = typeof dims === 'number' ? [dims] : dims;
  const out = list.map((d) => normDim(op, d, shape.length, shape));
  if (new Set(out).size !== out.length) {
    throw new ShapeError(`${op}: dim ${fmt(list)} repeats a dim for shape ${fmt(shape)}`);
  }
  return out.sort((a, b) => a - b);
}

export function checkShape(op: string, shape: readonly number[]): void {
  for (const s of shape) {
    if (!Number.isInteger(s) || s < 0) {
      throw new ShapeError(`${op}: invalid shape ${fmt(shape)} (sizes must be integers >= 0)`);
    }
  }
}

/** NumPy broadcasting of any number of shapes, or a ShapeError naming `op` and the shapes. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const nd = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(nd).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const d = nd - s.length + i;
      const v = s[i];
      if (out[d] === 1) out[d] = v;
      else if (v !== 1 && v !== out[d]) {
        throw new ShapeError(
          `${op}: shapes ${shapes.map(fmt).join(' and ')} cannot be broadcast together (dim ${d}: ${out[d]} vs ${v})`,
        );
      }
    }
  }
  // A size-0 dim wins over 1 (already handled: 1 is replaced by the other size).
  return out;
}

/** Strides of a contiguous tensor of `shape` read as if broadcast to `target` (0 = repeated). */
export function broadcastStrides(shape: Shape, target: Shape): number[] {
  const own = contiguousStrides(shape);
  const off = target.length - shape.length;
  return target.map((_, d) => {
    const i = d - off;
    return i < 0 || shape[i] === 1 ? 0 : own[i];
  });
}

/**
 * Merges adjacent dims that every operand walks contiguously, so strided kernels see the
 * fewest dims (a same-shape elementwise op becomes 1-d). Returns at least one dim.
 */
export function collapseDims(
  shape: Shape,
  stridesList: number[][],
): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = stridesList.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue; // size-1 dims contribute nothing to the walk
    const last = outShape.length - 1;
    const mergeable =
      last >= 0 && stridesList.every((st, k) => outStrides[k][last] === st[d] * shape[d]);
    if (mergeable) {
      outShape[last] *= shape[d];
      stridesList.forEach((st, k) => (outStrides[k][last] = st[d]));
    } else {
      outShape.push(shape[d]);
      stridesList.forEach((st, k) => outStrides[k].push(st[d]));
    }
  }
  if (outShape.length === 0) return { shape: [1], strides: stridesList.map(() => [0]) };
  return { shape: outShape, strides: outStrides };
}

/** Infers one -1 in a reshape target, checking the sizes agree. */
export function inferShape(op: string, from: Shape, to: readonly number[]): number[] {
  const total = numel(from);
  const neg = to.filter((s) => s === -1).length;
  if (neg > 1 || to.some((s) => !Number.isInteger(s) || s < -1)) {
    throw new ShapeError(`${op}: invalid target shape ${fmt(to)}`);
  }
  const known = to.reduce((p, s) => (s === -1 ? p : p * s), 1);
  const out = to.map((s) => (s === -1 ? (known === 0 ? 0 : total / known) : s));
  if (numel(out) !== total || out.some((s) => !Number.isInteger(s))) {
    throw new ShapeError(`${op}: cannot reshape ${fmt(from)} (${total} elements) to ${fmt(to)}`);
  }
  return out;
}
