// The fused recurrent cells and the LSTM layer against the same computation composed from
// existing ops (matmul, chunk, sigmoid, tanh, ...), forward and every gradient, plus gradcheck
// and typed errors.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { layerTuning } from '../ts/ops/rnn.js';

beforeAll(async () => {
  await nb.init();
});

type T = nb.Tensor;

const leaf = (shape: number[], scale = 1): T =>
  nb.tensor(
    Float32Array.from(nb.randn(shape).toArray()).map((v) => v * scale),
    { shape, requiresGrad: true },
  );

/** max |a - b| / (1 + |b|) over all elements. */
function maxErr(a: T, b: T): number {
  expect(a.shape).toEqual(b.shape);
  const x = a.toArray();
  const y = b.toArray();
  let e = 0;
  for (let i = 0; i < x.length; i++) e = Math.max(e, Math.abs(x[i] - y[i]) / (1 + Math.abs(y[i])));
  return e;
}

const proj = (h: T, w: T): T => nb.matmul(h, w, { transB: true });

function lstmRef(gx: T, h: T, c: T, w: T, b: T | null): [T, T] {
  let gates = gx.add(proj(h, w));
  if (b) gates = gates.add(b);
  const [i, f, g, o] = gates.chunk(4, 1);
  const c2 = f.sigmoid().mul(c).add(i.sigmoid().mul(g.tanh()));
  return [o.sigmoid().mul(c2.tanh()), c2];
}

function gruRef(gx: T, h: T, w: T, b: T | null): T {
  let gh = proj(h, w);
  if (b) gh = gh.add(b);
  const [xr, xz, xn] = gx.chunk(3, 1);
  const [hr, hz, hn] = gh.chunk(3, 1);
  const r = xr.add(hr).sigmoid();
  const z = xz.add(hz).sigmoid();
  const n = xn.add(r.mul(hn)).tanh();
  return n.add(z.mul(h.sub(n)));
}

function rnnRef(gx: T, h: T, w: T, b: T | null, nl: nb.RnnNonlinearity): T {
  let pre = gx.add(proj(h, w));
  if (b) pre = pre.add(b);
  return nl === 'tanh' ? pre.tanh() : pre.relu();
}

/**
 * Runs `fused` and `ref` (same inputs, outputs as arrays), backpropagates the same random
 * weighting of every output through both, and returns the worst forward and gradient errors.
 */
function compare(inputs: T[], fused: () => T[], ref: () => T[]): { fwd: number; grad: number } {
  const run = (f: () => T[]): { outs: T[]; grads: T[] } =>
    nb.tidy(() => {
      inputs.forEach((t) => (t.grad = null));
      const outs = f();
      nb.manualSeed(99);
      let loss = nb.tensor(0);
      for (const o of outs) loss = loss.add(o.mul(nb.randn(o.shape)).sum());
      loss.backward();
      const grads = inputs.map((t) => nb.keep(t.grad!));
      inputs.forEach((t) => (t.grad = null));
      return { outs: outs.map((o) => nb.keep(o.detach().clone())), grads };
    });
  const a = run(fused);
  const b = run(ref);
  let fwd = 0;
  let grad = 0;
  a.outs.forEach((o, i) => (fwd = Math.max(fwd, maxErr(o, b.outs[i]))));
  a.grads.forEach((g, i) => (grad = Math.max(grad, maxErr(g, b.grads[i]))));
  return { fwd, grad };
}

const SIZES: [number, number][] = [
  [1, 1],
  [2, 3],
  [3, 4],
  [4, 5],
  [2, 17],
];

