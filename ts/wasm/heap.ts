// Buffers in wasm linear memory. TypeScript owns them: it allocates every output and scratch
// buffer before a kernel runs and frees it when the last tensor using it is disposed.
// Typed-array views are made on demand, because growing memory detaches old views.
//
// wasm32 addresses are unsigned 32-bit: an `i32` result comes back to JavaScript as a signed
// number, so every pointer read from the module goes through `>>> 0`, and every byte count is
// checked here before it reaches `nb_alloc` (a JavaScript number past 2^32 would wrap).
import { NablaError } from '../errors.js';
import { MAX_DIMS } from './abi.js';
import { wasm } from './core.js';

export class OutOfMemoryError extends NablaError {
  override name = 'OutOfMemoryError';
}

/** The most linear memory wasm32 can address: 65536 pages of 64 KiB. */
export const WASM32_MAX_BYTES = 2 ** 32;

/** Reads a pointer (or any `usize`) returned by the module as the unsigned number it is. */
export const unsigned = (v: number): number => v >>> 0;

/**
 * Allocates `bytes` bytes (16-byte aligned) and returns the byte offset, or throws an
 * OutOfMemoryError when the size cannot exist in wasm32 or memory cannot grow that far.
 */
export function alloc(bytes: number): number {
  if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > WASM32_MAX_BYTES - 65536) {
    throw new OutOfMemoryError(
      `alloc: ${bytes} bytes cannot be allocated (wasm32 memory holds at most ${WASM32_MAX_BYTES} bytes)`,
    );
  }
  const ptr = unsigned(wasm().nb_alloc(bytes));
  if (ptr === 0) {
    throw new OutOfMemoryError(
      `alloc: cannot allocate ${bytes} bytes (wasm memory is ${heapBytes()} of at most ${WASM32_MAX_BYTES} bytes)`,
    );
  }
  return ptr;
}

export function free(ptr: number, bytes: number): void {
  wasm().nb_free(ptr, bytes);
}

export function f32View(ptr: number, n: number): Float32Array {
  return new Float32Array(wasm().memory.buffer, unsigned(ptr), n);
}

export function i32View(ptr: number, n: number): Int32Array {
  return new Int32Array(wasm().memory.buffer, unsigned(ptr), n);
}

/** Current size of linear memory in bytes (it only grows). */
export function heapBytes(): number {
  return wasm().memory.buffer.byteLength;
}

// Descriptor scratch: shapes and strides passed to strided kernels, MAX_DIMS i32 per slot.
const SLOTS = 4;
let dimsPtr = 0;

/**
 * Writes up to four i32 arrays (shape, strides, ...) into the descriptor scratch and returns
 * their byte offsets. Valid until the next call, which is enough: kernels read them at once.
 */
export function writeDims(...arrays: readonly (readonly number[])[]): number[] {
  if (dimsPtr === 0) dimsPtr = alloc(SLOTS * MAX_DIMS * 4);
  const view = i32View(dimsPtr, SLOTS * MAX_DIMS);
  return arrays.map((arr, slot) => {
    view.set(arr, slot * MAX_DIMS);
    return dimsPtr + slot * MAX_DIMS * 4;
  });
}

let matmulScratchPtr = 0;

/** The packing scratch `matmul_f32` needs, allocated once. */
export function matmulScratch(): number {
  if (matmulScratchPtr === 0) matmulScratchPtr = alloc(unsigned(wasm().matmul_scratch_len()) * 4);
  return matmulScratchPtr;
}

/**
 * Writes one i32 array of up to `SLOTS * MAX_DIMS` entries (a kernel's geometry) into the
 * descriptor scratch and returns its byte offset; valid until the next write, like `writeDims`.
 */
export function writeInts(values: readonly number[]): number {
  if (values.length > SLOTS * MAX_DIMS) throw new RangeError('writeInts: too many values');
  if (dimsPtr === 0) dimsPtr = alloc(SLOTS * MAX_DIMS * 4);
  i32View(dimsPtr, SLOTS * MAX_DIMS).set(values);
  return dimsPtr;
}
