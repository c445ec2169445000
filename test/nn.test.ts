// nb.nn layers, containers, init and the Module behaviours they rely on.
//
// PyTorch fixtures (scripts/fixtures/make_nn_fixtures.py → test/fixtures/nn.json) run each
// module in float64 on float32-exact weights and inputs, so the gap measured here is nabla's
// own float32 error. Every fixture value must satisfy |actual - expected| <= atol + rtol·|expected|
// with rtol 1e-5, atol 1e-6: a few float32 ulp. The layers sum at most 16 terms per output, and
// the worst element measured (in the 4-layer MLP's gradients) uses 18% of that bound; the
// others stay under 5%. Hand-written float64 references elsewhere use atol 1e-5 (SUMS).
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { expectClose, type ShapedData, type Tolerance } from './helpers/fixtures.js';

const { nn } = nb;
type Tensor = nb.Tensor;
type Layer = nb.nn.Module & { forward(x: Tensor): Tensor };

interface NnCase {
  keys: string[];
  stateDict: Record<string, ShapedData>;
  input: ShapedData & { dtype: 'float32' | 'int32' };
  G: ShapedData;
  output: ShapedData;
  grads: Record<string, ShapedData>;
}

const fixtures = JSON.parse(
  readFileSync(new URL('./fixtures/nn.json', import.meta.url), 'utf8'),
) as { torch: string; cases: Record<string, NnCase> };

const TOL: Tolerance = { rtol: 1e-5, atol: 1e-6 };
const SUMS: Tolerance = { rtol: 1e-5, atol: 1e-5 };

class Net extends nn.Module {
  fc1 = new nn.Linear(4, 8);
  act = new nn.GELU({ approximate: 'tanh' });
  fc2 = new nn.Linear(8, 3);

  forward(x: Tensor): Tensor {
    return this.fc2.forward(this.act.forward(this.fc1.forward(x)));
  }
}

/** The nabla twin of every fixture case. */
const MODELS: Record<string, () => Layer> = {
  linear: () => new nn.Linear(5, 4),
  linear_3d_nobias: () => new nn.Linear(4, 3, { bias: false }),
  layernorm_1d: () => new nn.LayerNorm(6),
  layernorm_2d: () => new nn.LayerNorm([3, 4]),
  layernorm_noaffine: () => new nn.LayerNorm(5, { eps: 1e-3, elementwiseAffine: false }),
  embedding: () => new nn.Embedding(6, 3),
  embedding_padding: () => new nn.Embedding(7, 4, { paddingIdx: 2 }),
  gelu_none: () => new nn.GELU(),
  gelu_tanh: () => new nn.GELU({ approximate: 'tanh' }),
  mlp: () =>
    new nn.Sequential(
      new nn.Linear(6, 16),
      new nn.ReLU(),
      new nn.Linear(16, 16),
      new nn.Tanh(),
      new nn.Dropout(0.3),
      new nn.LayerNorm(16),
      new nn.Linear(16, 4),
    ).eval(),
  net: () => new Net(),
};

function fromData(d: ShapedData, opts: nb.TensorOptions = {}): Tensor {
  const dtype = opts.dtype ?? 'float32';
  const data = dtype === 'int32' ? Int32Array.from(d.data) : Float32Array.from(d.data);
  return nb.tensor(data, { ...opts, dtype, shape: d.shape });
}

/** Builds the case's model with the fixture's weights loaded through loadStateDict. */
function loadCase(name: string): { model: Layer; c: NnCase } {
  const c = fixtures.cases[name];
  const make = MODELS[name];
  if (!c || !make) throw new Error(`no fixture or model for ${name}`);
  const model = make();
  const sd = Object.fromEntries(c.keys.map((k) => [k, fromData(c.stateDict[k])]));
  model.loadStateDict(sd);
  Object.values(sd).forEach((t) => t.dispose());
  return { model, c };
}

function expectGrad(t: Tensor | null, d: ShapedData, tol: Tolerance, label: string): void {
  if (t === null) throw new Error(`${label}: no gradient reached it`);
  expect(t.shape, `${label} shape`).toEqual(d.shape);
  expectClose(t.toArray(), d.data, tol, label);
}

/** Snapshot of every parameter's values, to check that a failed call changed nothing. */
function snapshot(m: nb.nn.Module): Record<string, number[]> {
  return Object.fromEntries(m.namedParameters().map(([k, p]) => [k, Array.from(p.toArray())]));
}

