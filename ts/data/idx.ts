// The IDX format of MNIST-style files: a 4-byte magic number (0, 0, type code, ndim), ndim
// big-endian uint32 sizes, then the values big-endian in row-major order.
import { ValueError, fmt } from '../errors.js';
import { isDType, type DType } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { f32View, i32View } from '../wasm/heap.js';
import { isGzip } from './gzip.js';

interface IdxType {
  name: string;
  size: number;
  float: boolean;
  read: (v: DataView, at: number) => number;
}

const TYPES: Record<number, IdxType> = {
  0x08: { name: 'uint8', size: 1, float: false, read: (v, at) => v.getUint8(at) },
  0x09: { name: 'int8', size: 1, float: false, read: (v, at) => v.getInt8(at) },
  0x0b: { name: 'int16', size: 2, float: false, read: (v, at) => v.getInt16(at) },
  0x0c: { name: 'int32', size: 4, float: false, read: (v, at) => v.getInt32(at) },
  0x0d: { name: 'float32', size: 4, float: true, read: (v, at) => v.getFloat32(at) },
  0x0e: { name: 'float64', size: 8, float: true, read: (v, at) => v.getFloat64(at) },
};

const hex = (b: number): string => `0x${b.toString(16).padStart(2, '0')}`;

export interface ReadIdxOptions {
  /** Result dtype; by default int32 for integer files and float32 for float files. */
  dtype?: DType;
}

/**
 * Parses an IDX file (MNIST's format) into a tensor: uint8, int8, int16 and int32 data become
 * int32, float32 and float64 become float32 (or all become `opts.dtype`). A gzipped file
 * (`.gz`) must be decompressed first: `readIdx(await nb.data.gunzip(bytes))`.
 */
export function readIdx(bytes: Uint8Array, opts: ReadIdxOptions = {}): Tensor {
  if (!(bytes instanceof Uint8Array)) throw new ValueError('readIdx: expected a Uint8Array');
  if (opts.dtype !== undefined && !isDType(opts.dtype)) {
    throw new ValueError(`readIdx: unknown dtype ${String(opts.dtype)} (use 'float32' or 'int32')`);
  }
  if (bytes.length < 4) {
    throw new ValueError(
      `readIdx: need at least 4 bytes for the magic number, got ${bytes.length}`,
    );
  }
  if (isGzip(bytes)) {
    throw new ValueError(
      'readIdx: the bytes are gzip-compressed (they start with 0x1f 0x8b); decompress them first: readIdx(await nb.data.gunzip(bytes))',
    );
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new ValueError(
      `readIdx: bad magic number ${[...bytes.subarray(0, 4)].map(hex).join(' ')} (the first two bytes must be 0x00)`,
    );
  }
  const type = TYPES[bytes[2]];
  if (!type) {
    throw new ValueError(
      `readIdx: unknown type code ${hex(bytes[2])} (expected 0x08 uint8, 0x09 int8, 0x0b int16, 0x0c int32, 0x0d float32 or 0x0e float64)`,
    );
  }
  const ndim = bytes[3];
  const header = 4 + 4 * ndim;
  if (bytes.length < header) {
    throw new ValueError(
      `readIdx: a ${ndim}-d header needs 4 + 4·${ndim} = ${header} bytes, got ${bytes.length}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape = Array.from({ length: ndim }, (_, d) => view.getUint32(4 + 4 * d));
  if (shape.some((s) => s >= 2 ** 31)) {
    throw new ValueError(`readIdx: shape ${fmt(shape)} has a size of 2^31 or more`);
  }
  const n = shape.reduce((a, b) => a * b, 1);
  const expected = header + n * type.size;
  if (bytes.length !== expected) {
    throw new ValueError(
      `readIdx: shape ${fmt(shape)} of ${type.name} needs ${header} + ${n}·${type.size} = ${expected} bytes, got ${bytes.length}`,
    );
  }
  const dtype = opts.dtype ?? (type.float ? 'float32' : 'int32');
  const t = Tensor.empty(shape, dtype);
  const out = dtype === 'float32' ? f32View(t.ptr, n) : i32View(t.ptr, n);
  if (type.size === 1) {
    // Typed-array set converts whole byte runs natively.
    const src = bytes.subarray(header);
    out.set(type.name === 'uint8' ? src : new Int8Array(src.buffer, src.byteOffset, n));
  } else {
    for (let i = 0, at = header; i < n; i++, at += type.size) out[i] = type.read(view, at);
  }
  return t;
}
