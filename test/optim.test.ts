// nb.optim optimizers and nb.nn.utils clipping: PyTorch 1.13 fixtures, fused kernels against a
// float64 reference at SIMD-edge lengths, gradient accumulation, atomic failed steps, state dicts.
//
// Tolerances. Fixture values come from torch running in float32, so both sides round every
// operation to float32 but may order or fuse them differently (torch uses FMA in some
// kernels): six steps keep that within a few float32 ulps of the O(1) parameters and state.
// rtol 1e-5 with atol 1e-7 leaves room for that while a wrong rule (a missing bias
// correction, dampening on the first step, the wrong weight-decay placement) is off by >1e-3.
// Against the float64 reference the float32 kernels drift slightly more over several steps on
// values near zero, hence atol 1e-6 there.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { OptimFlag } from '../ts/optim/optimizer.js';
import { assertClose, seeded } from './helpers/close.js';

const FIX_TOL = { rtol: 1e-5, atol: 1e-7 };
const REF_TOL = { rtol: 1e-5, atol: 1e-6 };

beforeAll(async () => {
  await nb.init();
});

type Flat = (number | null)[];
interface OptimCase {
  name: string;
  optimizer: 'SGD' | 'Adam' | 'AdamW' | 'RMSprop' | 'Adagrad';
  options: Record<string, unknown>;
  groups: Record<string, unknown>[] | null;
  shapes: number[][];
  params: Flat[];
  steps: { grads: (Flat | null)[]; params: Flat[]; state: Record<string, Flat | number>[] }[];
}
interface ClipCase {
  name: string;
  kind: 'norm' | 'value';
  maxNorm?: number;
  normType?: number | 'inf';
  clipValue?: number;
  shapes: number[][];
  grads: Flat[];
  total?: number;
  clipped: Flat[];
}
const fixtures = JSON.parse(
  readFileSync(new URL('./fixtures/optim.json', import.meta.url), 'utf8'),
) as { optimizers: OptimCase[]; clip: ClipCase[] };

const CLASSES = {
  SGD: nb.optim.SGD,
  Adam: nb.optim.Adam,
  AdamW: nb.optim.AdamW,
  RMSprop: nb.optim.RMSprop,
  Adagrad: nb.optim.Adagrad,
} as const;

type AnyOptimizer = nb.optim.Optimizer<any>;

function make(kind: keyof typeof CLASSES, params: unknown, options: object): AnyOptimizer {
  const C = CLASSES[kind] as unknown as new (p: unknown, o: object) => AnyOptimizer;
  return new C(params, options);
}

const f32 = (data: Flat | ArrayLike<number>, shape: readonly number[]): nb.Tensor =>
  nb.tensor(Float32Array.from(data as ArrayLike<number>), { shape });

function param(data: ArrayLike<number>, shape: readonly number[]): nb.Tensor {
  return nb.keep(f32(data, shape).requiresGrad_());
}

function setGrad(p: nb.Tensor, g: nb.Tensor | null): void {
  p.grad?.dispose();
  p.grad = g === null ? null : nb.keep(g);
}

/** Every value of params and state as plain arrays (state read through stateDict copies). */
function snapshot(opt: AnyOptimizer, params: nb.Tensor[]): unknown {
  const sd = opt.stateDict();
  const state: Record<string, Record<string, number | number[]>> = {};
  for (const [k, entry] of Object.entries(sd.state)) {
    state[k] = {};
    for (const [name, v] of Object.entries(entry)) {
      state[k][name] = v instanceof nb.Tensor ? Array.from(v.toArray()) : v;
      if (v instanceof nb.Tensor) v.dispose();
    }
  }
  return { params: params.map((p) => Array.from(p.toArray())), state, groups: sd.paramGroups };
}

describe('ABI flags', () => {
  it('OptimFlag mirrors the OPTIM_* constants of abi.rs', () => {
    const rust = readFileSync(new URL('../crate/src/abi.rs', import.meta.url), 'utf8');
    const consts = Object.fromEntries(
      [...rust.matchAll(/pub const OPTIM_(\w+): u32 = (\d+);/g)].map((m) => [m[1], Number(m[2])]),
    );
    expect(consts).toEqual(OptimFlag);
  });
});

