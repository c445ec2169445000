// The workloads, written once for every JS library. A child process runs one workload of one
// library: `node <entry> <library> <workload> <config.json> <result.json>`. Each library file
// supplies an adapter (tensor creation, GEMM, MLP step, accuracy); this file owns the timing,
// the data, the shuffles and the memory sampling, so the libraries differ only in their ops.
import { readFileSync, writeFileSync } from 'node:fs';
import { flops } from '../lib/config.mjs';
import { meter } from '../lib/cpu.mjs';
import { rssSampler } from '../lib/memory.mjs';
import { images, labels } from '../lib/mnist.mjs';
import { permutation, uniform } from '../lib/random.mjs';
import { encodeF32 } from '../lib/stepcheck.mjs';
import { timeCalls, timeCheckedSteps } from '../lib/timing.mjs';
import { verifyProduct } from '../lib/verify.mjs';
import { CNN_WORKLOADS } from '../lib/cnn.mjs';
import { cnn } from './cnn.mjs';
import { rnn } from './rnn.mjs';

const now = () => performance.now();

/** Stored operand shapes: Aᵀ·B keeps A as [k, m], A·Bᵀ keeps B as [n, k]. */
export function storedShapes({ form, m, k, n }) {
  return [form === 'AtB' ? [k, m] : [m, k], form === 'ABt' ? [n, k] : [k, n]];
}

function matmul(lib, config, mem) {
  const cases = config.matmul.cases.map((c, i) => {
    const [sa, sb] = storedShapes(c);
    const a = uniform(sa[0] * sa[1], 2 * i + 1);
    const b = uniform(sb[0] * sb[1], 2 * i + 2);
    const entry = { ...c };
    // The timed calls are what gets checked: each call's product replaces the previous one,
    // and the last timed product must match float64. A call that skips the work fails.
    const timed = (op) => {
      let last = null;
      const call = () => {
        const h = op.run();
        if (last !== null && last !== h) op.free(last);
        last = h;
      };
      let t;
      try {
        t = timeCalls(call, config.matmul.timing);
        verifyProduct(c, a, b, op.read(last));
      } finally {
        if (last !== null) op.free(last);
        op.dispose();
      }
      return {
        gflops: flops(c) / t.ms / 1e6,
        ms: t.ms,
        samples: t.samples,
        discarded: t.discarded,
        contended: t.contended,
        reps: t.reps,
        spread: t.spread,
        verified: 'last timed product',
      };
    };
    const api = lib.matmul(c, a, b);
    if (api) Object.assign(entry, timed(api), { via: api.via });
    // nabla also times its GEMM kernel export directly: the gap to the public op is the op
    // layer's per-call cost.
    const kernel = lib.kernelMatmul?.(c, a, b);
    if (kernel) {
      const k = timed(kernel);
      entry.kernelGflops = k.gflops;
      if (!api) Object.assign(entry, k, { via: kernel.via });
    }
    mem.sample();
    return entry;
  });
  return { matmul: cases };
}

/** Contiguous batches of the first `count` samples, made once. */
function fixedBatches(lib, ds, count, batch) {
  const out = [];
  for (let s = 0; s < count; s += batch) {
    const idx = new Int32Array(Math.min(batch, count - s)).map((_, j) => s + j);
    out.push(lib.batch(ds, idx));
  }
  return out;
}

function train(lib, config, mem) {
  const { batch } = config;
  const count = config.train.batches * batch;
  const ds = lib.dataset(
    images(config.dataDir, 'train', count),
    labels(config.dataDir, 'train', count),
    count,
  );
  const batches = fixedBatches(lib, ds, count, batch);
  const model = lib.model(config);
  // The timed closure itself is checked (timeCheckedSteps): the parent recomputes Adam's first
  // update from the parameters around the first call and checks that the loss falls.
  const run = timeCheckedSteps({
    batches,
    step: (bt) => lib.step(model, bt),
    snapshot: () => lib.parameters(model).map(encodeF32),
    timing: config.train,
    onWindow: mem.sample,
  });
  return {
    train: {
      batch,
      ...run.timing,
      samplesPerSec: (batch * 1000) / run.ms,
      finalLoss: run.finalLoss,
      stepCheck: run.stepCheck,
    },
  };
}

