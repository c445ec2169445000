// Loads the WebAssembly core once and hands out typed access to its exports and memory.
// Browsers fetch `nabla.wasm` beside the bundle (streaming compilation when the server says
// application/wasm); Node reads the file. Node built-ins are imported only on Node's paths.
import { setAsyncStorage, type Context } from '../tensor/scope.js';
import { ValueError } from '../errors.js';
import { EXPORTS, type Core } from './abi.js';

/**
 * Where the core comes from: a URL (string or `URL`; in Node a string without a scheme is a
 * file path), a fetch `Response` or a promise of one, the bytes, or a compiled module.
 */
export type WasmSource =
  string | URL | Response | PromiseLike<Response> | BufferSource | WebAssembly.Module;

export interface InitOptions {
  wasm?: WasmSource;
}

let core: Core | null = null;
let loading: Promise<void> | null = null;

/** The instantiated core; throws if `init()` has not finished. */
export function wasm(): Core {
  if (core === null) throw new ValueError('nabla is not initialised: `await nb.init()` first');
  return core;
}

export function isInitialised(): boolean {
  return core !== null;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;
const HINT =
  'serve nabla.wasm next to the bundle (as application/wasm), or pass init({ wasm: url | bytes | Response | WebAssembly.Module })';

/** What `WebAssembly.instantiate(Streaming)` takes, plus a label for error messages. */
type Loaded =
  | { kind: 'module'; module: WebAssembly.Module }
  | { kind: 'bytes'; bytes: BufferSource; from: string }
  | { kind: 'response'; response: Response; from: string };

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

function isBytes(v: unknown): v is BufferSource {
  return (
    v instanceof ArrayBuffer ||
    ArrayBuffer.isView(v) ||
    Object.prototype.toString.call(v) === '[object ArrayBuffer]'
  );
}

function isResponse(v: unknown): v is Response {
  if (typeof Response !== 'undefined' && v instanceof Response) return true;
  // A Response from another realm (an iframe, another fetch implementation).
  const r = v as Partial<Response> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.arrayBuffer === 'function' &&
    typeof r.status === 'number' &&
    typeof r.headers === 'object'
  );
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  typeof (v as PromiseLike<unknown> | null)?.then === 'function';

async function readNodeFile(file: string | URL): Promise<Loaded> {
  const { readFile } = await import('node:fs/promises');
  try {
    return { kind: 'bytes', bytes: await readFile(file), from: String(file) };
  } catch (e) {
    throw new ValueError(`init: cannot read ${String(file)}: ${message(e)}`);
  }
}

async function fetchUrl(url: string | URL): Promise<Loaded> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new ValueError(`init: cannot fetch ${String(url)}: ${message(e)}; ${HINT}`);
  }
  return { kind: 'response', response, from: response.url || String(url) };
}

/** A URL string, URL or path: Node reads files, everything else is fetched. */
function loadUrl(src: string | URL): Promise<Loaded> {
  if (isNode) {
    // A scheme has two or more letters, so `C:\...` stays a Windows path.
    if (typeof src === 'string' && !/^[a-z][a-z0-9+.-]+:/i.test(src)) return readNodeFile(src);
    const url = new URL(src);
    if (url.protocol === 'file:') return readNodeFile(url);
  }
  // Browsers resolve a relative string against the page (or the worker script).
  return fetchUrl(src);
}

async function load(src: WasmSource | undefined): Promise<Loaded> {
  if (src === undefined) return loadUrl(new URL('./nabla.wasm', import.meta.url));
  if (src instanceof WebAssembly.Module) return { kind: 'module', module: src };
  if (isBytes(src)) return { kind: 'bytes', bytes: src, from: 'the given bytes' };
  if (isResponse(src)) return { kind: 'response', response: src, from: src.url || 'the Response' };
  if (typeof src === 'string' || src instanceof URL) return loadUrl(src);
  if (isThenable(src)) {
    const response = await src;
    if (isResponse(response))
      return { kind: 'response', response, from: response.url || 'the Response' };
    throw new ValueError(
      `init: the wasm promise resolved to ${describe(response)}, not a Response`,
    );
  }
  throw new ValueError(
    `init: wasm must be a URL, path, Response, ArrayBuffer, typed array or WebAssembly.Module, got ${describe(src)}`,
  );
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  return (v as object).constructor?.name ?? 'an object';
}