describe('lstmCell', () => {
  it.each(SIZES)(
    'equals the composition, forward and all gradients (batch %i, hidden %i)',
    (B, H) => {
      nb.manualSeed(B * 31 + H);
      const ins = [
        leaf([B, 4 * H]),
        leaf([B, H]),
        leaf([B, H]),
        leaf([4 * H, H], 0.5),
        leaf([4 * H]),
      ];
      const [gx, h, c, w, b] = ins;
      const { fwd, grad } = compare(
        ins,
        () => nb.lstmCell(gx, h, c, w, b),
        () => lstmRef(gx, h, c, w, b),
      );
      expect(fwd).toBeLessThan(1e-6);
      expect(grad).toBeLessThan(1e-6);
    },
  );

  it('without a bias, and with only c used downstream', () => {
    nb.manualSeed(5);
    const ins = [leaf([3, 8]), leaf([3, 2]), leaf([3, 2]), leaf([8, 2])];
    const [gx, h, c, w] = ins;
    const r = compare(
      ins,
      () => [nb.lstmCell(gx, h, c, w)[1]],
      () => [lstmRef(gx, h, c, w, null)[1]],
    );
    expect(Math.max(r.fwd, r.grad)).toBeLessThan(1e-6);
  });

  it('records one node for h and c', () => {
    nb.manualSeed(1);
    const [h2, c2] = nb.lstmCell(leaf([2, 4]), leaf([2, 1]), leaf([2, 1]), leaf([4, 1]));
    expect(h2.gradFn).toBe('lstmCell');
    expect(c2.gradFn).toBe('lstmCell');
    const [p, q] = nb.noGrad(() =>
      nb.lstmCell(leaf([2, 4]), leaf([2, 1]), leaf([2, 1]), leaf([4, 1])),
    );
    expect(p.requiresGrad || q.requiresGrad).toBe(false);
  });

  it('passes gradcheck', () => {
    nb.manualSeed(7);
    const ins = [leaf([2, 12]), leaf([2, 3]), leaf([2, 3]), leaf([12, 3], 0.5), leaf([12])];
    const f = (gx: T, h: T, c: T, w: T, b: T) => nb.cat(nb.lstmCell(gx, h, c, w, b), 1);
    expect(nb.gradcheck(f, ins).ok).toBe(true);
  });

  it('throws typed errors naming the op and shapes', () => {
    const z = (...s: number[]) => nb.zeros(s);
    expect(() => nb.lstmCell(z(2, 7), z(2, 2), z(2, 2), z(8, 2))).toThrow(nb.ShapeError);
    expect(() => nb.lstmCell(z(2, 7), z(2, 2), z(2, 2), z(8, 2))).toThrow(
      /lstmCell.*gatesX \[2, 7\]/,
    );
    expect(() => nb.lstmCell(z(2, 8), z(2, 2), z(3, 2), z(8, 2))).toThrow(/lstmCell.*c \[3, 2\]/);
    expect(() => nb.lstmCell(z(2, 8), z(2, 2), z(2, 2), z(8, 3))).toThrow(/lstmCell.*wHh \[8, 3\]/);
    expect(() => nb.lstmCell(z(2, 8), z(2, 2), z(2, 2), z(8, 2), z(6))).toThrow(
      /lstmCell.*bHh \[6\]/,
    );
    expect(() => nb.lstmCell(z(2, 8), z(2), z(2, 2), z(8, 2))).toThrow(/lstmCell: h must be/);
    expect(() =>
      nb.lstmCell(nb.zeros([2, 8], { dtype: 'int32' }), z(2, 2), z(2, 2), z(8, 2)),
    ).toThrow(nb.DTypeError);
  });
});

describe('gruCell', () => {
  it.each(SIZES)(
    'equals the composition, forward and all gradients (batch %i, hidden %i)',
    (B, H) => {
      nb.manualSeed(B * 17 + H);
      const ins = [leaf([B, 3 * H]), leaf([B, H]), leaf([3 * H, H], 0.5), leaf([3 * H])];
      const [gx, h, w, b] = ins;
      const r = compare(
        ins,
        () => [nb.gruCell(gx, h, w, b)],
        () => [gruRef(gx, h, w, b)],
      );
      expect(r.fwd).toBeLessThan(1e-6);
      expect(r.grad).toBeLessThan(1e-6);
    },
  );

  it('passes gradcheck', () => {
    nb.manualSeed(8);
    const ins = [leaf([2, 9]), leaf([2, 3]), leaf([9, 3], 0.5), leaf([9])];
    expect(nb.gradcheck((gx, h, w, b) => nb.gruCell(gx, h, w, b), ins).ok).toBe(true);
  });

  it('throws typed errors', () => {
    expect(() => nb.gruCell(nb.zeros([2, 8]), nb.zeros([2, 2]), nb.zeros([6, 2]))).toThrow(
      /gruCell.*gatesX \[2, 8\]/,
    );
  });
});

