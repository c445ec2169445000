// nb.train.saveCheckpoint / loadCheckpoint: a run resumed from a checkpoint into freshly built
// objects continues bitwise like the uninterrupted run (Adam moments, StepLR position, the
// global RNG behind dropout, the seeded loader's shuffle order), and a checkpoint that does
// not fit throws without changing anything.
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';

const { nn } = nb;
type Tensor = nb.Tensor;
type Pairs = nb.data.TensorDataset<[Tensor, Tensor]>;

let train: Pairs;
let val: Pairs;

beforeAll(async () => {
  await nb.init();
  nb.manualSeed(1);
  train = new nb.data.TensorDataset(nb.randn([36, 4]), nb.randint(0, 3, [36]));
  val = new nb.data.TensorDataset(nb.randn([12, 4]), nb.randint(0, 3, [12]));
});

/** Model (with dropout), Adam, StepLR and loaders, the model initialised from `seed`. */
function build(seed: number, hidden = 8) {
  nb.manualSeed(seed);
  const model = new nn.Sequential(
    new nn.Linear(4, hidden),
    new nn.ReLU(),
    new nn.Dropout(0.25),
    new nn.Linear(hidden, 3),
  );
  const optimizer = new nb.optim.Adam(model.parameters(), { lr: 0.02 });
  const scheduler = new nb.optim.StepLR(optimizer, { stepSize: 1, gamma: 0.5 });
  const trainLoader = new nb.data.DataLoader(train, { batchSize: 8, shuffle: true, seed: 3 });
  const valLoader = new nb.data.DataLoader(val, { batchSize: 5 });
  return { model, optimizer, scheduler, trainLoader, valLoader };
}
type Run = ReturnType<typeof build>;

function fitRun(
  r: Run,
  opts: { epochs: number; initialEpoch?: number } & Partial<nb.train.FitOptions>,
) {
  return nb.train.fit(r.model, {
    trainLoader: r.trainLoader,
    valLoader: r.valLoader,
    lossFn: new nn.CrossEntropyLoss(),
    optimizer: r.optimizer,
    scheduler: r.scheduler,
    progress: 'silent',
    ...opts,
  });
}

function parts(r: Run): nb.train.CheckpointParts {
  return { model: r.model, optimizer: r.optimizer, scheduler: r.scheduler };
}

/** Every parameter as float32 bit patterns, concatenated. */
function bits(model: nb.nn.Module): number[] {
  return model
    .parameters()
    .flatMap((p) => Array.from(new Uint32Array((p.toArray() as Float32Array).buffer)));
}

/** The optimizer's state as plain data (tensors as bit patterns), for equality checks. */
function optState(opt: nb.optim.Optimizer<{ lr: number }>): unknown {
  const sd = opt.stateDict();
  const state = Object.fromEntries(
    Object.entries(sd.state).map(([i, entry]) => [
      i,
      Object.fromEntries(
        Object.entries(entry).map(([k, v]) => {
          if (typeof v === 'number') return [k, v];
          const out = Array.from(new Uint32Array((v.toArray() as Float32Array).buffer));
          v.dispose();
          return [k, out];
        }),
      ),
    ]),
  );
  return { state, paramGroups: sd.paramGroups };
}

/** Everything a failed load must leave alone. */
function snapshot(r: Run) {
  return {
    weights: bits(r.model),
    optimizer: optState(r.optimizer),
    scheduler: r.scheduler.stateDict(),
    lr: r.optimizer.paramGroups[0].lr,
    rng: nb.getRngState(),
  };
}

/** The uninterrupted 4-epoch run, checkpointed after epoch 2 from a callback. */
async function uninterrupted() {
  const a = build(7);
  const saved: { bytes?: Uint8Array; weights?: number[]; rng?: { seed: number; counter: number } } =
    {};
  const saver: nb.train.Callback = {
    onEpochEnd: (epoch) => {
      if (epoch !== 1) return;
      const before = nb.memory().tensors;
      saved.bytes = nb.train.saveCheckpoint(parts(a), { epoch: 2, extra: { note: 'mid-run' } });
      expect(nb.memory().tensors).toBe(before);
      saved.weights = bits(a.model);
      saved.rng = nb.getRngState();
    },
  };
  const h = await fitRun(a, { epochs: 4, callbacks: [saver] });
  const { bytes, weights, rng } = saved;
  if (!bytes || !weights || !rng) throw new Error('the checkpoint callback did not run');
  return { a, h, bytes, atSave: { weights, rng } };
}