describe('setFlushDenormal', () => {
  // A weight whose gradient is tiny once and then zero: its state decays by a constant factor
  // a step from about 1e-37 until it is subnormal (below 2^-126) within 25 steps.
  const cases: [string, (w: nb.Tensor) => nb.optim.Optimizer<{ lr: number }>, string, number][] = [
    ['Adam', (w) => new nb.optim.Adam([w], { lr: 1e-3 }), 'expAvg', 1e-36],
    ['SGD', (w) => new nb.optim.SGD([w], { lr: 0.1, momentum: 0.5 }), 'momentumBuffer', 1e-37],
    ['RMSprop', (w) => new nb.optim.RMSprop([w], { alpha: 0.5 }), 'squareAvg', 1e-18],
  ];
  function decayedState(flush: boolean, lanes: number, c: (typeof cases)[number]): Float32Array {
    const [, make, buffer, first] = c;
    expect(nb.setFlushDenormal(flush)).toBe(true);
    try {
      const w = nb.zeros([lanes], { requiresGrad: true });
      const opt = make(w);
      for (let step = 0; step < 25; step++) {
        w.mul(nb.full([lanes], step === 0 ? first : 0))
          .sum()
          .backward();
        opt.step();
        opt.zeroGrad();
      }
      return (opt.stateDict().state[0][buffer] as nb.Tensor).toArray() as Float32Array;
    } finally {
      nb.setFlushDenormal(false);
    }
  }

  it('keeps subnormal optimizer state by default, as PyTorch does, and zeroes it when set', () => {
    // 7 lanes: a SIMD body and a tail; 70,001: split over the pool where there is one.
    for (const c of cases) {
      for (const lanes of [7, 70_001]) {
        const kept = decayedState(false, lanes, c);
        expect(kept[0], c[0]).toBeGreaterThan(0);
        expect(kept[0], c[0]).toBeLessThan(2 ** -126);
        expect(kept[lanes - 1]).toBe(kept[0]);
        const flushed = decayedState(true, lanes, c);
        expect(
          flushed.every((v) => v === 0),
          c[0],
        ).toBe(true);
      }
    }
  });
});

describe('optimizers against PyTorch 1.13', () => {
  for (const c of fixtures.optimizers) {
    it(c.name, () => {
      const params = c.params.map((d, i) => param(d as number[], c.shapes[i]));
      const spec = c.groups ? params.map((p, i) => ({ params: [p], ...c.groups![i] })) : params;
      const opt = make(c.optimizer, spec, c.options);
      c.steps.forEach((s, k) => {
        params.forEach((p, i) => setGrad(p, s.grads[i] && f32(s.grads[i]!, c.shapes[i])));
        opt.step();
        const sd = opt.stateDict();
        params.forEach((p, i) => {
          const label = `${c.name} step ${k + 1} param ${i}`;
          assertClose(p.toArray(), s.params[i] as number[], FIX_TOL, label);
          const want = s.state[i];
          const got = sd.state[i] ?? {};
          const bufs = (o: object) =>
            Object.keys(o)
              .filter((n) => n !== 'step')
              .sort();
          expect(bufs(got), label).toEqual(bufs(want));
          // torch's SGD keeps no step count; the others must agree exactly
          if ('step' in want) expect(got.step, label).toBe(want.step);
          for (const name of bufs(want)) {
            assertClose(
              (got[name] as nb.Tensor).toArray(),
              want[name] as number[],
              FIX_TOL,
              `${label} ${name}`,
            );
          }
        });
        for (const e of Object.values(sd.state)) {
          for (const v of Object.values(e)) if (v instanceof nb.Tensor) v.dispose();
        }
      });
      opt.dispose();
    });
  }
});

// ------------------------------------------------------------------ float64 reference

interface RefCase {
  name: string;
  kind: keyof typeof CLASSES;
  options: Record<string, number | boolean | number[]>;
}