describe('rnnCell', () => {
  for (const nl of ['tanh', 'relu'] as const) {
    it.each(SIZES)(`${nl}: equals the composition (batch %i, hidden %i)`, (B, H) => {
      nb.manualSeed(B * 13 + H);
      const ins = [leaf([B, H]), leaf([B, H]), leaf([H, H], 0.5), leaf([H])];
      const [gx, h, w, b] = ins;
      const r = compare(
        ins,
        () => [nb.rnnCell(gx, h, w, b, nl)],
        () => [rnnRef(gx, h, w, b, nl)],
      );
      expect(r.fwd).toBeLessThan(1e-6);
      expect(r.grad).toBeLessThan(1e-6);
    });
  }

  it('passes gradcheck (tanh; relu away from its kink)', () => {
    nb.manualSeed(9);
    const ins = [leaf([2, 3]), leaf([2, 3]), leaf([3, 3], 0.5), leaf([3])];
    expect(nb.gradcheck((gx, h, w, b) => nb.rnnCell(gx, h, w, b), ins).ok).toBe(true);
    const pos = [
      nb.tensor([[1, 2, 1.5]], { requiresGrad: true }),
      nb.tensor([[0.5, 0.2, 0.1]], { requiresGrad: true }),
    ];
    const w = nb.tensor(
      [
        [0.2, 0.1, 0],
        [0, 0.3, 0.1],
        [0.1, 0, 0.2],
      ],
      { requiresGrad: true },
    );
    expect(nb.gradcheck((gx, h, ww) => nb.rnnCell(gx, h, ww, null, 'relu'), [...pos, w]).ok).toBe(
      true,
    );
  });

  it('throws typed errors', () => {
    const z = (...s: number[]) => nb.zeros(s);
    expect(() => nb.rnnCell(z(2, 2), z(2, 2), z(2, 2), null, 'gelu' as 'tanh')).toThrow(
      nb.ValueError,
    );
    expect(() => nb.rnnCell(z(2, 3), z(2, 2), z(2, 2))).toThrow(/rnnCell.*gatesX \[2, 3\]/);
  });
});

/** The composition: one GEMM-free step per time index through `lstmRef`. */
function lstmLayerRef(
  x: T,
  h0: T,
  c0: T,
  wIh: T,
  wHh: T,
  bIh: T | null,
  bHh: T | null,
  reverse: boolean,
): T[] {
  const [steps, batch] = x.shape;
  let gx = nb.matmul(x, wIh, { transB: true });
  if (bIh) gx = gx.add(bIh);
  const gxs = gx.split(1, 0).map((t) => t.reshape([batch, -1]));
  let h = h0;
  let c = c0;
  const ys: T[] = new Array<T>(steps);
  for (let s = 0; s < steps; s++) {
    const t = reverse ? steps - 1 - s : s;
    [h, c] = lstmRef(gxs[t], h, c, wHh, bHh);
    ys[t] = h;
  }
  return [nb.stack(ys, 0), h, c];
}

// Batches of 3 take the GEMM's unpacked path, 6 rows its packed one (W_hh packed once per pass).
const LAYER_SIZES: [number, number][] = [
  [3, 6],
  [6, 9],
];

