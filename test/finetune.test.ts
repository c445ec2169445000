// Fine-tuning tools: module hooks (order, removal, replacement, backward gradients against
// autograd), freeze/unfreeze, get/setSubmodule, requiresGrad_, summary counts, parameter groups
// without decay on biases and norms (an AdamW step against a float64 formula), and Houlsby
// bottleneck adapters against torch (scripts/fixtures/make_lora_fixtures.py).
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import type { nn as NN } from '../ts/index.js';
import { assertClose } from './helpers/close.js';

const nn = nb.nn;
const arr = (t: nb.Tensor): number[] => Array.from(t.toArray());

interface Rec {
  shape: number[];
  data: number[];
}
const fx = JSON.parse(readFileSync('test/fixtures/lora.json', 'utf8')) as {
  bottleneck: {
    name: string;
    dim: number;
    hidden: number;
    activation: NN.adapters.AdapterActivation;
    params: Record<string, Rec>;
    x: Rec;
    upstream: Rec;
    y: Rec;
    grad_x: Rec;
    grads: Record<string, Rec>;
  }[];
};
const T = (r: Rec, requiresGrad = false): nb.Tensor =>
  nb.tensor(Float32Array.from(r.data), { shape: r.shape, requiresGrad });

beforeAll(async () => {
  await nb.init();
});

class Net extends nn.Module {
  body = new nn.Sequential(new nn.Linear(4, 6), new nn.Tanh(), new nn.Linear(6, 6));
  norm = new nn.LayerNorm(6);
  heads = new nn.ModuleDict({ cls: new nn.Linear(6, 3) });
  forward(x: nb.Tensor): nb.Tensor {
    return this.heads.get('cls').forward(this.norm.forward(this.body.forward(x)));
  }
}

describe('forward hooks', () => {
  it('run in registration order on calls inside containers, and stop after remove()', () => {
    const net = new Net();
    const log: string[] = [];
    const inner = net.body[2];
    const h1 = inner.registerForwardPreHook(() => void log.push('pre1'));
    const h2 = inner.registerForwardHook(() => void log.push('fwd1'));
    inner.registerForwardPreHook(() => void log.push('pre2'));
    inner.registerForwardHook(() => void log.push('fwd2'));
    net.registerForwardHook(() => void log.push('net'));
    net.forward(nb.randn([2, 4]));
    expect(log).toEqual(['pre1', 'pre2', 'fwd1', 'fwd2', 'net']);
    h1.remove();
    h2.remove();
    h2.remove(); // idempotent
    log.length = 0;
    net.forward(nb.randn([2, 4]));
    expect(log).toEqual(['pre2', 'fwd2', 'net']);
  });

  it('a pre-hook replaces the arguments, a forward hook replaces the output', () => {
    const lin = new nn.Linear(3, 2);
    const x = nb.randn([4, 3]);
    const y = arr(lin.forward(x));
    const seen: unknown[] = [];
    const hp = lin.registerForwardPreHook((_m, args) => [(args[0] as nb.Tensor).mul(2)]);
    const hf = lin.registerForwardHook((m, args, out) => {
      seen.push(m, args[0]);
      return (out as nb.Tensor).add(1);
    });
    const w = arr(lin.weight);
    const b = arr(lin.bias!);
    const got = arr(lin.forward(x));
    const xs = arr(x);
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 2; j++) {
        let e = b[j] + 1;
        for (let k = 0; k < 3; k++) e += 2 * xs[i * 3 + k] * w[j * 3 + k];
        expect(got[i * 2 + j]).toBeCloseTo(e, 5);
      }
    expect(seen[0]).toBe(lin);
    expect(arr(seen[1] as nb.Tensor)).toEqual(xs.map((v) => 2 * v));
    hp.remove();
    hf.remove();
    expect(arr(lin.forward(x))).toEqual(y);
  });

  it('hooks on a layer keep firing after LoRA wraps it', () => {
    class One extends nn.Module {
      fc = new nn.Linear(3, 3);
      forward(x: nb.Tensor): nb.Tensor {
        return this.fc.forward(x);
      }
    }
    const m = new One();
    const base = m.fc;
    let calls = 0;
    base.registerForwardHook(() => void calls++);
    nn.lora.apply(m, { targetModules: ['fc'], r: 1 });
    let wrapperCalls = 0;
    m.fc.registerForwardHook(() => void wrapperCalls++);
    m.forward(nb.randn([1, 3]));
    expect([calls, wrapperCalls]).toEqual([1, 1]);
  });
});