const REF_CASES: RefCase[] = [
  { name: 'sgd', kind: 'SGD', options: { lr: 0.1 } },
  {
    name: 'sgd momentum dampening wd maximize',
    kind: 'SGD',
    options: { lr: 0.05, momentum: 0.9, dampening: 0.2, weightDecay: 0.1, maximize: true },
  },
  { name: 'sgd nesterov', kind: 'SGD', options: { lr: 0.05, momentum: 0.8, nesterov: true } },
  { name: 'adam', kind: 'Adam', options: { lr: 0.01, weightDecay: 0.1 } },
  {
    name: 'adam amsgrad maximize',
    kind: 'Adam',
    options: { lr: 0.01, amsgrad: true, maximize: true, betas: [0.8, 0.9] },
  },
  { name: 'adamw amsgrad', kind: 'AdamW', options: { lr: 0.01, amsgrad: true, weightDecay: 0.2 } },
  { name: 'rmsprop', kind: 'RMSprop', options: { lr: 0.01, weightDecay: 0.1 } },
  {
    name: 'rmsprop centered momentum maximize',
    kind: 'RMSprop',
    options: { lr: 0.01, centered: true, momentum: 0.9, alpha: 0.9, maximize: true },
  },
  {
    name: 'adagrad',
    kind: 'Adagrad',
    options: { lr: 0.1, lrDecay: 0.1, weightDecay: 0.05, initialAccumulatorValue: 0.2 },
  },
];

/** One step of each rule in float64, straight from the PyTorch formulas. */
function referenceStep(
  c: RefCase,
  p: Float64Array,
  g: ArrayLike<number>,
  st: Record<string, Float64Array>,
  step: number,
): void {
  const o = { ...DEFAULTS[c.kind], ...c.options } as Record<string, any>;
  const n = p.length;
  const buf = (name: string, init = 0) => (st[name] ??= new Float64Array(n).fill(init));
  for (let i = 0; i < n; i++) {
    let d = o.maximize ? -g[i] : g[i];
    if (c.kind !== 'AdamW') d += o.weightDecay * p[i];
    if (c.kind === 'SGD') {
      if (o.momentum !== 0) {
        const b = buf('momentumBuffer');
        b[i] = step === 1 ? d : b[i] * o.momentum + (1 - o.dampening) * d;
        d = o.nesterov ? d + o.momentum * b[i] : b[i];
      }
      p[i] -= o.lr * d;
    } else if (c.kind === 'Adam' || c.kind === 'AdamW') {
      const [b1, b2] = o.betas;
      if (c.kind === 'AdamW') p[i] *= 1 - o.lr * o.weightDecay;
      const m = buf('expAvg');
      const v = buf('expAvgSq');
      m[i] = b1 * m[i] + (1 - b1) * d;
      v[i] = b2 * v[i] + (1 - b2) * d * d;
      let vh = v[i];
      if (o.amsgrad) vh = buf('maxExpAvgSq')[i] = Math.max(buf('maxExpAvgSq')[i], v[i]);
      const denom = Math.sqrt(vh) / Math.sqrt(1 - b2 ** step) + o.eps;
      p[i] -= ((o.lr / (1 - b1 ** step)) * m[i]) / denom;
    } else if (c.kind === 'RMSprop') {
      const sq = buf('squareAvg');
      sq[i] = o.alpha * sq[i] + (1 - o.alpha) * d * d;
      let avg = sq[i];
      if (o.centered) {
        const ga = buf('gradAvg');
        ga[i] = o.alpha * ga[i] + (1 - o.alpha) * d;
        avg -= ga[i] * ga[i];
      }
      avg = Math.sqrt(avg) + o.eps;
      if (o.momentum > 0) {
        const b = buf('momentumBuffer');
        b[i] = o.momentum * b[i] + d / avg;
        p[i] -= o.lr * b[i];
      } else p[i] -= (o.lr * d) / avg;
    } else {
      const s = buf('sum', o.initialAccumulatorValue);
      s[i] += d * d;
      p[i] -= ((o.lr / (1 + (step - 1) * o.lrDecay)) * d) / (Math.sqrt(s[i]) + o.eps);
    }
  }
}

