// The element types nabla stores. Both are 4 bytes, so shape kernels move 32-bit words and
// serve either. Comparisons return int32 0/1 masks (there is no bool dtype).

export type DType = 'float32' | 'int32';

export type TypedArray = Float32Array | Int32Array;

export const BYTES_PER_ELEMENT = 4;

/**
 * Bytes one element of `dtype` takes in wasm memory. Every byte count goes through here (not a
 * literal `4 *`), so narrower storage types (f16, bf16) only change this table.
 */
export function itemSize(dtype: DType): number {
  return dtype === 'float32' || dtype === 'int32' ? 4 : BYTES_PER_ELEMENT;
}

export function isDType(v: unknown): v is DType {
  return v === 'float32' || v === 'int32';
}

/** PyTorch's promotion for our two dtypes: any float operand makes the result float. */
export function promote(a: DType, b: DType): DType {
  return a === 'float32' || b === 'float32' ? 'float32' : 'int32';
}
