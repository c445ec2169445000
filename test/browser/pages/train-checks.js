// Page-side checks for training: the same seeded run on the page and in a worker, and the
// worker protocol (progress, predict, weights both ways, errors, cancellation).
import { CONFIG, makeModel, trainSmall } from './train-small.js';
import { base64, nabla, rejection } from './util.js';

export async function trainInPage() {
  const nb = await nabla();
  const run = await trainSmall(nb);
  return { losses: run.losses, history: run.history, weights: base64(run.weights) };
}

/** Output of a model with `weights` loaded, on the page, for the seeded probe input. */
function pageForward(nb, weights, x) {
  const model = makeModel(nb);
  const tensors = nb.worker.unpackWeights({ format: 'safetensors', bytes: weights });
  model.loadStateDict(tensors);
  Object.values(tensors).forEach((t) => t.dispose());
  return Array.from(nb.train.predict(model, x).toArray());
}

export async function trainInWorker() {
  const nb = await nabla();
  const client = nb.worker.connect(new Worker('/pages/train-worker.js', { type: 'module' }));
  // Posted at once: the worker is still loading (top-level await) when this arrives.
  const progress = [];
  const run = await client.run('train', CONFIG, { onProgress: (p) => progress.push(p) });
  const methods = await client.ready;

  nb.manualSeed(123);
  const x = nb.randn([5, 8]);
  const msg = nb.worker.packTensor(x);
  const predicted = await client.run('predict', msg, { transfer: [msg.data.buffer] });
  const transferred = msg.data.length === 0; // the page's copy moved to the worker

  const fetched = await client.run('getWeights');
  // Halve every weight on the page, send them over, and predict again.
  const tensors = nb.worker.unpackWeights(fetched);
  const halved = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, t.mul(0.5)]));
  const halvedMsg = nb.worker.packWeights(halved);
  const halvedBytes = halvedMsg.bytes.slice(0);
  await client.run('setWeights', halvedMsg, { transfer: [halvedMsg.bytes] });
  const afterSet = await client.run('predict', nb.worker.packTensor(x));

  client.terminate();
  return {
    methods,
    losses: run.losses,
    history: run.history,
    weights: base64(run.weights),
    fetchedWeights: base64(fetched.bytes),
    progress,
    transferred,
    predicted: { shape: predicted.shape, data: Array.from(predicted.data) },
    expected: pageForward(nb, run.weights, x),
    afterSet: Array.from(afterSet.data),
    expectedAfterSet: pageForward(nb, halvedBytes, x),
  };
}

export async function workerFailures() {
  const nb = await nabla();
  const client = nb.worker.connect(new Worker('/pages/train-worker.js', { type: 'module' }));
  const badConfig = await rejection(client.run('train', { ...CONFIG, epochs: 0 }));
  const unknown = await rejection(client.run('nope'));
  const beforeTrain = await rejection(client.run('getWeights'));
  const stillServing = await client.run('ping');
  client.terminate();
  const afterTerminate = await rejection(client.run('ping'));

  const broken = nb.worker.connect(new Worker('/pages/no-such-worker.js', { type: 'module' }));
  const missing = await rejection(broken.run('ping'));
  broken.terminate();
  return { badConfig, unknown, beforeTrain, stillServing, afterTerminate, missing };
}

export async function cancelInWorker() {
  const nb = await nabla();
  const client = nb.worker.connect(new Worker('/pages/train-worker.js', { type: 'module' }));
  const controller = new AbortController();
  let reports = 0;
  const started = performance.now();
  const cancelled = await rejection(
    client.run('slow', undefined, {
      signal: controller.signal,
      onProgress: () => {
        if (++reports === 3) controller.abort();
      },
    }),
  );
  const reportsAtCancel = reports;
  // The job stops at its next progress report; poll until the worker says it has.
  let running = true;
  while (running && performance.now() - started < 20_000) running = await client.run('status');
  const preAborted = await rejection(
    client.run('ping', undefined, { signal: AbortSignal.abort() }),
  );
  client.terminate();
  return { cancelled, reportsAtCancel, reportsAfter: reports, running, preAborted };
}