describe('full backward hooks', () => {
  it('see grad_output and grad_input of the call, equal to autograd; may replace grad_input', () => {
    nb.manualSeed(7);
    const lin = new nn.Linear(4, 3);
    const x = nb.randn([5, 4], { requiresGrad: true });
    const c = nb.randn([5, 3]);
    // reference gradients without a hook
    lin.forward(x).mul(c).sum().backward();
    const dx = arr(x.grad!);
    x.grad = null;
    const got: { gi: number[][]; go: number[][] } = { gi: [], go: [] };
    const h = lin.registerFullBackwardHook((m, gradInput, gradOutput) => {
      expect(m).toBe(lin);
      got.gi = gradInput.map((g) => arr(g!));
      got.go = gradOutput.map((g) => arr(g!));
      return [gradInput[0]!.mul(2)];
    });
    lin.forward(x).mul(c).sum().backward();
    expect(got.go).toEqual([arr(c)]); // d(sum(y·c))/dy = c
    assertClose(got.gi[0], dx, { rtol: 1e-6, atol: 1e-7 }, 'grad_input');
    assertClose(
      arr(x.grad!),
      dx.map((v) => 2 * v),
      { rtol: 1e-6, atol: 1e-7 },
      'replaced',
    );
    // weight gradients are untouched by the replacement
    expect(lin.weight.grad).not.toBeNull();
    h.remove();
  });

  it('match central finite differences of a composite module', () => {
    nb.manualSeed(8);
    const net = new Net();
    const x = nb.randn([2, 4], { requiresGrad: true });
    const c = nb.randn([2, 6]);
    let gi: number[] = [];
    let go: number[] = [];
    net.norm.registerFullBackwardHook((_m, gin, gout) => {
      gi = arr(gin[0]!);
      go = arr(gout[0]!);
    });
    const hidden = nb.noGrad(() => net.body.forward(x));
    const f = (h: nb.Tensor): number => nb.noGrad(() => net.norm.forward(h).mul(c).sum().item());
    const hIn = hidden.detach().requiresGrad_();
    net.norm.forward(hIn).mul(c).sum().backward();
    expect(go).toEqual(arr(c));
    const h0 = arr(hidden);
    const eps = 1e-2;
    h0.forEach((_, i) => {
      const plus = h0.slice();
      const minus = h0.slice();
      plus[i] += eps;
      minus[i] -= eps;
      const num =
        (f(nb.tensor(Float32Array.from(plus), { shape: [2, 6] })) -
          f(nb.tensor(Float32Array.from(minus), { shape: [2, 6] }))) /
        (2 * eps);
      expect(Math.abs(gi[i] - num)).toBeLessThan(2e-3);
    });
  });

  it('give one grad_input per tensor argument (attention called as f(x, x, x))', () => {
    nb.manualSeed(9);
    const mha = new nn.MultiheadAttention(4, 2);
    const x = nb.randn([3, 2, 4], { requiresGrad: true });
    let gin: number[][] = [];
    let gout: (nb.Tensor | null)[] = [];
    mha.registerFullBackwardHook((_m, gi, go) => {
      gin = gi.map((g) => arr(g!));
      gout = go;
    });
    const [y] = mha.forward(x, x, x, { needWeights: false });
    y.sum().backward();
    expect(gin.length).toBe(3);
    expect(gout.length).toBe(2); // [output, weights]: no weights were returned
    expect(gout[1]).toBeNull();
    const total = gin[0].map((v, i) => v + gin[1][i] + gin[2][i]);
    assertClose(total, arr(x.grad!), { rtol: 1e-5, atol: 1e-6 }, 'q + k + v = x.grad');
  });

  it('give null grad_input for inputs that need no gradient', () => {
    const lin = new nn.Linear(2, 2);
    let gin: (nb.Tensor | null)[] = [];
    let gout = 0;
    lin.registerFullBackwardHook((_m, gi, go) => {
      gin = gi;
      gout = go.length;
    });
    lin
      .forward(nb.ones([1, 2]))
      .sum()
      .backward();
    expect(gin).toEqual([null]);
    expect(gout).toBe(1);
  });
});

