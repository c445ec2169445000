// nn.functional.scaledDotProductAttention: the fused kernel pair against the composition
// softmax(q kᵀ · scale + mask) v built from existing ops (forward and every gradient), PyTorch
// fixtures (scripts/fixtures/make_attention_fixtures.py), gradcheck, typed errors, and the
// memory the forward keeps for the backward at T = 2048.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { assertClose, seeded } from './helpers/close.js';

const F = nb.nn.functional;
type Tensor = nb.Tensor;

beforeAll(async () => {
  await nb.init();
});

const leaf = (shape: number[], seed: number, lo = -1, hi = 1): Tensor =>
  nb.tensor(
    seeded(
      shape.reduce((a, b) => a * b, 1),
      seed,
      lo,
      hi,
    ),
    { shape, requiresGrad: true },
  );

const values = (t: Tensor | null): number[] => Array.from(t!.toArray());

/** The unfused reference, from public ops only. */
function composed(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: { attnMask?: Tensor; isCausal?: boolean; scale?: number } = {},
): Tensor {
  const [T, E] = q.shape.slice(-2);
  const S = k.shape[k.ndim - 2];
  let s = q.matmul(k.transpose(-2, -1)).mul(opts.scale ?? 1 / Math.sqrt(E));
  if (opts.isCausal) s = s.add(nb.full([T, S], -Infinity).triu(1));
  const m = opts.attnMask;
  if (m) s = s.add(m.dtype === 'int32' ? nb.where(m, 0, -Infinity) : m);
  return F.softmax(s, -1).matmul(v);
}

interface Case {
  name: string;
  q: number[];
  k: number[];
  v: number[];
  mask?: { shape: number[]; dtype: 'int32' | 'float32' };
  isCausal?: boolean;
  scale?: number;
}

const cases: Case[] = [
  { name: '2-D', q: [5, 4], k: [7, 4], v: [7, 3] },
  { name: '3-D batch', q: [2, 5, 8], k: [2, 6, 8], v: [2, 6, 5] },
  { name: 'heads', q: [2, 3, 17, 5], k: [2, 3, 19, 5], v: [2, 3, 19, 4] },
  { name: 'causal', q: [1, 2, 20, 4], k: [1, 2, 20, 4], v: [1, 2, 20, 4], isCausal: true },
  { name: 'causal T<S', q: [2, 6, 4], k: [2, 9, 4], v: [2, 9, 4], isCausal: true },
  { name: 'scale', q: [2, 4, 3], k: [2, 4, 3], v: [2, 4, 3], scale: 0.3 },
  {
    name: 'bool [T,S]',
    q: [2, 2, 5, 4],
    k: [2, 2, 6, 4],
    v: [2, 2, 6, 4],
    mask: { shape: [5, 6], dtype: 'int32' },
  },
  {
    name: 'float [B,1,T,S]',
    q: [2, 3, 5, 4],
    k: [2, 3, 6, 4],
    v: [2, 3, 6, 4],
    mask: { shape: [2, 1, 5, 6], dtype: 'float32' },
  },
  {
    name: 'bool [B,H,T,S]',
    q: [2, 3, 5, 4],
    k: [2, 3, 6, 4],
    v: [2, 3, 6, 2],
    mask: { shape: [2, 3, 5, 6], dtype: 'int32' },
  },
  {
    name: 'float [S] over 5-D',
    q: [2, 2, 2, 3, 4],
    k: [2, 2, 2, 70, 4],
    v: [2, 2, 2, 70, 4],
    mask: { shape: [70], dtype: 'float32' },
  },
  {
    name: 'float [2,1,1,T,S] over 5-D (expanded)',
    q: [2, 3, 2, 3, 4],
    k: [2, 3, 2, 5, 4],
    v: [2, 3, 2, 5, 4],
    mask: { shape: [2, 1, 1, 3, 5], dtype: 'float32' },
  },
];

/** A mask whose every row keeps its diagonal-ish column, so no row is fully hidden. */
function makeMask(spec: { shape: number[]; dtype: 'int32' | 'float32' }, seed: number): Tensor {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const u = seeded(n, seed, 0, 1);
  const S = spec.shape[spec.shape.length - 1];
  if (spec.dtype === 'float32') {
    return nb.tensor(
      u.map((x) => 4 * x - 2),
      { shape: spec.shape },
    );
  }
  return nb.tensor(
    Int32Array.from(u, (x, i) => (x < 0.6 || i % S === 0 ? 1 : 0)),
    { shape: spec.shape, dtype: 'int32' },
  );
}

