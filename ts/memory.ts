// `nb.memory()`: what live tensors hold, and how big wasm memory has grown.
import { stats } from './tensor/storage.js';
export { emptyCache, setCacheLimit } from './tensor/storage.js';
import { isInitialised } from './wasm/core.js';
import { heapBytes } from './wasm/heap.js';

export interface MemoryInfo {
  /** Tensors created and not yet disposed (or collected). */
  tensors: number;
  /** Bytes of tensor data those tensors hold. */
  bytes: number;
  /** Freed blocks kept for reuse by later tensors (`nb.emptyCache()` returns them). */
  cachedBytes: number;
  /** Size of wasm linear memory; it only grows, so a flat value means no leak. */
  heapBytes: number;
  /**
   * The most tensor bytes live at once since `nb.resetPeakMemory()` (or the start): the
   * high-water mark, including a backward pass's temporaries (PyTorch's
   * `torch.cuda.max_memory_allocated`).
   */
  peakBytes: number;
}

export function memory(): MemoryInfo {
  return {
    tensors: stats.tensors,
    bytes: stats.bytes,
    cachedBytes: stats.cachedBytes,
    heapBytes: isInitialised() ? heapBytes() : 0,
    peakBytes: stats.peakBytes,
  };
}

/** Starts a new high-water mark for `memory().peakBytes` at the bytes live now. */
export function resetPeakMemory(): void {
  stats.peakBytes = stats.bytes;
}