describe('freezing and submodules', () => {
  it('requiresGrad_ over a subtree, freeze/unfreeze by glob, RegExp and predicate', () => {
    const net = new Net();
    expect(net.body.requiresGrad_(false)).toBe(net.body);
    expect(net.body.parameters().every((p) => !p.requiresGrad)).toBe(true);
    expect(net.norm.weight!.requiresGrad).toBe(true);
    expect(nn.unfreeze(net, 'body.*.bias')).toEqual(['body.0.bias', 'body.2.bias']);
    expect(nn.unfreeze(net, 'body.*.bias')).toEqual([]); // nothing left to change
    expect(nn.freeze(net, /^heads\./)).toEqual(['heads.cls.weight', 'heads.cls.bias']);
    expect(nn.freeze(net, (n, p) => n.startsWith('norm') && p.ndim === 1)).toEqual([
      'norm.weight',
      'norm.bias',
    ]);
    expect(nn.unfreeze(net)).toEqual([
      'body.0.weight',
      'body.2.weight',
      'norm.weight',
      'norm.bias',
      'heads.cls.weight',
      'heads.cls.bias',
    ]);
    expect(() => nn.freeze(net, 3 as unknown as string)).toThrow(nb.ValueError);
    // a frozen layer gets no gradient, the others do
    nn.freeze(net, 'body.*');
    net
      .forward(nb.randn([2, 4]))
      .sum()
      .backward();
    expect((net.body[0] as NN.Linear).weight.grad).toBeNull();
    expect(net.heads.get('cls').weight.grad).not.toBeNull();
  });

  it('getSubmodule / setSubmodule by dotted path through Sequential and ModuleDict', () => {
    const net = new Net();
    expect(net.getSubmodule('body.2')).toBe(net.body[2]);
    expect(net.getSubmodule('heads.cls')).toBe(net.heads.get('cls'));
    expect(net.getSubmodule('')).toBe(net);
    expect(() => net.getSubmodule('body.7')).toThrow(nb.IndexError);
    expect(() => net.getSubmodule('body.2.nope')).toThrow(/at 'body.2' has no submodule 'nope'/);
    const head = new nn.Linear(6, 5);
    const old = net.setSubmodule('heads.cls', head);
    expect(old).toBeInstanceOf(nn.Linear);
    expect(net.heads.get('cls')).toBe(head);
    net.setSubmodule('body.1', new nn.ReLU());
    expect(net.body[1]).toBeInstanceOf(nn.ReLU);
    const cls = new nn.Linear(6, 2);
    net.setSubmodule('norm', new nn.Identity());
    expect(Object.keys(net.stateDict())).toEqual([
      'body.0.weight',
      'body.0.bias',
      'body.2.weight',
      'body.2.bias',
      'heads.cls.weight',
      'heads.cls.bias',
    ]);
    expect(net.forward(nb.randn([3, 4])).shape).toEqual([3, 5]);
    expect(() => net.setSubmodule('heads.other', cls)).toThrow(/no submodule 'other' to replace/);
    expect(() => net.setSubmodule('body.2', {} as NN.Module)).toThrow(nb.ValueError);
    expect(() => net.setSubmodule('missing.x', cls)).toThrow(nb.IndexError);
  });

  it('summary reports trainable and total parameters', () => {
    const net = new Net();
    nn.freeze(net, 'body.*');
    const info = nn.summary(net, { asObject: true });
    const body = 4 * 6 + 6 + 6 * 6 + 6;
    expect(info.total).toBe(body + 12 + 6 * 3 + 3);
    expect(info.trainable).toBe(12 + 21);
    expect(info.nonTrainable).toBe(body);
    expect(info.rows.find((r) => r.path === 'body')).toMatchObject({ params: body, trainable: 0 });
    expect(nn.summary(net)).toContain(`Trainable %: ${((100 * 33) / info.total).toFixed(4)}`);
  });
});

