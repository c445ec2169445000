// Buffers in wasm linear memory. TypeScript owns them: it allocates every output and scratch
// buffer before a kernel runs and frees it when the last tensor using it is disposed.
// Typed-array views are made on demand, because growing memory detaches old views.
import { NablaError } from '../errors.js';
import { MAX_DIMS } from './abi.js';
import { wasm } from './core.js';

export class OutOfMemoryError extends NablaError {
  override name = 'OutOfMemoryError';
}

/** Allocates `bytes` bytes (16-byte aligned) and returns the byte offset. */
export function alloc(bytes: number): number {
  const ptr = wasm().nb_alloc(bytes);
  if (ptr === 0) {
    throw new OutOfMemoryError(`alloc: cannot grow wasm memory by ${bytes} bytes`);
  }
  return ptr;
}

export function free(ptr: number, bytes: number): void {
  wasm().nb_free(ptr, bytes);
}

export function f32View(ptr: number, n: number): Float32Array {
  return new Float32Array(wasm().memory.buffer, ptr, n);
}

export function i32View(ptr: number, n: number): Int32Array {
  return new Int32Array(wasm().memory.buffer, ptr, n);
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
  if (matmulScratchPtr === 0) matmulScratchPtr = alloc(wasm().matmul_scratch_len() * 4);
  return matmulScratchPtr;
}
