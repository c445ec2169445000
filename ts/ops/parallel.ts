// Splitting one kernel call over the worker pool (issue 14): the caller names an export and
// how to build its arguments for a sub-range [begin, end) of an independent dimension; the
// range is cut at fixed points (multiples of `align`, depending only on the length and the
// thread count), the workers get the later parts and the calling thread runs the first, then
// joins. A kernel may be split this way only if each output element is computed by the same
// operations whatever range holds it, so every thread count gives the same bits.
import { Tensor } from '../tensor/tensor.js';
import { copyStrided } from './copy.js';
import { pool, wasm } from '../wasm/core.js';
import { matmulScratch } from '../wasm/heap.js';
import { WorkerError, type PoolExport } from '../wasm/threads.js';

export interface Split {
  /** The export every thread calls. */
  fn: PoolExport;
  /** Length of the dimension being split. */
  length: number;
  /** Cut points are multiples of this (a SIMD width, a micro-kernel's rows). */
  align: number;
  /** Split only when there is at least this much work (in the caller's units)... */
  work: number;
  /** ...and this much makes a split worth one dispatch (measured per kernel). */
  minWork: number;
  /**
   * Arguments for `[begin, end)`; `worker` is the pool index, -1 for the calling thread;
   * `scratch` the address of that thread's own `scratch` floats (0 when none are asked for).
   */
  args(begin: number, end: number, worker: number, scratch: number): number[];
  /** Floats of scratch each thread needs to itself (allocated for the call, then freed). */
  scratch?: number;
  /**
   * The kernel only writes its range's outputs, from inputs it does not write, so running a
   * range again gives the same bits: a share lost with a worker that died is run again on the
   * calling thread and the op completes. Not for in-place updates or accumulating outputs.
   */
  redo?: boolean;
}

/** Runs `s` split over the pool; false (nothing run) when there is no pool or too little work. */
export function runSplit(s: Split): boolean {
  const workers = pool();
  if (workers === null || s.work < s.minWork) return false;
  const parts = Math.min(workers.size, Math.floor(s.length / s.align));
  if (parts < 2) return false;
  const cut = (t: number): number =>
    t === parts ? s.length : Math.floor((s.length * t) / parts / s.align) * s.align;
  // Share t is [cut(t), cut(t + 1)): the caller's is 0, worker i's is i + 1, and each thread
  // has stretch 1 + its index of the scratch. A lost share is run again by the caller (-1).
  const scratch = s.scratch ? Tensor.empty([s.scratch * parts], 'float32') : null;
  const args = (t: number, thread = t - 1): number[] =>
    s.args(cut(t), cut(t + 1), thread, scratch ? scratch.ptr + 4 * s.scratch! * (thread + 1) : 0);
  try {
    workers.dispatch(
      workers.scratch.map((_, i) => (i + 1 < parts ? { fn: s.fn, args: args(i + 1) } : null)),
    );
    try {
      call(s.fn, args(0));
    } finally {
      // Worker i's share run on this thread: one it never claimed, or one lost with it.
      const runHere = (i: number): void => call(s.fn, args(i + 1, -1));
      try {
        workers.join(runHere);
      } catch (e) {
        if (!(e instanceof WorkerError) || e.lostShares.length === 0 || s.redo !== true) throw e;
        for (const i of e.lostShares) if (i + 1 < parts) runHere(i);
        console.warn(`nabla: ${e.message}; its share of ${s.fn} was run again on this thread`);
      }
    }
  } finally {
    scratch?.dispose();
  }
  return true;
}

function call(fn: PoolExport, args: number[]): void {
  (wasm()[fn] as (...a: number[]) => unknown)(...args);
}

/**
 * Elementwise, pooling, normalisation and softmax kernels split from this many elements up:
 * they are memory-bound at well under a nanosecond an element, and a dispatch costs about a
 * microsecond (bench/threads-probe.mjs).
 */
export const SPLIT_MIN_ELEMENTS = 1 << 16;

