// `nb.optim`: optimizers with fused wasm updates, and learning-rate schedulers.
export {
  Optimizer,
  type ParamGroup,
  type ParamGroupSpec,
  type Params,
  type OptimizerStateDict,
  type GroupDict,
} from './optimizer.js';
export { SGD, type SGDOptions } from './sgd.js';
export { Adam, AdamW, type AdamOptions } from './adam.js';
export { RMSprop, type RMSpropOptions } from './rmsprop.js';
export { Adagrad, type AdagradOptions } from './adagrad.js';
export { paramGroupsWithDecay, type DecayGroupsOptions } from './groups.js';
export {
  LRScheduler,
  StepLR,
  ExponentialLR,
  CosineAnnealingLR,
  LinearLR,
  WarmupLR,
  warmup,
  ReduceLROnPlateau,
  LambdaLR,
  MultiStepLR,
  OneCycleLR,
  type LrLambda,
  type OneCycleLROptions,
  type LrGroups,
  type WarmupOptions,
  type ReduceLROnPlateauOptions,
  type SchedulerStateDict,
} from './schedulers.js';
