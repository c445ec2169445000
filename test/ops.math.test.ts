// The math ops of issue 8 (unary math, activations and their modules, clamp with tensor
// bounds, prod, cumsum, norm, var/std keywords, any/all): PyTorch fixtures
// (test/fixtures/ops_math.json from scripts/fixtures/make_math_fixtures.py) forward and
// backward, finite-difference gradchecks, typed errors, and every kernel at SIMD-tail lengths
// through the real wasm against float64 references.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import {
  EXACT,
  SUM_TOL,
  opFixtureTests,
  type OpFixtures,
  type Tolerance,
} from './helpers/fixtures.js';
import { assertClose, seeded } from './helpers/close.js';
import { erf as erf64 } from './helpers/ref.js';

type Op = (...xs: nb.Tensor[]) => nb.Tensor;
const F = nb.nn.functional;

/** x with NaN where `m` and ±inf (sign of x) where `k`, as the fixture's `special`. */
const special = (x: nb.Tensor, m: nb.Tensor, k: nb.Tensor): nb.Tensor =>
  nb.where(m, NaN, nb.where(k, x.sign().mul(Infinity), x));

const OPS: Record<string, Op> = {
  sin: (x) => x.sin(),
  sin_wide: (x) => nb.sin(x),
  cos: (x) => x.cos(),
  cos_wide: (x) => nb.cos(x),
  erf: (x) => x.erf(),
  log1p: (x) => x.log1p(),
  log1p_tiny: (x) => nb.log1p(x),
  expm1: (x) => x.expm1(),
  expm1_tiny: (x) => nb.expm1(x),
  floor: (x) => x.floor(),
  ceil: (x) => nb.ceil(x),
  round: (x) => x.round(),
  round_halves: (x) => nb.round(x),
  round_decimals_2: (x) => x.round({ decimals: 2 }),
  round_decimals_neg1: (x) => nb.round(x, { decimals: -1 }),
  floor_int32: (x) => x.floor(),
  sign: (x) => x.sign(),
  sign_int32: (x) => nb.sign(x),
  sign_nan_inf: (x, m, k) => special(x, m, k).sign(),
  isnan: (x, m, k) => special(x, m, k).isnan(),
  isfinite: (x, m, k) => nb.isfinite(special(x, m, k)),
  isnan_int32: (x) => nb.isnan(x),
  isfinite_int32: (x) => x.isfinite(),

  softplus: (x) => x.softplus(),
  softplus_beta2_thr5: (x) => F.softplus(x, { beta: 2, threshold: 5 }),
  softplus_past_threshold: (x) => nb.softplus(x, { threshold: 1 }),
  silu: (x) => x.silu(),
  mish: (x) => F.mish(x),
  hardtanh: (x) => x.hardtanh(),
  hardtanh_range: (x) => F.hardtanh(x, { minVal: -0.5, maxVal: 2 }),
  hardtanh_at_bounds: (x) => nb.hardtanh(x),
  elu: (x) => x.elu(),
  elu_alpha: (x) => F.elu(x, { alpha: 0.5 }),

  clamp_tensor_both: (x, lo, hi) => x.clamp(lo, hi),
  clamp_tensor_min_only: (x, lo) => x.clamp(lo),
  clamp_tensor_max_only: (x, hi) => nb.clamp(x, null, hi),
  clamp_tensor_min_gt_max: (x, lo, hi) => nb.clamp(x, lo, hi),
  clamp_tensor_bcast_out: (x, lo, hi) => x.clamp(lo, hi),
  clamp_tensor_max_number: (x, lo) => x.clamp(lo, 0.5),
  clamp_tensor_no_grad_bound: (x, lo, hi) => x.clamp(lo, hi),

  prod_all: (x) => x.prod(),
  prod_dim1: (x) => x.prod(1),
  prod_dim0_keepdim: (x) => nb.prod(x, 0, true),
  prod_neg_dim: (x) => x.prod(-1),
  prod_zeros_dim1: (x) => x.prod(1),
  prod_one_zero_all: (x) => x.prod(),
  prod_two_zeros_all: (x) => nb.prod(x),
  prod_int32: (x) => x.prod(1),
  cumsum_dim0: (x) => x.cumsum(0),
  cumsum_dim1_3d: (x) => nb.cumsum(x, 1),
  cumsum_neg_dim: (x) => x.cumsum(-1),
  cumsum_int32: (x) => x.cumsum(1),
  norm_2_all: (x) => x.norm(),
  norm_fro_dims: (x) => nb.norm(x, 'fro', [0, 2]),
  norm_1_dim: (x) => x.norm(1, 1),
  norm_3_keepdim: (x) => x.norm(3, [0], true),
  norm_half: (x) => x.norm(0.5, -1),
  norm_1p5: (x) => x.norm(1.5),
  norm_inf_dim: (x) => x.norm(Infinity, 1),
  norm_neginf_dim: (x) => x.norm(-Infinity, 0),
  norm_inf_tie: (x) => x.norm(Infinity, 1),
  norm_0: (x) => x.norm(0, 1),
  norm_2_zero_row: (x) => x.norm(2, 1),
  norm_3_zero_row: (x) => x.norm(3, 1),
  var_correction_kw: (x) => x.var(1, { correction: 0, keepdim: true }),
  var_correction_2_all: (x) => nb.var(x, { correction: 2 }),
  std_correction_kw: (x) => x.std([0, 2], { correction: 0 }),
  std_default_dim: (x) => nb.std(x, 1, true),
  any_all: (x) => x.any(),
  any_dim1: (x) => nb.any(x, 1),
  all_dim1: (x) => x.all(1),
  all_dim0_keepdim: (x) => x.all(0, true),
  all_all: (x) => nb.all(x),
  any_nan: (x, m, k) => special(x, m, k).mul(0).any(0),
};

