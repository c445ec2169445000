// nb.data: datasets, batching, splits, and IDX/MNIST loading.
export { Dataset, TensorDataset, Subset, randomSplit } from './dataset.js';
export { stratifiedSplit } from './stratified.js';
export { DataLoader, type DataLoaderOptions, type Collated } from './loader.js';
export { readIdx, type ReadIdxOptions } from './idx.js';
export { gunzip } from './gzip.js';
export { loadMnist, type Mnist } from './mnist.js';
