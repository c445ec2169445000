// A `fit` callback that reports training progress from a worker to the page: batches at most
// every `intervalMs`, every epoch's logs (with validation), and cancellation between batches.
import type { Callback, Logs } from '../train/callbacks.js';

export interface TrainProgress {
  /** 'batch' while an epoch runs (throttled; always its last batch), 'epoch' after it. */
  kind: 'batch' | 'epoch';
  /** 0-based epoch index. */
  epoch: number;
  epochs: number;
  /** Batches done in this epoch, out of `batches` (NaN when the loader has no length). */
  batch: number;
  batches: number;
  /** Samples done in this epoch and their rate (NaN when the batch size is unknown). */
  samples: number;
  samplesPerSecond: number;
  /** Seconds since training began. */
  elapsed: number;
  /** Running means for 'batch' (loss, metrics); the epoch's logs for 'epoch' (val*, lr). */
  logs: Logs;
}

export interface ProgressOptions {
  epochs: number;
  /** The training loader: its length and batch size give batches, samples and samples/s. */
  trainLoader?: { length?: number; batchSize?: number; dataset?: { length: number } };
  /** Minimum milliseconds between batch reports (default 100). */
  intervalMs?: number;
}

/** A MessageChannel task runs the worker's pending messages (a cancel, a predict) at once. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      resolve();
    };
    port2.postMessage(null);
  });
}

/**
 * Reports to `ctx.report` (a job's context from `serve`) and stops training by throwing the
 * abort reason once `ctx.signal` is aborted.
 */
export function progressCallback(
  ctx: { report(progress: TrainProgress): void; signal?: AbortSignal },
  opts: ProgressOptions,
): Callback {
  const interval = opts.intervalMs ?? 100;
  const loader = opts.trainLoader;
  const batches = loader?.length ?? NaN;
  const batchSize = loader?.batchSize ?? NaN;
  const total = loader?.dataset?.length ?? Infinity;
  let start = 0;
  let epochStart = 0;
  let lastReport = 0;
  const progress = (
    kind: TrainProgress['kind'],
    epoch: number,
    batch: number,
    logs: Logs,
  ): TrainProgress => {
    const now = performance.now();
    const samples = Math.min(batch * batchSize, total);
    return {
      kind,
      epoch,
      epochs: opts.epochs,
      batch,
      batches,
      samples,
      samplesPerSecond: samples / Math.max((now - epochStart) / 1000, 1e-9),
      elapsed: (now - start) / 1000,
      logs: { ...logs },
    };
  };

  return {
    onTrainBegin() {
      start = performance.now();
    },
    onEpochBegin() {
      epochStart = performance.now();
      lastReport = epochStart;
    },
    async onBatchEnd(batch, logs, state) {
      const done = batch + 1;
      const now = performance.now();
      if (now - lastReport < interval && done !== batches) return;
      lastReport = now;
      ctx.report(progress('batch', state.epoch, done, logs));
      await yieldToEventLoop();
      ctx.signal?.throwIfAborted();
    },
    async onEpochEnd(epoch, logs) {
      ctx.report(progress('epoch', epoch, Number.isNaN(batches) ? NaN : batches, logs));
      await yieldToEventLoop();
      ctx.signal?.throwIfAborted();
    },
  };
}
