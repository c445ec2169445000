// The safetensors format (Hugging Face's): an 8-byte little-endian header length, a JSON
// header mapping each name to {dtype, shape, data_offsets} (plus an optional string map
// "__metadata__"), then the raw little-endian tensor bytes, which exactly tile the rest.
import { ValueError } from '../errors.js';
import { itemSize } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { wasm } from '../wasm/core.js';
import { f32View, i32View } from '../wasm/heap.js';
import { WRITE_NAME, WRITE_RANK } from './dtypes.js';
import { parseHeader, setKey, type Entry } from './header.js';

const utf8 = new TextEncoder();

/** Orders strings by their UTF-8 bytes, as Rust compares `String`s. */
function byteOrder(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** The bytes of a tensor as wasm stores them (little-endian, like the file). */
function tensorBytes(t: Tensor): Uint8Array {
  return new Uint8Array(wasm().memory.buffer, t.ptr, t.size * itemSize(t.dtype));
}

/**
 * Serialises a state dict (float32 → F32, int32 → I32) byte for byte like the reference
 * implementation: tensors sorted by dtype (F32 before I32) then name, compact JSON with
 * `__metadata__` first, the header padded with spaces to a multiple of 8. Metadata keys are
 * written sorted (the reference's order for several keys is a hash map's, i.e. arbitrary).
 */
export function saveSafetensors(
  stateDict: Record<string, Tensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const items = Object.entries(stateDict);
  for (const [name, t] of items) {
    if (name === '__metadata__') {
      throw new ValueError('saveSafetensors: "__metadata__" is reserved and cannot name a tensor');
    }
    if (!(t instanceof Tensor))
      throw new ValueError(`saveSafetensors: ${JSON.stringify(name)} is not a Tensor`);
    t.storage();
  }
  items.sort(([a, x], [b, y]) => WRITE_RANK[y.dtype] - WRITE_RANK[x.dtype] || byteOrder(a, b));

  const fields: string[] = [];
  if (metadata !== undefined) {
    const meta = Object.entries(metadata).sort(([a], [b]) => byteOrder(a, b));
    for (const [k, v] of meta) {
      if (typeof v !== 'string') {
        throw new ValueError(
          `saveSafetensors: metadata values must be strings; ${JSON.stringify(k)} is ${typeof v}`,
        );
      }
    }
    const body = meta.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',');
    fields.push(`"__metadata__":{${body}}`);
  }
  let offset = 0;
  for (const [name, t] of items) {
    const end = offset + t.size * itemSize(t.dtype);
    fields.push(
      `${JSON.stringify(name)}:{"dtype":"${WRITE_NAME[t.dtype]}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = utf8.encode(`{${fields.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;

  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const [, t] of items) {
    out.set(tensorBytes(t), at);
    at += t.size * itemSize(t.dtype);
  }
  return out;
}

/**
 * Parses a safetensors file into a state dict (tensors by name, in file order, fresh tensors
 * the caller owns), like `safetensors.torch.load`. The file is validated fully first (header
 * length, JSON, dtypes, shapes against byte spans, offsets that exactly tile the data section,
 * no repeated names). F32, F16, BF16 and F64 load as float32; I32, I64 and the smaller integer
 * types as int32 (values outside int32's range are an error). Wire into a model with
 * `model.loadStateDict(loadSafetensors(bytes))`, then dispose the loaded tensors. The
 * `__metadata__` strings are read by `safetensorsMetadata`.
 */
export function loadSafetensors(bytes: Uint8Array | ArrayBuffer): Record<string, Tensor> {
  return readTensors(asBytes('loadSafetensors', bytes), 'loadSafetensors');
}

/**
 * The `__metadata__` strings of a safetensors file ({} when it has none). The whole header is
 * validated, as by `loadSafetensors`, but no tensor is made.
 */
export function safetensorsMetadata(bytes: Uint8Array | ArrayBuffer): Record<string, string> {
  return parseHeader(asBytes('safetensorsMetadata', bytes), 'safetensorsMetadata').metadata;
}

/** The file's bytes (a Uint8Array, a Node Buffer, or an ArrayBuffer such as fetch gives). */
function asBytes(op: string, bytes: unknown): Uint8Array {
  if (bytes instanceof Uint8Array) return bytes;
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  throw new ValueError(`${op}: expected a Uint8Array or ArrayBuffer, got ${describe(bytes)}`);
}

/** `loadSafetensors` for the file helpers: `context` (e.g. `loadFile: <path>`) starts errors. */
export function readTensors(bytes: Uint8Array, context: string): Record<string, Tensor> {
  const header = parseHeader(bytes, context);
  const tensors: Record<string, Tensor> = {};
  const made: Tensor[] = [];
  try {
    for (const e of header.entries) {
      const t = Tensor.empty(e.shape, e.type.to);
      made.push(t);
      fill(t, e, bytes, header.dataStart, context);
      setKey(tensors, e.name, t);
    }
  } catch (err) {
    made.forEach((t) => t.dispose());
    throw err;
  }
  return tensors;
}

/** How an argument of the wrong type is named in messages. */
export function describe(v: unknown): string {
  if (v === null || typeof v !== 'object') return v === null ? 'null' : typeof v;
  return (v as object).constructor?.name ?? 'an object';
}

function fill(t: Tensor, e: Entry, bytes: Uint8Array, dataStart: number, context: string): void {
  const src = bytes.subarray(dataStart + e.begin, dataStart + e.end);
  const read = e.type.read;
  if (!read) {
    tensorBytes(t).set(src);
    return;
  }
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const out = t.dtype === 'float32' ? f32View(t.ptr, t.size) : i32View(t.ptr, t.size);
  for (let i = 0, at = 0; i < t.size; i++, at += e.type.size) {
    const v = read(view, at);
    if (typeof v === 'bigint' || t.dtype === 'int32') {
      const n = Number(v);
      if (n < -(2 ** 31) || n > 2 ** 31 - 1) {
        throw new ValueError(
          `${context}: tensor ${JSON.stringify(e.name)} (${e.dtype}) holds ${v} at flat index ${i}, outside int32's range`,
        );
      }
      out[i] = n;
    } else {
      out[i] = v;
    }
  }
}