const DEFAULTS: Record<keyof typeof CLASSES, Record<string, unknown>> = {
  SGD: { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false },
  Adam: { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false },
  AdamW: { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false, maximize: false },
  RMSprop: {
    alpha: 0.99,
    eps: 1e-8,
    weightDecay: 0,
    momentum: 0,
    centered: false,
    maximize: false,
  },
  Adagrad: { lrDecay: 0, weightDecay: 0, initialAccumulatorValue: 0, eps: 1e-10, maximize: false },
};

describe('fused kernels equal a float64 reference at SIMD edge lengths', () => {
  for (const c of REF_CASES) {
    it(c.name, () => {
      for (const n of [0, 1, 3, 4, 5, 15, 16, 17, 257]) {
        const start = seeded(n, n + 1);
        const p = param(start, [n]);
        const ref = Float64Array.from(start);
        const refState: Record<string, Float64Array> = {};
        const opt = make(c.kind, [p], c.options);
        for (let step = 1; step <= 4; step++) {
          const g = seeded(n, 1000 * step + n, -2, 2);
          setGrad(p, f32(g, [n]));
          opt.step();
          referenceStep(c, ref, g, refState, step);
          assertClose(p.toArray(), ref, REF_TOL, `${c.name} n=${n} step ${step}`);
        }
        const sd = opt.stateDict();
        for (const [name, want] of Object.entries(refState)) {
          const t = sd.state[0][name] as nb.Tensor;
          assertClose(t.toArray(), want, REF_TOL, `${c.name} n=${n} ${name}`);
        }
        opt.dispose();
        p.grad?.dispose();
        p.dispose();
      }
    });
  }
});

// ------------------------------------------------------------------ training behaviour

describe('gradient accumulation', () => {
  /** Linear regression y = x wᵀ + b with MSE; `k` micro-batches scaled by 1/k, then one step. */
  function run(kind: keyof typeof CLASSES, options: object, k: number): number[][] {
    const [B, din, dout] = [12, 3, 2];
    const w = param(seeded(dout * din, 5), [dout, din]);
    const b = param(seeded(dout, 6), [dout]);
    const x = f32(seeded(B * din, 7, -2, 2), [B, din]);
    const y = f32(seeded(B * dout, 8, -2, 2), [B, dout]);
    const opt = make(kind, [w, b], options);
    for (let round = 0; round < 3; round++) {
      opt.zeroGrad();
      nb.tidy(() => {
        const xs = x.chunk(k);
        const ys = y.chunk(k);
        xs.forEach((xi, i) => {
          const pred = xi.matmul(w.transpose(0, 1)).add(b);
          pred
            .sub(ys[i])
            .square()
            .mean()
            .mul(1 / k)
            .backward();
        });
      });
      opt.step();
    }
    const out = [
      Array.from(w.toArray()),
      Array.from(b.toArray()),
      Array.from(seeded(dout * din, 5)),
    ];
    opt.dispose();
    opt.zeroGrad();
    [w, b, x, y].forEach((t) => t.dispose());
    return out;
  }

  for (const [kind, options] of [
    ['SGD', { lr: 0.1, momentum: 0.9 }],
    ['Adam', { lr: 0.05 }],
    ['RMSprop', { lr: 0.01, centered: true }],
  ] as const) {
    it(`${kind}: 4 micro-batches then one step equals one step on the whole batch`, () => {
      const whole = run(kind, options, 1);
      const micro = run(kind, options, 4);
      for (let i = 0; i < 2; i++) assertClose(micro[i], whole[i], { rtol: 0, atol: 1e-6 }, kind);
      // the comparison has teeth: three steps moved the weights far more than 1e-6
      const moved = Math.max(...whole[0].map((v, i) => Math.abs(v - whole[2][i])));
      expect(moved).toBeGreaterThan(1e-2);
    });
  }
});

