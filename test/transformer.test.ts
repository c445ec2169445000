// nn.MultiheadAttention, TransformerEncoder(Layer), TransformerDecoder(Layer) and the positional
// encodings. Against torch.nn (scripts/fixtures/make_attention_fixtures.py): each case loads
// PyTorch's state dict strictly (same keys, same order), then compares the output, the
// attention weights and the gradients of every input and parameter, and the repr. Plus
// gradcheck, float64 references for the positional encodings, and typed errors.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { assertClose, seeded } from './helpers/close.js';

const nn = nb.nn;
type Tensor = nb.Tensor;

beforeAll(async () => {
  await nb.init();
});

interface Rec {
  shape: number[];
  dtype?: 'int32' | 'float32';
  data: number[];
}

interface ModuleCase {
  name: string;
  kind: 'mha' | 'encoderLayer' | 'encoder' | 'decoderLayer' | 'decoder';
  ctor: Record<string, unknown>;
  forward: Record<string, unknown>;
  state: [string, number[], number[]][];
  inputs: Record<string, Rec>;
  masks: Record<string, Rec>;
  out: Rec;
  weights: Rec | null;
  upstream: { out: number[]; weights: number[] | null };
  grads: { inputs: Record<string, number[]>; params: Record<string, number[]> };
  repr: string;
}

interface SavedCase {
  safetensors: string;
  keys: string[];
  input: Rec;
  output: Rec;
}

const fixtures = JSON.parse(readFileSync('test/fixtures/attention.json', 'utf8')) as {
  modules: ModuleCase[];
  saved: { mha: SavedCase; encoder: SavedCase };
};

const fromRec = (r: Rec, requiresGrad = false): Tensor =>
  nb.tensor(r.dtype === 'int32' ? Int32Array.from(r.data) : Float32Array.from(r.data), {
    shape: r.shape,
    dtype: r.dtype ?? 'float32',
    requiresGrad,
  });

const values = (t: Tensor | null): number[] => Array.from(t!.toArray());

function layerOpts(c: Record<string, unknown>): nb.nn.TransformerLayerOptions {
  return {
    dimFeedforward: c.dimFeedforward as number,
    dropout: c.dropout as number,
    activation: (c.activation as 'relu' | 'gelu' | undefined) ?? 'relu',
    batchFirst: (c.batchFirst as boolean | undefined) ?? false,
    normFirst: (c.normFirst as boolean | undefined) ?? false,
  };
}

function build(c: ModuleCase): nb.nn.Module {
  const k = c.ctor;
  const d = k.dModel as number;
  const h = k.nhead as number;
  switch (c.kind) {
    case 'mha':
      return new nn.MultiheadAttention(k.embedDim as number, k.numHeads as number, {
        kdim: (k.kdim as number | undefined) ?? null,
        vdim: (k.vdim as number | undefined) ?? null,
        bias: (k.bias as boolean | undefined) ?? true,
        batchFirst: (k.batchFirst as boolean | undefined) ?? false,
      });
    case 'encoderLayer':
      return new nn.TransformerEncoderLayer(d, h, layerOpts(k));
    case 'encoder':
      return new nn.TransformerEncoder(
        new nn.TransformerEncoderLayer(d, h, layerOpts(k)),
        k.numLayers as number,
        { norm: new nn.LayerNorm(d) },
      );
    case 'decoderLayer':
      return new nn.TransformerDecoderLayer(d, h, layerOpts(k));
    case 'decoder':
      return new nn.TransformerDecoder(
        new nn.TransformerDecoderLayer(d, h, layerOpts(k)),
        k.numLayers as number,
        { norm: new nn.LayerNorm(d) },
      );
  }
}

function call(
  c: ModuleCase,
  m: nb.nn.Module,
  x: Record<string, Tensor>,
  masks: Record<string, Tensor>,
): [Tensor, Tensor | null] {
  switch (c.kind) {
    case 'mha':
      return (m as nb.nn.MultiheadAttention).forward(x.query, x.key, x.value, {
        ...c.forward,
        attnMask: masks.attnMask,
        keyPaddingMask: masks.keyPaddingMask,
      });
    case 'encoderLayer':
      return [
        (m as nb.nn.TransformerEncoderLayer).forward(x.src, { ...c.forward, ...masks }),
        null,
      ];
    case 'encoder': {
      const { srcMask, ...rest } = masks;
      const opts = { ...c.forward, ...rest, mask: srcMask };
      return [(m as nb.nn.TransformerEncoder).forward(x.src, opts), null];
    }
    case 'decoderLayer':
    case 'decoder':
      return [
        (m as nb.nn.TransformerDecoder).forward(x.tgt, x.memory, { ...c.forward, ...masks }),
        null,
      ];
  }
}