function stats(t: Tensor): { mean: number; std: number; min: number; max: number } {
  const a = t.toArray();
  let s = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of a) {
    s += v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const mean = s / a.length;
  let ss = 0;
  for (const v of a) ss += (v - mean) ** 2;
  return { mean, std: Math.sqrt(ss / a.length), min, max };
}

beforeAll(async () => {
  await nb.init();
});

describe('layers vs PyTorch (test/fixtures/nn.json)', () => {
  for (const name of Object.keys(MODELS)) {
    it(`${name}: names, forward and gradients of sum(out * G)`, () => {
      nb.tidy(() => {
        const { model, c } = loadCase(name);
        expect(model.namedParameters().map(([k]) => k)).toEqual(c.keys);
        expect(Object.keys(model.stateDict())).toEqual(c.keys);

        const isFloat = c.input.dtype === 'float32';
        const x = fromData(c.input, { dtype: c.input.dtype, requiresGrad: isFloat });
        const out = model.forward(x);
        expect(out.shape).toEqual(c.output.shape);
        expectClose(out.toArray(), c.output.data, TOL, `${name} output`);

        out.backward(fromData(c.G));
        if (isFloat) expectGrad(x.grad, c.grads.input, TOL, `${name} input grad`);
        for (const [k, p] of model.namedParameters()) {
          expectGrad(p.grad, c.grads[k], TOL, `${name} ${k} grad`);
        }
        model.dispose();
      });
    });
  }

  for (const name of ['linear', 'layernorm_2d', 'mlp']) {
    it(`${name}: parameter gradients when the input needs none`, () => {
      nb.tidy(() => {
        const { model, c } = loadCase(name);
        const out = model.forward(fromData(c.input));
        out.backward(fromData(c.G));
        for (const [k, p] of model.namedParameters()) {
          expectGrad(p.grad, c.grads[k], TOL, `${name} ${k} grad`);
        }
        model.dispose();
      });
    });
  }

  it('linear: input gradient with a frozen weight', () => {
    nb.tidy(() => {
      const { model, c } = loadCase('linear');
      model.requiresGrad_(false);
      const x = fromData(c.input, { requiresGrad: true });
      model.forward(x).backward(fromData(c.G));
      expectGrad(x.grad, c.grads.input, TOL, 'input grad');
      expect(model.parameters().map((p) => p.grad)).toEqual([null, null]);
      model.dispose();
    });
  });

  it('embedding_padding: looks up the stored padding row but never updates it', () => {
    nb.tidy(() => {
      const { model, c } = loadCase('embedding_padding');
      const emb = model as nb.nn.Embedding;
      const idx = fromData(c.input, { dtype: 'int32' });
      const out = emb.forward(idx);
      const row = out.narrow(0, 0, 1).narrow(1, 0, 1).reshape([4]); // idx[0][0] = 2
      expect(Array.from(row.toArray())).toEqual(
        Array.from(Float32Array.from(c.stateDict.weight.data.slice(8, 12))),
      );
      expect(row.toArray().some((v) => v !== 0)).toBe(true);
      out.backward(fromData(c.G));
      const grad = emb.weight.grad!.toArray();
      expect(Array.from(grad.slice(8, 12))).toEqual([0, 0, 0, 0]);
      emb.dispose();
    });
  });
});

describe('parameter names match torch state_dict keys', () => {
  it('Sequential(Linear, ReLU, Linear) numbers its children', () => {
    const m = new nn.Sequential(new nn.Linear(3, 4), new nn.ReLU(), new nn.Linear(4, 2));
    expect(m.namedParameters().map(([k]) => k)).toEqual([
      '0.weight',
      '0.bias',
      '2.weight',
      '2.bias',
    ]);
    expect([...m.namedChildren()].map(([k]) => k)).toEqual(['0', '1', '2']);
    m.dispose();
  });

  it('indices past 9 stay in numeric order', () => {
    const m = new nn.Sequential(...Array.from({ length: 12 }, () => new nn.Linear(2, 2)));
    const names = m.namedParameters().map(([k]) => k);
    expect(names.slice(18)).toEqual([
      '9.weight',
      '9.bias',
      '10.weight',
      '10.bias',
      '11.weight',
      '11.bias',
    ]);
    m.dispose();
  });

  it('fields fc1 and fc2 give fc1.weight ... in the fixture order', () => {
    const m = new Net();
    expect(m.namedParameters().map(([k]) => k)).toEqual(fixtures.cases.net.keys);
    m.dispose();
  });

  it('ModuleList inside a module nests its numbering', () => {
    class Stack extends nn.Module {
      layers = new nn.ModuleList([new nn.Linear(2, 3), new nn.Linear(3, 1, { bias: false })]);
      norm = new nn.LayerNorm(1);
      forward(x: Tensor): Tensor {
        let y = x;
        for (const l of this.layers) y = l.forward(y);
        return this.norm.forward(y);
      }
    }
    const m = new Stack();
    expect(m.namedParameters().map(([k]) => k)).toEqual([
      'layers.0.weight',
      'layers.0.bias',
      'layers.1.weight',
      'norm.weight',
      'norm.bias',
    ]);
    expect(m.forward(nb.ones([5, 2])).shape).toEqual([5, 1]);
    m.dispose();
  });
});

