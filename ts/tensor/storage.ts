// A block of wasm memory shared by a tensor and its views (reshape, detach), returned when the
// last of them lets go. Freed blocks go to a size-class cache first: a training step frees and
// re-requests the same sizes every iteration, and serving them from the cache avoids the
// allocator (and memory.grow) churn. Also keeps the accounting that `nb.memory()` reports.
import { ShapeError, fmt } from '../errors.js';
import { OutOfMemoryError, WASM32_MAX_BYTES, alloc, free } from '../wasm/heap.js';
import { itemSize, type DType } from './dtype.js';

/** `peakBytes`: the most tensor bytes live at once since the last `resetPeakMemory()`. */
export const stats = { tensors: 0, bytes: 0, cachedBytes: 0, peakBytes: 0 };

/** Freed blocks kept for reuse, by block size. */
const cache = new Map<number, number[]>();
/** At most this much memory waits in the cache; beyond it blocks go back to the allocator. */
let cacheLimit = 256 * 1024 * 1024;

/** Above this, blocks are rounded to whole 64 KiB pages only: a 25% class would waste GiBs. */
const LARGE = 64 * 1024 * 1024;

/** Block size for a request: four classes per power of two, so at most 25% is wasted. */
export function sizeClass(bytes: number): number {
  if (bytes <= 64) return 64;
  if (bytes > LARGE) return Math.ceil(bytes / 65536) * 65536;
  const step = 2 ** (Math.floor(Math.log2(bytes)) - 2);
  return Math.ceil(bytes / step) * step;
}

/** Kernels index with i32 descriptors, so no single dim may reach 2^31 (even in an empty tensor). */
const MAX_DIM = 2 ** 31 - 1;

/**
 * The byte count of a contiguous tensor, computed once and checked: every size a non-negative
 * integer below 2^31 and the total within what wasm32 can still hold (4 GiB minus the bytes
 * live tensors already use). Past that it is an OutOfMemoryError naming the shape and bytes.
 */
export function tensorBytes(shape: readonly number[], dtype: DType): number {
  for (const s of shape) {
    if (!Number.isInteger(s) || s < 0) {
      throw new ShapeError(`empty: invalid shape ${fmt(shape)} (sizes must be integers >= 0)`);
    }
  }
  let n = 1;
  for (const s of shape) n *= s;
  const bytes = n * itemSize(dtype);
  const room = WASM32_MAX_BYTES - stats.bytes;
  if (!(bytes <= room)) {
    throw new OutOfMemoryError(
      `cannot allocate a ${dtype} tensor of shape ${fmt(shape)}: it needs ${bytes} bytes, and wasm32 memory holds at most ${WASM32_MAX_BYTES} bytes of which live tensors use ${stats.bytes}`,
    );
  }
  if (shape.some((s) => s > MAX_DIM)) {
    throw new ShapeError(`empty: shape ${fmt(shape)} has a size of 2^31 or more`);
  }
  return bytes;
}

export class Storage {
  refs = 1;
  /**
   * Bumped by every in-place write (PyTorch's version counter, shared by views): a graph that
   * saved a tensor checks in backward that it still holds the values the forward saw.
   */
  version = 0;
  private constructor(
    readonly ptr: number,
    readonly bytes: number,
    private readonly block: number,
  ) {
    stats.bytes += bytes;
    if (stats.bytes > stats.peakBytes) stats.peakBytes = stats.bytes;
  }

  static allocate(bytes: number): Storage {
    const block = sizeClass(bytes);
    const reuse = cache.get(block)?.pop();
    if (reuse !== undefined) {
      stats.cachedBytes -= block;
      return new Storage(reuse, bytes, block);
    }
    return new Storage(allocOrFlush(block), bytes, block);
  }

  /** Storage for a contiguous tensor: the checked byte count, and the shape in any OOM message. */
  static forTensor(shape: readonly number[], dtype: DType): Storage {
    const bytes = tensorBytes(shape, dtype);
    try {
      return Storage.allocate(bytes);
    } catch (e) {
      if (!(e instanceof OutOfMemoryError)) throw e;
      throw new OutOfMemoryError(
        `cannot allocate a ${dtype} tensor of shape ${fmt(shape)} (${bytes} bytes): ${e.message}`,
      );
    }
  }

  retain(): this {
    this.refs++;
    return this;
  }

  release(): void {
    if (--this.refs !== 0) return;
    stats.bytes -= this.bytes;
    if (stats.cachedBytes + this.block > cacheLimit) {
      free(this.ptr, this.block);
      return;
    }
    let list = cache.get(this.block);
    if (!list) cache.set(this.block, (list = []));
    list.push(this.ptr);
    stats.cachedBytes += this.block;
  }
}

/**
 * Allocates a block; when memory cannot grow, the cached blocks go back to the allocator and it
 * tries once more. Nothing is counted until the block exists, so a failure changes no stats.
 */
function allocOrFlush(block: number): number {
  try {
    return alloc(block);
  } catch (e) {
    if (!(e instanceof OutOfMemoryError) || stats.cachedBytes === 0) throw e;
    emptyCache();
    return alloc(block);
  }
}

/** Returns every cached block to the allocator (like `torch.cuda.empty_cache()`). */
export function emptyCache(): void {
  for (const [block, ptrs] of cache) for (const ptr of ptrs) free(ptr, block);
  cache.clear();
  stats.cachedBytes = 0;
}

/** Sets how many bytes of freed blocks may be kept for reuse (0 disables the cache). */
export function setCacheLimit(bytes: number): void {
  cacheLimit = Math.max(0, bytes);
  if (stats.cachedBytes > cacheLimit) emptyCache();
}