// Sums of many terms (see test/helpers/fixtures.ts); everything else the default 1e-5/1e-6.
const tolFor = (name: string): Partial<Tolerance> =>
  /^(prod|cumsum|norm|var|std)/.test(name) ? SUM_TOL : {};

const fixtures = JSON.parse(
  readFileSync(new URL('./fixtures/ops_math.json', import.meta.url), 'utf8'),
) as OpFixtures;

beforeAll(async () => {
  await nb.init();
});

describe(`math op fixtures vs PyTorch ${fixtures.torch}`, () => {
  opFixtureTests(fixtures, OPS, tolFor);
});

// ------------------------------------------------------------------ gradcheck

const leaf = (v: Float32Array, shape: number[]): nb.Tensor =>
  nb.tensor(v, { shape, requiresGrad: true });
const randn = (shape: number[], scale = 1, shift = 0): nb.Tensor =>
  leaf(
    Float32Array.from(nb.randn(shape).toArray(), (v) => v * scale + shift),
    shape,
  );
const uniform = (shape: number[], lo: number, hi: number): nb.Tensor =>
  leaf(
    Float32Array.from(nb.rand(shape).toArray(), (v) => lo + (hi - lo) * v),
    shape,
  );
/** N(0, 1) pushed at least `margin` away from every kink. */
function away(shape: number[], kinks = [0], margin = 0.1): nb.Tensor {
  const v = Float32Array.from(nb.randn(shape).toArray());
  for (let i = 0; i < v.length; i++) {
    for (const k of kinks) {
      const d = v[i] - k;
      if (Math.abs(d) < margin) v[i] = k + (d >= 0 ? 1 : -1) * (margin + Math.abs(d));
    }
  }
  return leaf(v, shape);
}
const fixed = (values: number[], shape = [values.length]): nb.Tensor =>
  leaf(Float32Array.from(values), shape);