describe('parameter groups', () => {
  it('no decay on biases and norm weights, only trainable parameters; AdamW step = float64 formula', () => {
    nb.manualSeed(11);
    const net = new Net();
    nn.freeze(net, 'body.0.*');
    const groups = nb.optim.paramGroupsWithDecay(net, { weightDecay: 0.1 });
    const names = new Map(net.namedParameters().map(([n, p]) => [p, n]));
    expect(groups.map((g) => g.params.map((p) => names.get(p)))).toEqual([
      ['body.2.weight', 'heads.cls.weight'],
      ['body.2.bias', 'norm.weight', 'norm.bias', 'heads.cls.bias'],
    ]);
    expect(groups.map((g) => g.weightDecay)).toEqual([0.1, 0]);
    const extra = nb.optim.paramGroupsWithDecay(net, { noDecay: 'heads.*' });
    expect(extra[0].params.map((p) => names.get(p))).toEqual(['body.2.weight']);
    // per-group learning rates
    const lrs = [0.01, 0.05];
    const opt = new nb.optim.AdamW(
      groups.map((g, i) => ({ ...g, lr: lrs[i] })),
      { eps: 1e-8 },
    );
    const before = net.namedParameters().map(([n, p]) => [n, arr(p)] as const);
    net
      .forward(nb.randn([3, 4]))
      .square()
      .sum()
      .backward();
    const grads = new Map(net.namedParameters().map(([n, p]) => [n, p.grad ? arr(p.grad) : null]));
    opt.step();
    const after = new Map(net.namedParameters().map(([n, p]) => [n, arr(p)]));
    for (const [n, p0] of before) {
      const g = grads.get(n);
      const k = groups.findIndex((gr) => gr.params.some((p) => names.get(p) === n));
      if (k < 0) {
        expect(after.get(n)).toEqual(p0); // frozen: untouched
        continue;
      }
      const [lr, wd] = [lrs[k], groups[k].weightDecay];
      // first AdamW step: p(1 - lr·wd) - lr · ĝ / (|ĝ| + eps), with m̂ = g and v̂ = g²
      const expected = p0.map(
        (v, i) => v * (1 - lr * wd) - (lr * g![i]) / (Math.abs(g![i]) + 1e-8),
      );
      assertClose(after.get(n)!, expected, { rtol: 1e-6, atol: 1e-6 }, n);
    }
  });
});

