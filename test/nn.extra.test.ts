// The extra nn pieces against PyTorch 1.13 (test/fixtures/nn_extra.json, from
// scripts/fixtures/make_nn_extra_fixtures.py): module reprs and parameter counts, Identity /
// ModuleDict / ParameterList, GroupNorm and RMSNorm, the smooth L1 / Huber / KL losses, the
// orthogonal and truncated-normal initialisers, and the LambdaLR / MultiStepLR / OneCycleLR
// schedulers.
//
// Tolerances: losses and norms use rtol 1e-5, atol 1e-5 (float64 references from the exact
// float32 inputs; norms and 'mean'/'sum' reductions add up to a few dozen float32 terms, and a
// normalised value near zero carries the absolute error of its mean). Schedulers compute in
// float64 with PyTorch's formulas in PyTorch's order: rtol 1e-12 (libm ulps in cos).
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { nn } from '../ts/index.js';
import { expectClose } from './helpers/fixtures.js';
import { assertClose } from './helpers/close.js';

beforeAll(async () => {
  await nb.init();
});

interface Shaped {
  shape: number[];
  data: number[];
}
interface ReprCase {
  name: string;
  repr: string;
  rows: { path: string; type: string; params: number; trainable: number }[];
  total: number;
  trainable: number;
  nonTrainable: number;
}
interface LossCase {
  name: string;
  fn: 'smoothL1Loss' | 'huberLoss' | 'klDiv';
  options: Record<string, unknown>;
  shape: number[];
  input: number[];
  target: number[];
  output: Shaped;
  upstream: number[];
  gradInput: number[];
  gradTarget: number[];
}
interface NormCase {
  name: string;
  kind: 'groupNorm' | 'rmsNorm';
  options: Record<string, unknown>;
  shape: number[];
  input: number[];
  params: Record<string, number[]>;
  output: number[];
  upstream: number[];
  grads: Record<string, number[]>;
}
interface SchedCase {
  name: string;
  optimizer: 'sgd' | 'adam';
  scheduler: 'LambdaLR' | 'MultiStepLR' | 'OneCycleLR';
  options: Record<string, unknown>;
  baseLrs: number[];
  lrs: number[][];
  momenta: number[][];
}
const FX = JSON.parse(
  readFileSync(new URL('./fixtures/nn_extra.json', import.meta.url), 'utf8'),
) as {
  reprs: ReprCase[];
  floatReprs: [number, string][];
  losses: LossCase[];
  norms: NormCase[];
  schedulers: SchedCase[];
};

const TOL = { rtol: 1e-5, atol: 1e-5 };

const f32 = (data: number[], shape: number[], requiresGrad = false): nb.Tensor =>
  nb.tensor(Float32Array.from(data), { shape, requiresGrad });

// ------------------------------------------------------------------ reprs and summary

/** The same architecture as the fixture script's `Net`, fields in the same order. */
class Net extends nn.Module {
  embed = new nn.Embedding(100, 16, { paddingIdx: 0 });
  norm = new nn.LayerNorm(16, { eps: 1e-6, elementwiseAffine: false });
  body = new nn.Sequential(
    new nn.Linear(16, 32),
    new nn.GELU({ approximate: 'tanh' }),
    new nn.LeakyReLU(0.2),
    new nn.Dropout(0.1),
  );
  heads = new nn.ModuleList([new nn.Linear(32, 4), new nn.Linear(32, 2, { bias: false })]);
  flatten = new nn.Flatten(0, 1);
  act = new nn.Tanh();
  gate = new nn.Sigmoid();
  probs = new nn.Softmax(-1);
  skip = new nn.Identity();
  forward(x: nb.Tensor): nb.Tensor {
    return x;
  }
}

class Extras extends nn.Module {
  // pairs, not an object literal: JavaScript would enumerate the key '2' first
  blocks = new nn.ModuleDict<nn.Module>([
    ['enc', new nn.Linear(4, 8)],
    ['2', new nn.ReLU()],
    ['norm', new nn.GroupNorm(2, 8, { eps: 1e-3, affine: false })],
  ]);
  scales = new nn.ParameterList([nb.ones([3, 4]), nb.zeros([2])]);
  one = new nn.ParameterList([nb.ones([5])]);
  gn = new nn.GroupNorm(4, 8);
  rms = new nn.RMSNorm([2, 4]);
  rms2 = new nn.RMSNorm([8], { eps: 1e-6, elementwiseAffine: false });
  ln = new nn.LayerNorm([2, 4]);
  losses = new nn.ModuleList<nn.Module>([
    new nn.SmoothL1Loss(),
    new nn.HuberLoss(),
    new nn.KLDivLoss(),
    new nn.MSELoss(),
    new nn.L1Loss(),
    new nn.CrossEntropyLoss(),
    new nn.NLLLoss(),
    new nn.BCELoss(),
    new nn.BCEWithLogitsLoss(),
  ]);
  emb = new nn.Embedding(10, 3);
  logp = new nn.LogSoftmax(1);
  relu = new nn.ReLU();
  forward(x: nb.Tensor): nb.Tensor {
    return x;
  }
}