describe('lstmLayer', () => {
  for (const reverse of [false, true]) {
    it.each(LAYER_SIZES)(
      `equals the composition over 50 steps${reverse ? ' (reverse)' : ''}, all outputs and gradients (batch %i, hidden %i)`,
      (B, H) => {
        nb.manualSeed(reverse ? 11 : 12);
        const [T_, I] = [50, 5];
        const ins = [
          leaf([T_, B, I]),
          leaf([B, H]),
          leaf([B, H]),
          leaf([4 * H, I], 0.4),
          leaf([4 * H, H], 0.4),
          leaf([4 * H], 0.4),
          leaf([4 * H], 0.4),
        ];
        const [x, h0, c0, wIh, wHh, bIh, bHh] = ins;
        const r = compare(
          ins,
          () => nb.lstmLayer(x, h0, c0, wIh, wHh, bIh, bHh, { reverse }),
          () => lstmLayerRef(x, h0, c0, wIh, wHh, bIh, bHh, reverse),
        );
        expect(r.fwd).toBeLessThan(1e-6);
        expect(r.grad).toBeLessThan(1e-5);
      },
    );
  }

  it('without biases, with only hN used', () => {
    nb.manualSeed(13);
    const ins = [
      leaf([7, 2, 3]),
      leaf([2, 4]),
      leaf([2, 4]),
      leaf([16, 3], 0.5),
      leaf([16, 4], 0.5),
    ];
    const [x, h0, c0, wIh, wHh] = ins;
    const r = compare(
      ins,
      () => [nb.lstmLayer(x, h0, c0, wIh, wHh)[1]],
      () => [lstmLayerRef(x, h0, c0, wIh, wHh, null, null, false)[1]],
    );
    expect(Math.max(r.fwd, r.grad)).toBeLessThan(1e-6);
  });

  it('passes gradcheck', () => {
    nb.manualSeed(14);
    const ins = [
      leaf([4, 2, 3]),
      leaf([2, 2]),
      leaf([2, 2]),
      leaf([8, 3], 0.5),
      leaf([8, 2], 0.5),
      leaf([8], 0.5),
      leaf([8], 0.5),
    ];
    const f = (...a: T[]) => {
      const [y, hN, cN] = nb.lstmLayer(a[0], a[1], a[2], a[3], a[4], a[5], a[6], { reverse: true });
      return nb.cat([y.reshape([8, 2]), hN, cN], 0);
    };
    expect(nb.gradcheck(f, ins).ok).toBe(true);
  });

  it('runs 1,000 steps: equals 1,000 fused cells, and the graph holds only the saved activations', () => {
    nb.manualSeed(15);
    const [T_, B, I, H] = [1000, 2, 3, 4];
    const x = leaf([T_, B, I]);
    const h0 = leaf([B, H]);
    const c0 = leaf([B, H]);
    const wIh = leaf([4 * H, I], 0.5);
    const wHh = leaf([4 * H, H], 0.5);
    const before = nb.memory();
    const [y, hN, cN] = nb.lstmLayer(x, h0, c0, wIh, wHh);
    const after = nb.memory();
    // y, hN, cN plus the saved gates [T, B, 4H] and cell states [T, B, H]: nothing per step.
    expect(after.tensors - before.tensors).toBe(5);
    expect(after.bytes - before.bytes).toBe(4 * (T_ * B * H * 6 + 2 * B * H));
    hN.add(cN).sum().add(y.mean()).backward();
    const dh0 = Array.from(h0.grad!.toArray());
    const dwHh = Array.from(wHh.grad!.toArray());
    expect(dh0.every(Number.isFinite) && dwHh.every(Number.isFinite)).toBe(true);

    // The same chain of fused cells (each checked against the composition above).
    const [x2, h2, c2, wIh2, wHh2] = [x, h0, c0, wIh, wHh].map((t) =>
      nb.tensor(t.toArray() as Float32Array, { shape: t.shape, requiresGrad: true }),
    );
    const gx = nb.matmul(x2, wIh2, { transB: true }).split(1, 0);
    let h = h2;
    let c = c2;
    const ys: T[] = [];
    for (let t = 0; t < T_; t++) {
      [h, c] = nb.lstmCell(gx[t].reshape([B, 4 * H]), h, c, wHh2);
      ys.push(h);
    }
    expect(maxErr(hN, h)).toBeLessThan(1e-6);
    h.add(c).sum().add(nb.stack(ys, 0).mean()).backward();
    expect(maxErr(h0.grad!, h2.grad!)).toBeLessThan(1e-5);
    expect(maxErr(wHh.grad!, wHh2.grad!)).toBeLessThan(1e-4);
    expect(maxErr(wIh.grad!, wIh2.grad!)).toBeLessThan(1e-4);
  });

  it('keeps the heap flat over repeated forward/backward in tidy', () => {
    nb.manualSeed(16);
    const [wIh, wHh, bIh, bHh] = [leaf([16, 3], 0.5), leaf([16, 4], 0.5), leaf([16]), leaf([16])];
    const step = () =>
      nb.tidy(() => {
        const x = nb.randn([5, 2, 3]);
        const [y, hN, cN] = nb.lstmLayer(x, nb.zeros([2, 4]), nb.zeros([2, 4]), wIh, wHh, bIh, bHh);
        y.sum().add(hN.sum()).add(cN.sum()).backward();
      });
    step();
    const before = nb.memory();
    for (let i = 0; i < 200; i++) step();
    const after = nb.memory();
    expect(after.tensors).toBe(before.tensors);
    expect(after.bytes).toBe(before.bytes);
    expect(after.heapBytes).toBe(before.heapBytes);
  });

  it('refuses a backward after the saved cell state was modified in place', () => {
    nb.manualSeed(17);
    const [h, c] = nb.lstmCell(leaf([2, 8]), leaf([2, 2]), leaf([2, 2]), leaf([8, 2]));
    const loss = h.sum();
    nb.noGrad(() => c.mul_(2));
    expect(() => loss.backward()).toThrow(/modified by an inplace operation.*lstmCell/);
  });

  it('throws typed errors naming the op and shapes', () => {
    const z = (...s: number[]) => nb.zeros(s);
    expect(() => nb.lstmLayer(z(5, 3, 2), z(2, 4), z(2, 4), z(16, 2), z(16, 4))).toThrow(
      /lstmLayer: x must be .* batch 2 .*\[5, 3, 2\]/,
    );
    expect(() => nb.lstmLayer(z(5, 2, 2), z(2, 4), z(2, 4), z(16, 3), z(16, 4))).toThrow(
      /lstmLayer: expected wIh \[16, 2\].*got wIh \[16, 3\]/,
    );
    expect(() => nb.lstmLayer(z(5, 2, 2), z(2, 4), z(2, 4), z(16, 2), z(12, 4))).toThrow(
      nb.ShapeError,
    );
    expect(() => nb.lstmLayer(z(0, 2, 2), z(2, 4), z(2, 4), z(16, 2), z(16, 4))).toThrow(
      nb.ShapeError,
    );
  });
});