describe('checkpoint resume', () => {
  it('resuming into fresh objects continues bitwise like the uninterrupted run', async () => {
    const { a, h, bytes, atSave } = await uninterrupted();
    expect(h.history.lr).toEqual([0.02, 0.01, 0.005, 0.0025]);

    // fresh objects, another init seed, the RNG moved on, the loader already iterated once
    const b = build(99);
    nb.rand([5]).dispose();
    for (const [x, y] of b.trainLoader) {
      x.dispose();
      y.dispose();
    }
    expect(bits(b.model)).not.toEqual(atSave.weights);
    const before = nb.memory().tensors;
    const info = nb.train.loadCheckpoint(bytes, parts(b));
    // Adam's two moments per parameter are new; every other loaded tensor was freed
    expect(nb.memory().tensors).toBe(before + 2 * b.model.parameters().length);
    expect(info).toEqual({ epoch: 2, extra: { note: 'mid-run' } });
    expect(bits(b.model)).toEqual(atSave.weights);
    expect(nb.getRngState()).toEqual(atSave.rng);
    expect(b.optimizer.paramGroups[0].lr).toBe(0.005);

    const hb = await fitRun(b, { initialEpoch: info.epoch, epochs: 4 });
    expect(hb.epochs).toBe(4);
    expect(hb.history.loss).toEqual(h.history.loss.slice(2));
    expect(hb.history.valLoss).toEqual(h.history.valLoss.slice(2));
    expect(hb.history.lr).toEqual(h.history.lr.slice(2));
    expect(bits(b.model)).toEqual(bits(a.model));
    expect(optState(b.optimizer)).toEqual(optState(a.optimizer));
    expect(b.scheduler.stateDict()).toEqual(a.scheduler.stateDict());

    // control: the same resume with the RNG disturbed after loading draws other dropout
    // masks, so the check above really depends on the restored RNG position
    const c = build(99);
    nb.train.loadCheckpoint(bytes, parts(c));
    nb.rand([1]).dispose();
    await fitRun(c, { initialEpoch: 2, epochs: 4 });
    expect(bits(c.model)).not.toEqual(bits(a.model));

    // and two fit calls on the same objects (2 epochs, then 2 more) equal one 4-epoch run
    const d = build(7);
    await fitRun(d, { epochs: 2 });
    await fitRun(d, { initialEpoch: 2, epochs: 4 });
    expect(bits(d.model)).toEqual(bits(a.model));
  });
});

describe('checkpoint validation', () => {
  it('a different architecture throws and leaves model, optimizer, scheduler and RNG unchanged', async () => {
    const { bytes } = await uninterrupted();
    const c = build(5, 16);
    await fitRun(c, { epochs: 1 }); // gives the optimizer state and the scheduler a step
    const before = snapshot(c);
    const tensors = nb.memory().tensors;
    expect(() => nb.train.loadCheckpoint(bytes, parts(c))).toThrow(nb.ShapeError);
    expect(snapshot(c)).toEqual(before);
    expect(nb.memory().tensors).toBe(tensors);
  });

  it('a scheduler of another kind throws and leaves the model and optimizer unchanged', async () => {
    const { bytes } = await uninterrupted();
    const c = build(5);
    await fitRun(c, { epochs: 1 });
    const other = new nb.optim.ExponentialLR(c.optimizer, { gamma: 0.9 });
    const before = snapshot(c);
    const sched = other.stateDict();
    const tensors = nb.memory().tensors;
    expect(() =>
      nb.train.loadCheckpoint(bytes, { model: c.model, optimizer: c.optimizer, scheduler: other }),
    ).toThrow(nb.ValueError);
    expect(snapshot(c)).toEqual(before);
    expect(other.stateDict()).toEqual(sched);
    expect(nb.memory().tensors).toBe(tensors);
  });

  it('bytes without the checkpoint metadata, or without optimizer state, throw ValueError', () => {
    const modelOnly = nb.train.saveCheckpoint({ model: build(8).model }, { epoch: 1 });
    const r = build(6);
    const sd = r.model.stateDict();
    const plain = nb.io.saveSafetensors(sd);
    Object.values(sd).forEach((t) => t.dispose());
    const before = snapshot(r);
    const tensors = nb.memory().tensors;
    expect(() => nb.train.loadCheckpoint(plain, parts(r))).toThrow(nb.ValueError);
    expect(() => nb.train.loadCheckpoint(plain, parts(r))).toThrow(/nabla\.checkpoint/);

    expect(() => nb.train.loadCheckpoint(modelOnly, parts(r))).toThrow(nb.ValueError);
    expect(snapshot(r)).toEqual(before);
    expect(nb.memory().tensors).toBe(tensors);
    // it does load into a model alone
    expect(nb.train.loadCheckpoint(modelOnly, { model: r.model })).toEqual({ epoch: 1 });
  });

  it('round-trips ReduceLROnPlateau state, including its initial best of Infinity', () => {
    const make = (seed: number) => {
      const r = build(seed);
      const optimizer = new nb.optim.SGD(r.model.parameters(), { lr: 0.5 });
      const scheduler = new nb.optim.ReduceLROnPlateau(optimizer, { patience: 0, factor: 0.5 });
      return { model: r.model, optimizer, scheduler };
    };
    const a = make(10);
    const b = make(11);
    nb.train.loadCheckpoint(nb.train.saveCheckpoint(a, { epoch: 0 }), b);
    expect(b.scheduler.stateDict()).toEqual(a.scheduler.stateDict());
    expect(b.scheduler.stateDict().best).toBe(Infinity);

    a.scheduler.step(1);
    a.scheduler.step(2); // patience 0: lr halves
    nb.train.loadCheckpoint(nb.train.saveCheckpoint(a, { epoch: 2 }), b);
    expect(b.scheduler.stateDict()).toEqual(a.scheduler.stateDict());
    expect(b.optimizer.paramGroups[0].lr).toBe(0.25);
    b.scheduler.step(1.5); // still no better than 1: halves again
    expect(b.optimizer.paramGroups[0].lr).toBe(0.125);
  });
});