const GRAD_CASES: Record<string, { fn: Op; inputs: () => nb.Tensor[] }> = {
  sin: { fn: (x) => x.sin(), inputs: () => [randn([3, 4], 3)] },
  cos: { fn: (x) => x.cos(), inputs: () => [randn([3, 4], 3)] },
  erf: { fn: (x) => x.erf(), inputs: () => [randn([3, 4])] },
  log1p: { fn: (x) => x.log1p(), inputs: () => [uniform([3, 4], -0.5, 3)] },
  expm1: { fn: (x) => x.expm1(), inputs: () => [randn([3, 4])] },
  floor: { fn: (x) => x.floor().add(x), inputs: () => [away([3, 4], [-2, -1, 0, 1, 2])] },
  round: { fn: (x) => x.round().mul(x), inputs: () => [away([3, 4], [-1.5, -0.5, 0.5, 1.5])] },
  softplus: { fn: (x) => x.softplus({ beta: 1.5 }), inputs: () => [randn([3, 4], 3)] },
  silu: { fn: (x) => x.silu(), inputs: () => [randn([3, 4], 3)] },
  mish: { fn: (x) => x.mish(), inputs: () => [randn([3, 4], 3)] },
  hardtanh: { fn: (x) => x.hardtanh(), inputs: () => [away([3, 4], [-1, 1])] },
  elu: { fn: (x) => x.elu({ alpha: 0.7 }), inputs: () => [away([3, 4])] },
  // x, min and max at least 0.1 apart everywhere, so no comparison flips within the step
  clamp_tensor: {
    fn: (x, lo, hi) => x.clamp(lo, hi),
    inputs: () => [
      fixed([-1.2, -0.3, 0.2, 1.1, 0.4, -0.9], [2, 3]),
      fixed([-0.5, 0.0, -0.1]),
      fixed([0.6, 0.8], [2, 1]),
    ],
  },
  clamp_tensor_crossed: {
    fn: (x, lo, hi) => x.clamp(lo, hi),
    inputs: () => [
      fixed([-1, 0.1, 1.5, 0.5]),
      fixed([0.5, -0.4, 0.3, 0.9]),
      fixed([0.2, 0.6, 1.0, 0.7]),
    ],
  },
  prod_dim: { fn: (x) => x.prod(1), inputs: () => [uniform([3, 4], 0.5, 1.5)] },
  prod_all_with_zero: { fn: (x) => x.prod(), inputs: () => [fixed([1.5, 0, -0.5, 2])] },
  cumsum: { fn: (x) => x.cumsum(1).mul(x), inputs: () => [randn([2, 5])] },
  norm_2: { fn: (x) => x.norm(2, 1), inputs: () => [randn([3, 4])] },
  norm_1: { fn: (x) => x.norm(1), inputs: () => [away([3, 4])] },
  norm_2p5: { fn: (x) => x.norm(2.5, [0, 1], true), inputs: () => [away([2, 3, 2])] },
  norm_half: { fn: (x) => x.norm(0.5, 1), inputs: () => [away([2, 3], [0], 0.3)] },
  norm_fro: { fn: (x) => x.norm('fro'), inputs: () => [randn([2, 3])] },
  norm_inf: {
    fn: (x) => x.norm(Infinity, 0),
    inputs: () => [fixed([1, -3, 0.5, 2, 0.2, -4], [2, 3])],
  },
  var_kw: { fn: (x) => x.var(0, { correction: 0 }), inputs: () => [randn([4, 3])] },
  std_kw: { fn: (x) => x.std(1, { correction: 2, keepdim: true }), inputs: () => [randn([2, 5])] },
};

describe('gradcheck: math ops vs finite differences', () => {
  for (const [name, c] of Object.entries(GRAD_CASES)) {
    it(name, () => {
      nb.manualSeed(4321);
      const r = nb.gradcheck(c.fn, c.inputs());
      expect(r.ok, `${name}: ${r.maxAbsError} ${r.maxRelError} ${JSON.stringify(r.worst)}`).toBe(
        true,
      );
    });
  }
});