describe('attention and transformer modules vs PyTorch', () => {
  for (const c of fixtures.modules) {
    it(c.name, () => {
      nb.tidy(() => {
        const m = build(c);
        // PyTorch's state dict: same keys in the same order, loaded strictly.
        expect(Object.keys(m.stateDict())).toEqual(c.state.map(([k]) => k));
        const sd = Object.fromEntries(
          c.state.map(([k, shape, data]) => [k, nb.tensor(Float32Array.from(data), { shape })]),
        );
        expect(m.loadStateDict(sd, { strict: true })).toEqual({
          missingKeys: [],
          unexpectedKeys: [],
        });
        expect(m.toString()).toBe(c.repr);
        const x = Object.fromEntries(
          Object.entries(c.inputs).map(([k, r]) => [k, fromRec(r, true)]),
        );
        const masks = Object.fromEntries(Object.entries(c.masks).map(([k, r]) => [k, fromRec(r)]));
        const [y, w] = call(c, m, x, masks);
        expect(y.shape).toEqual(c.out.shape);
        assertClose(values(y), c.out.data, { rtol: 1e-5, atol: 1e-5 }, `${c.name} out`);
        if (c.weights) {
          expect(w!.shape).toEqual(c.weights.shape);
          assertClose(values(w), c.weights.data, { rtol: 1e-5, atol: 1e-6 }, `${c.name} weights`);
        } else if (c.kind === 'mha') {
          expect(w).toBeNull();
        }
        let loss = y.mul(nb.tensor(Float32Array.from(c.upstream.out), { shape: y.shape })).sum();
        if (w && c.upstream.weights) {
          const gw = nb.tensor(Float32Array.from(c.upstream.weights), { shape: w.shape });
          loss = loss.add(w.mul(gw).sum());
        }
        loss.backward();
        const tol = { rtol: 1e-5, atol: 1e-5 };
        for (const [k, g] of Object.entries(c.grads.inputs)) {
          assertClose(values(x[k].grad), g, tol, `${c.name} d${k}`);
        }
        const params = new Map(m.namedParameters());
        for (const [k, g] of Object.entries(c.grads.params)) {
          assertClose(values(params.get(k)!.grad), g, tol, `${c.name} d${k}`);
        }
        m.dispose();
      });
    });
  }
});

describe('state dicts saved by PyTorch (safetensors)', () => {
  const cases: [string, () => nb.nn.Module, (m: nb.nn.Module, x: Tensor) => Tensor][] = [
    [
      'mha',
      () => new nn.MultiheadAttention(8, 2),
      (m, x) => (m as nb.nn.MultiheadAttention).forward(x, x, x, { needWeights: false })[0],
    ],
    [
      'encoder',
      () =>
        new nn.TransformerEncoder(new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16 }), 2, {
          norm: new nn.LayerNorm(8),
        }),
      (m, x) => (m as nb.nn.TransformerEncoder).forward(x),
    ],
  ];
  for (const [name, make, run] of cases) {
    it(`${name}: loads strictly, gives torch's output, saves the same bytes back`, () => {
      nb.tidy(() => {
        const c = fixtures.saved[name as 'mha' | 'encoder'];
        const bytes = Uint8Array.from(Buffer.from(c.safetensors, 'base64'));
        const m = make();
        m.loadStateDict(nb.io.loadSafetensors(bytes), { strict: true });
        expect(Object.keys(m.stateDict())).toEqual(c.keys);
        m.eval();
        const y = nb.noGrad(() => run(m, fromRec(c.input)));
        assertClose(values(y), c.output.data, { rtol: 1e-5, atol: 1e-5 }, `${name} output`);
        // The other direction: nabla writes the very file torch's state dict gives.
        expect(nb.io.saveSafetensors(m.stateDict())).toEqual(bytes);
        m.dispose();
      });
    });
  }
});

