// nn.RNN / LSTM / GRU, the cells and nn.utils.rnn against PyTorch 1.13 (test/fixtures/rnn.json,
// from scripts/fixtures/make_rnn_fixtures.py): every option combination's output, final states
// and the gradients of input, initial states and every parameter after a strict load of torch's
// state dict; reprs; gradcheck; typed errors; 1,000-step BPTT; truncated BPTT with detach;
// dropout between layers; and a 30-step Adam trajectory of a char-LSTM.
//
// Tolerances: rtol 1e-5 with atol 1e-6 (values near zero after cancelling sums of a dozen
// float32 terms); the 2-layer 64-step case rtol 1e-4, atol 1e-5 (its gradients sum 64 steps of
// chained float32 rounding). Losses of the Adam run: rtol 1e-4 (torch ran in float64).
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { nn, Tensor } from '../ts/index.js';
import { assertClose, type Tolerance } from './helpers/close.js';

beforeAll(async () => {
  await nb.init();
});

interface Shaped {
  shape: number[];
  data: number[];
}
interface ModuleCase {
  name: string;
  mode: 'rnn_tanh' | 'rnn_relu' | 'lstm' | 'gru';
  inputSize: number;
  hiddenSize: number;
  options: {
    numLayers: number;
    bias: boolean;
    batchFirst: boolean;
    bidirectional: boolean;
    projSize: number;
  };
  keys: string[];
  params: Record<string, Shaped>;
  x: Shaped;
  lengths: number[] | null;
  enforceSorted: boolean;
  h0: Shaped | null;
  c0: Shaped | null;
  gOut: Shaped;
  gH: Shaped;
  gC: Shaped | null;
  output: Shaped;
  packedData: Shaped | null;
  batchSizes: number[] | null;
  hN: Shaped;
  cN: Shaped | null;
  grads: Record<string, Shaped>;
}
interface CellCase {
  name: string;
  kind: 'rnncell_tanh' | 'rnncell_relu' | 'lstmcell' | 'grucell';
  inputSize: number;
  hiddenSize: number;
  bias: boolean;
  keys: string[];
  params: Record<string, Shaped>;
  x: Shaped;
  h0: Shaped | null;
  c0: Shaped | null;
  gH: Shaped;
  gC: Shaped | null;
  h: Shaped;
  c: Shaped | null;
  grads: Record<string, Shaped>;
}
interface ReprCase {
  kind: 'RNN' | 'LSTM' | 'GRU' | 'RNNCell' | 'LSTMCell' | 'GRUCell';
  args: [number, number];
  options: Record<string, unknown>;
  repr: string;
}
interface CharLSTMFixture {
  vocab: number;
  embed: number;
  hidden: number;
  lr: number;
  weights: Record<string, Shaped>;
  batches: { x: number[][]; y: number[][] }[];
  losses: number[];
}
interface FromNablaCase {
  x: Shaped;
  output: Shaped;
  hN: Shaped;
}
interface Fixtures {
  fromNabla: Record<'lstm' | 'gru' | 'rnn', FromNablaCase>;
  modules: ModuleCase[];
  cells: CellCase[];
  reprs: ReprCase[];
  charlstm: CharLSTMFixture;
}

const fx = JSON.parse(
  readFileSync(new URL('./fixtures/rnn.json', import.meta.url), 'utf8'),
) as Fixtures;

const TOL: Tolerance = { rtol: 1e-5, atol: 1e-6 };
const LONG_TOL: Tolerance = { rtol: 1e-4, atol: 1e-5 };

function t(s: Shaped, requiresGrad = false): Tensor {
  return nb.tensor(Float32Array.from(s.data), { shape: s.shape, requiresGrad });
}

function close(actual: Tensor, expected: Shaped, tol: Tolerance, label: string): void {
  expect(actual.shape, `${label}: shape`).toEqual(expected.shape);
  assertClose(actual.toArray(), expected.data, tol, label);
}

type AnyRNN = nn.RNN | nn.LSTM | nn.GRU;

function buildModule(c: ModuleCase): AnyRNN {
  const { numLayers, bias, batchFirst, bidirectional, projSize } = c.options;
  const o = { numLayers, bias, batchFirst, bidirectional };
  if (c.mode === 'lstm') return new nn.LSTM(c.inputSize, c.hiddenSize, { ...o, projSize });
  if (c.mode === 'gru') return new nn.GRU(c.inputSize, c.hiddenSize, o);
  const nonlinearity = c.mode === 'rnn_tanh' ? 'tanh' : 'relu';
  return new nn.RNN(c.inputSize, c.hiddenSize, { ...o, nonlinearity });
}

