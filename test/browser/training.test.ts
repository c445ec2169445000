// The same seeded training run in Node, on a chromium page and in a chromium worker must give
// the same losses and weights bit for bit; the worker protocol carries progress, predictions
// and weights both ways, errors with their class names, and cancellation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Nabla from '../../ts/index.js';
import { call, importFromRoot, startHarness, toBase64, type Harness } from './harness.js';

interface Run {
  losses: number[];
  history: Record<string, number[]>;
  weights: string;
}

interface TrainSmall {
  CONFIG: { seed: number; epochs: number; samples: number; batchSize: number };
  trainSmall(
    nb: typeof Nabla,
  ): Promise<{ losses: number[]; history: Run['history']; weights: Uint8Array }>;
}

let h: Harness;
let node: Run;
let config: TrainSmall['CONFIG'];

beforeAll(async () => {
  const nb = await importFromRoot<typeof Nabla>('dist/index.js');
  const shared = await importFromRoot<TrainSmall>('test/browser/pages/train-small.js');
  await nb.init({ simd: 'plain' }); // the pages load the plain build too: bit-for-bit checks
  const run = await shared.trainSmall(nb);
  node = { losses: run.losses, history: run.history, weights: toBase64(run.weights) };
  config = shared.CONFIG;
  h = await startHarness();
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('training in chromium', () => {
  it('Node learns the task (so the comparisons below mean something)', () => {
    const batches = Math.ceil(config.samples / config.batchSize);
    expect(node.losses).toHaveLength(config.epochs * batches);
    expect(node.history.loss[2]).toBeLessThan(node.history.loss[0] / 2);
    expect(node.history.accuracy[2]).toBeGreaterThan(0.8);
  });

  it('on the page gives Node’s losses and weights bit for bit', async () => {
    const page = await call<Run>(h.page, 'train-checks.js', 'trainInPage');
    expect(page.losses).toEqual(node.losses);
    expect(page.history).toEqual(node.history);
    expect(page.weights).toBe(node.weights);
    expect(h.errors).toEqual([]);
  });

  it('in a worker gives the same results, with progress, predictions and weights transfer', async () => {
    const w = await call<
      Run & {
        methods: string[];
        fetchedWeights: string;
        progress: {
          kind: string;
          epoch: number;
          batch: number;
          batches: number;
          samples: number;
          samplesPerSecond: number;
          logs: Record<string, number>;
        }[];
        transferred: boolean;
        predicted: { shape: number[]; data: number[] };
        expected: number[];
        afterSet: number[];
        expectedAfterSet: number[];
      }
    >(h.page, 'train-checks.js', 'trainInWorker');
    expect(w.losses).toEqual(node.losses);
    expect(w.history).toEqual(node.history);
    expect(w.weights).toBe(node.weights);
    expect(w.fetchedWeights).toBe(node.weights);
    expect(w.methods.sort()).toEqual(
      [
        'getWeights',
        'ping',
        'predict',
        'saveToIndexedDB',
        'setWeights',
        'slow',
        'status',
        'train',
      ].sort(),
    );

    // intervalMs 0: one report per batch, then one per epoch.
    const batches = Math.ceil(config.samples / config.batchSize);
    const perBatch = w.progress.filter((p) => p.kind === 'batch');
    const perEpoch = w.progress.filter((p) => p.kind === 'epoch');
    expect(perBatch).toHaveLength(config.epochs * batches);
    expect(perEpoch.map((p) => p.epoch)).toEqual([0, 1, 2]);
    expect(perBatch.map((p) => p.logs.loss)).toEqual(node.losses);
    expect(perBatch[batches - 1]).toMatchObject({
      epoch: 0,
      batch: batches,
      batches,
      samples: config.samples,
    });
    expect(perBatch.every((p) => p.samplesPerSecond > 0)).toBe(true);
    expect(perEpoch[2].logs.accuracy).toBe(node.history.accuracy[2]);

    expect(w.transferred).toBe(true);
    expect(w.predicted.shape).toEqual([5, 3]);
    expect(w.predicted.data).toEqual(w.expected);
    expect(w.afterSet).toEqual(w.expectedAfterSet);
    expect(w.afterSet).not.toEqual(w.predicted.data);
    expect(h.errors).toEqual([]);
  });

  it('reports worker errors with their class, and a worker that never loads', async () => {
    type Failure = { name: string; message: string; remoteName?: string } | null;
    const f = await call<Record<string, Failure | string>>(
      h.page,
      'train-checks.js',
      'workerFailures',
    );
    expect(f.badConfig).toMatchObject({ name: 'WorkerError', remoteName: 'ValueError' });
    expect((f.badConfig as { message: string }).message).toMatch(
      /ValueError in worker job "train": fit: epochs must be a positive integer, got 0/,
    );
    expect((f.unknown as { message: string }).message).toMatch(
      /no handler "nope" \(this worker serves .*train/,
    );
    expect((f.beforeTrain as { message: string }).message).toMatch(
      /getWeights: the worker has no model yet/,
    );
    expect(f.stillServing).toBe('pong');
    expect(f.afterTerminate).toMatchObject({
      name: 'WorkerError',
      message: 'the worker was terminated',
    });
    expect(f.missing).toMatchObject({ name: 'WorkerError' });
    expect((f.missing as { message: string }).message).toMatch(/failed before serving/);
  });

  it('cancels a running job through an AbortSignal', async () => {
    const c = await call<{
      cancelled: { name: string } | null;
      reportsAtCancel: number;
      reportsAfter: number;
      running: boolean;
      preAborted: { name: string } | null;
    }>(h.page, 'train-checks.js', 'cancelInWorker');
    expect(c.cancelled).toMatchObject({ name: 'AbortError' });
    expect(c.reportsAtCancel).toBe(3);
    expect(c.reportsAfter).toBe(3);
    expect(c.running).toBe(false);
    expect(c.preAborted).toMatchObject({ name: 'AbortError' });
  });
});