/** Each fixture model, built and frozen as in the fixture script. */
const MODELS: Record<string, () => nn.Module> = {
  mlp: () =>
    new nn.Sequential(
      new nn.Flatten(),
      new nn.Linear(784, 256),
      new nn.ReLU(),
      new nn.Dropout(0.2),
      new nn.Linear(256, 10),
      new nn.LogSoftmax(1),
    ),
  net: () => {
    const net = new Net();
    net.embed.weight.requiresGrad = false;
    net.heads.at(0).requiresGrad_(false);
    return net;
  },
  extras: () => {
    const m = new Extras();
    m.scales.at(1).requiresGrad = false;
    return m;
  },
  linear: () => new nn.Linear(3, 2, { bias: false }),
  identity: () => new nn.Identity(),
  empty_sequential: () => new nn.Sequential(),
};

describe('Module.toString() is PyTorch 1.13 repr(module)', () => {
  for (const c of FX.reprs) {
    it(c.name, () => {
      const model = MODELS[c.name]();
      expect(String(model)).toBe(c.repr);
      expect(model.toString()).toBe(c.repr);
      model.dispose();
    });
  }

  it('pyFloat writes numbers as Python repr(float)', () => {
    for (const [v, s] of FX.floatReprs) expect(nn.pyFloat(v), String(v)).toBe(s);
    expect(nn.pyFloat(-0)).toBe('-0.0');
    expect(nn.pyFloat(Infinity)).toBe('inf');
  });

  it('a user module with its own extraRepr prints it before the children', () => {
    class Block extends nn.Module {
      fc = new nn.Linear(2, 2);
      forward(x: nb.Tensor): nb.Tensor {
        return x;
      }
      override extraRepr(): string {
        return 'scale=2\nshift=1';
      }
    }
    const b = new Block();
    expect(String(b)).toBe(
      'Block(\n  scale=2\n  shift=1\n  (fc): Linear(in_features=2, out_features=2, bias=True)\n)',
    );
    b.dispose();
  });
});

describe('nn.summary', () => {
  for (const c of FX.reprs) {
    it(`${c.name}: counts as PyTorch's parameters()`, () => {
      const model = MODELS[c.name]();
      const info = nn.summary(model, { asObject: true });
      expect(info.rows).toEqual(c.rows);
      expect([info.total, info.trainable, info.nonTrainable]).toEqual([
        c.total,
        c.trainable,
        c.nonTrainable,
      ]);
      const text = nn.summary(model);
      expect(text).toContain(`Total params: ${c.total.toLocaleString('en-US')}`);
      expect(text).toContain(`Trainable params: ${c.trainable.toLocaleString('en-US')}`);
      expect(text).toContain(`Non-trainable params: ${c.nonTrainable.toLocaleString('en-US')}`);
      for (const r of c.rows) {
        const line = text.split('\n').find((l) => l.startsWith(`${r.path} `));
        expect(line, r.path).toBeDefined();
        expect(line!.split(/\s{3,}/)).toEqual([
          r.path,
          r.type,
          r.params.toLocaleString('en-US'),
          r.trainable.toLocaleString('en-US'),
        ]);
      }
      model.dispose();
    });
  }

  it('counts a shared parameter once and follows requiresGrad_', () => {
    const a = new nn.Linear(3, 3);
    const seq = new nn.Sequential(a, a);
    expect(nn.summary(seq, { asObject: true }).total).toBe(12);
    seq.requiresGrad_(false);
    const info = nn.summary(seq, { asObject: true });
    expect([info.trainable, info.nonTrainable]).toEqual([0, 12]);
    a.dispose();
  });

  it('rejects a non-module', () => {
    expect(() => nn.summary({} as nn.Module)).toThrow(nb.ValueError);
    expect(() => nn.summary({} as nn.Module)).toThrow(/summary: expected a Module/);
  });
});

// ------------------------------------------------------------------ containers

