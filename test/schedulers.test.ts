// Learning-rate schedulers against PyTorch 1.13 lr sequences (scripts/fixtures/
// make_optim_fixtures.py): the lr of two parameter groups after construction and after each
// of 30 steps. Both sides compute in float64 with the same formulas in the same order, so the
// only differences are libm ulps in cos; rtol 1e-12 allows those and nothing else.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';

beforeAll(async () => {
  await nb.init();
});

interface SchedCase {
  name: string;
  schedulers: [string, Record<string, unknown>][];
  metrics: number[] | null;
  baseLrs: number[];
  lrs: number[][];
}
const cases = (
  JSON.parse(readFileSync(new URL('./fixtures/optim.json', import.meta.url), 'utf8')) as {
    schedulers: SchedCase[];
  }
).schedulers;

const TOL = 1e-12;

type Sched = nb.optim.LRScheduler | nb.optim.ReduceLROnPlateau;

function optimizer(lrs: number[]): nb.optim.SGD {
  const groups = lrs.map((lr) => ({ params: [nb.keep(nb.zeros([1]).requiresGrad_())], lr }));
  return new nb.optim.SGD(groups, { lr: 1 });
}

function build(opt: nb.optim.SGD, name: string, o: Record<string, unknown>): Sched {
  const S = nb.optim as unknown as Record<string, new (opt: nb.optim.SGD, o: object) => Sched>;
  return new S[name](opt, o);
}

function stepAll(scheds: Sched[], metric: number | undefined): void {
  for (const s of scheds) {
    if (s instanceof nb.optim.ReduceLROnPlateau) s.step(metric!);
    else s.step();
  }
}

function expectLrs(got: number[], want: number[], label: string): void {
  expect(got.length, label).toBe(want.length);
  got.forEach((v, i) => {
    if (Math.abs(v - want[i]) > TOL * Math.abs(want[i])) {
      throw new Error(`${label} group ${i}: lr ${v}, expected ${want[i]}`);
    }
  });
}

describe('schedulers against PyTorch 1.13', () => {
  for (const c of cases) {
    it(c.name, () => {
      const opt = optimizer(c.baseLrs);
      const scheds = c.schedulers.map(([name, o]) => build(opt, name, o));
      const lrs = () => opt.paramGroups.map((g) => g.lr);
      expectLrs(lrs(), c.lrs[0], `${c.name} after construction`);
      for (let t = 0; t < c.lrs.length - 1; t++) {
        opt.step(); // no grads: a no-op, in the order PyTorch expects
        stepAll(scheds, c.metrics?.[t]);
        expectLrs(lrs(), c.lrs[t + 1], `${c.name} step ${t + 1}`);
        expect(scheds[scheds.length - 1].getLastLr()).toEqual(lrs());
      }
    });
  }
});

describe('scheduler state dicts', () => {
  for (const c of cases) {
    it(`${c.name}: a JSON round trip after 10 steps continues identically`, () => {
      const a = optimizer(c.baseLrs);
      const sa = c.schedulers.map(([name, o]) => build(a, name, o));
      for (let t = 0; t < 10; t++) stepAll(sa, c.metrics?.[t]);
      const saved = JSON.parse(JSON.stringify(sa.map((s) => s.stateDict())));
      // a fresh optimizer and schedulers, then the optimizer's groups (its lr) and their state
      const b = optimizer(c.baseLrs.map((lr) => lr * 3));
      const sb = c.schedulers.map(([name, o]) => build(b, name, o));
      b.loadStateDict(a.stateDict());
      sb.forEach((s, i) => s.loadStateDict(saved[i]));
      for (let t = 10; t < 30; t++) {
        stepAll(sa, c.metrics?.[t]);
        stepAll(sb, c.metrics?.[t]);
        expect(b.paramGroups.map((g) => g.lr)).toEqual(a.paramGroups.map((g) => g.lr));
        expect(sb.map((s) => s.getLastLr())).toEqual(sa.map((s) => s.getLastLr()));
      }
    });
  }

  it('ReduceLROnPlateau saved before any step keeps its infinite best through JSON', () => {
    const a = optimizer([0.1]);
    const s = new nb.optim.ReduceLROnPlateau(a, { patience: 0 });
    const sd = JSON.parse(JSON.stringify(s.stateDict()));
    expect(sd.best).toBe(null);
    const t = new nb.optim.ReduceLROnPlateau(a, { patience: 0 });
    t.loadStateDict(sd);
    t.step(1e30); // any finite metric beats +inf: no reduction
    t.step(1e30); // now one bad epoch > patience 0: reduce
    expect(a.paramGroups[0].lr).toBeCloseTo(0.01, 15);
  });

  it('a bad state dict throws a typed error and changes nothing', () => {
    const opt = optimizer([0.1]);
    const s = new nb.optim.StepLR(opt, { stepSize: 2 });
    s.step();
    const before = s.stateDict();
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ ...before, stepSize: 0 }, /^StepLR\.loadStateDict: stepSize must be an integer >= 1/],
      [{ ...before, extra: 1 }, /unexpected keys extra/],
      [{ ...before, baseLrs: [0.1, 0.2] }, /baseLrs must be like \[0\.1\]/],
      [{ ...before, lastEpoch: 'x' }, /lastEpoch must be like 1/],
    ];
    for (const [sd, message] of bad) {
      expect(() => s.loadStateDict(sd as nb.optim.SchedulerStateDict)).toThrow(message);
      expect(s.stateDict()).toEqual(before);
    }
    const p = new nb.optim.ReduceLROnPlateau(opt);
    const pb = p.stateDict();
    expect(() => p.loadStateDict({ ...pb, mode: 'sideways' })).toThrow(
      /^ReduceLROnPlateau\.loadStateDict: mode must be 'min' or 'max'/,
    );
    expect(p.stateDict()).toEqual(pb);
  });
});

