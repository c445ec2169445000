// matmul with PyTorch's rules: 1-D operands gain and lose a dim, batch dims broadcast.
// Every product (forward and both gradients) runs in one kernel that reads transposed
// operands through strides, so no transpose is ever materialised.
import { DTypeError, ShapeError, fmt } from '../errors.js';
import { wasm } from '../wasm/core.js';
import { gemmScratch, runSplit } from './parallel.js';
import { matmulScratch } from '../wasm/heap.js';
import { broadcastShapes, broadcastStrides, numel, type Shape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { record } from '../autograd/node.js';
import { copyStrided, sumTo } from './copy.js';
import { zeros } from './creation.js';

/** Element strides of a 2-D operand: row stride and column stride. */
export type Strides2 = readonly [number, number];

/**
 * `C (m×n) (+)= op(A) (m×k) · op(B) (k×n)` at element offsets into the three tensors, operands
 * read through strides (the one GEMM call site every op shares). Empty products do nothing.
 */
export function gemm(
  a: Tensor,
  aOff: number,
  aS: Strides2,
  b: Tensor,
  bOff: number,
  bS: Strides2,
  c: Tensor,
  cOff: number,
  m: number,
  k: number,
  n: number,
  accumulate: boolean,
): void {
  if (m === 0 || n === 0) return;
  const [ap, bp, cp] = [a.ptr + 4 * aOff, b.ptr + 4 * bOff, c.ptr + 4 * cOff];
  if (splitProduct(ap, aS, bp, bS, cp, m, k, n, accumulate)) return;
  wasm().matmul_f32(
    ap,
    bp,
    cp,
    m,
    k,
    n,
    n,
    aS[0],
    aS[1],
    bS[0],
    bS[1],
    accumulate ? 1 : 0,
    matmulScratch(),
  );
}

/**
 * Products below this many multiply-adds stay on the calling thread: measured on 2 cores
 * (bench/threads-probe.mjs, `npm run bench -- --threads 2`), 64³ (2^18) ran slower split and
 * 128³ (2^21) gained 1.4-1.9x; every thread packs its own operand panels, which small products
 * do not repay.
 */
const SPLIT_MIN_MACS = 1 << 21;
/** The GEMM's register tile: rows of A per micro-panel, columns of B per micro-panel. */
const [TILE_ROWS, TILE_COLS] = [4, 8];

/**
 * The GEMM split over the pool by rows of A and C (multiples of 4) or by columns of B and C
 * (multiples of 8, written in place through C's row stride). Every thread packs all of the
 * operand it does not split: B (k×n) for a row split, A (m×k) for a column split, so the
 * smaller of the two is the one packed twice — a batch of 128 through a 784→256 Linear packs
 * its 100k-float input twice instead of its 200k-float weight. Every element of C is computed
 * by the same operations whichever thread owns it (rows ≥ 4 and panel-aligned cuts keep the
 * tiles the whole product uses), so the bits do not depend on the thread count.
 */
function splitProduct(
  a: number,
  aS: Strides2,
  b: number,
  bS: Strides2,
  c: number,
  m: number,
  k: number,
  n: number,
  accumulate: boolean,
): boolean {
  const byColumns = n > m && m >= TILE_ROWS && n >= 2 * TILE_COLS;
  return runSplit({
    fn: 'matmul_f32',
    length: byColumns ? n : m,
    align: byColumns ? TILE_COLS : TILE_ROWS,
    work: m * k * n,
    minWork: SPLIT_MIN_MACS,
    redo: !accumulate,
    args: (r0, r1, worker) => [
      ...(byColumns
        ? [a, b + 4 * r0 * bS[1], c + 4 * r0, m, k, r1 - r0, n]
        : [a + 4 * r0 * aS[0], b, c + 4 * r0 * n, r1 - r0, k, n, n]),
      ...aS,
      ...bS,
      accumulate ? 1 : 0,
      gemmScratch(worker),
    ],
  });
}

/** For each flat batch index, the element offset of that batch's matrix in an operand. */
function batchOffsets(batchShape: Shape, ownBatch: Shape, matrixSize: number): number[] {
  const strides = broadcastStrides(ownBatch, batchShape);
  const count = numel(batchShape);
  const offsets = new Array<number>(count);
  const idx = new Array<number>(batchShape.length).fill(0);
  for (let i = 0; i < count; i++) {
    let off = 0;
    for (let d = 0; d < idx.length; d++) off += idx[d] * strides[d];
    offsets[i] = off * matrixSize;
    for (let d = idx.length - 1; d >= 0; d--) {
      if (++idx[d] < batchShape[d]) break;
      idx[d] = 0;
    }
  }
  return offsets;
}

export interface MatmulOptions {
  /** Use the transpose of `a`'s last two dims, read through strides (no copy). */
  transA?: boolean;
  /** Use the transpose of `b`'s last two dims, read through strides (no copy). */
  transB?: boolean;
}

/** Element strides [row, col] of a stored row-major `rows×cols` matrix, optionally transposed. */
function strides(cols: number, trans: boolean): Strides2 {
  return trans ? [1, cols] : [cols, 1];
}

const swap = (s: Strides2): Strides2 => [s[1], s[0]];

/**
 * `a @ b` with PyTorch's rules (1-D operands gain and lose a dim, batch dims broadcast).
 * `transA`/`transB` multiply by the transpose of an operand's last two dims without copying it:
 * the kernel reads it through strides, as the backward passes always do.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') {
    throw new DTypeError(`matmul: expected float32 operands, got ${a.dtype} and ${b.dtype}`);
  }
  if (a.ndim === 0 || b.ndim === 0) {
    throw new ShapeError(
      `matmul: both operands need at least 1 dim, got shapes ${fmt(a.shape)} and ${fmt(b.shape)}`,
    );
  }
  const transA = opts.transA === true;
  const transB = opts.transB === true;
  if ((transA && a.ndim < 2) || (transB && b.ndim < 2)) {
    throw new ShapeError(
      `matmul: transA/transB need an operand with at least 2 dims, got shapes ${fmt(a.shape)} and ${fmt(b.shape)}`,
    );
  }
  // 1-D operands are promoted to matrices and the added dim is dropped from the result.
  const aStored = a.ndim === 1 ? [1, a.shape[0]] : [...a.shape];
  const bStored = b.ndim === 1 ? [b.shape[0], 1] : [...b.shape];
  const [ar, ac] = aStored.slice(-2);
  const [br, bc] = bStored.slice(-2);
  // op(A) is n×k and op(B) is k×m.
  const [n, k] = transA ? [ac, ar] : [ar, ac];
  const [kb, m] = transB ? [bc, br] : [br, bc];
  if (kb !== k) {
    const desc = (t: Tensor, tr: boolean, name: string) =>
      `${fmt(t.shape)}${tr ? ` (${name} transposed)` : ''}`;
    throw new ShapeError(
      `matmul: shapes ${desc(a, transA, 'a')} and ${desc(b, transB, 'b')} are not aligned (${k} != ${kb})`,
    );
  }
  const aBatch = aStored.slice(0, -2);
  const bBatch = bStored.slice(0, -2);
  let batch: number[];
  try {
    batch = broadcastShapes('matmul', aBatch, bBatch);
  } catch {
    throw new ShapeError(
      `matmul: batch dims of shapes ${fmt(a.shape)} and ${fmt(b.shape)} cannot be broadcast`,
    );
  }
  const outShape = [...batch, ...(a.ndim === 1 ? [] : [n]), ...(b.ndim === 1 ? [] : [m])];
  const out = Tensor.empty(outShape, 'float32');
  const count = numel(batch);

  // Weights are usually 2-D: fold every batch of A into the rows of one product (only when
  // A's rows are its stored rows, i.e. A is not transposed).
  const foldRows = bBatch.length === 0 && !transA;
  const aOffs = foldRows ? [0] : batchOffsets(batch, aBatch, n * k);
  const bOffs = foldRows ? [0] : batchOffsets(batch, bBatch, k * m);
  const rows = foldRows ? count * n : n;
  const sA = strides(ac, transA); // op(A)
  const sB = strides(bc, transB); // op(B)
  const sG: Strides2 = [m, 1]; // the output and its gradient: rows × m
  if (out.size > 0) {
    for (let i = 0; i < aOffs.length; i++) {
      gemm(a, aOffs[i], sA, b, bOffs[i], sB, out, i * n * m, rows, k, m, false);
    }
  }

  return record(out, 'matmul', [a, b], (g) => {
    let ga: Tensor | null = null;
    let gb: Tensor | null = null;
    const sharedA = !foldRows && numel(aBatch) !== count;
    const sharedB = !foldRows && numel(bBatch) !== count;
    if (a.requiresGrad) {
      ga = sharedA ? zeros(a.shape) : Tensor.empty(a.shape, 'float32');
      if (ga.size > 0) {
        for (let i = 0; i < aOffs.length; i++) {
          const gOff = i * n * m;
          if (transA) {
            // stored dA = (G · op(B)ᵀ)ᵀ = op(B) · Gᵀ  (k×n)
            gemm(b, bOffs[i], sB, g, gOff, swap(sG), ga, aOffs[i], k, m, rows, sharedA);
          } else {
            // dA = G · op(B)ᵀ  (rows×k)
            gemm(g, gOff, sG, b, bOffs[i], swap(sB), ga, aOffs[i], rows, m, k, sharedA);
          }
        }
      }
    }
    if (b.requiresGrad) {
      gb = sharedB ? zeros(b.shape) : Tensor.empty(b.shape, 'float32');
      if (gb.size > 0) {
        for (let i = 0; i < aOffs.length; i++) {
          const gOff = i * n * m;
          if (transB) {
            // stored dB = (op(A)ᵀ · G)ᵀ = Gᵀ · op(A)  (m×k)
            gemm(g, gOff, swap(sG), a, aOffs[i], sA, gb, bOffs[i], m, rows, k, sharedB);
          } else {
            // dB = op(A)ᵀ · G  (k×m)
            gemm(a, aOffs[i], swap(sA), g, gOff, sG, gb, bOffs[i], k, rows, m, sharedB);
          }
        }
      }
    }
    return [ga, gb];
  });
}

/**
 * `x · weightᵀ (+ bias)` for x [..., in], weight [out, in] (PyTorch's layout), bias [out].
 * The kernel reads the weight transposed through its strides, and the backward computes
 * dX = G·W, dW = Gᵀ·X and db = Σ G without materialising any transpose. Shapes are checked
 * by the caller (`nn.functional.linear`).
 */
export function linearOp(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const [outF, inF] = weight.shape;
  const rows = x.size / inF;
  const out = Tensor.empty([...x.shape.slice(0, -1), outF], 'float32');
  if (bias) {
    // Start from the bias broadcast over rows, then accumulate the product onto it.
    copyStrided(bias, 0, out, 0, [rows, outF], [0, 1], [outF, 1]);
  }
  if (out.size > 0)
    gemm(x, 0, [inF, 1], weight, 0, [1, inF], out, 0, rows, inF, outF, bias !== null);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(out, 'linear', inputs, (g) => {
    let gx: Tensor | null = null;
    let gw: Tensor | null = null;
    if (x.requiresGrad) {
      gx = Tensor.empty(x.shape, 'float32');
      if (gx.size > 0) gemm(g, 0, [outF, 1], weight, 0, [inF, 1], gx, 0, rows, outF, inF, false);
    }
    if (weight.requiresGrad) {
      gw = Tensor.empty(weight.shape, 'float32');
      if (gw.size > 0) gemm(g, 0, [1, outF], x, 0, [inF, 1], gw, 0, outF, rows, inF, false);
    }
    const gb = bias?.requiresGrad ? sumTo(g, bias.shape) : null;
    return bias ? [gx, gw, gb] : [gx, gw];
  });
}
