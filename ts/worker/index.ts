// nb.worker: training and inference in a Web Worker, driven from the page by messages.
export { serve } from './serve.js';
export { connect, type WorkerClient, type RunOptions, type RunArgs } from './connect.js';
export {
  transfer,
  Transfer,
  WorkerError,
  type Endpoint,
  type JobContext,
  type Handler,
  type Handlers,
  type PageMessage,
  type WorkerMessage,
  type ErrorInfo,
} from './protocol.js';
export {
  packTensor,
  unpackTensor,
  packWeights,
  unpackWeights,
  modelHandlers,
  type TensorMessage,
  type WeightsMessage,
} from './messages.js';
export { progressCallback, type TrainProgress, type ProgressOptions } from './progress.js';