function stateFrom(keys: string[], params: Record<string, Shaped>): Record<string, Tensor> {
  return Object.fromEntries(keys.map((k) => [k, t(params[k])]));
}

/** Calls any of the three modules the same way: `[output, h_n, c_n | null]`. */
function call(
  m: AnyRNN,
  input: Tensor | nn.PackedSequence,
  h0: Tensor | null,
  c0: Tensor | null,
): [Tensor | nn.PackedSequence, Tensor, Tensor | null] {
  if (m instanceof nn.LSTM) {
    const [y, [h, c]] = m.forward(input as Tensor, h0 && c0 ? [h0, c0] : null);
    return [y, h, c];
  }
  const [y, h] = (m as nn.GRU).forward(input as Tensor, h0);
  return [y, h, null];
}

describe('RNN / LSTM / GRU match PyTorch', () => {
  it('has at least 24 configurations, padded and packed', () => {
    expect(fx.modules.length).toBeGreaterThanOrEqual(24);
    expect(fx.modules.filter((c) => c.lengths).length).toBeGreaterThanOrEqual(12);
  });

  for (const c of fx.modules) {
    it(c.name, () => {
      const tol = c.name.includes('long') ? LONG_TOL : TOL;
      const m = buildModule(c);
      expect(Object.keys(m.stateDict())).toEqual(c.keys);
      m.loadStateDict(stateFrom(c.keys, c.params)); // strict
      const x = t(c.x, true);
      const h0 = c.h0 ? t(c.h0, true) : null;
      const c0 = c.c0 ? t(c.c0, true) : null;
      const { batchFirst } = c.options;
      const input = c.lengths
        ? nn.utils.rnn.packPaddedSequence(x, c.lengths, {
            batchFirst,
            enforceSorted: c.enforceSorted,
          })
        : x;
      const [y, hN, cN] = call(m, input, h0, c0);
      let out: Tensor;
      if (y instanceof nn.PackedSequence) {
        expect([...y.batchSizes]).toEqual(c.batchSizes);
        close(y.data, c.packedData!, tol, `${c.name} packed data`);
        const [padded, lengths] = nn.utils.rnn.padPackedSequence(y, { batchFirst });
        expect([...lengths.toArray()]).toEqual(c.lengths);
        out = padded;
      } else {
        out = y;
      }
      close(out, c.output, tol, `${c.name} output`);
      close(hN, c.hN, tol, `${c.name} h_n`);
      if (c.cN) close(cN!, c.cN, tol, `${c.name} c_n`);

      let loss = out
        .mul(t(c.gOut))
        .sum()
        .add(hN.mul(t(c.gH)).sum());
      if (c.gC) loss = loss.add(cN!.mul(t(c.gC)).sum());
      loss.backward();
      close(x.grad!, c.grads.x, tol, `${c.name} grad x`);
      if (h0) close(h0.grad!, c.grads.h0, tol, `${c.name} grad h0`);
      if (c0) close(c0.grad!, c.grads.c0, tol, `${c.name} grad c0`);
      const named = new Map(m.namedParameters());
      for (const k of c.keys) close(named.get(k)!.grad!, c.grads[k], tol, `${c.name} grad ${k}`);
      m.dispose();
    });
  }
});

function buildCell(c: CellCase): nn.RNNCell | nn.LSTMCell | nn.GRUCell {
  if (c.kind === 'lstmcell') return new nn.LSTMCell(c.inputSize, c.hiddenSize, { bias: c.bias });
  if (c.kind === 'grucell') return new nn.GRUCell(c.inputSize, c.hiddenSize, { bias: c.bias });
  const nonlinearity = c.kind === 'rnncell_tanh' ? 'tanh' : 'relu';
  return new nn.RNNCell(c.inputSize, c.hiddenSize, { bias: c.bias, nonlinearity });
}

