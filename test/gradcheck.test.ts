// Autograd of every differentiable op against central finite differences (nb.gradcheck), on
// seeded random inputs. Inputs stay away from kinks by more than the finite-difference step
// (relu, abs, clamp, max), ties are impossible by construction (max/min), and log, sqrt, rsqrt
// and pow bases are positive.
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';

type Fn = (...xs: nb.Tensor[]) => nb.Tensor;

interface GradCase {
  fn: Fn;
  /** Builds the float inputs after the seed is set; index tensors live inside `fn`. */
  inputs: () => nb.Tensor[];
}

const leaf = (values: Float32Array, shape: number[]): nb.Tensor =>
  nb.tensor(values, { shape, requiresGrad: true });

const floats = (t: nb.Tensor): Float32Array => Float32Array.from(t.toArray());

const randn = (shape: number[], scale = 1): nb.Tensor =>
  leaf(
    floats(nb.randn(shape)).map((v) => v * scale),
    shape,
  );

/** U(0.5, 2): inside the domain of log, sqrt, rsqrt and pow's base. */
const positive = (shape: number[]): nb.Tensor =>
  leaf(
    floats(nb.rand(shape)).map((v) => 0.5 + 1.5 * v),
    shape,
  );

/** N(0, 1) pushed at least `margin` away from every kink. */
function away(shape: number[], kinks = [0], margin = 0.1): nb.Tensor {
  const v = floats(nb.randn(shape));
  for (let i = 0; i < v.length; i++) {
    for (const k of kinks) {
      const d = (v[i] as number) - k;
      if (Math.abs(d) < margin) v[i] = k + (d >= 0 ? 1 : -1) * (margin + Math.abs(d));
    }
  }
  return leaf(v, shape);
}

/** Nonzero divisors: ±U(0.5, 2). */
const nonzero = (shape: number[]): nb.Tensor =>
  leaf(
    floats(nb.rand(shape)).map((v, i) => (i % 2 ? -1 : 1) * (0.5 + 1.5 * v)),
    shape,
  );

/** A shuffled grid 0.25 apart: a unique max and min along any dims. */
function distinct(shape: number[]): nb.Tensor {
  const keys = floats(nb.rand(shape));
  const order = Array.from(keys.keys()).sort((a, b) => (keys[a] as number) - (keys[b] as number));
  const v = new Float32Array(keys.length);
  order.forEach((src, rank) => {
    v[src] = (rank - keys.length / 2) * 0.25;
  });
  return leaf(v, shape);
}

/** Integers + offset: operands with offsets 0.25 and 0.75 never come within 0.5 (maximum/minimum). */
const lattice = (shape: number[], offset: number): nb.Tensor =>
  leaf(
    floats(nb.randn(shape)).map((v) => Math.round(2 * v) + offset),
    shape,
  );

const index = (values: number[], shape = [values.length]): nb.Tensor =>
  nb.tensor(Int32Array.from(values), { dtype: 'int32', shape });

const mask = (values: number[], shape: number[]): nb.Tensor => index(values, shape);

const rcat = (pieces: nb.Tensor[], dim: number): nb.Tensor => nb.cat([...pieces].reverse(), dim);

