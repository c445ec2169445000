// Loads the WebAssembly core once and hands out typed access to its exports and memory.
import { ValueError } from '../errors.js';
import { EXPORTS, type Core } from './abi.js';

/** Where the core comes from: a URL or path, a fetch `Response`, the bytes, or a compiled module. */
export type WasmSource = string | URL | Response | BufferSource | WebAssembly.Module;

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

async function readDefault(): Promise<BufferSource> {
  const url = new URL('./nabla.wasm', import.meta.url);
  if (isNode && url.protocol === 'file:') {
    const { readFile } = await import('node:fs/promises');
    return readFile(url);
  }
  return (await fetch(url)).arrayBuffer();
}

async function compile(src: WasmSource | undefined): Promise<WebAssembly.Module> {
  if (src instanceof WebAssembly.Module) return src;
  if (src === undefined) return WebAssembly.compile(await readDefault());
  if (typeof Response !== 'undefined' && src instanceof Response) {
    return WebAssembly.compile(await src.arrayBuffer());
  }
  if (typeof src === 'string' || src instanceof URL) {
    const url = typeof src === 'string' && isNode && !/^[a-z]+:/i.test(src) ? null : new URL(src);
    if (isNode && (url === null || url.protocol === 'file:')) {
      const { readFile } = await import('node:fs/promises');
      return WebAssembly.compile(await readFile(url ?? (src as string)));
    }
    return WebAssembly.compile(await (await fetch(url!)).arrayBuffer());
  }
  return WebAssembly.compile(src as BufferSource);
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

/** Loads the core. Idempotent: later calls (and concurrent ones) resolve to the same instance. */
export function init(options: InitOptions = {}): Promise<void> {
  if (core !== null) return Promise.resolve();
  loading ??= (async () => {
    const module = await compile(options.wasm);
    const instance = await WebAssembly.instantiate(module, {});
    core = checkExports(instance);
  })().catch((e: unknown) => {
    loading = null;
    throw e;
  });
  return loading;
}