describe('scaledDotProductAttention equals the composition', () => {
  for (const c of cases) {
    it(c.name, () => {
      nb.tidy(() => {
        const mask = c.mask ? makeMask(c.mask, 9) : undefined;
        const opts = { attnMask: mask, isCausal: c.isCausal, scale: c.scale };
        const run = (fn: typeof composed) => {
          const [q, k, v] = [c.q, c.k, c.v].map((s, i) => leaf(s, i + 1));
          const y = fn(q, k, v, opts);
          const g = nb.tensor(seeded(y.size, 7), { shape: y.shape });
          y.backward(g);
          return { y: values(y), grads: [q, k, v].map((t) => values(t.grad)) };
        };
        const fused = run((q, k, v, o) => F.scaledDotProductAttention(q, k, v, o));
        const ref = run(composed);
        assertClose(fused.y, ref.y, { rtol: 1e-5, atol: 1e-6 }, `${c.name} out`);
        fused.grads.forEach((g, i) =>
          assertClose(g, ref.grads[i], { rtol: 1e-4, atol: 1e-5 }, `${c.name} grad ${i}`),
        );
      });
    });
  }

  it('takes the kernel path (no [T, S] tensor in its graph)', () => {
    nb.tidy(() => {
      const [q, k, v] = [
        [2, 5, 4],
        [2, 6, 4],
        [2, 6, 4],
      ].map((s, i) => leaf(s, i + 1));
      const y = F.scaledDotProductAttention(q, k, v);
      expect(y.gradFn).toBe('scaledDotProductAttention');
      expect(y.shape).toEqual([2, 5, 4]);
    });
  });

  it('a fully hidden row gives NaN in that row only, as PyTorch 2', () => {
    nb.tidy(() => {
      const [q, k, v] = [
        [2, 4],
        [3, 4],
        [3, 4],
      ].map((s, i) => leaf(s, i + 1));
      const m = nb.tensor([0, 0, 0, 1, 0, 1], { shape: [2, 3], dtype: 'int32' });
      const y = values(F.scaledDotProductAttention(q, k, v, { attnMask: m }));
      expect(y.slice(0, 4).every(Number.isNaN)).toBe(true);
      expect(y.slice(4).every(Number.isFinite)).toBe(true);
    });
  });

  it('S = 0 gives zeros like softmax over nothing times an empty v', () => {
    nb.tidy(() => {
      const q = leaf([3, 2], 1);
      const k = nb.zeros([0, 2]);
      const v = nb.zeros([0, 5]);
      const y = F.scaledDotProductAttention(q, k, v);
      expect(y.shape).toEqual([3, 5]);
      expect(values(y).every((x) => x === 0)).toBe(true);
    });
  });

  it('dropoutP > 0 zeroes weights with nabla RNG, reproducibly under a seed', () => {
    nb.tidy(() => {
      const [q, k, v] = [
        [1, 6, 4],
        [1, 6, 4],
        [1, 6, 4],
      ].map((s, i) => leaf(s, i + 1));
      nb.manualSeed(3);
      const a = values(F.scaledDotProductAttention(q, k, v, { dropoutP: 0.5 }));
      nb.manualSeed(3);
      const b = values(F.scaledDotProductAttention(q, k, v, { dropoutP: 0.5 }));
      const plain = values(F.scaledDotProductAttention(q, k, v));
      expect(a).toEqual(b);
      expect(a).not.toEqual(plain);
      // The same draws as nn.functional.dropout on the weights of the composition.
      nb.manualSeed(3);
      const s = q.matmul(k.transpose(-2, -1)).mul(0.5);
      const c = values(F.dropout(F.softmax(s, -1), { p: 0.5 }).matmul(v));
      assertClose(a, c, { rtol: 1e-5, atol: 1e-6 }, 'dropout vs composition');
    });
  });

  it('a float mask that requires grad gets its gradient (composed path)', () => {
    nb.tidy(() => {
      const [q, k, v] = [
        [2, 3, 4],
        [2, 5, 4],
        [2, 5, 4],
      ].map((s, i) => leaf(s, i + 1));
      const m1 = leaf([3, 5], 11);
      F.scaledDotProductAttention(q, k, v, { attnMask: m1 }).sum().backward();
      const m2 = leaf([3, 5], 11);
      composed(q, k, v, { attnMask: m2 }).sum().backward();
      assertClose(values(m1.grad), values(m2.grad), { rtol: 1e-4, atol: 1e-6 }, 'dmask');
    });
  });
});

describe('scaledDotProductAttention gradcheck', () => {
  const fn =
    (opts: nb.nn.functional.SdpaOptions) =>
    (q: Tensor, k: Tensor, v: Tensor): Tensor =>
      F.scaledDotProductAttention(q, k, v, opts);
  it('plain, causal, masked', () => {
    nb.tidy(() => {
      const mask = nb.tensor([1, 1, 0, 1, 0, 1, 1, 1, 1, 0, 1, 1], {
        shape: [3, 4],
        dtype: 'int32',
      });
      for (const opts of [{}, { isCausal: true }, { attnMask: mask }, { scale: 0.7 }]) {
        const [q, k, v] = [
          [2, 3, 5],
          [2, 4, 5],
          [2, 4, 3],
        ].map((s, i) => leaf(s, 20 + i));
        const r = nb.gradcheck(fn(opts), [q, k, v]);
        expect(r.ok, JSON.stringify(r.worst)).toBe(true);
      }
    });
  });
});