const CASES: Record<string, GradCase> = {
  add: { fn: (a, b) => a.add(b), inputs: () => [randn([3, 1]), randn([1, 4])] },
  add_scalar: { fn: (x) => nb.add(1.5, x), inputs: () => [randn([2, 3])] },
  sub: { fn: (a, b) => a.sub(b), inputs: () => [randn([2, 3, 4]), randn([4])] },
  sub_scalar_left: { fn: (x) => nb.sub(1.5, x), inputs: () => [randn([2, 3])] },
  mul: { fn: (a, b) => a.mul(b), inputs: () => [randn([4]), randn([2, 3, 4])] },
  div: { fn: (a, b) => a.div(b), inputs: () => [randn([3, 1]), nonzero([1, 4])] },
  div_scalar_left: { fn: (x) => nb.div(1.5, x), inputs: () => [nonzero([2, 3])] },
  pow: { fn: (a, b) => a.pow(b), inputs: () => [positive([3, 1]), randn([1, 4])] },
  pow_scalar_exponent: { fn: (x) => x.pow(2.5), inputs: () => [positive([2, 3])] },
  pow_scalar_base: { fn: (x) => nb.pow(2, x), inputs: () => [randn([2, 3])] },
  maximum: {
    fn: (a, b) => a.maximum(b),
    inputs: () => [lattice([3, 1], 0.25), lattice([1, 4], 0.75)],
  },
  minimum: {
    fn: (a, b) => a.minimum(b),
    inputs: () => [lattice([2, 3, 4], 0.25), lattice([4], 0.75)],
  },
  neg: { fn: (x) => x.neg(), inputs: () => [randn([2, 3])] },
  exp: { fn: (x) => x.exp(), inputs: () => [randn([2, 3])] },
  log: { fn: (x) => x.log(), inputs: () => [positive([2, 3])] },
  sqrt: { fn: (x) => x.sqrt(), inputs: () => [positive([2, 3])] },
  rsqrt: { fn: (x) => x.rsqrt(), inputs: () => [positive([2, 3])] },
  abs: { fn: (x) => x.abs(), inputs: () => [away([2, 3])] },
  clamp: { fn: (x) => x.clamp(-0.5, 0.5), inputs: () => [away([3, 4], [-0.5, 0.5])] },
  relu: { fn: (x) => x.relu(), inputs: () => [away([3, 4])] },
  leaky_relu: { fn: (x) => x.leakyRelu(0.2), inputs: () => [away([3, 4])] },
  sigmoid: { fn: (x) => x.sigmoid(), inputs: () => [randn([3, 4], 2)] },
  tanh: { fn: (x) => x.tanh(), inputs: () => [randn([3, 4], 2)] },
  gelu: { fn: (x) => x.gelu(), inputs: () => [randn([3, 4], 2)] },
  gelu_tanh: { fn: (x) => x.gelu({ approximate: 'tanh' }), inputs: () => [randn([3, 4], 2)] },
  softmax: { fn: (x) => x.softmax(0), inputs: () => [randn([2, 3, 4])] },
  log_softmax: { fn: (x) => x.logSoftmax(-1), inputs: () => [randn([2, 3, 4])] },
  where: {
    fn: (a, b) => nb.where(mask([1, 0, 0, 1, 1, 0, 1, 0], [2, 1, 4]), a, b),
    inputs: () => [randn([3, 1]), randn([4])],
  },
  masked_fill: {
    fn: (x) => x.maskedFill(mask([1, 0, 1], [3, 1]), 0.25),
    inputs: () => [randn([2, 3, 4])],
  },
  sum: { fn: (x) => x.sum([0, 2], true), inputs: () => [randn([2, 3, 4])] },
  mean: { fn: (x) => x.mean(-1), inputs: () => [randn([2, 3, 4])] },
  max: { fn: (x) => x.max(1), inputs: () => [distinct([2, 3, 4])] },
  max_all: { fn: (x) => x.max(), inputs: () => [distinct([2, 3, 4])] },
  min: { fn: (x) => x.min([0, 2]), inputs: () => [distinct([2, 3, 4])] },
  logsumexp: { fn: (x) => x.logsumexp(-1), inputs: () => [randn([2, 3, 4])] },
  var: { fn: (x) => x.var(1), inputs: () => [randn([2, 3, 4])] },
  var_correction0: { fn: (x) => x.var(undefined, false, 0), inputs: () => [randn([2, 3, 4])] },
  reshape: { fn: (x) => x.transpose(0, 1).reshape([-1, 2]), inputs: () => [randn([2, 3, 4])] },
  view: { fn: (x) => x.view([3, 4]), inputs: () => [randn([2, 6])] },
  flatten: { fn: (x) => x.flatten(1), inputs: () => [randn([2, 3, 4])] },
  squeeze: { fn: (x) => x.squeeze(2), inputs: () => [randn([1, 3, 1, 2])] },
  unsqueeze: { fn: (x) => x.unsqueeze(1), inputs: () => [randn([2, 3])] },
  transpose: { fn: (x) => x.transpose(-1, -3), inputs: () => [randn([2, 3, 4])] },
  permute: { fn: (x) => x.permute([2, 0, 1]), inputs: () => [randn([2, 3, 4])] },
  expand: { fn: (x) => x.expand([2, 3, 4]), inputs: () => [randn([1, 4])] },
  contiguous: { fn: (x) => x.transpose(0, 1).contiguous(), inputs: () => [randn([2, 3])] },
  slice: { fn: (x) => x.slice(1, -4, -1, 2), inputs: () => [randn([2, 5, 3])] },
  narrow: { fn: (x) => x.narrow(1, 1, 2), inputs: () => [randn([3, 4])] },
  cat: { fn: (a, b) => nb.cat([a, b], -1), inputs: () => [randn([2, 3, 1]), randn([2, 3, 2])] },
  stack: { fn: (a, b) => nb.stack([a, b], 1), inputs: () => [randn([2, 3]), randn([2, 3])] },
  split: { fn: (x) => rcat(x.split([1, 3, 2], 1), 1), inputs: () => [randn([2, 6])] },
  chunk: { fn: (x) => rcat(x.chunk(3, 0), 0), inputs: () => [randn([5, 3])] },
  index_select: { fn: (x) => x.indexSelect(1, index([4, 1, 1, 0])), inputs: () => [randn([3, 5])] },
  gather: {
    fn: (x) => x.gather(0, index([2, 0, 2, 1, 1, 0], [2, 3])),
    inputs: () => [randn([3, 4])],
  },
  scatter_add: {
    fn: (x, s) => x.scatterAdd(1, index([4, 1, 4, 4, 0, 0, 2, 3], [2, 4]), s),
    inputs: () => [randn([3, 5]), randn([2, 4])],
  },
  matmul_1d_1d: { fn: (a, b) => a.matmul(b), inputs: () => [randn([4]), randn([4])] },
  matmul_2d_2d: { fn: (a, b) => a.matmul(b), inputs: () => [randn([3, 4]), randn([4, 5])] },
  matmul_1d_2d: { fn: (a, b) => a.matmul(b), inputs: () => [randn([4]), randn([4, 5])] },
  matmul_2d_1d: { fn: (a, b) => a.matmul(b), inputs: () => [randn([3, 4]), randn([4])] },
  matmul_bcast_batch: {
    fn: (a, b) => a.matmul(b),
    inputs: () => [randn([2, 1, 3, 4]), randn([5, 4, 2])],
  },
  matmul_3d_2d: { fn: (a, b) => a.matmul(b), inputs: () => [randn([2, 3, 4]), randn([4, 5])] },
  matmul_transA_batched: {
    fn: (a, b) => a.matmul(b, { transA: true }),
    inputs: () => [randn([2, 4, 3]), randn([4, 5])],
  },
  matmul_transAB_bcast: {
    fn: (a, b) => a.matmul(b, { transA: true, transB: true }),
    inputs: () => [randn([2, 1, 4, 3]), randn([2, 5, 4])],
  },
};