describe('RNNCell / LSTMCell / GRUCell match PyTorch', () => {
  for (const c of fx.cells) {
    it(c.name, () => {
      const m = buildCell(c);
      expect(Object.keys(m.stateDict())).toEqual(c.keys);
      m.loadStateDict(stateFrom(c.keys, c.params));
      const x = t(c.x, true);
      const h0 = c.h0 ? t(c.h0, true) : null;
      const c0 = c.c0 ? t(c.c0, true) : null;
      let h: Tensor;
      let cc: Tensor | null = null;
      if (m instanceof nn.LSTMCell) [h, cc] = m.forward(x, h0 && c0 ? [h0, c0] : null);
      else h = m.forward(x, h0);
      close(h, c.h, TOL, `${c.name} h`);
      if (c.c) close(cc!, c.c, TOL, `${c.name} c`);
      let loss = h.mul(t(c.gH)).sum();
      if (c.gC) loss = loss.add(cc!.mul(t(c.gC)).sum());
      loss.backward();
      close(x.grad!, c.grads.x, TOL, `${c.name} grad x`);
      if (h0) close(h0.grad!, c.grads.h0, TOL, `${c.name} grad h0`);
      if (c0) close(c0.grad!, c.grads.c0, TOL, `${c.name} grad c0`);
      const named = new Map(m.namedParameters());
      for (const k of c.keys) close(named.get(k)!.grad!, c.grads[k], TOL, `${c.name} grad ${k}`);
    });
  }
});

const camel = (k: string): string => k.replace(/_([a-z])/g, (_, ch: string) => ch.toUpperCase());

describe('reprs and state dicts', () => {
  for (const r of fx.reprs) {
    it(r.repr, () => {
      const opts = Object.fromEntries(Object.entries(r.options).map(([k, v]) => [camel(k), v]));
      const Ctor = nn[r.kind] as unknown as new (a: number, b: number, o: object) => nn.Module;
      expect(String(new Ctor(r.args[0], r.args[1], opts))).toBe(r.repr);
    });
  }

  it("nabla's state dict loads back into an identically configured module", () => {
    const a = new nn.LSTM(3, 4, { numLayers: 2, bidirectional: true, projSize: 2 });
    const b = new nn.LSTM(3, 4, { numLayers: 2, bidirectional: true, projSize: 2 });
    const x = nb.randn([5, 2, 3]);
    b.loadStateDict(a.stateDict());
    const [ya] = a.forward(x);
    const [yb] = b.forward(x);
    expect([...yb.toArray()]).toEqual([...ya.toArray()]);
  });

  it("nabla's state dicts load strictly into torch and give torch's outputs there", () => {
    // The generator loaded these bytes into torch.nn modules with strict=True.
    const bytes = readFileSync(new URL('./fixtures/rnn_nabla_state.safetensors', import.meta.url));
    const state = nb.io.loadSafetensors(bytes);
    const modules = {
      lstm: new nn.LSTM(3, 4, { numLayers: 2, bidirectional: true, projSize: 2, batchFirst: true }),
      gru: new nn.GRU(3, 4, { numLayers: 2, bidirectional: true }),
      rnn: new nn.RNN(3, 4, { nonlinearity: 'relu', bias: false }),
    };
    for (const [prefix, m] of Object.entries(modules)) {
      const own = Object.fromEntries(
        Object.entries(state)
          .filter(([k]) => k.startsWith(`${prefix}.`))
          .map(([k, v]) => [k.slice(prefix.length + 1), v]),
      );
      m.loadStateDict(own);
      const c = fx.fromNabla[prefix as 'lstm' | 'gru' | 'rnn'];
      const [y, h] = call(m, t(c.x), null, null);
      close(y as Tensor, c.output, TOL, `${prefix} output`);
      close(h, c.hN, TOL, `${prefix} h_n`);
    }
  });

  it('initialises every parameter in U(±1/√hiddenSize), as PyTorch', () => {
    const m = new nn.GRU(3, 16, { numLayers: 2, bidirectional: true });
    for (const [k, p] of m.namedParameters()) {
      const v = p.toArray();
      const maxAbs = Math.max(...Array.from(v, Math.abs));
      expect(maxAbs, k).toBeLessThanOrEqual(0.25);
      expect(maxAbs, k).toBeGreaterThan(0.2); // many draws: the range is actually used
    }
  });
});

