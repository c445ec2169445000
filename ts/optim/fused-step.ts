// One fused optimizer update over a parameter and its state buffers, split over the pool by
// elements for large parameters. The kernels (crate/src/kernels/optim.rs) work elementwise in
// lanes of 4, with a padded last chunk computed as the SIMD body would, so any cut gives the
// same bits as one call.
import type { PoolExport } from '../wasm/threads.js';
import { runSplitOrWhole } from '../ops/parallel.js';

/** Parameters with fewer elements update on the calling thread (one dispatch costs ~1 µs). */
const SPLIT_MIN_ELEMENTS = 1 << 15;

/**
 * Calls `fn(...buffers, n, ...rest)` over `n` elements: `buffers` are the parameter, gradient
 * and state addresses (0 for a buffer the options leave unused), `rest` the hyperparameters.
 * In place, so a share lost with a dead worker cannot be redone: that is a WorkerError.
 */
export function fusedStep(
  fn: PoolExport,
  buffers: readonly number[],
  n: number,
  rest: readonly number[],
): void {
  runSplitOrWhole({
    fn,
    length: n,
    align: 4,
    work: n,
    minWork: SPLIT_MIN_ELEMENTS,
    args: (begin, end) => [
      ...buffers.map((ptr) => (ptr === 0 ? 0 : ptr + 4 * begin)),
      end - begin,
      ...rest,
    ],
  });
}