describe('containers', () => {
  it('Sequential chains forward and supports length, at, iteration and append', () => {
    nb.tidy(() => {
      const a = new nn.Linear(3, 4);
      const r = new nn.ReLU();
      const b = new nn.Linear(4, 2);
      const m = new nn.Sequential(a, r);
      m.append(b);
      expect(m.length).toBe(3);
      expect(m.at(0)).toBe(a);
      expect(m.at(-1)).toBe(b);
      expect(m[1]).toBe(r);
      expect([...m]).toEqual([a, r, b]);
      const x = nb.randn([5, 3]);
      const expected = b.forward(a.forward(x).relu()).toArray();
      expect(Array.from(m.forward(x).toArray())).toEqual(Array.from(expected));
      expect(() => m.at(3)).toThrow(nb.IndexError);
      expect(() => m.at(3)).toThrow(/^Sequential\.at: index 3 is out of range for 3 modules/);
      m.dispose();
    });
  });

  it('ModuleList has no forward and rejects non-modules', () => {
    const l = new nn.ModuleList<nb.nn.Linear>();
    expect(() => l.forward()).toThrow(nb.ValueError);
    expect(() => l.append({} as nb.nn.Linear)).toThrow(/^ModuleList\.append: expected a Module/);
    expect(l.length).toBe(0);
  });
});

describe('activation and shape layers', () => {
  const data = [-2.5, -1, -0.25, 0, 0.3, 1, 3];
  const x = () => nb.tensor(data);
  const check = (m: Layer, f: (v: number) => number) => {
    nb.tidy(() => expectClose(m.forward(x()).toArray(), data.map(f), TOL));
  };

  it('ReLU, Sigmoid, Tanh, LeakyReLU match their formulas', () => {
    check(new nn.ReLU(), (v) => Math.max(v, 0));
    check(new nn.Sigmoid(), (v) => 1 / (1 + Math.exp(-v)));
    check(new nn.Tanh(), Math.tanh);
    check(new nn.LeakyReLU(), (v) => (v > 0 ? v : 0.01 * v));
    check(new nn.LeakyReLU(0.2), (v) => (v > 0 ? v : 0.2 * v));
  });

  it('Softmax and LogSoftmax normalise along their dim', () => {
    nb.tidy(() => {
      const t = nb.tensor(
        [
          [1, 2, 3],
          [0, -1, 5],
        ],
        { dtype: 'float32' },
      );
      const rows = (a: Float32Array | Int32Array) =>
        Float32Array.of(a[0] + a[1] + a[2], a[3] + a[4] + a[5]);
      expectClose(new nn.Softmax(1).forward(t).toArray(), [
        ...[1, 2, 3].map((v) => Math.exp(v) / (Math.E + Math.E ** 2 + Math.E ** 3)),
        ...[0, -1, 5].map((v) => Math.exp(v) / (1 + Math.exp(-1) + Math.exp(5))),
      ]);
      expectClose(rows(new nn.Softmax(-1).forward(t).toArray()), [1, 1]);
      const cols = new nn.Softmax(0).forward(t).toArray();
      expectClose(
        Float32Array.of(cols[0] + cols[3], cols[1] + cols[4], cols[2] + cols[5]),
        [1, 1, 1],
      );
      expectClose(rows(new nn.LogSoftmax(1).forward(t).exp().toArray()), [1, 1]);
    });
  });

  it('Flatten merges startDim..endDim', () => {
    nb.tidy(() => {
      const t = nb.zeros([2, 3, 4, 5]);
      expect(new nn.Flatten().forward(t).shape).toEqual([2, 60]);
      expect(new nn.Flatten(0).forward(t).shape).toEqual([120]);
      expect(new nn.Flatten(1, 2).forward(t).shape).toEqual([2, 12, 5]);
    });
  });

  it('rejects bad options', () => {
    expect(() => new nn.GELU({ approximate: 'fast' as 'tanh' })).toThrow(/^GELU: approximate/);
    expect(() => new nn.Softmax(0.5)).toThrow(nb.ValueError);
    expect(() => new nn.Dropout(1.5)).toThrow(/^Dropout: p must be in \[0, 1\], got 1.5/);
    expect(() => new nn.Dropout(-0.1)).toThrow(nb.ValueError);
  });
});