/** Runs `s` split over the pool when `runSplit` would, else whole on the calling thread. */
export function runSplitOrWhole(s: Split): void {
  if (runSplit(s)) return;
  const scratch = s.scratch ? Tensor.empty([s.scratch], 'float32') : null;
  try {
    call(s.fn, s.args(0, s.length, -1, scratch ? scratch.ptr : 0));
  } finally {
    scratch?.dispose();
  }
}

/**
 * Runs `fn` over `count` independent items (rows, planes, blocks, chunks), each of which
 * overwrites only its own outputs, split over the pool from `minWork` (default
 * SPLIT_MIN_ELEMENTS) of `work`: any split gives the same bits, and a share lost with a dead
 * worker is run again. `args(begin, end, scratch)` builds the call for items `[begin, end)`,
 * given the address of that thread's own `scratch` floats when asked for; no call when `count`
 * is 0.
 */
export function splitItems(
  fn: PoolExport,
  count: number,
  work: number,
  args: (begin: number, end: number, scratch: number) => number[],
  { scratch, minWork = SPLIT_MIN_ELEMENTS }: { scratch?: number; minWork?: number } = {},
): void {
  if (count === 0) return;
  runSplitOrWhole({
    fn,
    length: count,
    align: 1,
    work,
    minWork,
    redo: true,
    scratch,
    args: (b, e, _worker, at) => args(b, e, at),
  });
}

/**
 * Runs a flat kernel over `size` words, split over the pool by elements (cuts at multiples of
 * 4, so a SIMD body and scalar tail cover the same elements for any thread count), from
 * `minWork` words. `args(byteOffset, count)`; `redo` as in `Split`.
 */
export function splitFlat(
  fn:
    | 'unary_f32'
    | 'unary_bwd_f32'
    | 'binary_flat_f32'
    | 'add_inplace_f32'
    | 'fill_u32'
    | 'cast_f32_i32'
    | 'cast_i32_f32'
    | 'flush_subnormal_f32',
  size: number,
  args: (at: number, n: number) => number[],
  { redo = true, minWork = SPLIT_MIN_ELEMENTS } = {},
): void {
  runSplitOrWhole({
    fn,
    length: size,
    align: 4,
    work: size,
    minWork,
    redo,
    args: (b, e) => args(4 * b, e - b),
  });
}

/**
 * `dst[i] += src[i]` for `n` floats (gradient accumulation): one addition an element, whatever
 * lane or thread makes it. Not run again if a worker dies mid-share (it may have added).
 */
export function addInto(dst: number, src: number, n: number): void {
  splitFlat('add_inplace_f32', n, (at, k) => [dst + at, src + at, k], { redo: false });
}

/**
 * Fills split from this many words. On 2 threads against 1 (best of 200), 2^16 broke even
 * (6.4-7.9 against 6.6 µs) and 2^17 gained (8.9-9.3 against 11.5 µs); 4 Mi words: 295-301 →
 * 148-151 µs.
 */
const FILL_SPLIT_MIN = 1 << 17;

/** Sets the `n` words at `ptr` to `bits` (zeros for gradients, `full` for creation). */
export function fillWords(ptr: number, n: number, bits: number): void {
  splitFlat('fill_u32', n, (at, k) => [ptr + at, k, bits], { minWork: FILL_SPLIT_MIN });
}

/** The GEMM packing scratch of pool thread `worker` (-1: the calling thread's). */
export function gemmScratch(worker: number): number {
  return worker < 0 ? matmulScratch() : pool()!.scratch[worker];
}

/**
 * `out` = the sum of `partials`' rows in order (then `partials` is freed); null: nothing.
 * Kernels that sum over a split dimension (a weight gradient over images or rows) write one
 * partial sum per fixed chunk of it, chosen from sizes alone; added here in chunk order,
 * whichever thread made each, they give the same bits for every thread count.
 */
export function sumChunks(partials: Tensor | null, out: Tensor | null): void {
  if (!partials || !out) return partials?.dispose();
  const [chunks, len] = partials.shape;
  copyStrided(partials, 0, out, 0, [len], [1], [1]);
  for (let c = 1; c < chunks; c++) addInto(out.ptr, partials.ptr + 4 * c * len, len);
  partials.dispose();
}