describe('nn.utils.rnn', () => {
  it('padSequence pads with paddingValue, time- or batch-major, and passes gradients', () => {
    const a = nb.tensor([[1], [2], [3]], { requiresGrad: true });
    const b = nb.tensor([[4]], { requiresGrad: true });
    const p = nn.utils.rnn.padSequence([a, b], { paddingValue: -1 });
    expect(p.shape).toEqual([3, 2, 1]);
    expect([...p.toArray()]).toEqual([1, 4, 2, -1, 3, -1]);
    const q = nn.utils.rnn.padSequence([a, b], { batchFirst: true });
    expect([...q.toArray()]).toEqual([1, 2, 3, 4, 0, 0]);
    q.mul(
      nb.tensor([
        [[1], [2], [3]],
        [[4], [5], [6]],
      ]),
    )
      .sum()
      .backward();
    expect([...a.grad!.toArray()]).toEqual([1, 2, 3]);
    expect([...b.grad!.toArray()]).toEqual([4]);
  });

  it('pack / pad round-trips unsorted batches to the original order', () => {
    const x = nb.arange(0, 12).reshape([4, 3, 1]); // [T=4, B=3, 1]
    const packed = nn.utils.rnn.packPaddedSequence(x, [2, 4, 1], { enforceSorted: false });
    expect([...packed.batchSizes]).toEqual([3, 2, 1, 1]);
    expect([...packed.sortedIndices!.toArray()]).toEqual([1, 0, 2]);
    expect([...packed.unsortedIndices!.toArray()]).toEqual([1, 0, 2]);
    // Step 0: sequences 1, 0, 2; step 1: 1, 0; steps 2, 3: 1.
    expect([...packed.data.toArray()]).toEqual([1, 0, 2, 4, 3, 7, 10]);
    const [padded, lengths] = nn.utils.rnn.padPackedSequence(packed, { totalLength: 5 });
    expect(padded.shape).toEqual([5, 3, 1]);
    expect([...padded.toArray()]).toEqual([0, 1, 2, 3, 4, 0, 0, 7, 0, 0, 10, 0, 0, 0, 0]);
    expect(lengths.dtype).toBe('int32');
    expect([...lengths.toArray()]).toEqual([2, 4, 1]);
    const seq = nn.utils.rnn.packSequence([nb.tensor([[1], [2]]), nb.tensor([[3]])]);
    expect([...seq.data.toArray()]).toEqual([1, 3, 2]);
  });

  it('throws typed errors for unsorted lengths, bad lengths and short totalLength', () => {
    const x = nb.zeros([4, 3, 2]);
    expect(() => nn.utils.rnn.packPaddedSequence(x, [2, 4, 1])).toThrow(nb.ValueError);
    expect(() => nn.utils.rnn.packPaddedSequence(x, [2, 4, 1])).toThrow(
      /packPaddedSequence: lengths \[2, 4, 1\] are not sorted.*enforceSorted/,
    );
    expect(() => nn.utils.rnn.packPaddedSequence(x, [4, 2])).toThrow(nb.ShapeError);
    expect(() => nn.utils.rnn.packPaddedSequence(x, [4, 2, 0])).toThrow(/lengths\[2\] = 0/);
    expect(() => nn.utils.rnn.packPaddedSequence(x, [5, 2, 1])).toThrow(/lengths\[0\] = 5/);
    const p = nn.utils.rnn.packPaddedSequence(x, [4, 2, 1]);
    expect(() => new nn.PackedSequence(nb.zeros([5, 2]), [2, 3])).toThrow(
      /PackedSequence: batchSizes \[2, 3\] must be positive and non-increasing/,
    );
    expect(() => new nn.PackedSequence(nb.zeros([4, 2]), [3, 2])).toThrow(
      /PackedSequence: data \[4, 2\] must have sum\(batchSizes\) = 5 rows/,
    );
    expect(() => nn.utils.rnn.padPackedSequence(p, { totalLength: 3 })).toThrow(
      /padPackedSequence: totalLength 3 is shorter than the longest sequence \(4 steps\)/,
    );
  });
});