describe('scaledDotProductAttention errors', () => {
  const t = (shape: number[], dtype: 'float32' | 'int32' = 'float32') => nb.zeros(shape, { dtype });
  it('rejects mismatched shapes, dtypes and options with the op name', () => {
    nb.tidy(() => {
      const sdpa = F.scaledDotProductAttention;
      expect(() => sdpa(t([2, 3, 4]), t([2, 5, 3]), t([2, 5, 4]))).toThrow(nb.ShapeError);
      expect(() => sdpa(t([2, 3, 4]), t([2, 5, 4]), t([2, 5, 4]))).not.toThrow();
      expect(() => sdpa(t([2, 3, 4]), t([3, 5, 4]), t([3, 5, 4]))).toThrow(
        /scaledDotProductAttention: query \[2, 3, 4\], key \[3, 5, 4\]/,
      );
      expect(() => sdpa(t([3, 4]), t([5, 4]), t([6, 4]))).toThrow(nb.ShapeError);
      expect(() => sdpa(t([4]), t([5, 4]), t([5, 4]))).toThrow(/at least 2-D, got \[4\]/);
      expect(() => sdpa(t([3, 4], 'int32'), t([5, 4]), t([5, 4]))).toThrow(nb.DTypeError);
      expect(() => sdpa(t([3, 4]), t([5, 4]), t([5, 4]), { attnMask: t([4, 5]) })).toThrow(
        /attnMask \[4, 5\] does not broadcast to the scores' shape \[3, 5\]/,
      );
      expect(() =>
        sdpa(t([3, 4]), t([5, 4]), t([5, 4]), { attnMask: t([3, 5]), isCausal: true }),
      ).toThrow(nb.ValueError);
      expect(() => sdpa(t([3, 4]), t([5, 4]), t([5, 4]), { dropoutP: 1 })).toThrow(
        /dropoutP must be in \[0, 1\), got 1/,
      );
    });
  });
});

describe('scaledDotProductAttention memory', () => {
  it('keeps O(B·H·T) for the backward at T = 2048, not B·H·T² floats', () => {
    nb.tidy(() => {
      const [B, H, T, D] = [1, 2, 2048, 16];
      const [q, k, v] = [0, 1, 2].map((i) => leaf([B, H, T, D], 30 + i, -0.5, 0.5));
      const before = nb.memory().bytes;
      const y = F.scaledDotProductAttention(q, k, v, { isCausal: true });
      const kept = nb.memory().bytes - before;
      // The output itself plus one log-sum-exp float per row; nothing T² sized.
      expect(kept).toBe(4 * (B * H * T * D + B * H * T));
      expect(kept).toBeLessThan((4 * B * H * T * T) / 100);
      y.sum().backward();
      expect(q.grad!.shape).toEqual([B, H, T, D]);
      expect(values(q.grad).every(Number.isFinite)).toBe(true);
    });
  });
});

interface FixtureTensor {
  shape: number[];
  dtype?: 'int32' | 'float32';
  data: number[];
}
interface SdpaFixture {
  name: string;
  q: FixtureTensor;
  k: FixtureTensor;
  v: FixtureTensor;
  mask: FixtureTensor | null;
  isCausal: boolean;
  scale: number | null;
  out: FixtureTensor;
  upstream: number[];
  grads: { q: number[]; k: number[]; v: number[] };
}

const fixtures = JSON.parse(readFileSync('test/fixtures/attention.json', 'utf8')) as {
  sdpa: SdpaFixture[];
};

const fromFixture = (f: FixtureTensor, requiresGrad = false): Tensor =>
  nb.tensor(f.dtype === 'int32' ? Int32Array.from(f.data) : Float32Array.from(f.data), {
    shape: f.shape,
    dtype: f.dtype ?? 'float32',
    requiresGrad,
  });

describe('scaledDotProductAttention vs PyTorch', () => {
  for (const c of fixtures.sdpa) {
    it(c.name, () => {
      nb.tidy(() => {
        const [q, k, v] = [c.q, c.k, c.v].map((f) => fromFixture(f, true));
        const y = F.scaledDotProductAttention(q, k, v, {
          attnMask: c.mask ? fromFixture(c.mask) : null,
          isCausal: c.isCausal,
          scale: c.scale,
        });
        expect(y.shape).toEqual(c.out.shape);
        assertClose(values(y), c.out.data, { rtol: 1e-5, atol: 1e-6 }, `${c.name} out`);
        y.backward(nb.tensor(Float32Array.from(c.upstream), { shape: y.shape }));
        const opts = { rtol: 1e-5, atol: 1e-5 };
        assertClose(values(q.grad), c.grads.q, opts, `${c.name} dq`);
        assertClose(values(k.grad), c.grads.k, opts, `${c.name} dk`);
        assertClose(values(v.grad), c.grads.v, opts, `${c.name} dv`);
      });
    });
  }
});