describe('Identity, ModuleDict, ParameterList', () => {
  it('Identity returns its input', () => {
    const x = nb.randn([2, 3]);
    expect(new nn.Identity().forward(x)).toBe(x);
  });

  it('ModuleDict keeps insertion order (numeric keys too) and names state-dict keys <key>.<param>', () => {
    const d = new nn.ModuleDict<nn.Module>([
      ['b', new nn.Linear(2, 3)],
      ['1', new nn.ReLU()],
      ['a', new nn.Linear(3, 1, { bias: false })],
    ]);
    expect([...d.keys()]).toEqual(['b', '1', 'a']);
    expect(Object.keys(d.stateDict())).toEqual(['b.weight', 'b.bias', 'a.weight']);
    expect(d.size).toBe(3);
    expect(d.has('1')).toBe(true);
    expect(d.get('1')).toBeInstanceOf(nn.ReLU);
    // replacing keeps the position, as a Python dict does
    d.set('b', new nn.Linear(2, 2));
    expect([...d.keys()]).toEqual(['b', '1', 'a']);
    expect(d.stateDict()['b.weight'].shape).toEqual([2, 2]);
    expect(d.delete('1')).toBe(true);
    expect(d.delete('1')).toBe(false);
    expect([...d.values()].map((m) => m.constructor.name)).toEqual(['Linear', 'Linear']);
    expect([...d.entries()].map(([k]) => k)).toEqual(['b', 'a']);
    expect([...d].map(([k]) => k)).toEqual(['b', 'a']);
    // a key named like a Module field does not shadow it
    d.set('training', new nn.Tanh());
    expect(d.training).toBe(true);
    expect([...d.namedModules()].map(([k]) => k)).toEqual(['', 'b', 'a', 'training']);
    d.dispose();
  });

  it('ModuleDict round-trips a state dict into a fresh copy', () => {
    const make = (): nn.ModuleDict =>
      new nn.ModuleDict({ enc: new nn.Linear(2, 3), dec: new nn.Linear(3, 2) });
    const a = make();
    const b = make();
    b.loadStateDict(a.stateDict());
    const x = nb.randn([4, 2]);
    const ya = (a.get('dec') as nn.Linear).forward((a.get('enc') as nn.Linear).forward(x));
    const yb = (b.get('dec') as nn.Linear).forward((b.get('enc') as nn.Linear).forward(x));
    expect(Array.from(yb.toArray())).toEqual(Array.from(ya.toArray()));
  });

  it('ModuleDict rejects bad keys, non-modules and unknown keys', () => {
    const d = new nn.ModuleDict();
    expect(() => d.set('a.b', new nn.ReLU())).toThrow(/ModuleDict.set: key must be .* got "a.b"/);
    expect(() => d.set('', new nn.ReLU())).toThrow(nb.ValueError);
    expect(() => d.set('x', 3 as unknown as nn.Module)).toThrow(/expected a Module for key 'x'/);
    d.set('x', new nn.ReLU());
    expect(() => d.get('y')).toThrow(nb.IndexError);
    expect(() => d.get('y')).toThrow(/no module 'y' \(keys: x\)/);
    expect(() => d.forward()).toThrow(nb.ValueError);
  });

  it('ParameterList names parameters 0, 1, … and makes plain tensors parameters', () => {
    const plain = nb.zeros([2]);
    const pl = new nn.ParameterList([nb.ones([3, 4]), plain]);
    expect(pl.length).toBe(2);
    expect(pl.at(-1)).toBe(plain);
    expect(nn.isParameter(plain)).toBe(true);
    expect(plain.requiresGrad).toBe(true);
    pl.append(nb.ones([1]));
    class Owner extends nn.Module {
      w = new nn.Linear(1, 1);
      list = pl;
      forward(x: nb.Tensor): nb.Tensor {
        return x;
      }
    }
    const o = new Owner();
    expect(Object.keys(o.stateDict())).toEqual([
      'w.weight',
      'w.bias',
      'list.0',
      'list.1',
      'list.2',
    ]);
    expect([...pl].map((p) => p.shape)).toEqual([[3, 4], [2], [1]]);
    expect(() => pl.at(3)).toThrow(nb.IndexError);
    expect(() => pl.at(3)).toThrow(/index 3 is out of range for 3 parameters/);
    expect(() => pl.append([1] as unknown as nb.Tensor)).toThrow(nb.ValueError);
    o.dispose();
  });
});

// ------------------------------------------------------------------ losses

type LossFn = (x: nb.Tensor, y: nb.Tensor, o: object) => nb.Tensor;
const LOSS_FNS: Record<LossCase['fn'], LossFn> = {
  smoothL1Loss: nn.smoothL1Loss,
  huberLoss: nn.huberLoss,
  klDiv: nn.klDiv,
};
const LOSS_MODULES: Record<LossCase['fn'], (o: object) => { forward: LossFn }> = {
  smoothL1Loss: (o) => new nn.SmoothL1Loss(o),
  huberLoss: (o) => new nn.HuberLoss(o),
  klDiv: (o) => new nn.KLDivLoss(o),
};