describe('Dropout', () => {
  it('train mode zeroes a fraction p and scales survivors by 1/(1-p)', () => {
    nb.tidy(() => {
      nb.manualSeed(11);
      const p = 0.3;
      const x = nb.uniform([200, 500], 0.5, 2, { requiresGrad: true });
      const y = new nn.Dropout(p).forward(x);
      const xv = x.toArray();
      const yv = y.toArray();
      const scale = Math.fround(1 / (1 - p));
      let zeros = 0;
      for (let i = 0; i < yv.length; i++) {
        if (yv[i] === 0) zeros++;
        else if (yv[i] !== Math.fround(xv[i] * scale)) {
          throw new Error(`element ${i}: ${yv[i]} is neither 0 nor ${xv[i]} / (1 - p)`);
        }
      }
      // 100,000 Bernoulli(0.3) draws: the fraction's standard deviation is 0.0014.
      expect(Math.abs(zeros / yv.length - p)).toBeLessThan(0.01);

      y.backward(nb.onesLike(y));
      const gv = x.grad!.toArray();
      for (let i = 0; i < gv.length; i++) {
        const want = yv[i] === 0 ? 0 : scale;
        if (gv[i] !== want) throw new Error(`grad ${i}: ${gv[i]}, expected ${want}`);
      }
    });
  });

  it('is reproducible under manualSeed and differs between calls', () => {
    nb.tidy(() => {
      const d = new nn.Dropout(0.5);
      const x = nb.ones([1000]);
      nb.manualSeed(3);
      const a = Array.from(d.forward(x).toArray());
      const b = Array.from(d.forward(x).toArray());
      nb.manualSeed(3);
      expect(Array.from(d.forward(x).toArray())).toEqual(a);
      expect(b).not.toEqual(a);
    });
  });

  it('is the identity in eval mode and for p = 0; p = 1 zeroes everything', () => {
    nb.tidy(() => {
      const x = nb.randn([4, 5], { requiresGrad: true });
      const d = new nn.Dropout(0.9).eval();
      expect(d.forward(x)).toBe(x);
      expect(new nn.Dropout(0).forward(x)).toBe(x);
      expect(nn.functional.dropout(x, { p: 0.5, training: false })).toBe(x);
      const z = new nn.Dropout(1).forward(x);
      expect(z.toArray().every((v) => v === 0)).toBe(true); // -0 for negative inputs, as in torch
      z.sum().backward();
      expect(Array.from(x.grad!.toArray())).toEqual(new Array(20).fill(0));
    });
  });
});

describe('train(), eval(), requiresGrad_(), zeroGrad()', () => {
  it('train and eval reach every nested module', () => {
    const inner = new nn.Sequential(new nn.Dropout(0.5), new nn.ReLU());
    const m = new nn.Sequential(new nn.Linear(3, 3), inner);
    expect([...m.modules()].every((x) => x.training)).toBe(true);
    m.eval();
    expect([...m.modules()].map((x) => x.training)).toEqual([false, false, false, false, false]);
    nb.tidy(() => {
      const x = nb.randn([64, 3]);
      const lin = m.at(0) as nb.nn.Linear;
      const want = lin.forward(x).relu().toArray();
      expect(Array.from(m.forward(x).toArray())).toEqual(Array.from(want));
    });
    m.train();
    expect([...m.modules()].every((x) => x.training)).toBe(true);
    m.dispose();
  });

  it('requiresGrad_(false) freezes parameters; requiresGrad_() unfreezes them', () => {
    nb.tidy(() => {
      const m = new nn.Sequential(new nn.Linear(3, 4), new nn.Tanh(), new nn.Linear(4, 2));
      const x = nb.randn([5, 3], { requiresGrad: true });
      m.requiresGrad_(false);
      m.forward(x).sum().backward();
      expect(m.parameters().map((p) => p.grad)).toEqual([null, null, null, null]);
      expect(x.grad).not.toBeNull();
      m.requiresGrad_();
      m.forward(x).sum().backward();
      expect(m.parameters().every((p) => p.grad !== null)).toBe(true);
      m.dispose();
    });
  });

  it('zeroGrad clears gradients so the next backward does not accumulate', () => {
    nb.tidy(() => {
      const m = new nn.Linear(3, 2);
      const x = nb.randn([4, 3]);
      m.forward(x).square().sum().backward();
      const first = m.parameters().map((p) => Array.from(p.grad!.toArray()));
      m.zeroGrad();
      expect(m.parameters().map((p) => p.grad)).toEqual([null, null]);
      m.forward(x).square().sum().backward();
      expect(m.parameters().map((p) => Array.from(p.grad!.toArray()))).toEqual(first);
      m.dispose();
    });
  });
});