describe('Houlsby bottleneck adapters', () => {
  for (const c of fx.bottleneck) {
    it(`${c.name}: forward and backward equal torch`, () => {
      const a = new nn.adapters.Bottleneck(c.dim, {
        bottleneckDim: c.hidden,
        activation: c.activation,
      });
      a.loadStateDict(Object.fromEntries(Object.entries(c.params).map(([k, v]) => [k, T(v)])));
      const x = T(c.x, true);
      const y = a.forward(x);
      assertClose(arr(y), c.y.data, { rtol: 1e-5, atol: 1e-5 }, 'y');
      y.backward(T(c.upstream));
      assertClose(arr(x.grad!), c.grad_x.data, { rtol: 1e-5, atol: 1e-5 }, 'grad x');
      for (const [k, p] of a.namedParameters()) {
        assertClose(arr(p.grad!), c.grads[k].data, { rtol: 1e-5, atol: 1e-5 }, k);
      }
    });
  }

  it('starts as the identity; options are checked', () => {
    const a = new nn.adapters.Bottleneck(32, { reductionFactor: 8 });
    expect(a.adapter_down.outFeatures).toBe(4);
    const x = nb.randn([3, 32]);
    expect(arr(a.forward(x))).toEqual(arr(x));
    expect(() => new nn.adapters.Bottleneck(8, { reductionFactor: 2, bottleneckDim: 2 })).toThrow(
      nb.ValueError,
    );
    expect(
      () => new nn.adapters.Bottleneck(8, { activation: 'cube' as NN.adapters.AdapterActivation }),
    ).toThrow(/activation/);
  });

  it('insert after attention and feed-forward of TransformerEncoderLayer: base names kept', () => {
    nb.manualSeed(4);
    const layer = new nn.TransformerEncoderLayer(8, 2, {
      dimFeedforward: 16,
      dropout: 0,
      batchFirst: true,
    });
    const keys = Object.keys(layer.stateDict());
    const x = nb.randn([2, 3, 8]);
    const y0 = arr(layer.forward(x));
    expect(
      nn.adapters.insert(layer, { after: ['self_attn', 'linear2'], bottleneckDim: 2 }),
    ).toEqual(['self_attn', 'linear2']);
    expect(Object.keys(layer.stateDict())).toEqual(keys);
    expect(arr(layer.forward(x))).toEqual(y0); // zero-initialised up-projections
    nn.freeze(layer);
    nn.unfreeze(layer, (_n, p) => nn.isAdapterParameter(p));
    expect(Object.keys(nn.adapters.stateDict(layer))).toEqual([
      'self_attn.adapter.adapter_down.weight',
      'self_attn.adapter.adapter_down.bias',
      'self_attn.adapter.adapter_up.weight',
      'self_attn.adapter.adapter_up.bias',
      'linear2.adapter.adapter_down.weight',
      'linear2.adapter.adapter_down.bias',
      'linear2.adapter.adapter_up.weight',
      'linear2.adapter.adapter_up.bias',
    ]);
    // one SGD step moves the adapters and changes the output; the base stays bitwise equal
    const base0 = Object.fromEntries(
      Object.entries(layer.stateDict()).map(([k, v]) => [k, arr(v)]),
    );
    const opt = new nb.optim.SGD(layer.parameters(), { lr: 0.1 });
    layer.forward(x).square().sum().backward();
    opt.step();
    expect(arr(layer.forward(x))).not.toEqual(y0);
    for (const [k, v] of Object.entries(layer.stateDict())) expect(arr(v)).toEqual(base0[k]);
    expect(() => nn.adapters.insert(layer, { after: ['linear2'] })).toThrow(
      /already has an adapter/,
    );
    nn.adapters.remove(layer);
    expect(arr(layer.forward(x))).toEqual(y0);
    expect(layer.parameters().some((p) => nn.isAdapterParameter(p))).toBe(false);
  });

  it('insert after attn and mlp of GPT-2 blocks; a bad target changes nothing', () => {
    const gpt = new nn.GPT2LMHeadModel(
      new nn.GPT2Config({ vocabSize: 13, nPositions: 8, nEmbd: 8, nLayer: 2, nHead: 2 }),
    );
    gpt.eval(); // no dropout, so outputs compare exactly
    const n = gpt.parameters().length;
    expect(() => nn.adapters.insert(gpt, { after: ['nothing'] })).toThrow(/match no module/);
    const live = nb.memory().tensors;
    expect(() => nn.adapters.insert(gpt, { after: ['attn', 'h'] })).toThrow(
      /width of 'transformer.h'/,
    );
    expect(nb.memory().tensors).toBe(live);
    expect(gpt.parameters().length).toBe(n);
    const ids = nb.tensor(Int32Array.from([1, 2, 3, 4]), { shape: [1, 4] });
    const y0 = arr(gpt.forward(ids).logits);
    expect(nn.adapters.insert(gpt, { after: ['attn', 'mlp'], reductionFactor: 4 })).toEqual([
      'transformer.h.0.attn',
      'transformer.h.0.mlp',
      'transformer.h.1.attn',
      'transformer.h.1.mlp',
    ]);
    expect(gpt.parameters().length).toBe(n + 16);
    expect(arr(gpt.forward(ids).logits)).toEqual(y0);
  });
});

describe('memory', () => {
  it('training with a backward hook and bottleneck adapters keeps the heap flat', () => {
    nb.manualSeed(12);
    const layer = new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16, batchFirst: true });
    nn.adapters.insert(layer, { after: ['self_attn', 'linear2'], bottleneckDim: 2 });
    nn.freeze(layer);
    nn.unfreeze(layer, (_n, p) => nn.isAdapterParameter(p));
    let norms = 0;
    layer.linear1.registerFullBackwardHook((_m, gi, go) => {
      norms += gi.length + go.length;
    });
    const opt = new nb.optim.AdamW(layer.parameters(), { lr: 1e-3 });
    const x = nb.randn([2, 3, 8]);
    const step = (): void =>
      nb.tidy(() => {
        opt.zeroGrad();
        layer.forward(x).square().mean().backward();
        opt.step();
      });
    for (let i = 0; i < 10; i++) step();
    const warm = nb.memory();
    for (let i = 0; i < 100; i++) step();
    const after = nb.memory();
    expect(norms).toBe(110 * 2);
    expect(after.tensors).toBe(warm.tensors);
    expect(after.bytes).toBe(warm.bytes);
    expect(after.heapBytes).toBe(warm.heapBytes);
  });
});
