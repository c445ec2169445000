// Sorting along a dim: sort, argsort and topk are one row kernel (a stable merge sort, NaN
// largest) applied to the dim moved last. Values carry a gradient that flows back to the
// positions the indices name; indices are int32 and carry none.
import { DTypeError, ValueError, fmt } from '../errors.js';
import { normDim } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { wasm } from '../wasm/core.js';
import { ReduceOp } from '../wasm/abi.js';
import { noGrad, record, releaseIntermediates } from '../autograd/node.js';
import { castTo } from './copy.js';
import { splitItems } from './parallel.js';
import { scatterAdd } from './indexing.js';
import { reshape, transpose } from './shape.js';

/**
 * Sorts split over the pool by rows from this much work (elements × merge passes): on 2
 * threads, best of 200, `[8, 64]` (3,072) lost (13 against 17 µs), `[16, 64]` (6,144) about
 * broke even (20 against 18 µs) and `[32, 64]` (12,288) gained (35 against 25 µs); `[256, 256]`
 * 3.8 against 1.9 ms.
 */
const SORT_SPLIT_MIN = 1 << 13;

export interface SortOptions {
  /** Equal values keep their input order. This sort is always stable, so it is accepted for PyTorch parity. */
  stable?: boolean;
}

/** The first `k` of each row along `dim`, sorted: `[values, int32 indices]`. */
function sortAlong(
  op: string,
  x: Tensor,
  k: number | null,
  dim: number,
  descending: boolean,
): [Tensor, Tensor] {
  if (x.ndim === 0) {
    // A 0-d tensor sorts as one row of one element.
    const flat = reshape(x, [1], op);
    const [v, i] = sortAlong(op, flat, k, 0, descending);
    const out: [Tensor, Tensor] = [reshape(v, [], op), reshape(i, [], op)];
    releaseIntermediates(out[0], [flat, v, i]);
    return out;
  }
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new DTypeError(`${op}: expected float32 or int32, got ${String(x.dtype)}`);
  }
  const d = normDim(op, dim, x.ndim, x.shape);
  const n = x.shape[d];
  const kk = k ?? n;
  if (!Number.isInteger(kk) || kk < 0 || kk > n) {
    throw new ValueError(
      `${op}: k ${kk} is out of range for dim ${d} of shape ${fmt(x.shape)} (size ${n})`,
    );
  }
  if (x.dtype === 'int32') checkIntKeys(op, x);
  const last = x.ndim - 1;
  const { vals, idx } = noGrad(() => {
    // int32 keys sort as float32: exact for |v| <= 2^24.
    const keys = x.dtype === 'int32' ? castTo(x, 'float32') : x;
    const moved = d === last ? keys : transpose(keys, d, last);
    const rows = n === 0 ? 0 : moved.size / n;
    const v = Tensor.empty([...moved.shape.slice(0, -1), kk], 'float32');
    const i = Tensor.empty(v.shape, 'int32');
    if (rows > 0 && kk > 0) {
      // Rows are independent and each is sorted by the same merges on any thread.
      const merges = rows * n * Math.max(1, Math.ceil(Math.log2(n)));
      const dir = descending ? 1 : 0;
      const args = (b: number, e: number, scratch: number): number[] => [
        moved.ptr,
        v.ptr,
        i.ptr,
        scratch,
        n,
        kk,
        dir,
        b,
        e,
      ];
      splitItems('sort_rows_f32', rows, merges, args, { scratch: 2 * n, minWork: SORT_SPLIT_MIN });
    }
    if (moved !== keys) moved.dispose();
    if (keys !== x) keys.dispose();
    const back = (t: Tensor): Tensor => {
      if (d === last) return t;
      const r = transpose(t, d, last);
      t.dispose();
      return r;
    };
    const vBack = back(v);
    return { vals: x.dtype === 'int32' ? castBack(vBack) : vBack, idx: back(i) };
  });
  const values = record(
    vals,
    op,
    [x],
    (g) => {
      const zeros = Tensor.empty(x.shape, 'float32');
      wasm().fill_u32(zeros.ptr, zeros.size, 0);
      const gx = scatterAdd(zeros, d, idx, g);
      zeros.dispose();
      return [gx];
    },
    [idx],
  );
  return [values, idx];
}

/** int32 keys sort as float32, which is exact only up to 2^24 in magnitude. */
function checkIntKeys(op: string, x: Tensor): void {
  if (x.size === 0) return;
  const m = Tensor.empty([2], 'int32');
  wasm().reduce_i32(ReduceOp.MAX, x.ptr, m.ptr, 1, x.size, 1);
  wasm().reduce_i32(ReduceOp.MIN, x.ptr, m.ptr + 4, 1, x.size, 1);
  const [hi, lo] = m.toArray();
  m.dispose();
  if (hi > 2 ** 24 || lo < -(2 ** 24)) {
    throw new ValueError(
      `${op}: int32 values of shape ${fmt(x.shape)} reach ${hi > 2 ** 24 ? hi : lo}; sorting int32 is exact only within ±2^24`,
    );
  }
}

function castBack(v: Tensor): Tensor {
  const r = castTo(v, 'int32');
  v.dispose();
  return r;
}

/** `torch.sort`: `[values, indices]` along `dim` (default last), ascending unless `descending`. */
export function sort(
  x: Tensor,
  dim = -1,
  descending = false,
  opts: SortOptions = {},
): [Tensor, Tensor] {
  void opts.stable; // always stable
  return sortAlong('sort', x, null, dim, descending);
}

/** `torch.argsort`: the int32 indices that sort `x` along `dim`. */
export function argsort(x: Tensor, dim = -1, descending = false, opts: SortOptions = {}): Tensor {
  void opts.stable;
  const [values, indices] = noGrad(() => sortAlong('argsort', x, null, dim, descending));
  values.dispose();
  return indices;
}

/**
 * `torch.topk`: the `k` largest (or smallest) entries along `dim` as `[values, indices]`,
 * sorted. `sorted = false` is accepted and still returns them sorted (torch leaves that order
 * unspecified).
 */
export function topk(
  x: Tensor,
  k: number,
  dim = -1,
  largest = true,
  sorted = true,
): [Tensor, Tensor] {
  void sorted;
  return sortAlong('topk', x, k, dim, largest);
}