describe('a failed step changes nothing', () => {
  function setup(): { opt: AnyOptimizer; params: nb.Tensor[] } {
    const params = [
      param(seeded(6, 1), [2, 3]),
      param(seeded(5, 2), [5]),
      param(seeded(4, 3), [4]),
    ];
    const opt = new nb.optim.Adam(
      [{ params: params.slice(0, 2) }, { params: params.slice(2), amsgrad: true }],
      { lr: 0.01 },
    );
    for (let s = 0; s < 2; s++) {
      params.forEach((p, i) => setGrad(p, f32(seeded(p.size, 10 * s + i), p.shape)));
      opt.step();
    }
    params.forEach((p, i) => setGrad(p, f32(seeded(p.size, 99 + i), p.shape)));
    return { opt, params };
  }

  const bad: [string, (ps: nb.Tensor[], opt: AnyOptimizer) => void, unknown, RegExp][] = [
    [
      'grad shape',
      (ps) => setGrad(ps[2], f32([1, 2, 3], [3])),
      nb.ShapeError,
      /^Adam\.step: grad of parameter 2 has shape \[3\]/,
    ],
    [
      'grad dtype',
      (ps) => setGrad(ps[2], nb.tensor([1, 2, 3, 4])),
      nb.DTypeError,
      /^Adam\.step: grad of parameter 2 is int32/,
    ],
    [
      'disposed grad',
      (ps) => ps[2].grad!.dispose(),
      nb.DisposedError,
      /^Adam\.step: grad of parameter 2 was disposed/,
    ],
    [
      'bad lr',
      (_ps, opt) => (opt.paramGroups[1].lr = -1),
      nb.ValueError,
      /^Adam\.step: invalid lr -1/,
    ],
    [
      'bad betas',
      (_ps, opt) => (opt.paramGroups[1].betas = [0.9] as unknown as [number, number]),
      nb.ValueError,
      /^Adam\.step: betas must be a pair/,
    ],
  ];
  for (const [what, breakIt, type, message] of bad) {
    it(`${what}: throws a typed error and leaves params and state bitwise unchanged`, () => {
      const { opt, params } = setup();
      breakIt(params, opt);
      const before = snapshot(opt, params);
      const tensors = nb.memory().tensors;
      expect(() => opt.step()).toThrow(type as typeof Error);
      expect(() => opt.step()).toThrow(message);
      expect(snapshot(opt, params)).toEqual(before);
      expect(nb.memory().tensors).toBe(tensors);
    });
  }

  it('a failed first step allocates no state', () => {
    const ps = [param([1, 2], [2]), param([3], [1])];
    const opt = new nb.optim.RMSprop(ps, { centered: true, momentum: 0.5 });
    setGrad(ps[0], f32([1, 1], [2]));
    setGrad(ps[1], f32([1, 1], [2]));
    const tensors = nb.memory().tensors;
    expect(() => opt.step()).toThrow(
      /^RMSprop\.step: grad of parameter 1 has shape \[2\] but the parameter has \[1\]/,
    );
    expect(nb.memory().tensors).toBe(tensors);
    expect(opt.stateDict().state).toEqual({});
    expect(Array.from(ps[0].toArray())).toEqual([1, 2]);
  });
});

