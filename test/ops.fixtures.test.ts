// Every op against PyTorch 1.13 (test/fixtures/ops.json): forward shape, dtype and values, then
// `out.backward(upstream)` and every input's `.grad`. Each fixture case name maps to one nabla
// expression below, mirroring the torch lambda of the same name in
// scripts/fixtures/make_op_fixtures.py.
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { loadOpFixtures, opFixtureTests } from './helpers/fixtures.js';

type Op = (...xs: nb.Tensor[]) => nb.Tensor;

// List-returning ops are checked by concatenating their pieces in reverse: wrong piece
// boundaries move values, and the backward routes through every piece.
const rcat = (pieces: nb.Tensor[], dim: number): nb.Tensor => nb.cat([...pieces].reverse(), dim);

const OPS: Record<string, Op> = {
  // binary arithmetic: broadcasting both ways, scalars on either side
  add_bcast_col_row: (a, b) => a.add(b),
  add_bcast_trailing: (a, b) => a.add(b),
  add_bcast_leading: (a, b) => a.add(b),
  add_scalar_right: (x) => x.add(1.5),
  add_scalar_left: (x) => nb.add(1.5, x),
  sub_bcast_col_row: (a, b) => a.sub(b),
  sub_bcast_trailing: (a, b) => a.sub(b),
  sub_bcast_leading: (a, b) => a.sub(b),
  sub_scalar_right: (x) => x.sub(1.5),
  sub_scalar_left: (x) => nb.sub(1.5, x),
  mul_bcast_col_row: (a, b) => a.mul(b),
  mul_bcast_trailing: (a, b) => a.mul(b),
  mul_scalar_right: (x) => x.mul(-0.75),
  mul_scalar_left: (x) => nb.mul(-0.75, x),
  div_bcast_col_row: (a, b) => a.div(b),
  div_bcast_trailing: (a, b) => a.div(b),
  div_bcast_leading: (a, b) => a.div(b),
  div_scalar_right: (x) => x.div(2.5),
  div_scalar_left: (x) => nb.div(1.5, x),
  pow_bcast_col_row: (a, b) => a.pow(b),
  pow_bcast_trailing: (a, b) => a.pow(b),
  pow_bcast_leading: (a, b) => a.pow(b),
  pow_scalar_right: (x) => x.pow(2.5),
  pow_scalar_left: (x) => nb.pow(2, x),
  maximum_bcast_col_row: (a, b) => a.maximum(b),
  maximum_bcast_trailing: (a, b) => a.maximum(b),
  maximum_scalar_right: (x) => x.maximum(0.5),
  maximum_scalar_left: (x) => nb.maximum(0.5, x),
  minimum_bcast_col_row: (a, b) => a.minimum(b),
  minimum_bcast_trailing: (a, b) => a.minimum(b),
  minimum_scalar_right: (x) => x.minimum(0.5),
  minimum_scalar_left: (x) => nb.minimum(0.5, x),
  pow_same_shape: (a, b) => a.pow(b),
  pow_scalar_3_negbase: (x) => x.pow(3),
  mul_0d_tensor: (a, s) => a.mul(s),
  mul_noncontig: (a, b) => a.transpose(0, 1).mul(b),
  add_int32: (a, b) => a.add(b),
  mul_int32_scalar: (x) => x.mul(3),

  // comparisons (int32 0/1)
  eq_bcast: (a, b) => a.eq(b),
  ne_bcast: (a, b) => a.ne(b),
  lt_bcast: (a, b) => a.lt(b),
  le_bcast: (a, b) => a.le(b),
  gt_bcast: (a, b) => a.gt(b),
  ge_bcast: (a, b) => a.ge(b),
  eq_scalar: (x) => x.eq(0),
  lt_scalar: (x) => x.lt(1),
  ge_scalar: (x) => x.ge(-1),
  gt_int32_bcast: (a, b) => a.gt(b),

  // unary and activations
  neg: (x) => x.neg(),
  exp: (x) => x.exp(),
  exp_noncontig: (x) => x.transpose(0, 1).exp(),
  log: (x) => x.log(),
  sqrt: (x) => x.sqrt(),
  rsqrt: (x) => x.rsqrt(),
  abs: (x) => x.abs(),
  clamp_both: (x) => x.clamp(-0.5, 0.5),
  clamp_min_only: (x) => x.clamp(-0.5),
  clamp_max_only: (x) => x.clamp(undefined, 0.5),
  relu: (x) => x.relu(),
  sigmoid: (x) => x.sigmoid(),
  tanh: (x) => x.tanh(),
  gelu: (x) => x.gelu(),
  gelu_tanh: (x) => x.gelu({ approximate: 'tanh' }),
  leaky_relu: (x) => x.leakyRelu(),
  leaky_relu_slope: (x) => x.leakyRelu(0.2),
  softmax_dim0: (x) => x.softmax(0),
  softmax_dim1: (x) => x.softmax(1),
  softmax_dim_neg1: (x) => x.softmax(-1),
  softmax_large: (x) => x.softmax(-1),
  log_softmax_dim0: (x) => x.logSoftmax(0),
  log_softmax_dim_neg1: (x) => x.logSoftmax(-1),

  // selection
  where_same: (c, a, b) => nb.where(c, a, b),
  where_bcast: (c, a, b) => nb.where(c, a, b),
  masked_fill_same: (x, m) => x.maskedFill(m, -1.5),
  masked_fill_bcast: (x, m) => x.maskedFill(m, 0.25),
  masked_fill_neg_inf_softmax: (x, m) => x.maskedFill(m, -Infinity).softmax(-1),

  // reductions
  sum_all: (x) => x.sum(),
  sum_dim1: (x) => x.sum(1),
  sum_dim_neg1_keepdim: (x) => x.sum(-1, true),
  sum_dims_0_2: (x) => x.sum([0, 2]),
  sum_dims_neg_keepdim: (x) => x.sum([-1, -2], true),
  sum_noncontig: (x) => x.transpose(0, 1).sum(0),
  sum_int32: (x) => x.sum(1),
  mean_all: (x) => x.mean(),
  mean_dim0: (x) => x.mean(0),
  mean_dims_keepdim: (x) => x.mean([0, -1], true),
  max_all: (x) => x.max(),
  max_dim1: (x) => x.max(1),
  max_dim_neg1_keepdim: (x) => x.max(-1, true),
  max_dims_0_2: (x) => x.max([0, 2]),
  min_all: (x) => x.min(),
  min_dim0: (x) => x.min(0),
  min_dims_keepdim: (x) => x.min([1, 2], true),
  argmax_all: (x) => x.argmax(),
  argmax_dim1: (x) => x.argmax(1),
  argmax_dim_neg1_keepdim: (x) => x.argmax(-1, true),
  argmin_all: (x) => x.argmin(),
  argmin_dim0: (x) => x.argmin(0),
  logsumexp_dim_neg1: (x) => x.logsumexp(-1),
  logsumexp_dims_keepdim: (x) => x.logsumexp([0, 2], true),
  logsumexp_large: (x) => x.logsumexp(-1),
  var_all: (x) => x.var(),
  var_all_correction0: (x) => x.var(undefined, false, 0),
  var_dim1: (x) => x.var(1),
  var_dim_neg1_keepdim_correction0: (x) => x.var(-1, true, 0),
  var_dims_0_2: (x) => x.var([0, 2]),

  // shape and view ops
  reshape: (x) => x.reshape([4, 6]),
  reshape_infer: (x) => x.reshape([-1, 4]),
  reshape_noncontig: (x) => x.transpose(0, 1).reshape([12]),
  reshape_to_0d: (x) => x.reshape([]),
  view: (x) => x.view([3, 4]),
  view_infer: (x) => x.view([4, -1]),
  flatten_all: (x) => x.flatten(),
  flatten_from1: (x) => x.flatten(1),
  flatten_0_1: (x) => x.flatten(0, 1),
  squeeze_all: (x) => x.squeeze(),
  squeeze_dim: (x) => x.squeeze(2),
  squeeze_neg_dim: (x) => x.squeeze(-4),
  squeeze_noop: (x) => x.squeeze(1),
  unsqueeze_0: (x) => x.unsqueeze(0),
  unsqueeze_1: (x) => x.unsqueeze(1),
  unsqueeze_neg1: (x) => x.unsqueeze(-1),
  transpose_2d: (x) => x.transpose(0, 1),
  transpose_neg: (x) => x.transpose(-1, -3),
  permute_3d: (x) => x.permute([2, 0, 1]),
  permute_neg: (x) => x.permute([-1, 0, 1]),
  permute_4d: (x) => x.permute([1, 3, 0, 2]),
  expand_col: (x) => x.expand([3, 4]),
  expand_new_dims: (x) => x.expand([2, 3, 4]),
  expand_keep: (x) => x.expand([-1, 5]),
  expand_from_0d: (x) => x.expand([2, 3]),
  contiguous_transposed: (x) => x.transpose(0, 1).contiguous(),
  slice_step: (x) => x.slice(1, 1, 6, 2),
  slice_neg_start: (x) => x.slice(0, -2),
  slice_neg_end: (x) => x.slice(1, 1, -1),
  slice_clamped: (x) => x.slice(1, -10, 100),
  slice_step_only: (x) => x.slice(0, undefined, undefined, 2),
  slice_3d_neg_step2: (x) => x.slice(1, -4, -1, 2),
  slice_empty: (x) => x.slice(1, 3, 1),
  narrow: (x) => x.narrow(1, 1, 2),
  narrow_neg_start: (x) => x.narrow(0, -2, 2),
  cat_dim0: (a, b) => nb.cat([a, b], 0),
  cat_dim1_three: (a, b, c) => nb.cat([a, b, c], 1),
  cat_dim_neg1_3d: (a, b) => nb.cat([a, b], -1),
  stack_dim0: (a, b) => nb.stack([a, b], 0),
  stack_dim1_three: (a, b, c) => nb.stack([a, b, c], 1),
  stack_dim_neg1: (a, b) => nb.stack([a, b], -1),
  split_size_dim0: (x) => rcat(x.split(2, 0), 0),
  split_sections_dim1: (x) => rcat(x.split([1, 3, 2], 1), 1),
  split_size_neg_dim: (x) => rcat(x.split(2, -1), -1),
  chunk_even: (x) => rcat(x.chunk(3, 0), 0),
  chunk_uneven: (x) => rcat(x.chunk(3, 0), 0),
  chunk_fewer: (x) => rcat(x.chunk(4, 0), 0),
  chunk_dim1: (x) => rcat(x.chunk(2, 1), 1),

  // indexing
  index_select_dim0: (x, i) => x.indexSelect(0, i),
  index_select_dim1: (x, i) => x.indexSelect(1, i),
  index_select_dim_neg1_3d: (x, i) => x.indexSelect(-1, i),
  gather_dim0: (x, i) => x.gather(0, i),
  gather_dim1: (x, i) => x.gather(1, i),
  gather_dim_neg1_3d: (x, i) => x.gather(-1, i),
  scatter_add_dim0: (x, i, s) => x.scatterAdd(0, i, s),
  scatter_add_dim1: (x, i, s) => x.scatterAdd(1, i, s),
  one_hot_1d: (i) => nb.oneHot(i, 4),
  one_hot_2d: (i) => nb.oneHot(i, 5),

  // matmul
  matmul_1d_1d: (a, b) => a.matmul(b),
  matmul_2d_2d: (a, b) => a.matmul(b),
  matmul_1d_2d: (a, b) => a.matmul(b),
  matmul_2d_1d: (a, b) => a.matmul(b),
  matmul_batched: (a, b) => a.matmul(b),
  matmul_bcast_batch: (a, b) => a.matmul(b),
  matmul_3d_2d: (a, b) => a.matmul(b),
  matmul_2d_3d: (a, b) => a.matmul(b),
  matmul_3d_1d: (a, b) => a.matmul(b),
  matmul_1d_3d: (a, b) => a.matmul(b),
  matmul_noncontig: (a, b) => a.transpose(0, 1).matmul(b),
  matmul_transA_2d: (a, b) => a.matmul(b, { transA: true }),
  matmul_transB_2d: (a, b) => a.matmul(b, { transB: true }),
  matmul_transAB_2d: (a, b) => nb.matmul(a, b, { transA: true, transB: true }),
  matmul_transA_batched: (a, b) => a.matmul(b, { transA: true }),
  matmul_transB_3d_2d: (a, b) => a.matmul(b, { transB: true }),
  matmul_transA_3d_2d: (a, b) => a.matmul(b, { transA: true }),
  matmul_transAB_bcast: (a, b) => a.matmul(b, { transA: true, transB: true }),
  matmul_transB_2d_3d: (a, b) => a.matmul(b, { transB: true }),
  matmul_transB_1d_2d: (a, b) => a.matmul(b, { transB: true }),

  // creation
  zeros: () => nb.zeros([2, 3]),
  ones: () => nb.ones([3]),
  full: () => nb.full([2, 2], 1.5),
  arange_end: () => nb.arange(5),
  arange_start_step: () => nb.arange(1, 8, 3),
  arange_neg_step: () => nb.arange(5, 0, -2),
  arange_float: () => nb.arange(0, 1, 0.25),
  eye: () => nb.eye(3),
  zeros_like: (x) => nb.zerosLike(x),
  ones_like: (x) => nb.onesLike(x),

  // autograd plumbing
  autograd_reuse: (x) => x.mul(x).add(x),
  autograd_diamond: (a, b) => a.mul(b).exp().add(a.mul(b).mul(a)).sum(-1),
  autograd_chain: (a, b, c) => a.matmul(b).tanh().mul(c).sum(-1),
  detach_partial: (x) => x.mul(x.detach()),
};