describe('module defaults and options', () => {
  it('MultiheadAttention initialises like torch: xavier in_proj, zero biases', () => {
    nb.tidy(() => {
      nb.manualSeed(0);
      const m = new nn.MultiheadAttention(16, 4);
      const w = values(m.in_proj_weight);
      const bound = Math.sqrt(6 / (16 + 48));
      expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(bound);
      expect(Math.max(...w.map(Math.abs))).toBeGreaterThan(0.8 * bound);
      expect(values(m.in_proj_bias).every((v) => v === 0)).toBe(true);
      expect(values(m.out_proj.bias).every((v) => v === 0)).toBe(true);
      m.dispose();
    });
  });

  it('needWeights=false uses the fused kernel and equals the weights path', () => {
    nb.tidy(() => {
      nb.manualSeed(1);
      const m = new nn.MultiheadAttention(8, 2);
      const q = nb.randn([5, 3, 8]);
      const pad = nb.tensor(
        Int32Array.from({ length: 15 }, (_, i) => (i % 5 === 4 ? 1 : 0)),
        { shape: [3, 5], dtype: 'int32' },
      );
      const [a] = m.forward(q, q, q, { keyPaddingMask: pad, needWeights: false });
      const [b, w] = m.forward(q, q, q, { keyPaddingMask: pad });
      assertClose(values(a), values(b), { rtol: 1e-5, atol: 1e-6 }, 'fused vs weights');
      // Padded keys get no weight.
      const wv = values(w);
      for (let i = 0; i < wv.length; i += 5) expect(wv[i + 4]).toBe(0);
      m.dispose();
    });
  });

  it('TransformerEncoder layers are independent copies of the given layer', () => {
    nb.tidy(() => {
      const layer = new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16 });
      const enc = new nn.TransformerEncoder(layer, 2);
      const a = enc.layers.at(0).linear1.weight;
      const b = enc.layers.at(1).linear1.weight;
      expect(values(a)).toEqual(values(layer.linear1.weight));
      expect(values(b)).toEqual(values(layer.linear1.weight));
      expect(a).not.toBe(b);
      expect(a).not.toBe(layer.linear1.weight);
      enc.dispose();
      layer.dispose();
    });
  });

  it('dropout in training mode changes the output and eval() removes it', () => {
    nb.tidy(() => {
      nb.manualSeed(2);
      const layer = new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16, dropout: 0.5 });
      const x = nb.randn([4, 2, 8]);
      const train = values(layer.forward(x));
      layer.eval();
      const e1 = values(layer.forward(x));
      const e2 = values(layer.forward(x));
      expect(e1).toEqual(e2);
      expect(train).not.toEqual(e1);
      layer.dispose();
    });
  });
});

describe('transformer gradcheck', () => {
  it('MultiheadAttention inputs, fused and weights paths', () => {
    nb.tidy(() => {
      nb.manualSeed(5);
      const m = new nn.MultiheadAttention(4, 2);
      const leaf = (shape: number[], seed: number): Tensor =>
        nb.tensor(
          seeded(
            shape.reduce((a, b) => a * b, 1),
            seed,
          ),
          { shape, requiresGrad: true },
        );
      for (const needWeights of [false, true]) {
        const r = nb.gradcheck(
          (q, k, v) => m.forward(q, k, v, { needWeights })[0],
          [leaf([3, 2, 4], 1), leaf([5, 2, 4], 2), leaf([5, 2, 4], 3)],
        );
        expect(r.ok, JSON.stringify(r.worst)).toBe(true);
      }
      m.dispose();
    });
  });

  it('decoder layer (pre-norm, gelu) inputs', () => {
    nb.tidy(() => {
      nb.manualSeed(6);
      const layer = new nn.TransformerDecoderLayer(4, 2, {
        dimFeedforward: 8,
        dropout: 0,
        normFirst: true,
        activation: 'gelu',
      });
      const tgt = nb.tensor(seeded(3 * 2 * 4, 7), { shape: [3, 2, 4], requiresGrad: true });
      const mem = nb.tensor(seeded(4 * 2 * 4, 8), { shape: [4, 2, 4], requiresGrad: true });
      const r = nb.gradcheck((t, s) => layer.forward(t, s, { tgtIsCausal: true }), [tgt, mem]);
      expect(r.ok, JSON.stringify(r.worst)).toBe(true);
      layer.dispose();
    });
  });
});