describe('gradcheck: autograd vs finite differences', () => {
  beforeAll(async () => {
    await nb.init();
  });

  for (const [name, c] of Object.entries(CASES)) {
    it(name, () => {
      nb.manualSeed(1234);
      const r = nb.gradcheck(c.fn, c.inputs());
      expect(
        r.ok,
        `${name}: maxAbsError ${r.maxAbsError}, maxRelError ${r.maxRelError}, worst ${JSON.stringify(r.worst)}`,
      ).toBe(true);
    });
  }
});

describe('gradcheck catches wrong gradients', () => {
  beforeAll(async () => {
    await nb.init();
  });

  it('flags a term that autograd cannot see (detach)', () => {
    nb.manualSeed(1234);
    // d/db of b * b is 2b, but the detached factor hides one b from autograd: analytic b vs numeric 2b
    const r = nb.gradcheck(
      (a, b) => a.add(b.mul(b.detach())),
      [randn([2, 3]), away([2, 3], [0], 0.5)],
    );
    expect(r.ok).toBe(false);
    expect(r.worst).not.toBeNull();
    expect(r.worst?.input).toBe(1);
    expect(r.maxAbsError).toBeGreaterThan(0.1);
  });

  it('flags a kink inside the finite-difference step (relu at 0)', () => {
    nb.manualSeed(1234);
    // at 0 the central difference sees slope 1/2; autograd reports 0 (or 1)
    const r = nb.gradcheck((x) => x.relu(), [leaf(new Float32Array(16), [16])]);
    expect(r.ok).toBe(false);
    expect(r.worst?.input).toBe(0);
  });

  // y = K·x + (d·x − d·x.detach()): the value is K·x, autograd reports K + d. With the output
  // weighted by ones the analytic gradient is off by exactly d at every element, and the
  // numeric one is K, so the limit is atol + rtol·K (defaults atol = rtol = 1e-2).
  const offBy = (K: number, d: number) => (x: nb.Tensor) =>
    x.mul(K).add(x.mul(d).sub(x.detach().mul(d)));
  const pinned = (K: number, d: number, opts: nb.GradcheckOptions = {}) => {
    nb.manualSeed(1234);
    const x = randn([3, 4]);
    return nb.gradcheck(offBy(K, d), [x], { gradOutput: nb.ones([3, 4]), ...opts });
  };

  it('pins the absolute tolerance: 1.5x the limit fails, 0.5x passes', () => {
    const limit = 1e-2; // K = 0: atol alone
    expect(pinned(0, 1.5 * limit).ok).toBe(false);
    expect(pinned(0, 0.5 * limit).ok).toBe(true);
    expect(pinned(0, -1.5 * limit).ok).toBe(false);
  });

  it('pins the relative tolerance: 1.5x the limit fails, 0.5x passes', () => {
    const K = 100;
    const limit = 1e-2 + 1e-2 * K;
    expect(pinned(K, 1.5 * limit).ok).toBe(false);
    expect(pinned(K, 0.5 * limit).ok).toBe(true);
    expect(pinned(K, -1.5 * limit).ok).toBe(false);
  });

  it('pins explicit atol and rtol the same way', () => {
    const opts = { atol: 1e-3, rtol: 1e-3 };
    const K = 10;
    const limit = 1e-3 + 1e-3 * K;
    expect(pinned(K, 1.5 * limit, opts).ok).toBe(false);
    expect(pinned(K, 0.5 * limit, opts).ok).toBe(true);
  });

  it('fails when every analytic gradient is NaN', () => {
    nb.manualSeed(1234);
    // sqrt(x - x.detach()) is 0 with an infinite derivative; times 0 it is 0 with a NaN one.
    const nanGrad = (x: nb.Tensor) => x.add(x.sub(x.detach()).sqrt().mul(0));
    const r = nb.gradcheck(nanGrad, [randn([2, 3])]);
    expect(r.ok).toBe(false);
    expect(Number.isNaN(r.worst!.analytic)).toBe(true);
  });

  it('fails when an analytic gradient is infinite', () => {
    nb.manualSeed(1234);
    const infGrad = (x: nb.Tensor) => x.add(x.sub(x.detach()).sqrt());
    const r = nb.gradcheck(infGrad, [randn([2, 3])]);
    expect(r.ok).toBe(false);
    expect(Math.abs(r.worst!.analytic)).toBe(Infinity);
  });

  it('fails when the function itself returns NaN (numeric side)', () => {
    nb.manualSeed(1234);
    const r = nb.gradcheck((x) => x.mul(NaN), [randn([2, 2])]);
    expect(r.ok).toBe(false);
  });

  it('rejects a gradOutput of the wrong shape', () => {
    expect(() =>
      nb.gradcheck((x) => x.mul(2), [randn([2, 2])], { gradOutput: nb.ones([3]) }),
    ).toThrow(nb.ShapeError);
  });
});