const MAGIC = [0x00, 0x61, 0x73, 0x6d]; // "\0asm"

/** Fails clearly when a server answered with something else (an HTML error page, say). */
function checkMagic(bytes: BufferSource, from: string): void {
  const view = ArrayBuffer.isView(bytes)
    ? new Uint8Array(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 4))
    : new Uint8Array(bytes, 0, Math.min(bytes.byteLength, 4));
  if (view.length < 4 || MAGIC.some((b, i) => view[i] !== b)) {
    const head = new TextDecoder().decode(view);
    throw new ValueError(
      `init: ${from} is not a WebAssembly module (it starts with ${JSON.stringify(head)}, not "\\0asm"); ${HINT}`,
    );
  }
}

async function instantiate(src: Loaded): Promise<WebAssembly.Instance> {
  if (src.kind === 'module') return WebAssembly.instantiate(src.module, {});
  const { from } = src;
  let bytes: BufferSource;
  try {
    if (src.kind === 'response') {
      const { response } = src;
      if (!response.ok) {
        throw new ValueError(
          `init: ${from} answered ${response.status} ${response.statusText}; ${HINT}`,
        );
      }
      if (response.bodyUsed) throw new ValueError(`init: the body of ${from} was already read`);
      const type = response.headers.get('content-type') ?? '';
      // Streaming compiles while downloading, but only accepts the application/wasm type.
      if (
        typeof WebAssembly.instantiateStreaming === 'function' &&
        /^application\/wasm\b/i.test(type)
      ) {
        return (await WebAssembly.instantiateStreaming(response, {})).instance;
      }
      bytes = await response.arrayBuffer();
    } else {
      bytes = src.bytes;
    }
    checkMagic(bytes, from);
    return (await WebAssembly.instantiate(bytes, {})).instance;
  } catch (e) {
    if (e instanceof ValueError) throw e;
    throw new ValueError(`init: cannot load ${from}: ${message(e)}`);
  }
}

function checkExports(instance: WebAssembly.Instance): Core {
  const ex = instance.exports as Record<string, unknown>;
  for (const name of Object.keys(EXPORTS)) {
    if (typeof ex[name] !== 'function') {
      throw new ValueError(`init: the wasm module does not export ${name}; rebuild it`);
    }
  }
  if (!(ex.memory instanceof WebAssembly.Memory)) {
    throw new ValueError('init: the wasm module exports no memory');
  }
  return ex as unknown as Core;
}

/**
 * In Node, async `tidy`/`noGrad` get contexts of their own through AsyncLocalStorage (loaded
 * on demand, so browser bundles stay free of Node built-ins); elsewhere they throw.
 */
async function installAsyncContext(): Promise<void> {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (!proc?.versions?.node) return;
  try {
    const { AsyncLocalStorage } = await import('node:async_hooks');
    setAsyncStorage(new AsyncLocalStorage<Context>());
  } catch {
    // an odd runtime without async_hooks: async tidy/noGrad throw, synchronous code is unaffected
  }
}

/**
 * Loads the core: by default `nabla.wasm` next to this file, else `options.wasm`. Idempotent:
 * later calls (and concurrent ones) resolve to the same instance; a failed call can be retried.
 */
export function init(options: InitOptions = {}): Promise<void> {
  if (core !== null) return Promise.resolve();
  loading ??= (async () => {
    await installAsyncContext();
    core = checkExports(await instantiate(await load(options.wasm)));
  })().catch((e: unknown) => {
    loading = null;
    throw e;
  });
  return loading;
}
