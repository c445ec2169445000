// A block of wasm memory shared by a tensor and its views (reshape, detach), returned when the
// last of them lets go. Freed blocks go to a size-class cache first: a training step frees and
// re-requests the same sizes every iteration, and serving them from the cache avoids the
// allocator (and memory.grow) churn. Also keeps the accounting that `nb.memory()` reports.
import { alloc, free } from '../wasm/heap.js';

export const stats = { tensors: 0, bytes: 0, cachedBytes: 0 };

/** Freed blocks kept for reuse, by block size. */
const cache = new Map<number, number[]>();
/** At most this much memory waits in the cache; beyond it blocks go back to the allocator. */
let cacheLimit = 256 * 1024 * 1024;

/** Block size for a request: four classes per power of two, so at most 25% is wasted. */
export function sizeClass(bytes: number): number {
  if (bytes <= 64) return 64;
  const step = 2 ** (Math.floor(Math.log2(bytes)) - 2);
  return Math.ceil(bytes / step) * step;
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
  }

  static allocate(bytes: number): Storage {
    const block = sizeClass(bytes);
    const reuse = cache.get(block)?.pop();
    if (reuse !== undefined) {
      stats.cachedBytes -= block;
      return new Storage(reuse, bytes, block);
    }
    return new Storage(alloc(block), bytes, block);
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
