export {
  fit,
  evaluate,
  predict,
  type FitOptions,
  type History,
  type Metric,
  type EvaluateOptions,
} from './fit.js';
export {
  EarlyStopping,
  ModelCheckpoint,
  type Callback,
  type Logs,
  type TrainState,
  type EarlyStoppingOptions,
  type ModelCheckpointOptions,
} from './callbacks.js';
export type { ProgressMode } from './progress.js';
export {
  saveCheckpoint,
  loadCheckpoint,
  type CheckpointParts,
  type CheckpointInfo,
} from './checkpoint.js';
