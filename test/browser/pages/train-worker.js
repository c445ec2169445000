// The worker the browser tests drive: trainSmall with progress, the model handlers, a job
// that saves to IndexedDB, and a slow job to cancel. Top-level await before `serve` checks
// that runs posted while the module is still loading are not lost.
import * as nb from '/dist/browser.js';
import { trainSmall } from './train-small.js';

// The plain build: compared with Node bit for bit.
await nb.init({ simd: 'plain' });
let model = null;
let slowRunning = false;

nb.worker.serve({
  ...nb.worker.modelHandlers(() => model),

  async train(config, ctx) {
    const run = await trainSmall(nb, {
      config,
      callbacks: (trainLoader) => [
        nb.worker.progressCallback(ctx, { epochs: config.epochs, trainLoader, intervalMs: 0 }),
      ],
    });
    model = run.model;
    const weights = run.weights.buffer;
    return nb.worker.transfer({ losses: run.losses, history: run.history, weights }, [weights]);
  },

  async saveToIndexedDB(key) {
    const sd = model.stateDict();
    await nb.io.saveToIndexedDB(key, sd, { from: 'worker' });
    Object.values(sd).forEach((t) => t.dispose());
    return key;
  },

  // Reports once, then trains until cancelled.
  async slow(_payload, ctx) {
    const config = { seed: 1, epochs: 10_000, samples: 64, batchSize: 8 };
    slowRunning = true;
    try {
      await trainSmall(nb, {
        config,
        callbacks: (trainLoader) => [
          nb.worker.progressCallback(ctx, { epochs: config.epochs, trainLoader, intervalMs: 0 }),
        ],
      });
      return 'finished';
    } finally {
      slowRunning = false;
    }
  },

  status: () => slowRunning,
  ping: () => 'pong',
});