describe('scheduler options', () => {
  it('construction sets the step-0 lr and records initialLr once', () => {
    const opt = optimizer([0.1, 0.2]);
    const s = new nb.optim.LinearLR(opt, { startFactor: 0.5, totalIters: 2 });
    expect(opt.paramGroups.map((g) => [g.lr, g.initialLr])).toEqual([
      [0.05, 0.1],
      [0.1, 0.2],
    ]);
    expect(s.getLastLr()).toEqual([0.05, 0.1]);
    expect(s.baseLrs).toEqual([0.1, 0.2]);
    const w = nb.optim.warmup(opt, { warmupSteps: 4, totalSteps: 10 });
    expect(w.baseLrs).toEqual([0.1, 0.2]); // initialLr was kept, not overwritten by 0.05
    expect(w.getLastLr()).toEqual([0, 0]);
  });

  it('rejects bad options before touching the optimizer', () => {
    const opt = optimizer([0.1]);
    const cases: [() => unknown, RegExp][] = [
      [
        () => new nb.optim.StepLR(opt, { stepSize: 0 }),
        /^StepLR: stepSize must be an integer >= 1/,
      ],
      [() => new nb.optim.ExponentialLR(opt, {} as { gamma: number }), /^ExponentialLR: gamma/],
      [() => new nb.optim.CosineAnnealingLR(opt, { tMax: 0 }), /^CosineAnnealingLR: tMax/],
      [
        () => new nb.optim.LinearLR(opt, { startFactor: 0 }),
        /^LinearLR: startFactor must be in \(0, 1\]/,
      ],
      [
        () => nb.optim.warmup(opt, { warmupSteps: 5, totalSteps: 3 }),
        /^WarmupLR: totalSteps must be an integer >= 5/,
      ],
      [
        () => nb.optim.warmup(opt, { warmupSteps: 1, totalSteps: 3, decay: 'step' as 'linear' }),
        /^WarmupLR: decay must be 'cosine' or 'linear'/,
      ],
      [() => new nb.optim.ReduceLROnPlateau(opt, { factor: 1 }), /^ReduceLROnPlateau: factor/],
      [() => new nb.optim.ReduceLROnPlateau(opt, { minLr: [0, 0] }), /expected 1 minLr values/],
      [
        () => new nb.optim.StepLR({} as nb.optim.LrGroups, { stepSize: 1 }),
        /^StepLR: expected an optimizer/,
      ],
    ];
    for (const [make, message] of cases) expect(make).toThrow(message);
    expect(opt.paramGroups[0]).toMatchObject({ lr: 0.1 });
    expect(opt.paramGroups[0].initialLr).toBeUndefined();
    const p = new nb.optim.ReduceLROnPlateau(opt);
    expect(() => p.step('x' as unknown as number)).toThrow(/^ReduceLROnPlateau\.step: metric/);
    expect(() => p.step()).toThrow(
      /^ReduceLROnPlateau\.step: metric must be a number, got undefined/,
    );
    p.step(nb.tensor(0.5)); // a one-element tensor works too
  });
});