describe('recurrent modules: errors name the module and shapes', () => {
  it('wrong input size', () => {
    const m = new nn.LSTM(3, 4);
    expect(() => m.forward(nb.zeros([5, 2, 7]))).toThrow(nb.ShapeError);
    expect(() => m.forward(nb.zeros([5, 2, 7]))).toThrow(/LSTM: input \[5, 2, 7\].*inputSize=3/);
    expect(() => new nn.GRU(3, 4).forward(nb.zeros([5]))).toThrow(/GRU: input must be 3-D/);
    expect(() => new nn.GRUCell(3, 4).forward(nb.zeros([2, 5]))).toThrow(
      /GRUCell: input must be \[batch, 3\] or \[3\], got \[2, 5\]/,
    );
  });

  it('wrong h0 / c0 shape', () => {
    const m = new nn.LSTM(3, 4, { numLayers: 2 });
    const x = nb.zeros([5, 2, 3]);
    expect(() => m.forward(x, [nb.zeros([1, 2, 4]), nb.zeros([2, 2, 4])])).toThrow(
      /LSTM: h0 must be \[2, 2, 4\].*got \[1, 2, 4\]/,
    );
    expect(() => m.forward(x, [nb.zeros([2, 2, 4]), nb.zeros([2, 3, 4])])).toThrow(
      /LSTM: c0 must be \[2, 2, 4\].*got \[2, 3, 4\]/,
    );
    expect(() => new nn.RNN(3, 4).forward(x, nb.zeros([1, 2, 5]))).toThrow(nb.ShapeError);
    expect(() => new nn.RNNCell(3, 4).forward(nb.zeros([2, 3]), nb.zeros([3, 4]))).toThrow(
      /RNNCell: hx must be \[2, 4\] for input \[2, 3\], got \[3, 4\]/,
    );
  });

  it('bad constructor options', () => {
    expect(() => new nn.LSTM(3, 4, { projSize: 4 })).toThrow(
      /LSTM: projSize \(4\) must be smaller/,
    );
    expect(() => new nn.GRU(3, 4, { dropout: 1.5 })).toThrow(nb.ValueError);
    expect(() => new nn.RNN(3, 0)).toThrow(/RNN: hiddenSize must be a positive integer, got 0/);
    expect(() => new nn.RNN(3, 4, { nonlinearity: 'gelu' as unknown as 'tanh' })).toThrow(
      /unknown nonlinearity 'gelu'/,
    );
  });

  it('packed input with the wrong feature size', () => {
    const p = nn.utils.rnn.packPaddedSequence(nb.zeros([3, 2, 5]), [3, 1]);
    expect(() => new nn.GRU(3, 4).forward(p)).toThrow(
      /GRU: packed input data \[4, 5\] must be \[N, inputSize=3\]/,
    );
  });
});

describe('gradcheck (finite differences) through the recurrences', () => {
  const cases: [string, () => AnyRNN, number[] | null][] = [
    [
      'LSTM 2-layer bidirectional',
      () => new nn.LSTM(2, 3, { numLayers: 2, bidirectional: true }),
      null,
    ],
    ['GRU bidirectional packed unsorted', () => new nn.GRU(2, 3, { bidirectional: true }), [2, 3]],
    ['RNN tanh packed', () => new nn.RNN(2, 3), [3, 1]],
    ['LSTM projSize packed unsorted', () => new nn.LSTM(2, 3, { projSize: 2 }), [1, 3]],
  ];
  for (const [name, make, lengths] of cases) {
    it(name, () => {
      nb.manualSeed(7);
      const m = make();
      const x = nb.randn([3, 2, 2], { requiresGrad: true });
      const k = m.numLayers * m.numDirections();
      const h0 = nb.randn([k, 2, m.outSize()], { requiresGrad: true });
      const isLSTM = m instanceof nn.LSTM;
      const c0 = isLSTM ? nb.randn([k, 2, m.hiddenSize], { requiresGrad: true }) : null;
      const params = m.parameters();
      const fn = (xi: Tensor, hi: Tensor, ci: Tensor): Tensor => {
        const input = lengths
          ? nn.utils.rnn.packPaddedSequence(xi, lengths, { enforceSorted: false })
          : xi;
        const [y, h, c] = call(m, input, hi, isLSTM ? ci : null);
        const out = y instanceof nn.PackedSequence ? nn.utils.rnn.padPackedSequence(y)[0] : y;
        return nb.cat([out.flatten(), h.flatten(), ...(c ? [c.flatten()] : [])]);
      };
      const states = c0 ? [h0, c0] : [h0, nb.zeros([1])];
      const r = nb.gradcheck(fn as (...xs: Tensor[]) => Tensor, [x, ...states, ...params]);
      expect(r.ok, JSON.stringify(r.worst)).toBe(true);
    });
  }
});