describe('losses against PyTorch 1.13', () => {
  for (const c of FX.losses) {
    for (const form of ['function', 'module'] as const) {
      it(`${c.name} (${form})`, () => {
        const x = f32(c.input, c.shape, true);
        const y = f32(c.target, c.shape, true);
        const loss =
          form === 'function'
            ? LOSS_FNS[c.fn](x, y, c.options)
            : LOSS_MODULES[c.fn](c.options).forward(x, y, {});
        expect(loss.shape).toEqual(c.output.shape);
        expectClose(loss.toArray() as Float32Array, c.output.data, TOL, 'output');
        loss.backward(f32(c.upstream, c.output.shape));
        expectClose(x.grad!.toArray() as Float32Array, c.gradInput, TOL, 'input grad');
        expectClose(y.grad!.toArray() as Float32Array, c.gradTarget, TOL, 'target grad');
      });
    }
  }

  it('gradcheck: smoothL1Loss, huberLoss and klDiv (both target kinds)', () => {
    // inputs away from the |d| = beta and |d| = 0 kinks: d in ±[0.3, 0.7] ∪ ±[1.3, 2]
    const x = f32([0.5, -1, 2, 0.3, -0.7, 1.1], [2, 3], true);
    const y = f32([0, 0.6, 0.4, -1.4, 0.1, -0.5], [2, 3], true);
    for (const [fn, o] of [
      [nn.smoothL1Loss, { beta: 1 }],
      [nn.smoothL1Loss, { beta: 0.2, reduction: 'none' }],
      [nn.huberLoss, { delta: 1 }],
      [nn.huberLoss, { delta: 0.2, reduction: 'sum' }],
    ] as const) {
      const r = nb.gradcheck((a, b) => fn(a, b, o as object), [x, y]);
      expect(r.ok, `${fn.name} ${JSON.stringify(o)} ${JSON.stringify(r)}`).toBe(true);
    }
    const logp = nb.tidy(() => nb.logSoftmax(f32([0.2, -1, 0.5, 1, 0.3, -0.4], [2, 3]), 1));
    const p = f32([0.2, 0.5, 0.3, 0.6, 0.1, 0.3], [2, 3], true);
    const lq = nb.tidy(() => nb.log(p).detach().requiresGrad_());
    logp.requiresGrad_();
    for (const [t, o] of [
      [p, { reduction: 'batchmean' }],
      [lq, { reduction: 'sum', logTarget: true }],
    ] as const) {
      const r = nb.gradcheck((a, b) => nn.klDiv(a, b, o as object), [logp, t]);
      expect(r.ok, JSON.stringify(r)).toBe(true);
    }
  });

  it('klDiv treats a zero target as contributing 0 (PyTorch xlogy), with finite gradients', () => {
    const x = f32([-1, -2, -0.5], [3], true);
    const t = f32([0, 0.5, 0.5], [3], true);
    const l = nn.klDiv(x, t, { reduction: 'sum' });
    const want = 0.5 * (Math.log(0.5) + 2) + 0.5 * (Math.log(0.5) + 0.5);
    expect(l.item()).toBeCloseTo(want, 6);
    l.backward();
    expect(Array.from(x.grad!.toArray())).toEqual([-0, -0.5, -0.5]);
    expect(Number.isFinite(t.grad!.toArray()[0])).toBe(true);
  });

  it('smoothL1Loss with beta 0 equals l1Loss', () => {
    const x = nb.randn([4, 3]);
    const y = nb.randn([4, 3]);
    expect(nn.smoothL1Loss(x, y, { beta: 0 }).item()).toBeCloseTo(nn.l1Loss(x, y).item(), 6);
  });

  it('bad options and inputs throw typed errors naming the loss', () => {
    const x = nb.randn([2, 3]);
    const y = nb.randn([2, 3]);
    expect(() => nn.smoothL1Loss(x, y, { beta: -1 })).toThrow(
      /smoothL1Loss: beta must be >= 0, got -1/,
    );
    expect(() => new nn.HuberLoss({ delta: 0 })).toThrow(/HuberLoss: delta must be > 0, got 0/);
    expect(() => nn.huberLoss(x, nb.randn([3, 2]))).toThrow(nb.ShapeError);
    expect(() => nn.huberLoss(x, nb.randn([3, 2]))).toThrow(/huberLoss: target \[3, 2\]/);
    expect(() => nn.klDiv(x, y, { reduction: 'avg' as 'mean' })).toThrow(
      /klDiv: reduction must be 'mean', 'batchmean', 'sum' or 'none', got avg/,
    );
    expect(() => nn.smoothL1Loss(x, y, { reduction: 'batchmean' as 'mean' })).toThrow(
      nb.ValueError,
    );
    expect(() => nn.klDiv(x, y.int())).toThrow(nb.DTypeError);
  });
});

// ------------------------------------------------------------------ GroupNorm and RMSNorm

function runNorm(c: NormCase, form: 'function' | 'module'): Record<string, nb.Tensor | null> {
  const x = f32(c.input, c.shape, true);
  const o = c.options;
  if (c.kind === 'groupNorm') {
    const G = o.numGroups as number;
    const C = c.shape[1];
    let w: nb.Tensor | null = c.params.weight ? f32(c.params.weight, [C], true) : null;
    let b: nb.Tensor | null = c.params.bias ? f32(c.params.bias, [C], true) : null;
    let y: nb.Tensor;
    if (form === 'function') {
      y = nn.groupNorm(x, G, { weight: w, bias: b, eps: o.eps as number | undefined });
    } else {
      const m = new nn.GroupNorm(G, C, o as { eps?: number; affine?: boolean });
      nb.noGrad(() => {
        if (w) m.weight!.copy_(w);
        if (b) m.bias!.copy_(b);
      });
      [w, b] = [m.weight, m.bias];
      y = m.forward(x);
    }
    return { x, y, weight: w, bias: b };
  }
  const shape = o.normalizedShape as number[];
  let w: nb.Tensor | null = c.params.weight ? f32(c.params.weight, shape, true) : null;
  let y: nb.Tensor;
  if (form === 'function') {
    y = nn.rmsNorm(x, shape, { weight: w, eps: o.eps as number | undefined });
  } else {
    const m = new nn.RMSNorm(shape, o as { eps?: number; elementwiseAffine?: boolean });
    nb.noGrad(() => w && m.weight!.copy_(w));
    w = m.weight;
    y = m.forward(x);
  }
  return { x, y, weight: w };
}

