// The CNN training workloads for the JS libraries (see lib/cnn.mjs): the driver's train-step
// rules (timed closure checked on its first call, every loss kept) on MNIST batches (LeNet) or
// the parent's seeded feature maps (BasicBlock). The library supplies `cnnBatch`, `cnnModel`,
// `cnnStep` and `cnnParameters`; a model the library cannot train comes back with
// `cannotTrain` (the error of a gradient probe) and is not timed.
import { readFileSync } from 'node:fs';
import { images, labels } from '../lib/mnist.mjs';
import { encodeF32 } from '../lib/stepcheck.mjs';
import { timeCheckedSteps } from '../lib/timing.mjs';

/** The parent's resblock file (lib/cnn.mjs's resblockData): inputs, then targets. */
function readResblock(c) {
  const b = readFileSync(c.dataFile);
  const all = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  const per = c.batch * c.channels * c.size * c.size;
  if (all.length !== 2 * c.batches * per) {
    throw new Error(`${c.dataFile}: ${all.length} floats, expected ${2 * c.batches * per}`);
  }
  return Array.from({ length: c.batches }, (_, i) => ({
    x: all.subarray(i * per, (i + 1) * per),
    y: all.subarray((c.batches + i) * per, (c.batches + i + 1) * per),
  }));
}

/** Raw batches, NCHW float32 plus int32 labels (LeNet) or float32 targets (BasicBlock). */
function rawBatches(config, workload) {
  const c = config[workload];
  if (workload === 'cnn-resblock') return readResblock(c);
  const n = c.batches * c.batch;
  const x = images(config.dataDir, 'train', n);
  const y = labels(config.dataDir, 'train', n);
  const per = c.batch * 784;
  return Array.from({ length: c.batches }, (_, i) => ({
    x: x.subarray(i * per, (i + 1) * per),
    y: y.subarray(i * c.batch, (i + 1) * c.batch),
  }));
}

export function cnn(lib, config, mem, library, workload) {
  const timing = config[workload].slowTiming[library] ?? config[workload].timing;
  // A library at minutes a step runs the first `timing.batch` samples of every batch.
  const c = { ...config[workload], batch: timing.batch ?? config[workload].batch };
  const batches = rawBatches(config, workload).map((b) => {
    const full = config[workload].batch;
    const cut = (a) => a.subarray(0, (a.length / full) * c.batch);
    return lib.cnnBatch(workload, { x: cut(b.x), y: cut(b.y) }, c);
  });
  const model = lib.cnnModel(workload, c, config.seed);
  mem.sample();
  if (model.cannotTrain) {
    return { cnn: { batch: c.batch, cannotTrain: model.cannotTrain, samplesPerSec: null } };
  }
  const run = timeCheckedSteps({
    batches,
    step: (bt) => lib.cnnStep(model, bt),
    snapshot: () => lib.cnnParameters(model).map(encodeF32),
    timing,
    onWindow: mem.sample,
  });
  return {
    cnn: {
      batch: c.batch,
      ...run.timing,
      samplesPerSec: (c.batch * 1000) / run.ms,
      stepsRun: run.stepsRun,
      finalLoss: run.finalLoss,
      cannotTrain: null,
      stepCheck: run.stepCheck,
    },
  };
}
