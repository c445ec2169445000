// A block of wasm memory shared by a tensor and its views (reshape, detach), freed when the
// last of them lets go. Also keeps the live-tensor accounting that `nb.memory()` reports.
import { alloc, free } from '../wasm/heap.js';

export const stats = { tensors: 0, bytes: 0 };

export class Storage {
  refs = 1;
  constructor(
    readonly ptr: number,
    readonly bytes: number,
  ) {
    stats.bytes += bytes;
  }

  static allocate(bytes: number): Storage {
    // Zero-size tensors still get a distinct (tiny) block so pointers never collide.
    return new Storage(alloc(Math.max(bytes, 4)), bytes);
  }

  retain(): this {
    this.refs++;
    return this;
  }

  release(): void {
    if (--this.refs === 0) {
      stats.bytes -= this.bytes;
      free(this.ptr, Math.max(this.bytes, 4));
    }
  }
}