const fixtures = loadOpFixtures();

describe(`op fixtures vs PyTorch ${fixtures.torch}`, () => {
  beforeAll(async () => {
    await nb.init();
  });

  opFixtureTests(fixtures, OPS);
});

// The fixtures see list-returning ops only through rcat; pin the piece shapes directly.
describe('split and chunk pieces', () => {
  beforeAll(async () => {
    await nb.init();
  });

  const shapes = (ts: nb.Tensor[]) => ts.map((t) => t.shape);

  it('split by size leaves a short last piece', () => {
    expect(shapes(nb.zeros([5, 3]).split(2))).toEqual([
      [2, 3],
      [2, 3],
      [1, 3],
    ]);
  });

  it('split by sections', () => {
    expect(shapes(nb.zeros([2, 6]).split([1, 3, 2], 1))).toEqual([
      [2, 1],
      [2, 3],
      [2, 2],
    ]);
  });

  it('chunk uses ceil(size / chunks) and may return fewer chunks', () => {
    expect(shapes(nb.zeros([5, 3]).chunk(3))).toEqual([
      [2, 3],
      [2, 3],
      [1, 3],
    ]);
    expect(shapes(nb.zeros([6, 2]).chunk(4))).toEqual([
      [2, 2],
      [2, 2],
      [2, 2],
    ]);
  });
});