/** A GRU or Elman layer composed step by step from the reference cells. */
function seqRef(
  step: (gx: T, h: T) => T,
  x: T,
  h0: T,
  wIh: T,
  bIh: T | null,
  reverse: boolean,
): T[] {
  const [steps, batch] = x.shape;
  let gx = nb.matmul(x, wIh, { transB: true });
  if (bIh) gx = gx.add(bIh);
  const gxs = gx.split(1, 0).map((t) => t.reshape([batch, -1]));
  let h = h0;
  const ys: T[] = new Array<T>(steps);
  for (let s = 0; s < steps; s++) {
    const t = reverse ? steps - 1 - s : s;
    h = step(gxs[t], h);
    ys[t] = h;
  }
  return [nb.stack(ys, 0), h];
}

describe('gruLayer and rnnLayer', () => {
  const kinds = [
    ['gru', 3],
    ['tanh', 1],
    ['relu', 1],
  ] as const;
  for (const [kind, gates] of kinds) {
    for (const reverse of [false, true]) {
      it.each(LAYER_SIZES)(
        `${kind}: equals the composition over 50 steps${reverse ? ' (reverse)' : ''} (batch %i, hidden %i)`,
        (B, H) => {
          nb.manualSeed(gates * 7 + (reverse ? 1 : 0) + kind.length);
          const [T_, I] = [50, 5];
          const G = gates * H;
          const ins = [
            leaf([T_, B, I]),
            leaf([B, H]),
            leaf([G, I], 0.4),
            leaf([G, H], 0.4),
            leaf([G], 0.4),
            leaf([G], 0.4),
          ];
          const [x, h0, wIh, wHh, bIh, bHh] = ins;
          const fused = () =>
            kind === 'gru'
              ? nb.gruLayer(x, h0, wIh, wHh, bIh, bHh, { reverse })
              : nb.rnnLayer(x, h0, wIh, wHh, bIh, bHh, { reverse, nonlinearity: kind });
          const step =
            kind === 'gru'
              ? (gx: T, h: T) => gruRef(gx, h, wHh, bHh)
              : (gx: T, h: T) => rnnRef(gx, h, wHh, bHh, kind);
          const r = compare(ins, fused, () => seqRef(step, x, h0, wIh, bIh, reverse));
          expect(r.fwd).toBeLessThan(1e-6);
          expect(r.grad).toBeLessThan(1e-5);
        },
      );
    }
  }

  it('pass gradcheck', () => {
    nb.manualSeed(21);
    const ins = (G: number) => [
      leaf([4, 2, 3]),
      leaf([2, 2]),
      leaf([G, 3], 0.5),
      leaf([G, 2], 0.5),
      leaf([G], 0.5),
      leaf([G], 0.5),
    ];
    const flat = ([y, hN]: T[]) => nb.cat([y.reshape([8, 2]), hN], 0);
    const gru = (...a: T[]) =>
      flat(nb.gruLayer(a[0], a[1], a[2], a[3], a[4], a[5], { reverse: true }));
    expect(nb.gradcheck(gru, ins(6)).ok).toBe(true);
    const rnn = (...a: T[]) => flat(nb.rnnLayer(a[0], a[1], a[2], a[3], a[4], a[5]));
    expect(nb.gradcheck(rnn, ins(2)).ok).toBe(true);
  });

  it('throw typed errors naming the op and shapes', () => {
    const z = (...s: number[]) => nb.zeros(s);
    expect(() => nb.gruLayer(z(5, 2, 2), z(2, 4), z(16, 2), z(12, 4))).toThrow(
      /gruLayer: expected wIh \[12, 2\].*got wIh \[16, 2\]/,
    );
    expect(() => nb.gruLayer(z(5, 2, 2), z(2, 4), z(12, 2), z(16, 4))).toThrow(
      /gruLayer.*wHh \[12, 4\].*got wHh \[16, 4\]/,
    );
    expect(() => nb.rnnLayer(z(5, 3, 2), z(2, 4), z(4, 2), z(4, 4))).toThrow(
      /rnnLayer: x must be .*\[5, 3, 2\]/,
    );
    expect(() =>
      nb.rnnLayer(z(5, 2, 2), z(2, 4), z(4, 2), z(4, 4), null, null, {
        nonlinearity: 'sigmoid' as 'tanh',
      }),
    ).toThrow(/rnnLayer: nonlinearity must be 'tanh' or 'relu', got 'sigmoid'/);
  });
});

