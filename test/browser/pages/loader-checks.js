// Page-side checks for `init`: every kind of wasm source, each in a fresh copy of the browser
// build (a distinct query string makes the browser evaluate the module again).
import { rejection } from './util.js';

const WASM = '/dist/nabla.wasm';

/** A fresh copy of the browser build, with its own core. */
async function fresh(name) {
  return import(`/dist/browser.js?case=${name}`);
}

async function works(nb) {
  return nb.arange(5).sum().item() === 10;
}

// Each returns init's options (an object, so a promise can reach init unawaited).
const SOURCES = {
  default: () => ({}),
  relativeString: () => ({ wasm: '../dist/nabla.wasm' }), // relative to /pages/index.html
  absoluteString: () => ({ wasm: WASM }),
  url: () => ({ wasm: new URL(WASM, location.href) }),
  response: async () => ({ wasm: await fetch(WASM) }),
  promiseOfResponse: () => ({ wasm: fetch(WASM) }),
  responseWithoutType: async () => ({
    wasm: new Response(await (await fetch(WASM)).arrayBuffer(), {
      headers: { 'content-type': '' },
    }),
  }),
  arrayBuffer: async () => ({ wasm: await (await fetch(WASM)).arrayBuffer() }),
  // A view into a larger buffer, at an offset: only the view's bytes are the module.
  typedArrayView: async () => {
    const bytes = new Uint8Array(await (await fetch(WASM)).arrayBuffer());
    const big = new Uint8Array(bytes.length + 24);
    big.set(bytes, 8);
    return { wasm: big.subarray(8, 8 + bytes.length) };
  },
  module: async () => ({
    wasm: await WebAssembly.compile(await (await fetch(WASM)).arrayBuffer()),
  }),
};

export async function sources() {
  const streaming = WebAssembly.instantiateStreaming;
  const results = {};
  for (const [name, make] of Object.entries(SOURCES)) {
    let streamed = 0;
    WebAssembly.instantiateStreaming = (...args) => {
      streamed++;
      return streaming.apply(WebAssembly, args);
    };
    try {
      const nb = await fresh(name);
      await nb.init(await make());
      results[name] = { works: await works(nb), streamed };
    } catch (e) {
      results[name] = { error: `${e.name}: ${e.message}` };
    } finally {
      WebAssembly.instantiateStreaming = streaming;
    }
  }
  return results;
}

const BAD = {
  missing: () => '/dist/missing.wasm',
  html: () => '/pages/index.html',
  number: () => 42,
  unreachable: () => 'http://127.0.0.1:1/nabla.wasm',
  usedBody: async () => {
    const r = await fetch(WASM);
    await r.arrayBuffer();
    return r;
  },
};

export async function failures() {
  const results = {};
  for (const [name, make] of Object.entries(BAD)) {
    const nb = await fresh(`bad-${name}`);
    results[name] = await rejection(nb.init({ wasm: await make() }));
    // A failed init can be retried.
    await nb.init();
    results[name].retried = await works(nb);
  }
  return results;
}

/** dist/index.js (the Node-and-browser ESM build) also runs unbundled in a page, and picks the
 * relaxed-SIMD core beside it (Chromium validates relaxed SIMD). */
export async function universalBuild() {
  const nb = await import('/dist/index.js');
  await nb.init();
  const { simd, source } = nb.backendInfo();
  return { works: await works(nb), simd, source: source.split('/').pop() };
}