describe('state dicts', () => {
  function trained(options: object, steps: number, seed: number) {
    const params = [param(seeded(7, seed), [7]), param(seeded(6, seed + 1), [2, 3])];
    const opt = new nb.optim.Adam(
      [{ params: [params[0]] }, { params: [params[1]], lr: 0.02, amsgrad: true }],
      options,
    );
    const feed = (s: number) =>
      params.forEach((p, i) => setGrad(p, f32(seeded(p.size, 100 * s + i, -1, 1), p.shape)));
    for (let s = 0; s < steps; s++) {
      feed(s);
      opt.step();
    }
    return { opt, params, feed };
  }

  it('a round trip continues bitwise identically', () => {
    const a = trained({ lr: 0.01, weightDecay: 0.1 }, 3, 1);
    const sd = a.opt.stateDict();
    // plain numbers and Tensors only: the non-tensor part survives JSON
    const groups = JSON.parse(JSON.stringify(sd.paramGroups));
    expect(groups).toEqual([
      {
        lr: 0.01,
        betas: [0.9, 0.999],
        eps: 1e-8,
        weightDecay: 0.1,
        amsgrad: false,
        maximize: false,
        params: [0],
      },
      {
        lr: 0.02,
        betas: [0.9, 0.999],
        eps: 1e-8,
        weightDecay: 0.1,
        amsgrad: true,
        maximize: false,
        params: [1],
      },
    ]);
    expect(sd.state[1].step).toBe(3);
    expect(Object.keys(sd.state[1]).sort()).toEqual(['expAvg', 'expAvgSq', 'maxExpAvgSq', 'step']);

    const b = trained({ lr: 0.5 }, 0, 1);
    b.opt.loadStateDict({ state: sd.state, paramGroups: groups });
    for (const e of Object.values(sd.state))
      for (const v of Object.values(e)) if (v instanceof nb.Tensor) v.dispose();
    expect(b.opt.paramGroups[0].lr).toBe(0.01);
    nb.noGrad(() => b.params.forEach((p, i) => p.copy_(a.params[i].detach())));
    for (let s = 3; s < 6; s++) {
      a.feed(s);
      b.feed(s);
      a.opt.step();
      b.opt.step();
    }
    expect(snapshot(b.opt, b.params)).toEqual(snapshot(a.opt, a.params));
  });

  it('a bad state dict throws and changes nothing', () => {
    const a = trained({ lr: 0.01 }, 2, 3);
    const b = trained({ lr: 0.03 }, 1, 3);
    const before = snapshot(b.opt, b.params);
    const good = () => a.opt.stateDict();
    const cases: [string, (sd: nb.optim.OptimizerStateDict) => void, RegExp][] = [
      [
        'shape',
        (sd) => (sd.state[1].expAvg = nb.zeros([6])),
        /^Adam\.loadStateDict: state 1: expAvg has shape \[6\]/,
      ],
      [
        'dtype',
        (sd) => (sd.state[0].expAvg = nb.zeros([7], { dtype: 'int32' })),
        /expAvg is int32/,
      ],
      ['disposed', (sd) => (sd.state[0].expAvgSq as nb.Tensor).dispose(), /expAvgSq was disposed/],
      ['unknown buffer', (sd) => (sd.state[0].momentum = nb.zeros([7])), /unknown buffer momentum/],
      [
        'missing buffer',
        (sd) => delete sd.state[1].maxExpAvgSq,
        /state 1: missing buffer maxExpAvgSq/,
      ],
      ['bad step', (sd) => (sd.state[0].step = -1), /step must be a non-negative integer/],
      ['group count', (sd) => sd.paramGroups.pop(), /has 1 parameter groups, the optimizer 2/],
      ['group option', (sd) => (sd.paramGroups[0].eps = -1), /paramGroups\[0\]: invalid eps -1/],
      [
        'unknown option',
        (sd) => (sd.paramGroups[0].weight_decay = 0),
        /unknown option weight_decay/,
      ],
      ['stray state', (sd) => (sd.state[5] = { step: 1 }), /state 5 belongs to no parameter/],
    ];
    for (const [what, corrupt, message] of cases) {
      const sd = good();
      corrupt(sd);
      expect(() => b.opt.loadStateDict(sd), what).toThrow(message);
      expect(snapshot(b.opt, b.params), what).toEqual(before);
    }
  });

  it('state survives a tidy around step(), and dispose() frees it', () => {
    const p = param([1, 2, 3], [3]);
    const opt = new nb.optim.SGD([p], { lr: 0.1, momentum: 0.9 });
    setGrad(p, f32([1, 1, 1], [3]));
    const before = nb.memory().tensors;
    nb.tidy(() => opt.step());
    expect(nb.memory().tensors).toBe(before + 1); // the momentum buffer
    setGrad(p, f32([1, 1, 1], [3]));
    opt.step(); // uses (does not re-create) the buffer: 1 - 0.1 - 0.1 * 1.9
    assertClose(p.toArray(), [0.71, 1.71, 2.71], { rtol: 1e-6, atol: 0 }, 'sgd momentum');
    const g = p.grad!;
    opt.zeroGrad();
    expect([p.grad, g.isDisposed]).toEqual([null, true]);
    opt.dispose();
    expect(nb.memory().tensors).toBe(before - 1);
  });
});