// ------------------------------------------------------------------ PyTorch fixtures

interface Arr {
  shape: number[];
  data: number[];
}
interface FixtureCase {
  inputs: Record<string, Arr>;
  outputs: Record<string, Arr>;
  upstream: Record<string, Arr>;
  grads: Record<string, Arr>;
}
const fixtures = (
  JSON.parse(readFileSync(new URL('./fixtures/rnn_kernels.json', import.meta.url), 'utf8')) as {
    cases: Record<string, FixtureCase>;
  }
).cases;

/** Each case's nabla expression: named inputs in, named outputs out (the fixture's names). */
const CASES: Record<string, (a: Record<string, T>) => Record<string, T>> = {
  lstm_cell: (a) => {
    const gx = nb.nn.functional.linear(a.x, a.wIh, a.bIh);
    const [h, c] = nb.lstmCell(gx, a.h, a.c, a.wHh, a.bHh);
    return { h, c };
  },
  gru_cell: (a) => ({
    h: nb.gruCell(nb.nn.functional.linear(a.x, a.wIh, a.bIh), a.h, a.wHh, a.bHh),
  }),
  rnn_cell_tanh: (a) => ({
    h: nb.rnnCell(nb.nn.functional.linear(a.x, a.wIh, a.bIh), a.h, a.wHh, a.bHh, 'tanh'),
  }),
  rnn_cell_relu: (a) => ({
    h: nb.rnnCell(nb.nn.functional.linear(a.x, a.wIh, a.bIh), a.h, a.wHh, a.bHh, 'relu'),
  }),
  lstm_layer: (a) => {
    const [y, hN, cN] = nb.lstmLayer(a.x, a.h0, a.c0, a.wIh, a.wHh, a.bIh, a.bHh);
    return { y, hN, cN };
  },
  gru_layer: (a) => {
    const [y, hN] = nb.gruLayer(a.x, a.h0, a.wIh, a.wHh, a.bIh, a.bHh);
    return { y, hN };
  },
  gru_layer_reverse: (a) => {
    const [y, hN] = nb.gruLayer(a.x, a.h0, a.wIh, a.wHh, a.bIh, a.bHh, { reverse: true });
    return { y, hN };
  },
  rnn_layer_tanh: (a) => {
    const [y, hN] = nb.rnnLayer(a.x, a.h0, a.wIh, a.wHh, a.bIh, a.bHh);
    return { y, hN };
  },
  rnn_layer_relu_reverse: (a) => {
    const [y, hN] = nb.rnnLayer(a.x, a.h0, a.wIh, a.wHh, a.bIh, a.bHh, {
      reverse: true,
      nonlinearity: 'relu',
    });
    return { y, hN };
  },
  lstm_layer_reverse: (a) => {
    const [y, hN, cN] = nb.lstmLayer(a.x, a.h0, a.c0, a.wIh, a.wHh, a.bIh, a.bHh, {
      reverse: true,
    });
    return { y, hN, cN };
  },
};