describe('positional encodings', () => {
  it('sinusoidal table matches the float64 formula', () => {
    nb.tidy(() => {
      const [L, D] = [7, 6];
      const pe = values(nn.sinusoidalPositionalEncoding(L, D));
      const ref: number[] = [];
      for (let p = 0; p < L; p++) {
        for (let i = 0; i < D; i++) {
          const k = i - (i % 2);
          const a = p / Math.pow(10000, k / D);
          ref.push(i % 2 === 0 ? Math.sin(a) : Math.cos(a));
        }
      }
      assertClose(pe, ref, { rtol: 1e-6, atol: 1e-7 }, 'pe');
    });
  });

  it('SinusoidalPositionalEncoding adds the table along the sequence dim', () => {
    nb.tidy(() => {
      const m = new nn.SinusoidalPositionalEncoding(4, { maxLen: 10 });
      const x = nb.zeros([3, 2, 4]);
      const y = values(m.forward(x));
      const pe = values(nn.sinusoidalPositionalEncoding(3, 4));
      for (let l = 0; l < 3; l++) {
        for (let n = 0; n < 2; n++) {
          expect(y.slice((l * 2 + n) * 4, (l * 2 + n + 1) * 4)).toEqual(pe.slice(l * 4, l * 4 + 4));
        }
      }
      const bf = new nn.SinusoidalPositionalEncoding(4, { maxLen: 10, batchFirst: true });
      const yb = values(bf.forward(nb.zeros([2, 3, 4])));
      expect(yb.slice(12, 24)).toEqual(pe);
      expect(Object.keys(m.stateDict())).toEqual([]);
      expect(m.toString()).toBe(
        'SinusoidalPositionalEncoding(\n  d_model=4, max_len=10\n  (dropout): Dropout(p=0.0, inplace=False)\n)',
      );
      expect(() => m.forward(nb.zeros([11, 1, 4]))).toThrow(/sequence length 11 exceeds maxLen 10/);
    });
  });

  it('LearnedPositionalEncoding: parameter weight, gradient reaches the used rows only', () => {
    nb.tidy(() => {
      const m = new nn.LearnedPositionalEncoding(6, 3, { batchFirst: true });
      expect(Object.keys(m.stateDict())).toEqual(['weight']);
      m.forward(nb.ones([2, 4, 3]))
        .sum()
        .backward();
      const g = values(m.weight.grad);
      expect(g.slice(0, 12).every((v) => v === 2)).toBe(true);
      expect(g.slice(12).every((v) => v === 0)).toBe(true);
      m.dispose();
    });
  });

  it('rotary embedding equals the float64 rotation and keeps norms', () => {
    nb.tidy(() => {
      const [L, D] = [5, 8];
      const xs = seeded(2 * L * D, 3);
      const x = nb.tensor(xs, { shape: [2, L, D] });
      const y = values(nn.applyRotaryEmbedding(x, nn.rotaryEmbedding(L, D, { base: 100 })));
      const ref: number[] = [];
      for (let b = 0; b < 2; b++) {
        for (let p = 0; p < L; p++) {
          const row = Array.from(xs.slice((b * L + p) * D, (b * L + p + 1) * D));
          const out = new Array<number>(D);
          for (let i = 0; i < D / 2; i++) {
            const a = p * Math.pow(100, (-2 * i) / D);
            const [u, v] = [row[i], row[i + D / 2]];
            out[i] = u * Math.cos(a) - v * Math.sin(a);
            out[i + D / 2] = v * Math.cos(a) + u * Math.sin(a);
          }
          ref.push(...out);
        }
      }
      assertClose(y, ref, { rtol: 1e-5, atol: 1e-6 }, 'rope');
      // Relative property: q_m · k_n depends only on m - n.
      const t = nn.rotaryEmbedding(6, 4);
      const one = nb.tensor(seeded(4, 9), { shape: [1, 4] }).expand([6, 4]);
      const r = values(nn.applyRotaryEmbedding(one, t));
      const dot = (i: number, j: number): number =>
        [0, 1, 2, 3].reduce((s, c) => s + r[i * 4 + c] * r[j * 4 + c], 0);
      expect(dot(3, 1)).toBeCloseTo(dot(4, 2), 5);
    });
  });

  it('rotary gradcheck', () => {
    nb.tidy(() => {
      const t = nn.rotaryEmbedding(3, 4);
      const x = nb.tensor(seeded(24, 4), { shape: [2, 3, 4], requiresGrad: true });
      const r = nb.gradcheck((a) => nn.applyRotaryEmbedding(a, t), [x]);
      expect(r.ok, JSON.stringify(r.worst)).toBe(true);
    });
  });
});