describe('memory', () => {
  it('a training loop keeps the live tensor count flat (state is allocated once)', () => {
    const w = param(seeded(8, 1), [2, 4]);
    const x = f32(seeded(12, 2), [3, 4]);
    const opt = new nb.optim.AdamW([w], { amsgrad: true });
    const iterate = () => {
      opt.zeroGrad();
      nb.tidy(() => x.matmul(w.transpose(0, 1)).square().mean().backward());
      opt.step();
    };
    iterate();
    const { tensors, bytes } = nb.memory();
    for (let i = 0; i < 200; i++) iterate();
    expect(nb.memory()).toMatchObject({ tensors, bytes });
    opt.dispose();
    opt.zeroGrad();
    [w, x].forEach((t) => t.dispose());
  });
});

describe('options and parameter groups', () => {
  const ps = () => [param([1, 2], [2]), param([3], [1])];

  it('defaults are PyTorch’s, in camelCase, and groups inherit them', () => {
    const [a, b] = ps();
    const opt = new nb.optim.Adam([{ params: [a] }, { params: [b], lr: 0.1, betas: [0.5, 0.6] }], {
      weightDecay: 0.01,
    });
    const { params: _p0, ...g0 } = opt.paramGroups[0];
    const { params: _p1, ...g1 } = opt.paramGroups[1];
    expect(g0).toEqual({
      lr: 1e-3,
      betas: [0.9, 0.999],
      eps: 1e-8,
      weightDecay: 0.01,
      amsgrad: false,
      maximize: false,
    });
    expect(g1).toEqual({ ...g0, lr: 0.1, betas: [0.5, 0.6] });
    expect(new nb.optim.AdamW([a]).paramGroups[0].weightDecay).toBe(1e-2);
    const { params: _p2, ...r } = new nb.optim.RMSprop([a]).paramGroups[0];
    expect(r).toEqual({
      lr: 1e-2,
      alpha: 0.99,
      eps: 1e-8,
      weightDecay: 0,
      momentum: 0,
      centered: false,
      maximize: false,
    });
    const { params: _p3, ...ag } = new nb.optim.Adagrad([a]).paramGroups[0];
    expect(ag).toEqual({
      lr: 1e-2,
      lrDecay: 0,
      weightDecay: 0,
      initialAccumulatorValue: 0,
      eps: 1e-10,
      maximize: false,
    });
    // groups never share the betas array with each other or the defaults
    opt.paramGroups[0].betas[0] = 0.1;
    expect(new nb.optim.Adam([b]).paramGroups[0].betas).toEqual([0.9, 0.999]);
  });

  it('rejects bad options and parameters with typed errors', () => {
    const [a, b] = ps();
    expect(() => new nb.optim.SGD([a])).toThrow(/^SGD: option lr is required/);
    expect(
      () => new nb.optim.Adam([a], { weight_decay: 0.1 } as unknown as nb.optim.AdamOptions),
    ).toThrow(/^Adam: unknown option weight_decay/);
    expect(() => new nb.optim.Adam([a], { betas: [1, 0.9] })).toThrow(
      /^Adam: invalid beta 1 at index 0/,
    );
    expect(() => new nb.optim.SGD([a], { lr: 0.1, nesterov: true })).toThrow(
      /^SGD: Nesterov momentum requires/,
    );
    expect(() => new nb.optim.SGD([a], { lr: -1 })).toThrow(nb.ValueError);
    expect(() => new nb.optim.Adam([])).toThrow(/^Adam: got an empty parameter list/);
    expect(() => new nb.optim.Adam(a as unknown as nb.Tensor[])).toThrow(
      /^Adam: params must be an iterable/,
    );
    expect(() => new nb.optim.Adam([a, b, a])).toThrow(
      /params\[2\] appears in more than one place/,
    );
    expect(() => new nb.optim.Adam([{ params: [a] }, { params: [a] }])).toThrow(nb.ValueError);
    expect(() => new nb.optim.Adam([nb.tensor([1, 2])])).toThrow(nb.DTypeError);
    const nonLeaf = a.mul(2);
    expect(() => new nb.optim.Adam([nonLeaf])).toThrow(/not a leaf/);
  });

  it('skips parameters without a gradient and accepts model.parameters()-style iterables', () => {
    const [a, b] = ps();
    function* gen() {
      yield a;
      yield b;
    }
    const opt = new nb.optim.SGD(gen(), { lr: 1 });
    setGrad(a, f32([1, 1], [2]));
    opt.step();
    expect([Array.from(a.toArray()), Array.from(b.toArray())]).toEqual([[0, 1], [3]]);
    opt.addParamGroup({ params: [param([5], [1])], lr: 2 });
    expect(opt.paramGroups.map((g) => g.lr)).toEqual([1, 2]);
  });
});