describe('GroupNorm and RMSNorm against PyTorch (RMSNorm: float64 reference)', () => {
  for (const c of FX.norms) {
    for (const form of ['function', 'module'] as const) {
      it(`${c.name} (${form})`, () => {
        const t = runNorm(c, form);
        const y = t.y!;
        expect(y.shape).toEqual(c.shape);
        expectClose(y.toArray() as Float32Array, c.output, TOL, 'output');
        y.backward(f32(c.upstream, c.shape));
        expectClose(t.x!.grad!.toArray() as Float32Array, c.grads.input, TOL, 'input grad');
        for (const k of ['weight', 'bias']) {
          if (!(k in c.grads)) continue;
          expectClose(t[k]!.grad!.toArray() as Float32Array, c.grads[k], TOL, `${k} grad`);
        }
      });
    }
  }

  it('gradcheck: groupNorm and rmsNorm in input and affine parameters', () => {
    nb.manualSeed(3);
    const x = nb.randn([2, 4, 3]).requiresGrad_();
    const w = nb.uniform([4], 0.5, 1.5).requiresGrad_();
    const b = nb.randn([4]).requiresGrad_();
    const g = nb.gradcheck((a, ww, bb) => nn.groupNorm(a, 2, { weight: ww, bias: bb }), [x, w, b]);
    expect(g.ok, JSON.stringify(g)).toBe(true);
    const rw = nb.uniform([4, 3], 0.5, 1.5).requiresGrad_();
    const r = nb.gradcheck((a, ww) => nn.rmsNorm(a, [4, 3], { weight: ww }), [x, rw]);
    expect(r.ok, JSON.stringify(r)).toBe(true);
  });

  it('RMSNorm without eps uses float32 machine epsilon (2^-23)', () => {
    expect(nn.FLOAT32_EPS).toBe(1.1920928955078125e-7);
    const x = f32([1e-4, -1e-4], [1, 2]);
    const y = new nn.RMSNorm(2, { elementwiseAffine: false }).forward(x);
    const want = 1e-4 / Math.sqrt(1e-8 + 2 ** -23);
    expectClose(y.toArray() as Float32Array, [want, -want], { rtol: 1e-5, atol: 0 });
  });

  it('bad shapes and options throw typed errors naming the op', () => {
    expect(() => new nn.GroupNorm(3, 8)).toThrow(
      /GroupNorm: numChannels 8 must be divisible by numGroups 3/,
    );
    expect(() => new nn.GroupNorm(2, 8).forward(nb.randn([2, 6, 3]))).toThrow(
      /GroupNorm: input \[2, 6, 3\] has 6 channels, expected 8/,
    );
    expect(() => nn.groupNorm(nb.randn([4]), 2)).toThrow(nb.ShapeError);
    expect(() => nn.groupNorm(nb.randn([2, 6]), 4)).toThrow(
      /groupNorm: 6 channels of input \[2, 6\] do not split into 4 groups/,
    );
    expect(() => nn.groupNorm(nb.randn([2, 6]), 3, { weight: nb.ones([3]) })).toThrow(
      /groupNorm: weight \[3\] must have shape \[6\]/,
    );
    expect(() => nn.rmsNorm(nb.randn([2, 5]), [4])).toThrow(
      /rmsNorm: input \[2, 5\] must end with normalizedShape \[4\]/,
    );
    expect(() => new nn.RMSNorm(4, { eps: -1 })).toThrow(nb.ValueError);
    expect(() => nn.rmsNorm(nb.randn([2, 4]).int(), 4)).toThrow(nb.DTypeError);
  });
});

// ------------------------------------------------------------------ init

/** `m mᵀ` of a row-major [r, c] matrix, in float64. */
function gram(m: Float32Array, r: number, c: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < r; j++) {
      let s = 0;
      for (let k = 0; k < c; k++) s += m[i * c + k] * m[j * c + k];
      out.push(s);
    }
  }
  return out;
}

function eyeFlat(n: number, scale = 1): number[] {
  return Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? scale : 0));
}