describe('stateDict and loadStateDict', () => {
  const make = () => new nn.Sequential(new nn.Linear(3, 2), new nn.ReLU(), new nn.Linear(2, 1));

  it('round-trips between two models', () => {
    nb.tidy(() => {
      const a = make();
      const b = make();
      const x = nb.randn([6, 3]);
      expect(Array.from(b.forward(x).toArray())).not.toEqual(Array.from(a.forward(x).toArray()));
      const res = b.loadStateDict(a.stateDict());
      expect(res).toEqual({ missingKeys: [], unexpectedKeys: [] });
      expect(Array.from(b.forward(x).toArray())).toEqual(Array.from(a.forward(x).toArray()));
      expect(snapshot(b)).toEqual(snapshot(a));
      // b owns copies: changing a afterwards leaves b alone.
      nb.noGrad(() => a.parameters().forEach((p) => p.fill_(0)));
      expect(snapshot(b)).not.toEqual(snapshot(a));
      a.dispose();
      b.dispose();
    });
  });

  it('strict errors (missing, unexpected, wrong shape) leave the model unchanged', () => {
    nb.tidy(() => {
      const m = make();
      const src = make().stateDict();
      const before = snapshot(m);

      const missing = { ...src };
      delete missing['2.bias'];
      expect(() => m.loadStateDict(missing)).toThrow(nb.ValueError);
      expect(() => m.loadStateDict(missing)).toThrow(/missing keys \[2\.bias\]/);
      expect(snapshot(m)).toEqual(before);

      const extra = { ...src, 'extra.weight': nb.zeros([2]) };
      expect(() => m.loadStateDict(extra)).toThrow(/unexpected keys \[extra\.weight\]/);
      expect(snapshot(m)).toEqual(before);

      // '0.weight' comes first and is valid: it must not be written before '2.weight' fails.
      const wrong = { ...src, '2.weight': nb.zeros([1, 3]) };
      expect(() => m.loadStateDict(wrong)).toThrow(nb.ShapeError);
      expect(() => m.loadStateDict(wrong)).toThrow(/2\.weight has shape \[1, 3\].*\[1, 2\]/);
      expect(snapshot(m)).toEqual(before);
      m.dispose();
    });
  });

  it('strict: false reports missing and unexpected keys and loads the rest', () => {
    nb.tidy(() => {
      const m = make();
      const src = make();
      const sd: Record<string, Tensor> = { ...src.stateDict(), junk: nb.zeros([1]) };
      delete sd['0.bias'];
      const before = snapshot(m);
      const res = m.loadStateDict(sd, { strict: false });
      expect(res).toEqual({ missingKeys: ['0.bias'], unexpectedKeys: ['junk'] });
      const after = snapshot(m);
      expect(after['0.bias']).toEqual(before['0.bias']);
      expect(after['0.weight']).toEqual(snapshot(src)['0.weight']);
      expect(after['2.weight']).toEqual(snapshot(src)['2.weight']);
      m.dispose();
      src.dispose();
    });
  });
});

describe('default initialisation', () => {
  it('Linear: weight and bias uniform in ±1/√inFeatures', () => {
    nb.manualSeed(1);
    const m = new nn.Linear(400, 300);
    const bound = 1 / 20;
    const w = stats(m.weight);
    expect(w.min).toBeGreaterThanOrEqual(-bound);
    expect(w.max).toBeLessThanOrEqual(bound);
    expect(w.max).toBeGreaterThan(0.99 * bound);
    expect(w.min).toBeLessThan(-0.99 * bound);
    expect(Math.abs(w.std / (bound / Math.sqrt(3)) - 1)).toBeLessThan(0.02);
    const b = stats(m.bias!);
    expect(Math.max(-b.min, b.max)).toBeLessThanOrEqual(bound);
    expect(Math.max(-b.min, b.max)).toBeGreaterThan(0.9 * bound);
    expect(m.weight.requiresGrad && m.weight.isLeaf && m.weight.gradFn === null).toBe(true);
    m.dispose();
  });

  it('Embedding: N(0, 1) with the padding row zeroed; LayerNorm: ones and zeros', () => {
    nb.manualSeed(2);
    const e = new nn.Embedding(1000, 64, { paddingIdx: -1 });
    expect(e.paddingIdx).toBe(999);
    const w = stats(e.weight);
    expect(Math.abs(w.mean)).toBeLessThan(0.02);
    expect(Math.abs(w.std - 1)).toBeLessThan(0.02);
    const last = e.weight.toArray().slice(999 * 64);
    expect(Array.from(last)).toEqual(new Array(64).fill(0));
    expect(
      e.weight
        .toArray()
        .slice(998 * 64, 999 * 64)
        .every((v) => v !== 0),
    ).toBe(true);
    e.dispose();

    const ln = new nn.LayerNorm([2, 3]);
    expect(Array.from(ln.weight!.toArray())).toEqual([1, 1, 1, 1, 1, 1]);
    expect(Array.from(ln.bias!.toArray())).toEqual([0, 0, 0, 0, 0, 0]);
    expect(new nn.LayerNorm(4, { elementwiseAffine: false }).parameters()).toEqual([]);
    expect(new nn.LayerNorm(4, { bias: false }).namedParameters().map(([k]) => k)).toEqual([
      'weight',
    ]);
  });
});

