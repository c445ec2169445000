// The TypeScript mirror of crate/src/abi.rs: every export with its parameter names, in order,
// and every op code. test/abi.test.ts parses abi.rs and checks this file against it and
// against the built module, so the two sides cannot drift.

/** One export: its parameters (names as in abi.rs) and whether it returns a value. */
interface Export {
  readonly params: readonly string[];
  readonly returns: boolean;
}
const fn = <const P extends readonly string[]>(params: P) => ({ params, returns: false as const });
const fnReturning = <const P extends readonly string[]>(params: P) => ({
  params,
  returns: true as const,
});

const strided2 = ['op', 'a', 'b', 'out', 'ndim', 'shape', 'a_strides', 'b_strides'] as const;
const reduce3 = ['op', 'x', 'out', 'outer', 'r', 'inner'] as const;
const copy2 = ['src', 'dst', 'ndim', 'shape', 'src_strides', 'dst_strides'] as const;

export const EXPORTS = {
  nb_alloc: fnReturning(['bytes']),
  nb_free: fn(['ptr', 'bytes']),
  fill_u32: fn(['out', 'n', 'bits']),
  arange_f32: fn(['out', 'n', 'start', 'step']),
  arange_i32: fn(['out', 'n', 'start', 'step']),
  cast_f32_i32: fn(['x', 'out', 'n']),
  cast_i32_f32: fn(['x', 'out', 'n']),
  copy_strided_u32: fn(copy2),
  accumulate_strided_f32: fn(copy2),
  add_inplace_f32: fn(['dst', 'src', 'n']),
  unary_f32: fn(['op', 'x', 'out', 'n', 'p0', 'p1']),
  unary_bwd_f32: fn(['op', 'saved', 'g', 'out', 'n', 'p0', 'p1']),
  binary_f32: fn(strided2),
  binary_i32: fn(strided2),
  compare_f32: fn(strided2),
  compare_i32: fn(strided2),
  where_u32: fn([
    'cond',
    'a',
    'b',
    'out',
    'ndim',
    'shape',
    'cond_strides',
    'a_strides',
    'b_strides',
  ]),
  cumsum_f32: fn(['x', 'out', 'outer', 'r', 'inner', 'reverse', 'begin', 'end']),
  cumsum_i32: fn(['x', 'out', 'outer', 'r', 'inner', 'reverse', 'begin', 'end']),
  prod_f32: fn(['x', 'out', 'outer', 'r', 'inner', 'begin', 'end']),
  prod_i32: fn(['x', 'out', 'outer', 'r', 'inner', 'begin', 'end']),
  prod_bwd_f32: fn(['x', 'g', 'out', 'outer', 'r', 'inner', 'begin', 'end']),
  reduce_f32: fn(reduce3),
  reduce_i32: fn(reduce3),
  argreduce_f32: fn(reduce3),
  softmax_f32: fn(['x', 'out', 'outer', 'r', 'inner', 'log']),
  softmax_bwd_f32: fn(['y', 'g', 'out', 'outer', 'r', 'inner', 'log']),
  index_check_i32: fnReturning(['idx', 'n', 'limit']),
  index_select_u32: fn(['x', 'idx', 'out', 'outer', 'dim', 'inner', 'n_idx']),
  index_add_f32: fn(['g', 'idx', 'dst', 'outer', 'dim', 'inner', 'n_idx']),
  gather_u32: fn(['x', 'x_len', 'idx', 'out', 'ndim', 'idx_shape', 'x_strides', 'axis']),
  scatter_add_f32: fn([
    'dst',
    'dst_len',
    'idx',
    'src',
    'src_len',
    'ndim',
    'idx_shape',
    'dst_strides',
    'src_strides',
    'axis',
  ]),
  one_hot_i32: fn(['idx', 'out', 'n', 'classes']),
  matmul_scratch_len: fnReturning([]),
  matmul_f32: fn([
    'a',
    'b',
    'c',
    'm',
    'k',
    'n',
    'a_rs',
    'a_cs',
    'b_rs',
    'b_cs',
    'accumulate',
    'scratch',
  ]),
  rng_uniform_f32: fn(['out', 'n', 'key_hi', 'key_lo', 'low', 'high']),
  rng_normal_f32: fn(['out', 'n', 'key_hi', 'key_lo', 'mean', 'std']),
  rng_randint_i32: fn(['out', 'n', 'key_hi', 'key_lo', 'low', 'high']),
  rng_bernoulli_f32: fn(['out', 'n', 'key_hi', 'key_lo', 'keep', 'scale']),
  sgd_step_f32: fn([
    'param',
    'grad',
    'momentum_buf',
    'n',
    'lr',
    'momentum',
    'dampening',
    'weight_decay',
    'flags',
  ]),
  adam_step_f32: fn([
    'param',
    'grad',
    'exp_avg',
    'exp_avg_sq',
    'max_exp_avg_sq',
    'n',
    'lr',
    'beta1',
    'beta2',
    'eps',
    'weight_decay',
    'bias_correction1',
    'bias_correction2',
    'flags',
  ]),
  rmsprop_step_f32: fn([
    'param',
    'grad',
    'square_avg',
    'grad_avg',
    'momentum_buf',
    'n',
    'lr',
    'alpha',
    'eps',
    'weight_decay',
    'momentum',
    'flags',
  ]),
  adagrad_step_f32: fn([
    'param',
    'grad',
    'state_sum',
    'n',
    'lr',
    'lr_decay',
    'weight_decay',
    'eps',
    'step',
    'flags',
  ]),
  pow_sum_f32: fnReturning(['x', 'n', 'p']),
  class_target_check_i32: fnReturning(['target', 'n', 'classes', 'ignore_index']),
  cross_entropy_f32: fnReturning([
    'x',
    'target',
    'weight',
    'loss',
    'lse',
    'rows',
    'classes',
    'ignore_index',
    'smoothing',
  ]),
  cross_entropy_bwd_f32: fn([
    'x',
    'target',
    'weight',
    'lse',
    'g',
    'dx',
    'rows',
    'classes',
    'ignore_index',
    'smoothing',
  ]),
  cross_entropy_prob_f32: fn([
    'x',
    'target',
    'weight',
    'loss',
    'lse',
    'rows',
    'classes',
    'smoothing',
  ]),
  cross_entropy_prob_bwd_f32: fn([
    'x',
    'target',
    'weight',
    'lse',
    'g',
    'dx',
    'dt',
    'rows',
    'classes',
    'smoothing',
  ]),
  layer_norm_f32: fn(['x', 'y', 'mean', 'rstd', 'weight', 'bias', 'rows', 'd', 'eps']),
  layer_norm_bwd_f32: fn([
    'g',
    'x',
    'mean',
    'rstd',
    'weight',
    'dx',
    'dweight',
    'dbias',
    'rows',
    'd',
  ]),
} as const satisfies Record<string, Export>;