describe('nn.init.orthogonal_ and nn.init.truncNormal_', () => {
  it('orthogonal_: orthonormal rows (wide) or columns (tall), scaled by gain', () => {
    nb.manualSeed(11);
    const wide = nn.init.orthogonal_(nb.zeros([3, 7]));
    assertClose(gram(wide.toArray() as Float32Array, 3, 7), eyeFlat(3), { rtol: 0, atol: 1e-6 });
    const tall = nn.init.orthogonal_(nb.zeros([6, 4]), 2);
    const tt = nb.transpose(tall, 0, 1).contiguous();
    assertClose(gram(tt.toArray() as Float32Array, 4, 6), eyeFlat(4, 4), { rtol: 0, atol: 4e-6 });
    // dims after the first are flattened: [4, 2, 3] is a [4, 6] matrix
    const conv = nn.init.orthogonal_(nb.zeros([4, 2, 3]));
    expect(conv.shape).toEqual([4, 2, 3]);
    assertClose(gram(conv.toArray() as Float32Array, 4, 6), eyeFlat(4), { rtol: 0, atol: 1e-6 });
  });

  it('orthogonal_: Haar distributed (the sign fix): entries of 4×4 draws have mean 0, variance 1/4', () => {
    nb.manualSeed(5);
    const n = 4;
    const draws = 3000;
    const diag: number[] = [];
    const all: number[] = [];
    const t = nb.zeros([n, n]);
    for (let d = 0; d < draws; d++) {
      const q = nn.init.orthogonal_(t).toArray() as Float32Array;
      all.push(...q);
      for (let i = 0; i < n; i++) diag.push(q[i * n + i]);
    }
    const stats = (v: number[]): [number, number] => {
      const m = v.reduce((a, b) => a + b, 0) / v.length;
      return [m, v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length];
    };
    const [mAll, vAll] = stats(all);
    const [mDiag, vDiag] = stats(diag);
    // Without the sign fix Gram-Schmidt/Householder Q's diagonal is biased (positive or
    // negative mean); Haar's is exactly symmetric. Standard error of a mean here ≈ 0.005.
    expect(Math.abs(mAll)).toBeLessThan(0.02);
    expect(Math.abs(mDiag)).toBeLessThan(0.03);
    expect(vAll).toBeCloseTo(1 / n, 1);
    expect(vDiag).toBeCloseTo(1 / n, 1);
  });

  it('orthogonal_ follows the seed and rejects 1-d tensors', () => {
    nb.manualSeed(2);
    const a = nn.init.orthogonal_(nb.zeros([3, 3])).toArray();
    nb.manualSeed(2);
    const b = nn.init.orthogonal_(nb.zeros([3, 3])).toArray();
    expect(Array.from(b)).toEqual(Array.from(a));
    expect(() => nn.init.orthogonal_(nb.zeros([5]))).toThrow(
      /orthogonal_: needs a tensor with at least 2 dims, got shape \[5\]/,
    );
    expect(() => nn.init.orthogonal_(nb.zeros([2, 2], { dtype: 'int32' }))).toThrow(nb.DTypeError);
  });

  it('erfinv inverts erf to float64 precision', () => {
    // (beyond |x| ≈ 4 float64 erf(x) itself no longer pins x to 1e-9)
    for (const x of [-3.9, -2, -0.7, -1e-3, 0, 1e-5, 0.3, 1, 1.9, 2.5, 3.7]) {
      const y = nn.init.erf(x);
      expect(Math.abs(nn.init.erfinv(y) - x), String(x)).toBeLessThan(
        1e-9 * Math.max(1, Math.abs(x)),
      );
    }
    expect(nn.init.erf(1)).toBeCloseTo(0.8427007929497149, 14);
    expect(nn.init.erfc(3)).toBeCloseTo(2.209049699858544e-5, 18);
  });

  /** Mean and variance of N(mu, s²) truncated to [a, b], by the closed form. */
  function truncMoments(mu: number, s: number, a: number, b: number): [number, number] {
    const phi = (z: number): number => Math.exp((-z * z) / 2) / Math.sqrt(2 * Math.PI);
    const Phi = (z: number): number => 0.5 * nn.init.erfc(-z / Math.SQRT2);
    const [al, be] = [(a - mu) / s, (b - mu) / s];
    const Z = Phi(be) - Phi(al);
    const m = mu + (s * (phi(al) - phi(be))) / Z;
    const v = s * s * (1 + (al * phi(al) - be * phi(be)) / Z - ((phi(al) - phi(be)) / Z) ** 2);
    return [m, v];
  }

  for (const [mu, s, a, b] of [
    [0, 1, -2, 2],
    [0.5, 2, -1, 4],
    [0, 1, 1, 3],
  ]) {
    it(`truncNormal_(mean ${mu}, std ${s}, [${a}, ${b}]): in bounds, moments of the truncated normal`, () => {
      nb.manualSeed(17);
      const t = nn.init.truncNormal_(nb.zeros([200, 100]), mu, s, a, b);
      const v = Array.from(t.toArray());
      expect(Math.min(...v)).toBeGreaterThanOrEqual(a);
      expect(Math.max(...v)).toBeLessThanOrEqual(b);
      const m = v.reduce((x, y) => x + y, 0) / v.length;
      const variance = v.reduce((x, y) => x + (y - m) ** 2, 0) / v.length;
      const [wantM, wantV] = truncMoments(mu, s, a, b);
      // 20000 draws: standard errors ≈ 0.01·std for the mean, ≈ 1% for the variance
      expect(Math.abs(m - wantM)).toBeLessThan(0.04 * s);
      expect(Math.abs(variance / wantV - 1)).toBeLessThan(0.05);
    });
  }

  it('truncNormal_ rejects empty ranges and non-positive std', () => {
    expect(() => nn.init.truncNormal_(nb.zeros([3]), 0, 1, 2, 2)).toThrow(
      /truncNormal_: needs a < b, got a = 2, b = 2/,
    );
    expect(() => nn.init.truncNormal_(nb.zeros([3]), 0, 0)).toThrow(/std must be > 0, got 0/);
    expect(() => nn.init.truncNormal_(nb.zeros([3]), NaN)).toThrow(nb.ValueError);
  });
});

