// Every kernel family through the real .wasm at lengths that exercise SIMD bodies and scalar
// tails (0, 1, 3, 4, 5, 15, 16, 17, 257), against float64 references computed here.
import { beforeAll, describe, it } from 'vitest';
import * as nb from '../ts/index.js';
import { assertClose, seeded } from './helpers/close.js';
import { derivative, geluErf, geluTanh, matmulRef, sigmoid } from './helpers/ref.js';

const LENGTHS = [0, 1, 3, 4, 5, 15, 16, 17, 257];

beforeAll(async () => {
  await nb.init();
});

interface UnaryCase {
  name: string;
  op: (t: nb.Tensor) => nb.Tensor;
  f: (x: number) => number;
  lo?: number;
  hi?: number;
  rtol?: number;
}

const unary: UnaryCase[] = [
  { name: 'neg', op: (t) => t.neg(), f: (x) => -x },
  { name: 'exp', op: (t) => t.exp(), f: Math.exp, lo: -20, hi: 20, rtol: 2e-6 },
  { name: 'log', op: (t) => t.log(), f: Math.log, lo: 1e-3, hi: 100, rtol: 2e-6 },
  { name: 'sqrt', op: (t) => t.sqrt(), f: Math.sqrt, lo: 0.01, hi: 100 },
  { name: 'rsqrt', op: (t) => t.rsqrt(), f: (x) => 1 / Math.sqrt(x), lo: 0.01, hi: 100 },
  { name: 'abs', op: (t) => t.abs(), f: Math.abs },
  { name: 'square', op: (t) => t.square(), f: (x) => x * x },
  { name: 'reciprocal', op: (t) => t.reciprocal(), f: (x) => 1 / x, lo: 0.1, hi: 10 },
  { name: 'relu', op: (t) => t.relu(), f: (x) => Math.max(x, 0) },
  { name: 'sigmoid', op: (t) => t.sigmoid(), f: sigmoid, lo: -30, hi: 30, rtol: 2e-6 },
  { name: 'tanh', op: (t) => t.tanh(), f: Math.tanh, lo: -10, hi: 10, rtol: 2e-6 },
  { name: 'gelu', op: (t) => t.gelu(), f: geluErf, lo: -6, hi: 6, rtol: 2e-6 },
  {
    name: 'gelu tanh',
    op: (t) => t.gelu({ approximate: 'tanh' }),
    f: geluTanh,
    lo: -6,
    hi: 6,
    rtol: 2e-6,
  },
  { name: 'leakyRelu', op: (t) => t.leakyRelu(0.2), f: (x) => (x > 0 ? x : 0.2 * x) },
  { name: 'clamp', op: (t) => t.clamp(-0.5, 0.25), f: (x) => Math.min(Math.max(x, -0.5), 0.25) },
  { name: 'pow 3', op: (t) => t.pow(3), f: (x) => x ** 3, rtol: 2e-6 },
  { name: 'pow 0.5', op: (t) => t.pow(0.5), f: Math.sqrt, lo: 0.01, hi: 4, rtol: 2e-6 },
  { name: 'add scalar', op: (t) => t.add(2.5), f: (x) => x + 2.5 },
  { name: 'mul scalar', op: (t) => t.mul(-3), f: (x) => -3 * x },
];

describe('unary kernels, forward and backward, at SIMD-tail lengths', () => {
  for (const c of unary) {
    it(c.name, () => {
      for (const n of LENGTHS) {
        nb.tidy(() => {
          const data = seeded(n, n + 7, c.lo ?? -3, c.hi ?? 3);
          const x = nb.tensor(data, { requiresGrad: true });
          const y = c.op(x);
          const tol = { rtol: c.rtol ?? 1e-5, atol: 1e-6 };
          assertClose(y.toArray(), Array.from(data, c.f), tol, `${c.name} n=${n}`);
          const g = seeded(n, n + 99);
          y.backward(nb.tensor(g));
          const dref = Array.from(
            data,
            (v, i) => g[i] * derivative(c.f, v, 1e-5 * Math.max(1, Math.abs(v))),
          );
          assertClose(x.grad!.toArray(), dref, { rtol: 1e-4, atol: 1e-5 }, `${c.name}' n=${n}`);
        });
      }
    });
  }
});