describe('long sequences', () => {
  it('1,000-step BPTT: the module and an LSTMCell loop agree on outputs and gradients', () => {
    nb.manualSeed(3);
    const T = 1000;
    const m = new nn.LSTM(2, 5);
    const cell = new nn.LSTMCell(2, 5);
    cell.loadStateDict({
      weight_ih: m.weight_ih_l0,
      weight_hh: m.weight_hh_l0,
      bias_ih: m.bias_ih_l0,
      bias_hh: m.bias_hh_l0,
    } as Record<string, Tensor>);
    const x = nb.randn([T, 1, 2], { requiresGrad: true });
    const [y, [hN]] = m.forward(x);
    y.sum().add(hN.sum()).backward();

    const x2 = x.detach().clone();
    x2.requiresGrad = true;
    let h: Tensor | null = null;
    let c: Tensor | null = null;
    const hs: Tensor[] = [];
    for (let t = 0; t < T; t++) {
      [h, c] = cell.forward(x2.narrow(0, t, 1).squeeze(0), h && c ? [h, c] : null);
      hs.push(h);
    }
    assertClose(y.toArray(), nb.stack(hs).toArray(), { rtol: 1e-5, atol: 1e-6 }, 'outputs');
    nb.stack(hs).sum().add(h!.sum()).backward();
    assertClose(x.grad!.toArray(), x2.grad!.toArray(), { rtol: 1e-4, atol: 1e-6 }, 'grad x');
    assertClose(
      m.weight_hh_l0.grad!.toArray(),
      cell.weight_hh.grad!.toArray(),
      { rtol: 1e-4, atol: 1e-5 },
      'grad W_hh',
    );
    // The first step's input still gets a gradient (finite, through 1,000 steps).
    expect(Number.isFinite(x.grad!.toArray()[0])).toBe(true);
  });

  it('the heap returns to its level after a 1,000-step forward+backward in a tidy', () => {
    const m = new nn.GRU(2, 4);
    const x = nb.randn([1000, 2, 2]);
    const run = (): void =>
      nb.tidy(() => {
        const [y] = m.forward(x);
        y.sum().backward();
      });
    run(); // parameter grads now exist
    const before = nb.memory().tensors;
    run();
    expect(nb.memory().tensors).toBe(before);
  });

  it('truncated BPTT: detached carried states stop gradients at the chunk boundary', () => {
    nb.manualSeed(5);
    const m = new nn.LSTM(2, 3);
    const x1 = nb.randn([4, 2, 2], { requiresGrad: true });
    const x2 = nb.randn([4, 2, 2], { requiresGrad: true });
    const [, [h1, c1]] = m.forward(x1);
    const hd = h1.detach();
    const cd = c1.detach();
    const [y2] = m.forward(x2, [hd, cd]);
    y2.sum().backward();
    expect(x1.grad).toBeNull();
    const g = m.weight_ih_l0.grad!.toArray().slice();
    // The same chunk from fresh leaf states with the same values gives the same gradients.
    m.zeroGrad();
    const [y3] = m.forward(x2.detach(), [nb.tensor(hd.toArray(), { shape: hd.shape }), cd.clone()]);
    y3.sum().backward();
    assertClose(m.weight_ih_l0.grad!.toArray(), g, { rtol: 1e-6, atol: 1e-7 }, 'grad W_ih');
    // Without the detach the first chunk's input would get a gradient.
    const [, [h1b, c1b]] = m.forward(x1);
    m.forward(x2, [h1b, c1b])[0].sum().backward();
    expect(x1.grad).not.toBeNull();
  });
});

describe('unbatched input and plain loops', () => {
  it('an unbatched [T, in] input equals the batch of one, squeezed', () => {
    nb.manualSeed(9);
    const m = new nn.LSTM(3, 4, { numLayers: 2, bidirectional: true });
    const x = nb.randn([5, 3]);
    const h0 = nb.randn([4, 4]);
    const c0 = nb.randn([4, 4]);
    const [y, [h, c]] = m.forward(x, [h0, c0]);
    const [yb, [hb, cb]] = m.forward(x.unsqueeze(1), [h0.unsqueeze(1), c0.unsqueeze(1)]);
    expect(y.shape).toEqual([5, 8]);
    expect(h.shape).toEqual([4, 4]);
    expect([...y.toArray()]).toEqual([...yb.toArray()]);
    expect([...h.toArray()]).toEqual([...hb.toArray()]);
    expect([...c.toArray()]).toEqual([...cb.toArray()]);
    expect(() => m.forward(x, [nb.zeros([4, 1, 4]), c0])).toThrow(/LSTM: h0 must be \[4, 4\]/);
  });

  it('a plain training loop over packed batches keeps the live tensor count flat', () => {
    nb.manualSeed(2);
    const m = new nn.GRU(3, 4, { bidirectional: true });
    const opt = new nb.optim.Adam(m.parameters(), { lr: 0.01 });
    const x = nb.randn([6, 3, 3]);
    const counts: number[] = [];
    for (let i = 0; i < 30; i++) {
      const packed = nn.utils.rnn.packPaddedSequence(x, [4, 6, 2], { enforceSorted: false });
      const [y, h] = m.forward(packed);
      const loss = y.data.square().mean().add(h.square().mean());
      opt.zeroGrad();
      loss.backward();
      opt.step();
      counts.push(nb.memory().tensors);
    }
    expect(counts[29]).toBe(counts[9]);
  });
});