// ------------------------------------------------------------------ schedulers

const LAMBDAS: Record<string, nb.optim.LrLambda> = {
  exp95: (e) => 0.95 ** e,
  inv: (e) => 1 / (e + 1),
  warm5: (e) => Math.min(1, (e + 1) / 5),
};

type AnyOpt = nb.optim.SGD | nb.optim.Adam;

function makeOpt(kind: 'sgd' | 'adam', lrs: number[]): AnyOpt {
  const groups = lrs.map((lr) => ({ params: [nb.keep(nb.zeros([1]).requiresGrad_())], lr }));
  return kind === 'sgd'
    ? new nb.optim.SGD(groups, { lr: 1, momentum: 0.9 })
    : new nb.optim.Adam(groups, { lr: 1, betas: [0.9, 0.99] });
}

function makeSched(c: SchedCase, opt: AnyOpt): nb.optim.LRScheduler {
  const o = c.options;
  if (c.scheduler === 'LambdaLR') {
    const l = o.lrLambda as string | string[];
    return new nb.optim.LambdaLR(opt, Array.isArray(l) ? l.map((k) => LAMBDAS[k]) : LAMBDAS[l]);
  }
  if (c.scheduler === 'MultiStepLR') {
    return new nb.optim.MultiStepLR(opt, o as { milestones: number[] });
  }
  return new nb.optim.OneCycleLR(opt, o as unknown as nb.optim.OneCycleLROptions);
}

const momenta = (opt: AnyOpt): number[] =>
  opt.paramGroups.map((g) =>
    'betas' in g ? (g.betas as number[])[0] : (g as { momentum: number }).momentum,
  );

function expectNear(got: number[], want: number[], label: string): void {
  expect(got.length, label).toBe(want.length);
  got.forEach((v, i) => {
    if (!(Math.abs(v - want[i]) <= 1e-12 * Math.abs(want[i]))) {
      throw new Error(`${label} group ${i}: ${v}, expected ${want[i]}`);
    }
  });
}