describe('binary kernels with broadcasting at SIMD-tail lengths', () => {
  const ops: [
    string,
    (a: nb.Tensor, b: nb.Tensor) => nb.Tensor,
    (a: number, b: number) => number,
  ][] = [
    ['add', (a, b) => a.add(b), (a, b) => a + b],
    ['sub', (a, b) => a.sub(b), (a, b) => a - b],
    ['mul', (a, b) => a.mul(b), (a, b) => a * b],
    ['div', (a, b) => a.div(b), (a, b) => a / b],
    ['maximum', (a, b) => a.maximum(b), Math.max],
    ['minimum', (a, b) => a.minimum(b), Math.min],
    ['pow', (a, b) => a.pow(b), (a, b) => a ** b],
  ];
  for (const [name, op, f] of ops) {
    it(name, () => {
      for (const n of LENGTHS) {
        nb.tidy(() => {
          const lo = name === 'pow' ? 0.5 : -2;
          const av = seeded(3 * n, n + 1, lo, 2);
          const bv = seeded(n, n + 2, 0.5, 2);
          const a = nb.tensor(av, { shape: [3, n] });
          // same shape, a row broadcast over 3 rows, a column broadcast over n columns, a scalar
          const same = nb.tensor(seeded(3 * n, n + 3, 0.5, 2), { shape: [3, n] });
          const row = nb.tensor(bv, { shape: [n] });
          const col = nb.tensor(new Float32Array([0.7, 1.3, 1.9]), { shape: [3, 1] });
          const sameArr = same.toArray();
          const expectSame = Array.from(av, (v, i) => f(v, sameArr[i]));
          const expectRow = Array.from(av, (v, i) => f(v, bv[i % n]));
          const expectCol = Array.from(av, (v, i) =>
            f(v, [0.7, 1.3, 1.9][Math.floor(i / Math.max(n, 1))]),
          );
          const tol = { rtol: 2e-6, atol: 1e-6 };
          assertClose(op(a, same).toArray(), expectSame, tol, `${name} same n=${n}`);
          assertClose(op(a, row).toArray(), expectRow, tol, `${name} row n=${n}`);
          assertClose(op(a, col).toArray(), expectCol, tol, `${name} col n=${n}`);
          assertClose(
            op(row, a).toArray(),
            Array.from(av, (v, i) => f(bv[i % n], v)),
            tol,
            `${name} row-first n=${n}`,
          );
        });
      }
    });
  }
});

describe('reductions and softmax at SIMD-tail lengths', () => {
  it('sum, max, min, logsumexp, softmax along contiguous and strided axes', () => {
    for (const n of LENGTHS.filter((v) => v > 0)) {
      nb.tidy(() => {
        const data = seeded(4 * n, n, -5, 5);
        const x = nb.tensor(data, { shape: [4, n] });
        const rows = [0, 1, 2, 3].map((r) => Array.from(data.subarray(r * n, (r + 1) * n)));
        const cols = Array.from({ length: n }, (_, j) => [0, 1, 2, 3].map((r) => data[r * n + j]));
        const lse = (v: number[]): number => {
          const m = Math.max(...v);
          return m + Math.log(v.reduce((s, u) => s + Math.exp(u - m), 0));
        };
        const sm = (v: number[]): number[] => v.map((u) => Math.exp(u - lse(v)));
        const tol = { rtol: 1e-5, atol: 1e-5 };
        const sumOf = (v: number[]): number => v.reduce((s, u) => s + u, 0);
        assertClose(x.sum(1).toArray(), rows.map(sumOf), tol, `sum rows n=${n}`);
        assertClose(x.sum(0).toArray(), cols.map(sumOf), tol, `sum cols n=${n}`);
        assertClose(
          x.max(1).toArray(),
          rows.map((v) => Math.max(...v)),
          tol,
          `max n=${n}`,
        );
        assertClose(
          x.min(0).toArray(),
          cols.map((v) => Math.min(...v)),
          tol,
          `min n=${n}`,
        );
        assertClose(x.logsumexp(1).toArray(), rows.map(lse), tol, `lse rows n=${n}`);
        assertClose(x.logsumexp(0).toArray(), cols.map(lse), tol, `lse cols n=${n}`);
        assertClose(x.softmax(1).toArray(), rows.flatMap(sm), tol, `softmax rows n=${n}`);
        const smCols = cols.map(sm);
        assertClose(
          x.softmax(0).toArray(),
          rows.flatMap((_, r) => smCols.map((c) => c[r])),
          tol,
          `softmax cols n=${n}`,
        );
        assertClose(
          x.argmax(1).toArray(),
          rows.map((v) => v.indexOf(Math.max(...v))),
          { rtol: 0, atol: 0 },
          `argmax n=${n}`,
        );
      });
    }
  });
});