describe('gradient clipping against PyTorch', () => {
  for (const c of fixtures.clip) {
    it(c.name, () => {
      const params = c.shapes.map((s) => param(new Float32Array(s.reduce((x, y) => x * y, 1)), s));
      params.forEach((p, i) => setGrad(p, f32(c.grads[i], c.shapes[i])));
      if (c.kind === 'norm') {
        const total = nb.nn.utils.clipGradNorm(params, c.maxNorm!, c.normType);
        expect(Math.abs(total - c.total!)).toBeLessThanOrEqual(1e-6 * c.total!);
      } else {
        nb.nn.utils.clipGradValue(params, c.clipValue!);
      }
      params.forEach((p, i) =>
        assertClose(p.grad!.toArray(), c.clipped[i] as number[], FIX_TOL, `${c.name} ${i}`),
      );
    });
  }

  it('sums a long gradient in chunks to its float64 norm, NaN and infinity included', () => {
    // 200,003 floats: four chunks of the norm's split, the last short.
    const n = 200_003;
    const values = Array.from({ length: n }, (_, i) => Math.sin(i) * (1 + (i % 7)));
    const g = Float32Array.from(values);
    const w = param(new Array<number>(n).fill(0), [n]);
    for (const [normType, want] of [
      [2, Math.sqrt(g.reduce((s, v) => s + v * v, 0))],
      [1, g.reduce((s, v) => s + Math.abs(v), 0)],
      [3, g.reduce((s, v) => s + Math.abs(v) ** 3, 0) ** (1 / 3)],
      ['inf', g.reduce((m, v) => Math.max(m, Math.abs(v)), 0)],
    ] as const) {
      setGrad(w, f32(Array.from(g), [n]));
      const got = nb.nn.utils.clipGradNorm(w, 1e30, normType);
      expect(Math.abs(got - want) / want, String(normType)).toBeLessThan(1e-12);
    }
    for (const [at, v, want] of [
      [n - 1, NaN, NaN],
      [70_000, Infinity, Infinity],
    ] as const) {
      const bad = Array.from(g);
      bad[at] = v;
      for (const normType of [2, 'inf'] as const) {
        setGrad(w, f32(bad, [n]));
        expect(nb.nn.utils.clipGradNorm(w, 1, normType), `${v} ${normType}`).toBe(want);
      }
    }
  });

  it('skips missing grads, returns 0 without any, and checks its arguments', () => {
    const a = param([0, 0], [2]);
    const b = param([0], [1]);
    expect(nb.nn.utils.clipGradNorm([a, b], 1)).toBe(0);
    setGrad(b, f32([-4], [1]));
    expect(nb.nn.utils.clipGradNorm([a, b], 1, 'inf')).toBe(4);
    assertClose(b.grad!.toArray(), [-1 / (1 + 0.25e-6)], { rtol: 3e-7, atol: 0 }, 'inf clip');
    expect(() => nb.nn.utils.clipGradNorm([b], 1, 0)).toThrow(/^clipGradNorm: normType/);
    b.grad!.dispose();
    expect(() => nb.nn.utils.clipGradValue(b, 1)).toThrow(nb.DisposedError);
  });
});

// keep OptimFlag bits distinct (they are or-ed together)
it('optimizer flags are distinct bits', () => {
  const bits = Object.values(OptimFlag);
  expect(bits.reduce((a, b) => a | b, 0)).toBe(bits.reduce((a, b) => a + b, 0));
});