describe('nn.init', () => {
  const { init } = nn;

  it('calculateGain matches torch.nn.init.calculate_gain', () => {
    expect(init.calculateGain('linear')).toBe(1);
    expect(init.calculateGain('conv2d')).toBe(1);
    expect(init.calculateGain('sigmoid')).toBe(1);
    expect(init.calculateGain('tanh')).toBeCloseTo(5 / 3, 12);
    expect(init.calculateGain('relu')).toBeCloseTo(Math.SQRT2, 12);
    expect(init.calculateGain('leaky_relu')).toBeCloseTo(Math.sqrt(2 / 1.0001), 12);
    expect(init.calculateGain('leaky_relu', 0.2)).toBeCloseTo(Math.sqrt(2 / 1.04), 12);
    expect(init.calculateGain('leaky_relu', 0)).toBeCloseTo(Math.SQRT2, 12);
    expect(init.calculateGain('selu')).toBe(0.75);
    expect(() => init.calculateGain('swish' as 'relu')).toThrow(/^calculateGain: unsupported/);
  });

  it('xavier and kaiming hit their target spread (conv-shaped fans too)', () => {
    nb.manualSeed(5);
    const cases: [string, number[], (t: Tensor) => Tensor, number, 'uniform' | 'normal'][] = [
      // [label, shape, init, expected std, distribution]
      ['xavierUniform_', [300, 200], (t) => init.xavierUniform_(t), Math.sqrt(2 / 500), 'uniform'],
      [
        'xavierUniform_ conv, tanh gain',
        [64, 32, 5, 5], // fanIn 800, fanOut 1600
        (t) => init.xavierUniform_(t, init.calculateGain('tanh')),
        (5 / 3) * Math.sqrt(2 / 2400),
        'uniform',
      ],
      [
        'xavierNormal_ gain 2',
        [300, 200],
        (t) => init.xavierNormal_(t, 2),
        2 * Math.sqrt(2 / 500),
        'normal',
      ],
      [
        'kaimingUniform_ default',
        [256, 400],
        (t) => init.kaimingUniform_(t),
        Math.sqrt(2 / 400),
        'uniform',
      ],
      [
        'kaimingUniform_ a=√5',
        [256, 400],
        (t) => init.kaimingUniform_(t, { a: Math.sqrt(5) }),
        1 / Math.sqrt(3 * 400),
        'uniform',
      ],
      [
        'kaimingNormal_ fanOut relu',
        [256, 400],
        (t) => init.kaimingNormal_(t, { mode: 'fanOut', nonlinearity: 'relu' }),
        Math.sqrt(2 / 256),
        'normal',
      ],
      [
        'kaimingNormal_ conv fanIn',
        [64, 32, 5, 5],
        (t) => init.kaimingNormal_(t, { nonlinearity: 'tanh' }),
        5 / 3 / Math.sqrt(800),
        'normal',
      ],
    ];
    for (const [label, shape, fill, std, dist] of cases) {
      const t = nb.zeros(shape);
      expect(fill(t), label).toBe(t);
      const s = stats(t);
      expect(Math.abs(s.std / std - 1), `${label} std ${s.std} vs ${std}`).toBeLessThan(0.02);
      expect(Math.abs(s.mean), `${label} mean`).toBeLessThan((4 * std) / Math.sqrt(t.size));
      if (dist === 'uniform') {
        const bound = Math.sqrt(3) * std;
        expect(s.max, label).toBeLessThanOrEqual(bound);
        expect(s.min, label).toBeGreaterThanOrEqual(-bound);
        expect(s.max, label).toBeGreaterThan(0.99 * bound);
      } else {
        expect(s.max, label).toBeGreaterThan(3 * std); // a normal's tails, not a uniform's
      }
      t.dispose();
    }
  });

  it('uniform_, normal_, constant_, zeros_, ones_ fill in place', () => {
    nb.manualSeed(6);
    const t = nb.zeros([100, 1000]);
    const u = stats(init.uniform_(t, -2, 5));
    expect(u.min).toBeGreaterThanOrEqual(-2);
    expect(u.max).toBeLessThan(5);
    expect(Math.abs(u.mean - 1.5)).toBeLessThan(0.03);
    const n = stats(init.normal_(t, 3, 0.5));
    expect(Math.abs(n.mean - 3)).toBeLessThan(0.01);
    expect(Math.abs(n.std - 0.5)).toBeLessThan(0.01);
    const small = nb.zeros([2, 2]);
    expect(Array.from(init.constant_(small, 0.25).toArray())).toEqual([0.25, 0.25, 0.25, 0.25]);
    expect(Array.from(init.ones_(small).toArray())).toEqual([1, 1, 1, 1]);
    expect(Array.from(init.zeros_(small).toArray())).toEqual([0, 0, 0, 0]);
    t.dispose();
    small.dispose();
  });

  it('re-initialises a parameter outside noGrad without recording a graph', () => {
    const p = nn.Parameter(nb.zeros([4, 4]));
    init.kaimingNormal_(p);
    init.zeros_(p);
    init.xavierUniform_(p);
    expect(p.isLeaf && p.requiresGrad && p.gradFn === null).toBe(true);
    expect(p.toArray().some((v) => v !== 0)).toBe(true);
    p.dispose();
  });

  it('rejects tensors and options it cannot handle', () => {
    const v = nb.zeros([5]);
    expect(() => init.xavierUniform_(v)).toThrow(/at least 2 dims, got shape \[5\]/);
    expect(() => init.kaimingNormal_(v)).toThrow(nb.ValueError);
    const m = nb.zeros([3, 3]);
    expect(() => init.kaimingUniform_(m, { mode: 'fanAll' as 'fanIn' })).toThrow(
      /^kaimingUniform_: mode must be 'fanIn' or 'fanOut'/,
    );
    const ints = nb.zeros([3, 3], { dtype: 'int32' });
    expect(() => init.normal_(ints)).toThrow(nb.DTypeError);
    [v, m, ints].forEach((t) => t.dispose());
  });
});