describe('dropout between layers', () => {
  // Identity weights, no bias, no recurrence: layer 1's output is exactly layer 0's output after
  // dropout, so every output element is 0 or 1/(1-p).
  function identityStack(p: number): nn.RNN {
    const n = 64;
    const m = new nn.RNN(n, n, { numLayers: 2, nonlinearity: 'relu', bias: false, dropout: p });
    nb.noGrad(() => {
      m.weight_ih_l0.copy_(nb.eye(n));
      m.weight_ih_l1.copy_(nb.eye(n));
      m.weight_hh_l0.copy_(nb.zeros([n, n]));
      m.weight_hh_l1.copy_(nb.zeros([n, n]));
    });
    return m;
  }

  it('train mode zeroes a fraction p and scales the rest by 1/(1-p), with nabla RNG', () => {
    const m = identityStack(0.3);
    const x = nb.ones([10, 5, 64]);
    nb.manualSeed(11);
    const [y] = m.forward(x);
    const v = y.toArray();
    let zeros = 0;
    for (const e of v) {
      if (e === 0) zeros++;
      else expect(Math.abs(e - 1 / 0.7)).toBeLessThan(1e-6);
    }
    // 3,200 Bernoulli(0.3) draws: sd ≈ 0.008, so ±0.04 is five sigma.
    expect(Math.abs(zeros / v.length - 0.3)).toBeLessThan(0.04);
    nb.manualSeed(11);
    expect([...m.forward(x)[0].toArray()]).toEqual([...v]);
  });

  it('eval mode (and dropout 0) is deterministic and drops nothing', () => {
    const m = identityStack(0.5).eval();
    const [y] = m.forward(nb.ones([3, 2, 64]));
    expect([...y.toArray()].every((e) => e === 1)).toBe(true);
  });
});

class CharLSTM extends nn.Module {
  embed: nn.Embedding;
  lstm: nn.LSTM;
  head: nn.Linear;
  constructor(v: number, e: number, h: number) {
    super();
    this.embed = new nn.Embedding(v, e);
    this.lstm = new nn.LSTM(e, h, { batchFirst: true });
    this.head = new nn.Linear(h, v);
  }
  forward(x: Tensor): Tensor {
    const [y] = this.lstm.forward(this.embed.forward(x));
    return this.head.forward(y);
  }
}

describe('char-LSTM trained with Adam', () => {
  it("30 steps follow PyTorch's losses to 1e-4", () => {
    const f = fx.charlstm;
    const model = new CharLSTM(f.vocab, f.embed, f.hidden);
    model.loadStateDict(Object.fromEntries(Object.entries(f.weights).map(([k, s]) => [k, t(s)])));
    const opt = new nb.optim.Adam(model.parameters(), { lr: f.lr });
    const losses: number[] = [];
    for (const b of f.batches) {
      const x = nb.tensor(b.x, { dtype: 'int32' });
      const y = nb.tensor(b.y, { dtype: 'int32' }).reshape([-1]);
      const logits = model.forward(x);
      const loss = nn.functional.crossEntropy(logits.reshape([-1, f.vocab]), y);
      opt.zeroGrad();
      loss.backward();
      opt.step();
      losses.push(loss.item());
    }
    assertClose(losses, f.losses, { rtol: 1e-4, atol: 0 }, 'losses');
    expect(losses[29]).toBeLessThan(losses[0]); // it learns
  });
});