type Exports = typeof EXPORTS;
type Args<P extends readonly string[]> = { [I in keyof P]: number };

/** The instantiated module's exports, typed from `EXPORTS` so every call site is arity-checked. */
export type Core = {
  [K in keyof Exports]: (
    ...args: Args<Exports[K]['params']>
  ) => Exports[K]['returns'] extends true ? number : void;
} & { memory: WebAssembly.Memory };

/** Largest rank a strided kernel accepts (abi.rs `MAX_DIMS`). */
export const MAX_DIMS = 8;

export const UnaryOp = {
  NEG: 0,
  EXP: 1,
  LOG: 2,
  SQRT: 3,
  RSQRT: 4,
  ABS: 5,
  RELU: 6,
  SIGMOID: 7,
  TANH: 8,
  GELU: 9,
  GELU_TANH: 10,
  LEAKY_RELU: 11,
  POW_SCALAR: 12,
  CLAMP: 13,
  SIGN: 14,
  AFFINE: 15,
  RECIPROCAL: 16,
  SQUARE: 17,
  RPOW_SCALAR: 18,
  DIV_SCALAR: 19,
  SIN: 20,
  COS: 21,
  ERF: 22,
  LOG1P: 23,
  EXPM1: 24,
  FLOOR: 25,
  CEIL: 26,
  ROUND: 27,
  SOFTPLUS: 28,
  SILU: 29,
  MISH: 30,
  ELU: 31,
  HARDTANH: 32,
} as const;

export const BinaryOp = {
  ADD: 0,
  SUB: 1,
  MUL: 2,
  DIV: 3,
  POW: 4,
  MAXIMUM: 5,
  MINIMUM: 6,
} as const;

export const CmpOp = { EQ: 0, NE: 1, LT: 2, LE: 3, GT: 4, GE: 5 } as const;

export const ReduceOp = { SUM: 0, MAX: 1, MIN: 2, LOGSUMEXP: 3 } as const;

export const ArgOp = { MAX: 0, MIN: 1 } as const;

/** Prefix of each op-code group in abi.rs, for the drift test. */
export const CONSTANT_GROUPS = {
  UNARY_: UnaryOp,
  BINARY_: BinaryOp,
  CMP_: CmpOp,
  REDUCE_: ReduceOp,
  ARG_: ArgOp,
} as const;