describe('functional forms and error messages', () => {
  it('functional.linear/layerNorm/embedding agree with the modules', () => {
    nb.tidy(() => {
      const F = nn.functional;
      const lin = new nn.Linear(3, 2);
      const x = nb.randn([4, 3]);
      expect(Array.from(F.linear(x, lin.weight, lin.bias).toArray())).toEqual(
        Array.from(lin.forward(x).toArray()),
      );
      const ln = new nn.LayerNorm(3);
      expect(Array.from(F.layerNorm(x, [3], ln.weight, ln.bias).toArray())).toEqual(
        Array.from(ln.forward(x).toArray()),
      );
      const emb = new nn.Embedding(5, 2);
      const idx = nb.tensor([4, 0, 4]);
      expect(Array.from(F.embedding(idx, emb.weight).toArray())).toEqual(
        Array.from(emb.forward(idx).toArray()),
      );
      // Without bias or affine: plain x·Wᵀ and a plain normalisation.
      const w = lin.weight.toArray();
      const xv = x.toArray();
      const y = F.linear(x, lin.weight).toArray();
      expectClose(
        y,
        [0, 1, 2, 3].flatMap((r) =>
          [0, 1].map((o) => [0, 1, 2].reduce((s, i) => s + xv[r * 3 + i] * w[o * 3 + i], 0)),
        ),
        SUMS,
      );
      const normed = F.layerNorm(x, 3).toArray();
      for (let r = 0; r < 4; r++) {
        const row = Array.from(xv.slice(r * 3, r * 3 + 3));
        const mu = row.reduce((a, b) => a + b) / 3;
        const v = row.reduce((a, b) => a + (b - mu) ** 2, 0) / 3;
        expectClose(
          normed.slice(r * 3, r * 3 + 3),
          row.map((e) => (e - mu) / Math.sqrt(v + 1e-5)),
          SUMS,
        );
      }
      [lin, ln, emb].forEach((m) => m.dispose());
    });
  });

  it('errors name the layer and the shapes', () => {
    nb.tidy(() => {
      const lin = new nn.Linear(4, 3);
      expect(() => lin.forward(nb.zeros([2, 5]))).toThrow(nb.ShapeError);
      expect(() => lin.forward(nb.zeros([2, 5]))).toThrow(
        /^linear: input \[2, 5\] must end in 4 features to match weight \[3, 4\]/,
      );
      expect(() => nn.functional.linear(nb.zeros([2, 4]), lin.weight, nb.zeros([4]))).toThrow(
        /^linear: bias \[4\] must be \[3\]/,
      );
      const ln = new nn.LayerNorm([3, 4]);
      expect(() => ln.forward(nb.zeros([2, 4, 3]))).toThrow(
        /^layerNorm: input \[2, 4, 3\] must end in the normalized shape \[3, 4\]/,
      );
      const emb = new nn.Embedding(5, 2);
      expect(() => emb.forward(nb.tensor([1.5]))).toThrow(nb.DTypeError);
      expect(() => emb.forward(nb.tensor([[1, 9]]))).toThrow(nb.IndexError);
      expect(() => emb.forward(nb.tensor([[1, 9]]))).toThrow(
        /^embedding: index 9 at position 1 is out of range for 5 embeddings/,
      );
      expect(() => new nn.Embedding(5, 2, { paddingIdx: 5 })).toThrow(
        /^Embedding: paddingIdx 5 is out of range for 5 embeddings/,
      );
      expect(() => new nn.Linear(-1, 2)).toThrow(
        /^Linear: inFeatures must be a non-negative integer/,
      );
      [lin, ln, emb].forEach((m) => m.dispose());
    });
  });
});