describe('W_hh packed once per layer pass', () => {
  // 6 rows run the GEMM's packed path; hidden 9 leaves partial panels in both layouts; the
  // shrinking batch ends on steps of fewer than 4 rows, which stream W_hh unpacked.
  const [T_, B, I, H] = [7, 6, 5, 9];
  const opts = [{}, { reverse: true }, { batchSizes: [6, 6, 5, 4, 3, 2, 1] }];
  const kinds = [
    ['lstm', 4],
    ['gru', 3],
    ['tanh', 1],
    ['relu', 1],
  ] as const;
  const bits = (t: T | null): number[] => {
    if (t === null) throw new Error('missing gradient');
    return Array.from(new Uint32Array(Float32Array.from(t.toArray()).buffer));
  };

  for (const [kind, gates] of kinds) {
    for (const o of opts) {
      it(`${kind} ${JSON.stringify(o)}: outputs and every gradient are the same bits as packing per step`, () => {
        nb.manualSeed(40 + gates);
        const G = gates * H;
        const ins = [
          leaf([T_, B, I]),
          leaf([B, H]),
          leaf([B, H]),
          leaf([G, I], 0.4),
          leaf([G, H], 0.4),
          leaf([G], 0.4),
          leaf([G], 0.4),
        ];
        const [x, h0, c0, wIh, wHh, bIh, bHh] = ins;
        const weights = outsWeights(kind === 'lstm' ? 3 : 2, T_, B, H);
        const run = (prepack: boolean): number[][] => {
          layerTuning.prepackWhh = prepack;
          try {
            return nb.tidy(() => {
              const outs =
                kind === 'lstm'
                  ? nb.lstmLayer(x, h0, c0, wIh, wHh, bIh, bHh, o)
                  : kind === 'gru'
                    ? nb.gruLayer(x, h0, wIh, wHh, bIh, bHh, o)
                    : nb.rnnLayer(x, h0, wIh, wHh, bIh, bHh, { ...o, nonlinearity: kind });
              let loss = nb.tensor(0);
              outs.forEach((t, i) => (loss = loss.add(t.mul(weights[i]).sum())));
              const used = kind === 'lstm' ? ins : ins.filter((t) => t !== c0);
              const grads = nb.autograd.grad(loss, used);
              return [...outs, ...grads].map(bits);
            });
          } finally {
            layerTuning.prepackWhh = true;
          }
        };
        const packedOnce = run(true);
        const perStep = run(false);
        expect(packedOnce.length).toBe(kind === 'lstm' ? 10 : 8);
        packedOnce.forEach((got, i) => expect(got, `output/gradient ${i}`).toEqual(perStep[i]));
      });
    }
  }
});

/** Fixed random weights for a layer's outputs `[T, B, H]`, then `[B, H]` for each final state. */
function outsWeights(n: number, steps: number, batch: number, hidden: number): T[] {
  nb.manualSeed(77);
  return [
    nb.randn([steps, batch, hidden]),
    ...Array.from({ length: n - 1 }, () => nb.randn([batch, hidden])),
  ];
}

describe('PyTorch fixtures (scripts/fixtures/make_rnn_kernel_fixtures.py)', () => {
  it('has an expression for every case', () => {
    expect(Object.keys(CASES).sort()).toEqual(Object.keys(fixtures).sort());
  });

  for (const [name, fx] of Object.entries(fixtures)) {
    it(`${name}: outputs and every gradient match torch`, () => {
      const ins: Record<string, T> = {};
      for (const [k, v] of Object.entries(fx.inputs)) {
        ins[k] = nb.tensor(v.data, { shape: v.shape, requiresGrad: true });
      }
      const outs = CASES[name](ins);
      let loss = nb.tensor(0);
      for (const [k, v] of Object.entries(fx.outputs)) {
        const got = Array.from(outs[k].toArray());
        expect(outs[k].shape).toEqual(v.shape);
        got.forEach((g, i) =>
          expect(Math.abs(g - v.data[i])).toBeLessThan(1e-5 * (1 + Math.abs(v.data[i]))),
        );
        const up = fx.upstream[k];
        loss = loss.add(outs[k].mul(nb.tensor(up.data, { shape: up.shape })).sum());
      }
      loss.backward();
      for (const [k, v] of Object.entries(fx.grads)) {
        const got = Array.from(ins[k].grad!.toArray());
        got.forEach((g, i) =>
          expect(Math.abs(g - v.data[i]), `${k}[${i}]`).toBeLessThan(
            1e-4 * (1 + Math.abs(v.data[i])),
          ),
        );
      }
    });
  }
});
