// Loads the WebAssembly core once and hands out typed access to its exports and memory.
// Browsers fetch `nabla.wasm` beside the bundle (streaming compilation when the server says
// application/wasm); Node reads the file. Node built-ins are imported only on Node's paths.
import { setAsyncStorage, type Context } from '../tensor/scope.js';
import { ValueError } from '../errors.js';
import { EXPORTS, type Core } from './abi.js';
import { engineCores, isNode } from './env.js';
import { startPool, type Pool, type PoolCore } from './threads.js';

/**
 * Where the core comes from: a URL (string or `URL`; in Node a string without a scheme is a
 * file path), a fetch `Response` or a promise of one, the bytes, or a compiled module.
 */
export type WasmSource =
  string | URL | Response | PromiseLike<Response> | BufferSource | WebAssembly.Module;

export interface InitOptions {
  wasm?: WasmSource;
  /**
   * Which build of the core to load when `wasm` is not given: `'auto'` (the default) takes
   * `nabla-relaxed.wasm` (fused multiply-add in the GEMM micro-kernel) where the engine validates
   * relaxed SIMD and the file loads, else `nabla.wasm`; `'plain'` always takes `nabla.wasm`
   * (bitwise the same results on every engine); `'relaxed'` requires the relaxed build.
   */
  simd?: 'auto' | 'plain' | 'relaxed';
  /**
   * Threads for the ops that split their work (the GEMM behind matmul and Linear, the
   * convolutions, Adam's update). Default: the core count, at most 8; 1 runs everything on
   * the calling thread. More loads `nabla-threads.wasm` (or its relaxed-SIMD build, as `simd`
   * chooses) on a shared memory and starts `threads - 1` workers: Node's worker_threads, or in
   * a browser module Workers when nabla itself runs in a Worker of a cross-origin isolated page;
   * elsewhere it stays at 1 and `backendInfo().threadsReason` says why. Results are bitwise the
   * same for any count.
   */
  threads?: number;
}

/** The most threads `init` starts. */
export const MAX_THREADS = 64;

/** What `init()` loaded: see `nb.backendInfo()`. */
export interface BackendInfo {
  /** `'relaxed'`: the relaxed-SIMD build; `'simd128'`: the plain build (or a given module). */
  simd: 'relaxed' | 'simd128';
  /** Whether this engine validates relaxed SIMD instructions. */
  relaxedSimdSupported: boolean;
  /** Why the plain build was loaded, when it was. */
  reason?: string;
  /** Where the core came from. */
  source: string;
  /** Threads the splitting ops use (the calling one included). */
  threads: number;
  /** Why there are fewer threads than asked for, when there are. */
  threadsReason?: string;
}

let core: Core | null = null;
let loading: Promise<void> | null = null;
let info: BackendInfo | null = null;
let workers: Pool | null = null;

/** What the loaded core is; throws if `init()` has not finished. */
export function backendInfo(): BackendInfo {
  if (info === null) throw new ValueError('nabla is not initialised: `await nb.init()` first');
  const now = { ...info };
  if (workers?.broken) {
    now.threads = 1;
    now.threadsReason = workers.broken;
  }
  return now;
}

/** The worker pool while it works, else null (one thread). */
export function pool(): Pool | null {
  return workers !== null && workers.broken === null ? workers : null;
}

/** How many threads the splitting ops use now (1 before `init()`). */
export function threads(): number {
  return pool()?.size ?? 1;
}

// A module whose one function is `f32x4.relaxed_madd` (0xfd 0x85 0x02): engines without relaxed
// SIMD reject it.
const RELAXED_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b,
  0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20,
  0x02, 0xfd, 0x85, 0x02, 0x0b,
]);

/** Whether this engine runs relaxed SIMD (Chrome 114+, Firefox 146+, Node 22+; not Safari). */
export function relaxedSimdSupported(): boolean {
  try {
    return WebAssembly.validate(RELAXED_PROBE);
  } catch {
    return false;
  }
}

/** The instantiated core; throws if `init()` has not finished. */
export function wasm(): Core {
  if (core === null) throw new ValueError('nabla is not initialised: `await nb.init()` first');
  return core;
}

export function isInitialised(): boolean {
  return core !== null;
}

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

/** A loaded core; `shared` when it is the shared-memory one, with the threads to start. */
type CoreLoad = { instance: WebAssembly.Instance; info: BackendInfo; shared?: SharedCore };
type SharedCore = { module: WebAssembly.Module; memory: WebAssembly.Memory; threads: number };

/** Pages `nabla-threads.wasm` is linked to start with (scripts/build-wasm.mjs). */
const SHARED_INITIAL_PAGES = 64;

/** The default thread count: the cores the engine reports, at most 8. */
async function defaultThreads(): Promise<number> {
  return Math.min(8, await engineCores());
}

/** Why `threads` workers cannot run here, or null when they can. */
function threadsUnavailable(options: InitOptions): string | null {
  if (!isNode) {
    const scope = globalThis as { WorkerGlobalScope?: unknown; crossOriginIsolated?: boolean };
    if (scope.WorkerGlobalScope === undefined) {
      return "a browser's main thread cannot block: run nabla in a Worker to use threads";
    }
    if (scope.crossOriginIsolated !== true) {
      return 'the page is not cross-origin isolated (it needs the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)';
    }
  }
  if (typeof SharedArrayBuffer === 'undefined') return 'SharedArrayBuffer is not available';
  if (options.wasm !== undefined) return 'a module was given (init({ wasm }))';
  return null;
}

