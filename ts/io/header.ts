// Parsing and validating a safetensors header. Every check throws a ValueError starting with
// the caller's context (`loadSafetensors`, or e.g. `loadFile: <path>`) that names the tensor and
// the numbers involved; bytes that cannot be a safetensors file at all say so first.
import { ValueError, fmt } from '../errors.js';
import { READABLE, UNREADABLE, type StDType } from './dtypes.js';

export interface Entry {
  name: string;
  dtype: string;
  type: StDType;
  shape: number[];
  begin: number;
  end: number;
}

export interface Header {
  /** Byte offset of the data section in the file. */
  dataStart: number;
  /** Entries sorted by data offset. */
  entries: Entry[];
  metadata: Record<string, string>;
}

/** What the bytes look like when they are a common non-safetensors weights file. */
function sniff(bytes: Uint8Array): string {
  const at = (...b: number[]): boolean => b.every((v, i) => bytes[i] === v);
  if (at(0x50, 0x4b, 0x03, 0x04)) {
    return ' (it is a zip archive, e.g. a PyTorch .pt/.pth file: convert it with safetensors.torch.save_file)';
  }
  if (at(0x1f, 0x8b)) return ' (it is gzip-compressed: decompress it first)';
  if (at(0x80) && bytes[1] >= 2 && bytes[1] <= 5) return ' (it is a Python pickle)';
  return '';
}

/**
 * Largest rank a header may give a tensor. The format sets none, but nothing real comes close
 * and every op walks the shape, so a rank of 100,000 would make a one-element tensor slow.
 */
export const MAX_RANK = 64;

/**
 * Deepest nesting the format needs: the header object, a tensor entry (or `__metadata__`), its
 * shape or offsets array. Checked on the raw text before JSON.parse, which would otherwise
 * recurse until the stack overflows.
 */
export const MAX_DEPTH = 3;

/** Defines an own property, so names like `__proto__` stay ordinary keys. */
export function setKey<V>(obj: Record<string, V>, key: string, value: V): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * The header length stored in the first 8 bytes, checked against `total`, the size of the whole
 * file (so a reader can fetch just the header of a large file).
 */
export function headerLength(bytes: Uint8Array, context: string, total = bytes.length): number {
  if (total < 8) {
    notSafetensors(context, bytes, `need at least 8 bytes for the header length, got ${total}`);
  }
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(total - 8)) {
    notSafetensors(
      context,
      bytes,
      `header length ${n} runs past the end of the ${total} bytes (${total - 8} after the length)`,
    );
  }
  return Number(n);
}

function notSafetensors(context: string, bytes: Uint8Array, msg: string): never {
  throw new ValueError(`${context}: not a safetensors file: ${msg}${sniff(bytes)}`);
}

/**
 * Parses and validates the header. `bytes` holds at least the length and the header; `total`
 * is the size of the whole file, whose data section the offsets must exactly tile.
 */