describe('transformer errors', () => {
  it('name the module and the offending values', () => {
    nb.tidy(() => {
      expect(() => new nn.MultiheadAttention(6, 4)).toThrow(
        /MultiheadAttention: embedDim 6 must be divisible by numHeads 4/,
      );
      expect(() => new nn.MultiheadAttention(0, 1)).toThrow(nb.ValueError);
      const m = new nn.MultiheadAttention(4, 2);
      const x = nb.zeros([3, 2, 4]);
      expect(() => m.forward(x, nb.zeros([3, 2, 5]), x)).toThrow(nb.ShapeError);
      expect(() => m.forward(x, x, x, { attnMask: nb.zeros([3, 4]) })).toThrow(
        /attnMask \[3, 4\] must be \[3, 3\] or \[4, 3, 3\]/,
      );
      expect(() =>
        m.forward(x, x, x, { keyPaddingMask: nb.zeros([3, 2], { dtype: 'int32' }) }),
      ).toThrow(/keyPaddingMask \[3, 2\] must be \[2, 3\]/);
      expect(() => m.forward(nb.zeros([4]), nb.zeros([4]), nb.zeros([4]))).toThrow(nb.ShapeError);
      expect(() => new nn.TransformerEncoderLayer(4, 2, { activation: 'tanh' as 'relu' })).toThrow(
        /TransformerEncoderLayer: activation must be 'relu' or 'gelu', got tanh/,
      );
      const layer = new nn.TransformerEncoderLayer(4, 2, { dimFeedforward: 8 });
      expect(() => new nn.TransformerEncoder(layer, 1.5)).toThrow(
        /TransformerEncoder: numLayers must be a non-negative integer, got 1.5/,
      );
      expect(() => layer.forward(nb.zeros([3, 2, 5]))).toThrow(
        /MultiheadAttention: query \[3, 2, 5\]/,
      );
      layer.dispose();
      const dec = new nn.TransformerDecoderLayer(4, 2, { dimFeedforward: 8 });
      expect(() => new nn.TransformerDecoder(dec, -1)).toThrow(nb.ValueError);
      expect(() => dec.forward(nb.zeros([3, 2, 4]), nb.zeros([5, 3, 4]))).toThrow(nb.ShapeError);
      dec.dispose();
      const learned = new nn.LearnedPositionalEncoding(3, 4);
      expect(() => learned.forward(nb.zeros([4, 1, 4]))).toThrow(
        /LearnedPositionalEncoding: sequence length 4 exceeds maxLen 3/,
      );
      expect(() => learned.forward(nb.zeros([2, 1, 5]))).toThrow(
        /LearnedPositionalEncoding: input \[2, 1, 5\] must be \[L, N, 4\]/,
      );
      learned.dispose();
      expect(() => nn.rotaryEmbedding(4, 3)).toThrow(/dim must be a positive even integer, got 3/);
      const t = nn.rotaryEmbedding(4, 4);
      expect(() => nn.applyRotaryEmbedding(nb.zeros([3, 4]), t)).toThrow(
        /applyRotaryEmbedding: input \[3, 4\] must end in \[L, dim\] matching the tables \[4, 4\]/,
      );
      m.dispose();
    });
  });
});

describe('TransformerEncoder under noGrad', () => {
  it("frees each layer's intermediates as it goes, unless hooks may keep them", () => {
    nb.manualSeed(12);
    const layer = new nn.TransformerEncoderLayer(32, 4, { dimFeedforward: 64, dropout: 0 });
    const enc = new nn.TransformerEncoder(layer, 4).eval();
    const x = nb.keep(nb.randn([8, 24, 32]));
    const withGrad = Array.from(enc.forward(x).toArray());
    const peak = () => {
      nb.resetPeakMemory();
      const base = nb.memory().bytes;
      const out = nb.noGrad(() => nb.tidy(() => Array.from(enc.forward(x).toArray())));
      return { out, bytes: nb.memory().peakBytes - base };
    };
    const freed = peak();
    expect(freed.out).toEqual(withGrad);
    const handle = enc.layers.at(1).linear1.registerForwardHook(() => undefined);
    const hooked = peak();
    expect(hooked.out).toEqual(withGrad);
    expect(freed.bytes).toBeLessThan(0.6 * hooked.bytes);
    handle.remove();
    enc.dispose();
    x.dispose();
  });
});