function epoch(lib, config, mem) {
  const { batch, seed } = config;
  const { trainSamples: n, testSamples, extrapolateWarmup, extrapolateSteps } = config.epoch;
  const t0 = now();
  const trainSet = lib.dataset(
    images(config.dataDir, 'train', n),
    labels(config.dataDir, 'train', n),
    n,
  );
  const testSet = lib.dataset(
    images(config.dataDir, 'test', testSamples),
    labels(config.dataDir, 'test', testSamples),
    testSamples,
  );
  const loadSeconds = (now() - t0) / 1000;
  mem.sample();
  const model = lib.model(config);
  const batches = Math.ceil(n / batch);
  // A library too slow for a full epoch runs a few uncounted warm-up steps, then
  // `extrapolateSteps` timed ones, and reports the epoch time they imply.
  const partial = lib.extrapolateEpoch && extrapolateWarmup + extrapolateSteps < batches;
  const warm = partial ? extrapolateWarmup : 0;
  const limit = partial ? warm + extrapolateSteps : batches;
  // The shuffle is made before the clock starts, for every library alike; gathering each
  // batch with the library's own index op is part of the timed epoch.
  const order = permutation(n, seed + 1);
  let clock = meter();
  const losses = [];
  for (let b = 0; b < limit; b++) {
    if (b === warm) clock = meter();
    const bt = lib.batch(trainSet, order.subarray(b * batch, (b + 1) * batch));
    losses.push(lib.step(model, bt));
    lib.free(bt);
    if (b % 16 === 0) mem.sample();
  }
  // Below 0.9 busy, the epoch thread waited for a CPU and the time overstates the library's.
  const { wall, busy } = clock.read();
  const timed = wall / 1000;
  const seconds = partial ? (timed * batches) / (limit - warm) : timed;
  const e0 = now();
  const testAccuracy = partial ? null : lib.accuracy(model, testSet);
  const evalSeconds = partial ? null : (now() - e0) / 1000;
  const tail = losses.slice(-10);
  return {
    epoch: {
      trainSamples: n,
      testSamples,
      batches,
      stepsRun: limit,
      timedSteps: limit - warm,
      extrapolated: partial,
      seconds,
      busy,
      samplesPerSec: n / seconds,
      testAccuracy,
      evalSeconds,
      loadSeconds,
      firstLoss: losses[0],
      finalLoss: tail.reduce((s, v) => s + v, 0) / tail.length,
    },
  };
}

const WORKLOADS = { matmul, train, epoch };

/** Entry point of a JS child: runs the workload named on the command line and writes JSON. */
export async function runChild(makeLib) {
  const [library, workload, configPath, resultPath] = process.argv.slice(2);
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  const lib = await makeLib(library, config, workload);
  const mem = rssSampler();
  const clock = meter();
  const out = workload.startsWith('rnn-')
    ? rnn(lib, config, mem, library, workload.slice(4))
    : CNN_WORKLOADS.includes(workload)
      ? cnn(lib, config, mem, library, workload)
      : WORKLOADS[workload](lib, config, mem);
  const { wall, busy } = clock.read();
  const result = {
    library,
    version: lib.version,
    ...(lib.info ? { info: lib.info } : {}),
    workload,
    ...out,
    // The share of the workload's wall time the JS thread ran: about 1 when it had a core.
    cpu: { wallSeconds: wall / 1000, busy },
    memory: { ...mem.report(), ...lib.memory() },
  };
  writeFileSync(resultPath, JSON.stringify(result, null, 2));
}