// ------------------------------------------------------------------ errors

function expectError(fn: () => unknown, cls: abstract new (...a: never[]) => Error, re: RegExp) {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${cls.name}`).toBeInstanceOf(cls);
  expect((caught as Error).message).toMatch(re);
}

describe('math op errors', () => {
  const x = () => nb.zeros([2, 3]);
  it('round: non-integer decimals', () =>
    expectError(() => x().round({ decimals: 1.5 }), nb.ValueError, /^round: .*1\.5/));
  it('round: decimals on int32', () =>
    expectError(
      () => nb.round(nb.zeros([2], { dtype: 'int32' }), { decimals: 1 }),
      nb.DTypeError,
      /^round: decimals=1 .*int32/,
    ));
  it('softplus: beta 0', () =>
    expectError(() => x().softplus({ beta: 0 }), nb.ValueError, /^softplus: beta .* 0/));
  it('hardtanh: minVal above maxVal', () =>
    expectError(
      () => x().hardtanh({ minVal: 2, maxVal: 1 }),
      nb.ValueError,
      /^hardtanh: minVal \(2\).*maxVal \(1\)/,
    ));
  it('elu: NaN alpha', () =>
    expectError(() => x().elu({ alpha: NaN }), nb.ValueError, /^elu: alpha .*NaN/));
  it('clamp: tensor bounds that do not broadcast', () =>
    expectError(() => x().clamp(nb.zeros([4])), nb.ShapeError, /^clamp: .*\[2, 3\].*\[4\]/));
  it('clamp: no bound', () =>
    expectError(() => x().clamp(null, null), nb.ValueError, /^clamp: at least one/));
  it('prod: dim out of range', () =>
    expectError(() => x().prod(2), nb.ShapeError, /^prod: dim 2 .*\[2, 3\]/));
  it('cumsum: dim out of range', () =>
    expectError(() => x().cumsum(-3), nb.ShapeError, /^cumsum: dim -3 .*\[2, 3\]/));
  it('norm: negative p', () =>
    expectError(() => x().norm(-1), nb.ValueError, /^norm: p must .* -1/));
  it('norm: unknown string p', () =>
    expectError(() => nb.norm(x(), 'nuc' as never), nb.ValueError, /^norm: .*nuc/));
  it('norm: int32 input', () =>
    expectError(() => nb.zeros([2], { dtype: 'int32' }).norm(), nb.DTypeError, /^norm: .*int32/));
  it('norm: infinity norm of an empty dim', () =>
    expectError(() => nb.zeros([2, 0]).norm(Infinity, 1), nb.ShapeError, /^norm: .*\[2, 0\]/));
  it('var: correction both positionally and in options', () =>
    expectError(() => nb.var(x(), 0, { correction: 0 }, 1), nb.ValueError, /^var: /));
  it('std: non-finite correction', () =>
    expectError(() => x().std(0, false, NaN), nb.ValueError, /^std: correction .*NaN/));
  it('any: dim out of range', () =>
    expectError(() => x().any(5), nb.ShapeError, /^any: dim 5 .*\[2, 3\]/));
  it('Hardtanh module: minVal above maxVal', () =>
    expectError(
      () => new nb.nn.Hardtanh({ minVal: 1, maxVal: -1 }),
      nb.ValueError,
      /^Hardtanh: minVal \(1\)/,
    ));
});

// ------------------------------------------------------------------ semantics beyond fixtures

describe('math op semantics', () => {
  it('rounding keeps the sign of zero and returns int32 unchanged', () => {
    const r = nb.tensor([-0.4, -0.5, 0.4]).round().toArray();
    expect(Object.is(r[0], -0) && Object.is(r[1], -0) && Object.is(r[2], 0)).toBe(true);
    expect(Object.is(nb.tensor([-0.5]).ceil().item(), -0)).toBe(true);
    const i = nb.tensor(Int32Array.from([3, -4]), { dtype: 'int32' });
    expect(i.round().dtype).toBe('int32');
    expect(Array.from(i.ceil().toArray())).toEqual([3, -4]);
  });

  it('masks and any/all are int32 and carry no gradient', () => {
    const x = nb.tensor([1, NaN, Infinity], { requiresGrad: true });
    for (const m of [x.isnan(), x.isfinite(), x.any(), x.all()]) {
      expect(m.dtype).toBe('int32');
      expect(m.requiresGrad).toBe(false);
    }
    expect(Array.from(nb.zeros([0]).all().toArray())).toEqual([1]);
    expect(Array.from(nb.zeros([0]).any().toArray())).toEqual([0]);
  });

  it('clamp with tensor bounds equals the number form when the bounds are constant', () => {
    const x = nb.randn([4, 5]);
    const a = x.clamp(nb.full([5], -0.3), nb.full([4, 1], 0.4)).toArray();
    expect(Array.from(a)).toEqual(Array.from(x.clamp(-0.3, 0.4).toArray()));
  });

  it('nn modules: forward as the functional form, extraRepr as PyTorch', () => {
    const x = nb.randn([3, 4]);
    type Activation = {
      forward(x: nb.Tensor): nb.Tensor;
      extraRepr(): string;
      parameters(): unknown[];
    };
    const cases: [Activation, nb.Tensor, string][] = [
      [new nb.nn.Softplus(), F.softplus(x), 'beta=1, threshold=20'],
      [
        new nb.nn.Softplus({ beta: 2, threshold: 5 }),
        F.softplus(x, { beta: 2, threshold: 5 }),
        'beta=2, threshold=5',
      ],
      [new nb.nn.SiLU(), F.silu(x), ''],
      [new nb.nn.Mish(), F.mish(x), ''],
      [new nb.nn.Hardtanh(), F.hardtanh(x), 'min_val=-1.0, max_val=1.0'],
      [
        new nb.nn.Hardtanh({ minVal: -0.5, maxVal: 2.5 }),
        F.hardtanh(x, { minVal: -0.5, maxVal: 2.5 }),
        'min_val=-0.5, max_val=2.5',
      ],
      [new nb.nn.ELU(), F.elu(x), 'alpha=1.0'],
      [new nb.nn.ELU({ alpha: 0.5 }), F.elu(x, { alpha: 0.5 }), 'alpha=0.5'],
    ];
    for (const [m, want, repr] of cases) {
      expect(Array.from(m.forward(x).toArray())).toEqual(Array.from(want.toArray()));
      expect(m.extraRepr()).toBe(repr);
      expect(m.parameters()).toEqual([]);
    }
  });

  it('var/std: the options object works in the dim slot, with null dim, and positionally', () => {
    const x = nb.randn([3, 4]);
    const same = (a: nb.Tensor, b: nb.Tensor) =>
      expect(Array.from(a.toArray())).toEqual(Array.from(b.toArray()));
    same(x.var({ correction: 0 }), x.var(null, { correction: 0 }));
    same(x.var(undefined, false, 0), x.var(null, { correction: 0 }));
    same(x.std(1, true, 2), x.std(1, { keepdim: true, correction: 2 }));
    same(nb.std(x, { keepdim: true }), x.std(undefined, true));
    expect(x.std({ keepdim: true }).shape).toEqual([1, 1]);
    // correction 0 vs 1 differ by the factor n / (n - 1)
    const ratio = x.var(1, { correction: 0 }).div(x.var(1)).toArray();
    for (const r of ratio) expect(r).toBeCloseTo(3 / 4, 6);
  });

  it('sin/cos beyond |x| = 8192 fall back to float64 lane by lane', () => {
    const v = Float32Array.from([0.5, 1e5, -3e7, 1e30, 8193, -2, 3.4e38, 7]);
    const x = nb.tensor(v);
    const f32 = (f: (a: number) => number) => Array.from(v, (a) => Math.fround(f(a)));
    assertClose(x.sin().toArray(), f32(Math.sin), { rtol: 1.2e-7, atol: 0 }, 'sin');
    assertClose(x.cos().toArray(), f32(Math.cos), { rtol: 1.2e-7, atol: 0 }, 'cos');
    expect(Number.isNaN(nb.tensor([Infinity]).sin().item())).toBe(true);
  });

  it('cumsum accumulates float32 in float64 like PyTorch', () => {
    // 1 + 1e-8 * k: f32 accumulation would lose every small term.
    const v = new Float32Array(1001).fill(1e-8);
    v[0] = 1;
    const c = nb.tensor(v).cumsum(0).toArray();
    expect(c[1000]).toBe(Math.fround(1 + 1e-5));
  });
});

// ------------------------------------------------------------------ kernels at SIMD tails

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
const softplus = (x: number, b = 1, t = 20): number =>
  x * b > t ? x : Math.log1p(Math.exp(x * b)) / b;
/** Round half to even, as the kernels (and PyTorch) do. */
const roundEven = (x: number): number =>
  Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : Math.round(x);

interface Unary {
  fn: (x: nb.Tensor) => nb.Tensor;
  ref: (x: number) => number;
  grad: (x: number) => number;
  range: [number, number];
  tol: Tolerance;
}

const ACT_TOL = { rtol: 2e-6, atol: 1e-7 };
const UNARIES: Record<string, Unary> = {
  sin: { fn: nb.sin, ref: Math.sin, grad: Math.cos, range: [-30, 30], tol: ACT_TOL },
  cos: { fn: nb.cos, ref: Math.cos, grad: (x) => -Math.sin(x), range: [-30, 30], tol: ACT_TOL },
  erf: {
    fn: nb.erf,
    ref: erf64,
    grad: (x) => (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x),
    range: [-4, 4],
    tol: ACT_TOL,
  },
  log1p: {
    fn: nb.log1p,
    ref: Math.log1p,
    grad: (x) => 1 / (1 + x),
    range: [-0.9, 10],
    tol: ACT_TOL,
  },
  expm1: { fn: nb.expm1, ref: Math.expm1, grad: Math.exp, range: [-5, 5], tol: ACT_TOL },
  floor: { fn: nb.floor, ref: Math.floor, grad: () => 0, range: [-9, 9], tol: EXACT },
  ceil: { fn: nb.ceil, ref: Math.ceil, grad: () => 0, range: [-9, 9], tol: EXACT },
  round: { fn: (x) => nb.round(x), ref: roundEven, grad: () => 0, range: [-9, 9], tol: EXACT },
  softplus: {
    fn: (x) => nb.softplus(x, { beta: 2, threshold: 10 }),
    ref: (x) => softplus(x, 2, 10),
    grad: (x) => (2 * x > 10 ? 1 : sigmoid(2 * x)),
    range: [-20, 20],
    tol: ACT_TOL,
  },
  silu: {
    fn: nb.silu,
    ref: (x) => x * sigmoid(x),
    grad: (x) => sigmoid(x) * (1 + x * (1 - sigmoid(x))),
    range: [-15, 15],
    tol: ACT_TOL,
  },
  mish: {
    fn: nb.mish,
    ref: (x) => x * Math.tanh(Math.log1p(Math.exp(x))),
    grad: (x) => {
      const t = Math.tanh(Math.log1p(Math.exp(x)));
      return t + x * sigmoid(x) * (1 - t * t);
    },
    range: [-15, 15],
    tol: ACT_TOL,
  },
  hardtanh: {
    fn: (x) => nb.hardtanh(x, { minVal: -0.5, maxVal: 2 }),
    ref: (x) => Math.min(Math.max(x, -0.5), 2),
    grad: (x) => (x > -0.5 && x < 2 ? 1 : 0),
    range: [-4, 4],
    tol: EXACT,
  },
  elu: {
    fn: (x) => nb.elu(x, { alpha: 0.7 }),
    ref: (x) => (x > 0 ? x : 0.7 * Math.expm1(x)),
    grad: (x) => (x > 0 ? 1 : 0.7 * Math.exp(x)),
    range: [-6, 6],
    tol: ACT_TOL,
  },
};

describe('unary kernels at SIMD-tail lengths (real wasm vs float64)', () => {
  const LENS = [0, 1, 3, 4, 5, 15, 16, 17, 257];
  for (const [name, u] of Object.entries(UNARIES)) {
    it(name, () => {
      for (const n of LENS) {
        const v = seeded(n, 17 + n, u.range[0], u.range[1]);
        const x = nb.tensor(v, { shape: [n], requiresGrad: true });
        const y = u.fn(x);
        assertClose(y.toArray(), Array.from(v, u.ref), u.tol, `${name} n=${n}`);
        const g = seeded(n, 99 + n, -2, 2);
        y.backward(nb.tensor(g, { shape: [n] }));
        const want = Array.from(v, (xi, i) => g[i] * u.grad(xi));
        assertClose(x.grad!.toArray(), want, { rtol: 4e-6, atol: 2e-7 }, `${name}' n=${n}`);
      }
    });
  }

  it('prod and cumsum along rows of every tail length', () => {
    for (const n of LENS) {
      const v = seeded(3 * n, 5 + n, 0.9, 1.1);
      const x = nb.tensor(v, { shape: [3, n] });
      const p = x.prod(1).toArray();
      const c = x.cumsum(1).toArray();
      for (let r = 0; r < 3; r++) {
        let acc = 1;
        let s = 0;
        for (let j = 0; j < n; j++) {
          acc *= v[r * n + j];
          s += v[r * n + j];
          expect(Math.abs(c[r * n + j] - s)).toBeLessThanOrEqual(1e-6 * Math.abs(s));
        }
        expect(Math.abs(p[r] - acc)).toBeLessThanOrEqual(1e-5 * Math.abs(acc));
      }
    }
  });
});

