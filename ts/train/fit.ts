// The training loop: `fit` trains with validation, metrics, schedulers and callbacks;
// `evaluate` and `predict` run a model over a loader without gradients. Every batch runs in
// its own scope, so a long run keeps the wasm heap flat without the user disposing anything.
import { ValueError } from '../errors.js';
import type { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { keep, tidy } from '../tensor/scope.js';
import { noGrad } from '../autograd/node.js';
import { cat } from '../ops/shape.js';
import type { Callback, Logs, TrainState } from './callbacks.js';
import { Progress, type ProgressMode } from './progress.js';
import { accuracy } from '../metrics/index.js';

/** Something that yields `[input, target]` batches (a DataLoader, or an array of pairs). */
export type Batches = Iterable<readonly [Tensor, Tensor]> & { length?: number };

/** A metric by name (`'accuracy'`) or a function of (output, target). */
export type Metric = 'accuracy' | { name: string; fn: (output: Tensor, target: Tensor) => number };

export interface LossFn {
  forward(output: Tensor, target: Tensor): Tensor;
}

export interface Optimizer {
  zeroGrad(): void;
  step(): void;
  paramGroups: { lr: number }[];
}

/** Any LR scheduler; ReduceLROnPlateau reads the monitored value passed to `step`. */
export interface Scheduler {
  step(metric?: number): void;
}

export interface FitOptions {
  trainLoader: Batches;
  valLoader?: Batches;
  lossFn: LossFn;
  optimizer: Optimizer;
  epochs: number;
  /** Epoch to start from (epochs already done), when resuming from a checkpoint. */
  initialEpoch?: number;
  scheduler?: Scheduler;
  /** Step the scheduler after every batch ('batch', for warmup schedules) or every epoch. */
  schedulerInterval?: 'epoch' | 'batch';
  metrics?: Metric[];
  callbacks?: Callback[];
  /** Accumulate gradients over this many batches before each optimizer step. */
  gradAccumulation?: number;
  /** Clip the global gradient norm to this value before each step. */
  clipGradNorm?: number;
  progress?: ProgressMode;
}

export interface History {
  /** One array per logged quantity (`loss`, `valLoss`, `accuracy`, `valAccuracy`, `lr`). */
  history: Record<string, number[]>;
  /** The epoch count reached (initialEpoch plus the epochs run). */
  epochs: number;
}

function metricName(m: Metric): string {
  return typeof m === 'string' ? m : m.name;
}

function metricValue(m: Metric, out: Tensor, target: Tensor): number {
  return typeof m === 'string' ? accuracy(out, target) : m.fn(out, target);
}

function batchSize(x: Tensor): number {
  return x.ndim === 0 ? 1 : x.shape[0];
}

function countBatches(b: Batches): number {
  if (typeof b.length === 'number') return b.length;
  if (Array.isArray(b)) return b.length;
  return NaN;
}

/** Runs `fn` over every batch, disposing the batch tensors afterwards. */
function* batches(loader: Batches): Generator<readonly [Tensor, Tensor]> {
  for (const pair of loader) {
    try {
      yield pair;
    } finally {
      // Loaders hand out fresh tensors; arrays of user tensors are left alone.
      if (!Array.isArray(loader)) pair.forEach((t) => t.dispose());
    }
  }
}

async function call<K extends keyof Callback>(
  callbacks: Callback[],
  hook: K,
  ...args: Parameters<NonNullable<Callback[K]>>
): Promise<void> {
  for (const cb of callbacks) {
    const f = cb[hook] as ((...a: unknown[]) => void | Promise<void>) | undefined;
    if (f) await f.apply(cb, args);
  }
}

async function clipGrads(model: Module, maxNorm: number): Promise<void> {
  const { clipGradNorm } = await import('../nn/utils.js');
  clipGradNorm(model.parameters(), maxNorm);
}

/** Trains `model`; returns the per-epoch history. */
export async function fit(model: Module, opts: FitOptions): Promise<History> {
  if (!Number.isInteger(opts.epochs) || opts.epochs < 1)
    throw new ValueError(`fit: epochs must be a positive integer, got ${opts.epochs}`);
  const accumulate = opts.gradAccumulation ?? 1;
  if (!Number.isInteger(accumulate) || accumulate < 1) {
    throw new ValueError(`fit: gradAccumulation must be a positive integer, got ${accumulate}`);
  }
  const metrics = opts.metrics ?? [];
  const callbacks = opts.callbacks ?? [];
  const progress = new Progress(opts.progress ?? 'auto', opts.epochs);
  const history: Record<string, number[]> = {};
  const state: TrainState = { model, epoch: 0, stopTraining: false };
  const total = countBatches(opts.trainLoader);
  let lastLogs: Logs = {};
  let epoch = opts.initialEpoch ?? 0;

  await call(callbacks, 'onTrainBegin', state);
  for (; epoch < opts.epochs && !state.stopTraining; epoch++) {
    state.epoch = epoch;
    // A seeded DataLoader shuffles by epoch index; keep it in step when resuming.
    if ('epoch' in opts.trainLoader) (opts.trainLoader as { epoch: number }).epoch = epoch;
    model.train();
    progress.epochBegin();
    await call(callbacks, 'onEpochBegin', epoch, state);
    let lossSum = 0;
    let seen = 0;
    const metricSums = metrics.map(() => 0);
    let b = 0;
    const update = async (): Promise<void> => {
      if (opts.clipGradNorm !== undefined) await clipGrads(model, opts.clipGradNorm);
      opts.optimizer.step();
      opts.optimizer.zeroGrad();
      if (opts.schedulerInterval === 'batch') opts.scheduler?.step();
    };
    opts.optimizer.zeroGrad();
    for (const [x, y] of batches(opts.trainLoader)) {
      const n = batchSize(x);
      const [loss, values] = tidy(() => {
        const out = model.forward(x as never) as Tensor;
        const l = opts.lossFn.forward(out, y);
        (accumulate > 1 ? l.div(accumulate) : l).backward();
        return [l.item(), noGrad(() => metrics.map((m) => metricValue(m, out, y)))] as const;
      });
      const last = b + 1 === total;
      if ((b + 1) % accumulate === 0 || last) await update();
      lossSum += loss * n;
      seen += n;
      values.forEach((v, i) => (metricSums[i] += v * n));
      const logs: Logs = { loss: lossSum / seen };
      metrics.forEach((m, i) => (logs[metricName(m)] = metricSums[i] / seen));
      progress.batch(epoch, b + 1, total, n, logs);
      await call(callbacks, 'onBatchEnd', b, logs, state);
      b++;
    }
    if (seen === 0) throw new ValueError('fit: the training loader produced no batches');
    // A loader without a length: the last, partial accumulation window is still pending.
    if (b % accumulate !== 0 && b !== total) await update();

    const logs: Logs = { loss: lossSum / seen };
    metrics.forEach((m, i) => (logs[metricName(m)] = metricSums[i] / seen));
    if (opts.valLoader) {
      const val = evaluate(model, opts.valLoader, { lossFn: opts.lossFn, metrics });
      for (const [k, v] of Object.entries(val)) logs[`val${k[0].toUpperCase()}${k.slice(1)}`] = v;
    }
    logs.lr = opts.optimizer.paramGroups[0]?.lr ?? NaN;
    if (opts.scheduler && opts.schedulerInterval !== 'batch')
      opts.scheduler.step(logs.valLoss ?? logs.loss);
    for (const [k, v] of Object.entries(logs)) (history[k] ??= []).push(v);
    progress.epochEnd(epoch, logs);
    lastLogs = logs;
    await call(callbacks, 'onEpochEnd', epoch, logs, state);
  }
  await call(callbacks, 'onTrainEnd', lastLogs, state);
  return { history, epochs: epoch };
}

export interface EvaluateOptions {
  lossFn?: LossFn;
  metrics?: Metric[];
}

/** Mean loss and metrics over `loader` in eval mode, without gradients. */
export function evaluate(model: Module, loader: Batches, opts: EvaluateOptions = {}): Logs {
  const metrics = opts.metrics ?? [];
  const wasTraining = model.training;
  model.eval();
  let lossSum = 0;
  let seen = 0;
  const sums = metrics.map(() => 0);
  try {
    for (const [x, y] of batches(loader)) {
      const n = batchSize(x);
      tidy(() =>
        noGrad(() => {
          const out = model.forward(x as never) as Tensor;
          if (opts.lossFn) lossSum += opts.lossFn.forward(out, y).item() * n;
          metrics.forEach((m, i) => (sums[i] += metricValue(m, out, y) * n));
        }),
      );
      seen += n;
    }
  } finally {
    model.train(wasTraining);
  }
  if (seen === 0) throw new ValueError('evaluate: the loader produced no batches');
  const logs: Logs = {};
  if (opts.lossFn) logs.loss = lossSum / seen;
  metrics.forEach((m, i) => (logs[metricName(m)] = sums[i] / seen));
  return logs;
}

/** The model's outputs for every batch of `input` (a tensor, or a loader of [x, y] pairs), concatenated. */
export function predict(model: Module, input: Tensor | Batches): Tensor {
  const wasTraining = model.training;
  model.eval();
  try {
    if (input instanceof Tensor)
      return tidy(() => noGrad(() => model.forward(input as never) as Tensor));
    const outs: Tensor[] = [];
    // kept: each model call is an inference step, which would release earlier unread outputs
    for (const [x] of batches(input))
      outs.push(keep(tidy(() => noGrad(() => model.forward(x as never) as Tensor))));
    const out = cat(outs, 0);
    outs.forEach((t) => t.dispose());
    return out;
  } finally {
    model.train(wasTraining);
  }
}
