// nabla's public API: `import * as nb from 'nabla'`, then `await nb.init()`.
export {
  init,
  backendInfo,
  relaxedSimdSupported,
  threads,
  type BackendInfo,
  type InitOptions,
  type WasmSource,
} from './wasm/core.js';
export { backends } from './backends.js';
export { Tensor, type TensorLike } from './tensor/tensor.js';
export type { DType, TypedArray } from './tensor/dtype.js';
export {
  NablaError,
  ShapeError,
  DTypeError,
  IndexError,
  DisposedError,
  ValueError,
} from './errors.js';
export { OutOfMemoryError } from './wasm/heap.js';
export { WorkerError } from './wasm/threads.js';
export { tidy, keep, scope, Scope } from './tensor/scope.js';
export { noGrad, enableGrad, isGradEnabled } from './autograd/node.js';
export * as autograd from './autograd/api.js';
export { setAutoRelease } from './tensor/steps.js';
export { gradcheck, type GradcheckOptions, type GradcheckResult } from './autograd/gradcheck.js';
export { manualSeed, getRngState, setRngState } from './ops/random.js';
export { setFlushDenormal } from './optim/denormal.js';
export {
  tensor,
  zeros,
  ones,
  full,
  zerosLike,
  onesLike,
  fullLike,
  arange,
  eye,
  rand,
  randn,
  randint,
  uniform,
  normal,
  type TensorOptions,
  type FromDataOptions,
  type NestedArray,
} from './ops/creation.js';
export {
  add,
  sub,
  mul,
  div,
  pow,
  maximum,
  minimum,
  neg,
  exp,
  log,
  sqrt,
  rsqrt,
  abs,
  square,
  reciprocal,
  sign,
  clamp,
  relu,
  sigmoid,
  tanh,
  gelu,
  leakyRelu,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  where,
  maskedFill,
} from './ops/elementwise.js';
export {
  sin,
  cos,
  erf,
  log1p,
  expm1,
  floor,
  ceil,
  round,
  isnan,
  isfinite,
  softplus,
  silu,
  mish,
  hardtanh,
  elu,
  prod,
  cumsum,
  norm,
  std,
  any,
  all,
  type RoundOptions,
  type SoftplusOptions,
  type HardtanhOptions,
  type EluOptions,
  type NormOrd,
  type VarOptions,
} from './ops/math.js';
export { sum, mean, max, min, argmax, argmin, logsumexp, variance as var } from './ops/reduce.js';
export { softmax, logSoftmax } from './ops/softmax.js';
export {
  reshape,
  flatten,
  squeeze,
  unsqueeze,
  permute,
  transpose,
  expand,
  slice,
  narrow,
  cat,
  stack,
  split,
  chunk,
} from './ops/shape.js';
export { indexSelect, gather, scatterAdd, oneHot } from './ops/indexing.js';
export { tril, triu, flip, roll, repeat, tile } from './ops/shape.js';
export { scatter, maskedSelect, nonzero, type NonzeroOptions } from './ops/indexing.js';
export { sort, argsort, topk, type SortOptions } from './ops/sort.js';
export { multinomial, randperm, type MultinomialOptions } from './ops/random.js';
export { linspace } from './ops/creation.js';
export { einsum } from './ops/einsum.js';
export { matmul, type MatmulOptions } from './ops/matmul.js';
export {
  lstmCell,
  gruCell,
  rnnCell,
  lstmLayer,
  gruLayer,
  rnnLayer,
  type LstmLayerOptions,
  type RnnLayerOptions,
  type RnnNonlinearity,
} from './ops/rnn.js';
export { memory, emptyCache, setCacheLimit, resetPeakMemory, type MemoryInfo } from './memory.js';
export * as nn from './nn/index.js';
export * as data from './data/index.js';
export * as metrics from './metrics/index.js';
export * as io from './io/index.js';
export * as optim from './optim/index.js';
export * as train from './train/index.js';
export * as worker from './worker/index.js';
// Run with op families composed instead of fused (tests, benchmarks, numerics debugging).
export { composed } from './ops/fusion.js';
