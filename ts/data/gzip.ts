// gzip decompression for data sets shipped as .gz files (Fashion-MNIST, Debian's dataset
// packages): Node's zlib under Node (loaded on demand, so browser bundles never import it),
// the DecompressionStream web API elsewhere.
import { NablaError, ValueError } from '../errors.js';

/** True when `bytes` start with gzip's magic number, 0x1f 0x8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

const hex = (b: number): string => `0x${b.toString(16).padStart(2, '0')}`;

const inNode = (): boolean =>
  typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/** Decompresses with Node's zlib, off the main thread. */
export async function viaZlib(bytes: Uint8Array): Promise<Uint8Array> {
  const { gunzip: inflate } = await import('node:zlib');
  return new Promise((resolve, reject) =>
    // A plain Uint8Array over the Buffer's memory, as the stream path returns.
    inflate(bytes, (err, out) =>
      err ? reject(err) : resolve(new Uint8Array(out.buffer, out.byteOffset, out.length)),
    ),
  );
}

/** Decompresses with the DecompressionStream web API (browsers, workers, Node 18+). */
export async function viaStream(bytes: Uint8Array): Promise<Uint8Array> {
  if (typeof DecompressionStream === 'undefined') {
    throw new ValueError('gunzip: this runtime has neither Node’s zlib nor DecompressionStream');
  }
  // Read the stream directly: wrapping it in a Response would replace the decoder's own error
  // (which tells a cut-short input from a damaged one) by a generic "Failed to fetch".
  const ds = new DecompressionStream('gzip');
  const writer = ds.writable.getWriter();
  // Their failures are the reader's too, reported below.
  writer.write(bytes as Uint8Array<ArrayBuffer>).catch(() => undefined);
  writer.close().catch(() => undefined);
  const reader = ds.readable.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Decompresses gzip data with Node's zlib in Node (which also reads several concatenated
 * members, as the `gunzip` tool does) and DecompressionStream elsewhere (browsers may accept
 * only one member). Bytes that are not gzip, or gzip
 * data that is cut short or damaged, are a ValueError. For `.gz` IDX files:
 * `nb.data.readIdx(await nb.data.gunzip(bytes))`.
 */
export function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  return decompress(bytes, 'gunzip');
}

/** `gunzip` with errors starting with `context` (e.g. `loadMnist: <path>`) and a chosen path. */
export async function decompress(
  bytes: Uint8Array,
  context: string,
  via: (bytes: Uint8Array) => Promise<Uint8Array> = inNode() ? viaZlib : viaStream,
): Promise<Uint8Array> {
  if (!(bytes instanceof Uint8Array)) {
    throw new ValueError(`${context}: expected a Uint8Array`);
  }
  if (!isGzip(bytes)) {
    const start = [...bytes.subarray(0, 2)].map(hex).join(' ') || 'nothing';
    throw new ValueError(
      `${context}: not gzip data (it starts with ${start}; gzip starts with 0x1f 0x8b)`,
    );
  }
  try {
    return await via(bytes);
  } catch (e) {
    throw gzipError(context, e);
  }
}

/** zlib's and the streams' failures as one typed error: truncated, or corrupt. */
export function gzipError(context: string, e: unknown): NablaError {
  if (e instanceof NablaError) return e;
  const message = (e as Error)?.message ?? String(e);
  const truncated =
    (e as { code?: string })?.code === 'Z_BUF_ERROR' || /unexpected end|truncated/i.test(message);
  return new ValueError(
    `${context}: ${truncated ? 'truncated' : 'corrupt'} gzip data (${message})`,
  );
}