describe('matmul at SIMD-tail sizes', () => {
  it('square and rectangular products and both gradients', () => {
    for (const n of LENGTHS) {
      if (n > 17 && n !== 257) continue;
      const m = n === 257 ? 33 : n;
      nb.tidy(() => {
        const av = seeded(m * 17, n + 5);
        const bv = seeded(17 * n, n + 6);
        const a = nb.tensor(av, { shape: [m, 17], requiresGrad: true });
        const b = nb.tensor(bv, { shape: [17, n], requiresGrad: true });
        const c = a.matmul(b);
        assertClose(
          c.toArray(),
          matmulRef(av, bv, m, 17, n),
          { rtol: 1e-5, atol: 1e-5 },
          `matmul n=${n}`,
        );
        const g = seeded(m * n, n + 8);
        c.backward(nb.tensor(g, { shape: [m, n] }));
        // dA = G Bᵀ, dB = Aᵀ G
        const bT = new Float64Array(n * 17);
        for (let p = 0; p < 17; p++) for (let j = 0; j < n; j++) bT[j * 17 + p] = bv[p * n + j];
        const aT = new Float64Array(17 * m);
        for (let i = 0; i < m; i++) for (let p = 0; p < 17; p++) aT[p * m + i] = av[i * 17 + p];
        assertClose(
          a.grad!.toArray(),
          matmulRef(g, bT, m, n, 17),
          { rtol: 1e-5, atol: 1e-5 },
          `dA n=${n}`,
        );
        assertClose(
          b.grad!.toArray(),
          matmulRef(aT, g, 17, m, n),
          { rtol: 1e-5, atol: 1e-5 },
          `dB n=${n}`,
        );
      });
    }
  });
});

describe('copies and indexing at SIMD-tail lengths', () => {
  it('transpose, cat, slice, indexSelect', () => {
    for (const n of LENGTHS) {
      nb.tidy(() => {
        const data = seeded(3 * n, n + 11);
        const x = nb.tensor(data, { shape: [3, n] });
        const t = x.transpose(0, 1).toArray();
        const tRef = Array.from({ length: 3 * n }, (_, i) => data[(i % 3) * n + Math.floor(i / 3)]);
        assertClose(t, tRef, { rtol: 0, atol: 0 }, `transpose n=${n}`);
        const c = nb.cat([x, x], 1).toArray();
        const cRef = Array.from(
          { length: 6 * n },
          (_, i) => data[Math.floor(i / (2 * n)) * n + ((i % (2 * n)) % n)],
        );
        assertClose(c, cRef, { rtol: 0, atol: 0 }, `cat n=${n}`);
        const s = x.slice(1, 1, null, 2).toArray();
        const cols = Array.from(
          { length: Math.max(0, Math.ceil((n - 1) / 2)) },
          (_, j) => 1 + 2 * j,
        );
        assertClose(
          s,
          [0, 1, 2].flatMap((r) => cols.map((j) => data[r * n + j])),
          { rtol: 0, atol: 0 },
          `slice n=${n}`,
        );
        const idx = nb.tensor(new Int32Array([2, 0, 2]));
        const sel = x.indexSelect(0, idx).toArray();
        assertClose(
          sel,
          [2, 0, 2].flatMap((r) => Array.from(data.subarray(r * n, (r + 1) * n))),
          { rtol: 0, atol: 0 },
          `indexSelect n=${n}`,
        );
      });
    }
  });
});