export function parseHeader(
  bytes: Uint8Array,
  context = 'loadSafetensors',
  total = bytes.length,
): Header {
  const fail: Fail = (msg) => {
    throw new ValueError(`${context}: ${msg}`);
  };
  const n = headerLength(bytes, context, total);
  const dataStart = 8 + n;
  if (bytes.length < dataStart) {
    throw new Error(`parseHeader: given ${bytes.length} bytes, the header needs ${dataStart}`);
  }
  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(
      bytes.subarray(8, dataStart),
    );
  } catch {
    notSafetensors(context, bytes, 'the header is not valid UTF-8');
  }
  if (nestingDepth(text) > MAX_DEPTH) {
    fail(
      `the header nests arrays or objects more than ${MAX_DEPTH} levels deep (the format needs ${MAX_DEPTH})`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    notSafetensors(context, bytes, `the header is not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    notSafetensors(context, bytes, 'the header must be a JSON object');
  }
  const dup = duplicateKey(text);
  if (dup !== null) fail(`the header repeats the key ${JSON.stringify(dup)}`);

  const dataLength = total - dataStart;
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') readMetadata(info, metadata, fail);
    else entries.push(readEntry(name, info, dataLength, fail));
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev: Entry | null = null;
  for (const e of entries) {
    if (e.begin < at) {
      fail(
        `tensors ${q(prev!.name)} ${fmt([prev!.begin, prev!.end])} and ${q(e.name)} ${fmt([e.begin, e.end])} overlap`,
      );
    }
    if (e.begin > at) {
      fail(
        prev
          ? `${e.begin - at} unused bytes between ${q(prev.name)} (ends at ${at}) and ${q(e.name)} (starts at ${e.begin})`
          : `${e.begin} unused bytes at the start of the data section before ${q(e.name)}`,
      );
    }
    at = e.end;
    prev = e;
  }
  if (at !== dataLength) {
    fail(
      `the tensors cover ${at} bytes but the data section has ${dataLength} (${dataLength - at} trailing bytes)`,
    );
  }
  return { dataStart, entries, metadata };
}

const q = (s: string): string => JSON.stringify(s);

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

type Fail = (msg: string) => never;

function readMetadata(info: unknown, out: Record<string, string>, fail: Fail): void {
  if (info === null || typeof info !== 'object' || Array.isArray(info)) {
    fail('__metadata__ must be an object of strings');
  }
  for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
    if (typeof v !== 'string')
      fail(`__metadata__ must map strings to strings; ${q(k)} is ${JSON.stringify(v)}`);
    setKey(out, k, v as string);
  }
}

function readEntry(name: string, info: unknown, dataLength: number, fail: Fail): Entry {
  if (info === null || typeof info !== 'object' || Array.isArray(info)) {
    fail(`tensor ${q(name)} must be an object with dtype, shape and data_offsets`);
  }
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (typeof dtype !== 'string') fail(`tensor ${q(name)} has no dtype string`);
  const type = READABLE[dtype as string];
  if (!type) {
    fail(
      UNREADABLE.includes(dtype as string)
        ? `tensor ${q(name)} has dtype ${dtype}, which nabla cannot read (it reads ${Object.keys(READABLE).join(', ')})`
        : `tensor ${q(name)} has unknown dtype ${q(dtype as string)}`,
    );
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    fail(
      `tensor ${q(name)} has an invalid shape ${JSON.stringify(shape)} (expected non-negative integers)`,
    );
  }
  if ((shape as unknown[]).length > MAX_RANK) {
    fail(
      `tensor ${q(name)} has rank ${(shape as unknown[]).length}, more than the ${MAX_RANK} dims nabla accepts`,
    );
  }
  if ((shape as number[]).some((s) => s >= 2 ** 31)) {
    fail(`tensor ${q(name)} has shape ${fmt(shape as number[])} with a size of 2^31 or more`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every(isCount) ||
    offsets[0] > offsets[1]
  ) {
    fail(
      `tensor ${q(name)} has invalid data_offsets ${JSON.stringify(offsets)} (expected [begin, end] with 0 <= begin <= end)`,
    );
  }
  const [begin, end] = offsets as number[];
  if (end > dataLength) {
    fail(
      `tensor ${q(name)} data_offsets ${fmt([begin, end])} run past the end of the data section (${dataLength} bytes)`,
    );
  }
  const dims = shape as number[];
  const bytes = dims.reduce((a, b) => a * b, 1) * type.size;
  if (bytes !== end - begin) {
    fail(
      `tensor ${q(name)}: shape ${fmt(dims)} of ${dtype} needs ${bytes} bytes but data_offsets ${fmt([begin, end])} span ${end - begin}`,
    );
  }
  return { name, dtype: dtype as string, type, shape: dims, begin, end };
}

/**
 * How deeply arrays and objects nest in JSON text (strings skipped, escapes honoured). The text
 * need not be valid JSON: this runs before parsing, and stops early once past `MAX_DEPTH`.
 */
export function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    } else if (c === '{' || c === '[') {
      deepest = Math.max(deepest, ++depth);
      if (deepest > MAX_DEPTH + 1) return deepest;
    } else if (c === '}' || c === ']') depth--;
  }
  return deepest;
}

/**
 * The first key repeated within one object of valid JSON text, or null. JSON.parse keeps the
 * last duplicate silently, so a file could otherwise hide a tensor entry.
 */
export function duplicateKey(json: string): string | null {
  const stack: { keys: Set<string> | null; expectKey: boolean }[] = [];
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    const top = stack[stack.length - 1];
    if (c === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(json.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return key;
        top.keys.add(key);
        top.expectKey = false;
      }
      i = j;
    } else if (c === '{') stack.push({ keys: new Set(), expectKey: true });
    else if (c === '[') stack.push({ keys: null, expectKey: false });
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ',' && top?.keys) top.expectKey = true;
  }
  return null;
}