describe('LambdaLR, MultiStepLR, OneCycleLR against PyTorch 1.13', () => {
  for (const c of FX.schedulers) {
    it(`${c.name}: lr and momentum over ${c.lrs.length - 1} steps`, () => {
      const opt = makeOpt(c.optimizer, c.baseLrs);
      const s = makeSched(c, opt);
      for (let t = 0; t < c.lrs.length; t++) {
        if (t > 0) {
          opt.step();
          s.step();
        }
        expectNear(
          opt.paramGroups.map((g) => g.lr),
          c.lrs[t],
          `${c.name} lr at step ${t}`,
        );
        expectNear(momenta(opt), c.momenta[t], `${c.name} momentum at step ${t}`);
        expect(s.getLastLr()).toEqual(opt.paramGroups.map((g) => g.lr));
      }
    });

    it(`${c.name}: a JSON state-dict round trip after 10 steps continues identically`, () => {
      const a = makeOpt(c.optimizer, c.baseLrs);
      const sa = makeSched(c, a);
      for (let t = 0; t < 10; t++) sa.step();
      const saved = JSON.parse(JSON.stringify(sa.stateDict())) as nb.optim.SchedulerStateDict;
      // a fresh optimizer and scheduler, then the optimizer's state (its lr and momentum) and
      // the scheduler's, as a checkpoint restores them
      const b = makeOpt(c.optimizer, [0.3, 0.3]);
      const sb = makeSched(c, b);
      b.loadStateDict(a.stateDict());
      sb.loadStateDict(saved);
      expect(sb.stateDict()).toEqual(sa.stateDict());
      for (let t = 10; t < c.lrs.length - 1; t++) {
        sa.step();
        sb.step();
        expectNear(
          b.paramGroups.map((g) => g.lr),
          c.lrs[t + 1],
          `${c.name} restored, step ${t + 1}`,
        );
        expectNear(momenta(b), momenta(a), `${c.name} restored momentum, step ${t + 1}`);
      }
    });
  }

  it('OneCycleLR refuses a step past totalSteps without changing anything', () => {
    const opt = makeOpt('sgd', [0.1]);
    const s = new nb.optim.OneCycleLR(opt, { maxLr: 1, totalSteps: 3 });
    for (let t = 0; t < 3; t++) s.step();
    const before = s.stateDict();
    expect(() => s.step()).toThrow(
      /OneCycleLR: tried to step 4 times; the cycle has 3 total steps/,
    );
    expect(s.stateDict()).toEqual(before);
  });

  it('bad scheduler arguments throw ValueErrors naming the scheduler', () => {
    const opt = makeOpt('sgd', [0.1, 0.2]);
    expect(() => new nb.optim.LambdaLR(opt, [LAMBDAS.inv])).toThrow(
      /LambdaLR: expected a function or 2 functions .* got 1 values/,
    );
    expect(() => new nb.optim.LambdaLR(opt, () => NaN)).toThrow(/lrLambda\[0\]\(0\) returned NaN/);
    expect(() => new nb.optim.MultiStepLR(opt, { milestones: [2, -1] })).toThrow(
      /MultiStepLR: milestones\[1\] must be an integer >= 0, got -1/,
    );
    expect(() => new nb.optim.OneCycleLR(opt, { maxLr: 1 })).toThrow(
      /OneCycleLR: give totalSteps, or epochs and stepsPerEpoch/,
    );
    expect(() => new nb.optim.OneCycleLR(opt, { maxLr: [1, 2, 3], totalSteps: 5 })).toThrow(
      /OneCycleLR: maxLr must be a number or 2 numbers/,
    );
    expect(() => new nb.optim.OneCycleLR(opt, { maxLr: 1, totalSteps: 5, pctStart: 2 })).toThrow(
      /pctStart must be in \[0, 1\], got 2/,
    );
    expect(
      () =>
        new nb.optim.OneCycleLR(opt, {
          maxLr: 1,
          totalSteps: 5,
          annealStrategy: 'exp' as 'cos',
        }),
    ).toThrow(/annealStrategy must be 'cos' or 'linear', got exp/);
    const noMomentum = { paramGroups: [{ lr: 0.1 }] };
    expect(() => new nb.optim.OneCycleLR(noMomentum, { maxLr: 1, totalSteps: 5 })).toThrow(
      /OneCycleLR: cycleMomentum needs an optimizer with momentum/,
    );
    expect(
      () => new nb.optim.OneCycleLR(noMomentum, { maxLr: 1, totalSteps: 5, cycleMomentum: false }),
    ).not.toThrow();
  });
});

// ------------------------------------------------------------------ in a training loop

describe('the new pieces in a training loop', () => {
  class Tiny extends nn.Module {
    fc = new nn.Linear(6, 8);
    gn = new nn.GroupNorm(2, 8);
    rms = new nn.RMSNorm(8);
    heads = new nn.ModuleDict({ out: new nn.Linear(8, 3) });
    scale = new nn.ParameterList([nb.ones([3])]);
    forward(x: nb.Tensor): nb.Tensor {
      const h = this.rms.forward(this.gn.forward(this.fc.forward(x)).relu());
      return (this.heads.get('out') as nn.Linear).forward(h).mul(this.scale.at(0));
    }
  }

  for (const kind of ['sgd', 'adam'] as const) {
    it(`${kind} + OneCycleLR: loss falls, momentum cycles, live tensors stay flat`, () => {
      nb.manualSeed(1);
      const model = new Tiny();
      const params = model.parameters();
      // SGD starts without momentum: OneCycleLR sets it (PyTorch does the same)
      const opt =
        kind === 'sgd'
          ? new nb.optim.SGD(params, { lr: 0.1 })
          : new nb.optim.Adam(params, { lr: 0.01 });
      const sched = new nb.optim.OneCycleLR(opt, {
        maxLr: kind === 'sgd' ? 0.1 : 0.02,
        totalSteps: 40,
      });
      const x = nb.keep(nb.randn([16, 6]));
      const y = nb.keep(nb.randn([16, 3]));
      const losses: number[] = [];
      let live = 0;
      for (let t = 0; t < 40; t++) {
        nb.tidy(() => {
          opt.zeroGrad();
          const out = model.forward(x);
          const loss = nn
            .smoothL1Loss(out, y, { beta: 0.5 })
            .add(nn.klDiv(out.logSoftmax(1), y.softmax(1), { reduction: 'batchmean' }));
          loss.backward();
          opt.step();
          losses.push(loss.item());
        });
        if (t < 39) sched.step();
        if (t === 2) live = nb.memory().tensors;
      }
      expect(nb.memory().tensors).toBe(live);
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses[39]).toBeLessThan(0.8 * losses[0]);
      const m = momenta(opt as AnyOpt)[0];
      expect(m).toBeCloseTo(0.95, 6); // back at maxMomentum at the end of the cycle
      model.dispose();
      x.dispose();
      y.dispose();
    });
  }
});
