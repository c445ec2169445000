// safetensors element types and how each becomes one of nabla's two dtypes.
import type { DType } from '../tensor/dtype.js';

export interface StDType {
  /** Bytes per element. */
  size: number;
  /** nabla dtype it loads as. */
  to: DType;
  /** Reads element `i` (little-endian); absent when the bytes are copied as they are. */
  read?: (v: DataView, at: number) => number | bigint;
}

const half = (h: number): number => {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
};

const f32Bits = new DataView(new ArrayBuffer(4));
const bfloat16 = (h: number): number => {
  f32Bits.setUint32(0, h << 16);
  return f32Bits.getFloat32(0);
};

/** Every dtype nabla reads; the names are the safetensors spec's. */
export const READABLE: Record<string, StDType> = {
  F32: { size: 4, to: 'float32' },
  I32: { size: 4, to: 'int32' },
  F16: { size: 2, to: 'float32', read: (v, at) => half(v.getUint16(at, true)) },
  BF16: { size: 2, to: 'float32', read: (v, at) => bfloat16(v.getUint16(at, true)) },
  F64: { size: 8, to: 'float32', read: (v, at) => v.getFloat64(at, true) },
  I64: { size: 8, to: 'int32', read: (v, at) => v.getBigInt64(at, true) },
  U64: { size: 8, to: 'int32', read: (v, at) => v.getBigUint64(at, true) },
  U32: { size: 4, to: 'int32', read: (v, at) => v.getUint32(at, true) },
  I16: { size: 2, to: 'int32', read: (v, at) => v.getInt16(at, true) },
  U16: { size: 2, to: 'int32', read: (v, at) => v.getUint16(at, true) },
  I8: { size: 1, to: 'int32', read: (v, at) => v.getInt8(at) },
  U8: { size: 1, to: 'int32', read: (v, at) => v.getUint8(at) },
  BOOL: { size: 1, to: 'int32', read: (v, at) => v.getUint8(at) },
};

/** Valid safetensors dtypes that nabla cannot represent. */
export const UNREADABLE = [
  'F4',
  'F6_E2M3',
  'F6_E3M2',
  'F8_E5M2',
  'F8_E4M3',
  'F8_E8M0',
  'F8_E4M3FNUZ',
  'F8_E5M2FNUZ',
  'C64',
];

/**
 * The writer's order: the reference implementation sorts tensors by dtype, larger alignment
 * first (its enum order, descending), then by name. Only F32 and I32 are ever written.
 */
export const WRITE_RANK: Record<DType, number> = { float32: 1, int32: 0 };
export const WRITE_NAME: Record<DType, string> = { float32: 'F32', int32: 'I32' };