describe('layer ops over a shrinking batch (batchSizes, the packed path)', () => {
  // Rows sorted by length, as a packed batch: row b runs lengths[b] steps.
  const lengths = [5, 4, 2, 1];
  const batchSizes = [4, 3, 2, 2, 1];
  const [T, B, I, H] = [5, 4, 3, 4];
  const kinds = [
    { name: 'lstmLayer', G: 4 },
    { name: 'gruLayer', G: 3 },
    { name: 'rnnLayer', G: 1 },
  ] as const;

  for (const { name, G } of kinds) {
    it(`${name}: each row equals its own run (outputs, final states, every gradient)`, () => {
      nb.manualSeed(3);
      const leaf = (shape: number[]): Tensor => nb.randn(shape).mul(0.5).requiresGrad_();
      const [x, h0, c0] = [leaf([T, B, I]), leaf([B, H]), leaf([B, H])];
      const params = [leaf([G * H, I]), leaf([G * H, H]), leaf([G * H]), leaf([G * H])];
      const wy = nb.randn([T, B, H]);
      const [wh, wc] = [nb.randn([B, H]), nb.randn([B, H])];
      const run = (xs: Tensor, h: Tensor, c: Tensor, opts: object): Tensor[] => {
        const [wIh, wHh, bIh, bHh] = params;
        if (name === 'lstmLayer') return nb.lstmLayer(xs, h, c, wIh, wHh, bIh, bHh, opts);
        const f = name === 'gruLayer' ? nb.gruLayer : nb.rnnLayer;
        return f(xs, h, wIh, wHh, bIh, bHh, opts);
      };
      const loss = (outs: Tensor[], rows: [number, number], steps: number): Tensor => {
        const [y, hN, cN] = outs;
        const pick = (w: Tensor): Tensor => w.narrow(0, rows[0], rows[1]);
        let l = y.mul(wy.narrow(0, 0, steps).narrow(1, rows[0], rows[1])).sum();
        l = l.add(hN.mul(pick(wh)).sum());
        return cN ? l.add(cN.mul(pick(wc)).sum()) : l;
      };
      const all = [x, h0, c0, ...params];
      const grads = (l: Tensor): number[][] =>
        nb.autograd
          .grad(l, all, { allowUnused: true })
          .map((g, i) => (g ? Array.from(g.toArray()) : new Array<number>(all[i].size).fill(0)));

      const outs = run(x, h0, c0, { batchSizes });
      const packed = grads(loss(outs, [0, B], T));
      const y = outs[0].toArray();
      const expectedGrads = packed.map((g) => g.map(() => 0));
      for (let b = 0; b < B; b++) {
        const n = lengths[b];
        const row = (t: Tensor): Tensor => t.narrow(t.ndim - 2, b, 1);
        const own = run(row(x).narrow(0, 0, n), row(h0), row(c0), {});
        // Outputs of the row's steps, and zeros after its end.
        for (let t = 0; t < T; t++) {
          const got = y.slice((t * B + b) * H, (t * B + b + 1) * H);
          const want = t < n ? own[0].narrow(0, t, 1).toArray() : new Array<number>(H).fill(0);
          assertClose(got, want, { rtol: 1e-5, atol: 1e-6 }, `${name} y[${t}][${b}]`);
        }
        assertClose(row(outs[1]).toArray(), own[1].toArray(), { rtol: 1e-5, atol: 1e-6 }, 'hN');
        if (own[2])
          assertClose(row(outs[2]).toArray(), own[2].toArray(), { rtol: 1e-5, atol: 1e-6 }, 'cN');
        grads(loss(own, [b, 1], n)).forEach((g, i) =>
          g.forEach((v, j) => (expectedGrads[i][j] += v)),
        );
      }
      packed.forEach((g, i) =>
        assertClose(g, expectedGrads[i], { rtol: 1e-4, atol: 1e-5 }, `${name} grad of input ${i}`),
      );
    });
  }

  it('rejects increasing batch sizes, a wrong count and reverse with a ValueError', () => {
    const [x, h, w1, w2] = [
      nb.zeros([3, 2, 1]),
      nb.zeros([2, 1]),
      nb.zeros([1, 1]),
      nb.zeros([1, 1]),
    ];
    expect(() => nb.rnnLayer(x, h, w1, w2, null, null, { batchSizes: [2, 1, 2] })).toThrow(
      /rnnLayer: batchSizes must be 3 non-increasing positive integers starting at batch 2; got \[2, 1, 2\]/,
    );
    expect(() => nb.rnnLayer(x, h, w1, w2, null, null, { batchSizes: [2, 1] })).toThrow(
      nb.ValueError,
    );
    expect(() =>
      nb.rnnLayer(x, h, w1, w2, null, null, { batchSizes: [2, 1, 1], reverse: true }),
    ).toThrow(/without reverse/);
  });
});