/** The shared-memory core beside this file (its relaxed-SIMD build when asked), on a fresh
 * shared memory. */
async function loadShared(relaxed: boolean, threads: number): Promise<CoreLoad> {
  const file = relaxed ? './nabla-threads-relaxed.wasm' : './nabla-threads.wasm';
  const src = await loadUrl(new URL(file, import.meta.url));
  let bytes: BufferSource;
  if (src.kind === 'bytes') bytes = src.bytes;
  else if (src.kind === 'response') {
    if (!src.response.ok) {
      throw new ValueError(`init: ${src.from} answered ${src.response.status}; ${HINT}`);
    }
    bytes = await src.response.arrayBuffer();
  } else throw new ValueError(`init: threads: cannot read ${file}`);
  checkMagic(bytes, src.from);
  const module = await WebAssembly.compile(bytes);
  const memory = new WebAssembly.Memory({
    initial: SHARED_INITIAL_PAGES,
    maximum: 65536,
    shared: true,
  });
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const info: BackendInfo = {
    simd: relaxed ? 'relaxed' : 'simd128',
    relaxedSimdSupported: relaxedSimdSupported(),
    source: src.from,
    threads: 1,
  };
  return { instance, info, shared: { module, memory, threads } };
}

async function loadCore(options: InitOptions): Promise<CoreLoad> {
  const simd = options.simd ?? 'auto';
  if (!['auto', 'plain', 'relaxed'].includes(simd)) {
    throw new ValueError(`init: simd must be 'auto', 'plain' or 'relaxed', got ${String(simd)}`);
  }
  const want = options.threads ?? (await defaultThreads());
  if (!Number.isInteger(want) || want < 1 || want > MAX_THREADS) {
    throw new ValueError(
      `init: threads must be an integer from 1 to ${MAX_THREADS}, got ${String(options.threads)}`,
    );
  }
  let threadsReason: string | undefined;
  if (want > 1) {
    const why = threadsUnavailable(options);
    if (why === null) {
      const supported = relaxedSimdSupported();
      if (simd === 'relaxed' && !supported) throw noRelaxedSimd();
      const relaxed = simd !== 'plain' && supported;
      try {
        return await loadShared(relaxed, want);
      } catch (e) {
        if (simd === 'relaxed') throw e;
        threadsReason = `the shared-memory core did not load: ${message(e)}`;
      }
    } else {
      threadsReason = why;
    }
  }
  const loaded = await loadSingle(options, simd);
  loaded.info.threads = 1;
  if (threadsReason !== undefined) loaded.info.threadsReason = threadsReason;
  return loaded;
}

const noRelaxedSimd = (): ValueError =>
  new ValueError(
    "init: simd: 'relaxed' but this engine does not validate relaxed SIMD (Node 20 needs --experimental-wasm-relaxed-simd; Safari lacks it)",
  );

/** The relaxed build beside this file when asked for and possible, else the plain one. */
async function loadSingle(options: InitOptions, simd: string): Promise<CoreLoad> {
  const supported = relaxedSimdSupported();
  const plain = async (reason?: string) => {
    const src = await load(options.wasm);
    const source = src.kind === 'module' ? 'the given module' : src.from;
    const loaded: BackendInfo = {
      simd: 'simd128',
      relaxedSimdSupported: supported,
      source,
      threads: 1,
    };
    if (reason !== undefined) loaded.reason = reason;
    return { instance: await instantiate(src), info: loaded };
  };
  if (options.wasm !== undefined) {
    if (simd === 'relaxed') {
      throw new ValueError(
        "init: simd: 'relaxed' loads the build beside nabla; drop the wasm option",
      );
    }
    return plain('a module was given (init({ wasm }))');
  }
  if (simd === 'plain') return plain("init({ simd: 'plain' })");
  if (!supported) {
    if (simd === 'relaxed') throw noRelaxedSimd();
    return plain('this engine does not support relaxed SIMD');
  }
  try {
    const src = await loadUrl(new URL('./nabla-relaxed.wasm', import.meta.url));
    const source = src.kind === 'module' ? 'the given module' : src.from;
    const instance = await instantiate(src);
    return {
      instance,
      info: { simd: 'relaxed', relaxedSimdSupported: true, source, threads: 1 },
    };
  } catch (e) {
    if (simd === 'relaxed') throw e;
    return plain(`nabla-relaxed.wasm did not load: ${message(e)}`);
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
    const { instance, info: loaded, shared } = await loadCore(options);
    const ready = checkExports(instance);
    if (shared !== undefined) {
      const { threads: want, module, memory } = shared;
      try {
        workers = await startPool(want, module, memory, ready as unknown as PoolCore);
        loaded.threads = want;
      } catch (e) {
        loaded.threadsReason = message(e);
      }
    }
    core = ready;
    info = loaded;
  })().catch((e: unknown) => {
    loading = null;
    throw e;
  });
  return loading;
}