describe('math ops free their temporaries', () => {
  const x = () => nb.tensor([0.5, -1.5, 2, 0, 3, -0.25], { shape: [2, 3] });
  const lo = () => nb.tensor([-0.5, 0, 0.25]);
  const ops: Record<string, (t: nb.Tensor) => nb.Tensor> = {
    isfinite: (t) => t.isfinite(),
    isnan: (t) => t.isnan(),
    any: (t) => t.any(1),
    all: (t) => t.all(),
    norm_2: (t) => t.norm(),
    norm_3: (t) => t.norm(3, 1),
    norm_inf: (t) => t.norm(Infinity, 0),
    std: (t) => t.std(1, { correction: 0 }),
    prod: (t) => t.prod(0),
    cumsum: (t) => t.cumsum(1),
    clamp_tensor: (t) => t.clamp(lo(), 1),
  };
  it('sign of int32: one new tensor', () => {
    const t = x().int();
    const before = nb.memory().tensors;
    const y = t.sign();
    expect(nb.memory().tensors - before).toBe(1);
    expect(Array.from(y.toArray())).toEqual([0, -1, 1, 0, 1, 0]);
  });

  for (const [name, op] of Object.entries(ops)) {
    it(`${name}: one new tensor per call, none left after backward in a scope`, () => {
      const t = x();
      const before = nb.memory().tensors;
      const y = nb.noGrad(() => op(t));
      // clamp_tensor's bound is the caller's own tensor: it stays alive
      expect(nb.memory().tensors - before).toBe(name === 'clamp_tensor' ? 2 : 1);
      y.dispose();
      const base = nb.memory().tensors;
      const leafX = nb.tidy(() => {
        const leaf = t.clone().requiresGrad_();
        const out = op(leaf);
        if (out.requiresGrad) out.sum().backward();
        return leaf;
      });
      leafX.grad?.dispose();
      leafX.dispose();
      expect(nb.memory().tensors).toBe(base);
    });
  }
});