describe('gradcheck', () => {
  it('Linear (input, weight, bias)', () => {
    nb.manualSeed(21);
    const m = new nn.Linear(4, 3);
    const x = nb.randn([2, 4], { requiresGrad: true });
    const r = nb.gradcheck((xi) => m.forward(xi), [x, m.weight, m.bias!]);
    expect(r.ok, JSON.stringify(r.worst)).toBe(true);
    m.dispose();
    x.dispose();
  });

  it('LayerNorm over 2 dims with a non-trivial affine', () => {
    nb.manualSeed(22);
    const m = new nn.LayerNorm([2, 3]);
    nn.init.normal_(m.weight!, 1, 0.3);
    nn.init.normal_(m.bias!, 0, 0.3);
    const x = nb.randn([3, 2, 3], { requiresGrad: true });
    const r = nb.gradcheck((xi) => m.forward(xi), [x, m.weight!, m.bias!]);
    expect(r.ok, JSON.stringify(r.worst)).toBe(true);
    m.dispose();
    x.dispose();
  });

  it('Embedding with repeated indices', () => {
    nb.manualSeed(23);
    const m = new nn.Embedding(5, 3);
    const idx = nb.tensor([
      [0, 3, 3],
      [4, 0, 3],
    ]);
    const r = nb.gradcheck(() => m.forward(idx), [m.weight]);
    expect(r.ok, JSON.stringify(r.worst)).toBe(true);
    m.dispose();
    idx.dispose();
  });
});

describe('memory', () => {
  it('inference outside any scope leaves only the outputs alive', () => {
    const lin = new nn.Linear(8, 4);
    const ln = new nn.LayerNorm(4);
    const emb = new nn.Embedding(10, 8, { paddingIdx: 0 });
    const drop = new nn.Dropout(0.5);
    const idx = nb.tensor([[1, 0, 3]]);
    const before = nb.memory().tensors;
    const outs = nb.noGrad(() => {
      const e = emb.forward(idx);
      const h = drop.forward(e);
      const y = lin.forward(h);
      return [e, h, y, ln.forward(y)];
    });
    expect(nb.memory().tensors).toBe(before + 4);
    outs.forEach((t) => t.dispose());
    expect(nb.memory().tensors).toBe(before);
    [lin, ln, emb].forEach((m) => m.dispose());
    idx.dispose();
  });

  it('training steps in tidy keep the tensor count flat', () => {
    const model = new nn.Sequential(
      new nn.Linear(6, 16),
      new nn.GELU(),
      new nn.Dropout(0.2),
      new nn.LayerNorm(16),
      new nn.Linear(16, 2),
    );
    const x = nb.randn([8, 6]);
    const step = () => {
      nb.tidy(() => model.forward(x).square().mean().backward());
      model.zeroGrad();
    };
    step();
    const before = nb.memory().tensors;
    for (let i = 0; i < 5; i++) step();
    expect(nb.memory().tensors).toBe(before);
    model.dispose();
    x.dispose();
  });
});
