// `nb.init` with every kind of wasm source, in chromium (streaming compilation when the server
// says application/wasm) and in Node (paths, file URLs, http URLs), plus its typed errors.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { serveStatic, type StaticServer } from '../../scripts/serve.mjs';
import type * as Nabla from '../../ts/index.js';
import { call, root, startHarness, type Harness } from './harness.js';

type Outcome = { works?: boolean; streamed?: number; error?: string };
type Failure = { name: string; message: string; retried: boolean };

describe('init in chromium', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it('loads from a URL, a Response, bytes or a module, streaming when it can', async () => {
    const r = await call<Record<string, Outcome>>(h.page, 'loader-checks.js', 'sources');
    const streamed = [
      'default',
      'relativeString',
      'absoluteString',
      'url',
      'response',
      'promiseOfResponse',
    ];
    const buffered = ['responseWithoutType', 'arrayBuffer', 'typedArrayView', 'module'];
    expect(Object.keys(r).sort()).toEqual([...streamed, ...buffered].sort());
    for (const name of streamed) expect(r[name], name).toEqual({ works: true, streamed: 1 });
    for (const name of buffered) expect(r[name], name).toEqual({ works: true, streamed: 0 });
  });

  it('fails with a ValueError that says what came back, and can be retried', async () => {
    const r = await call<Record<string, Failure>>(h.page, 'loader-checks.js', 'failures');
    for (const f of Object.values(r))
      expect(f).toMatchObject({ name: 'ValueError', retried: true });
    expect(r.missing.message).toMatch(
      /^init: http:\/\/127\.0\.0\.1:\d+\/dist\/missing\.wasm answered 404 Not Found; serve nabla\.wasm/,
    );
    expect(r.html.message).toMatch(
      /^init: http:.*\/pages\/index\.html is not a WebAssembly module \(it starts with "<!do", not "\\0asm"\)/,
    );
    expect(r.number.message).toBe(
      'init: wasm must be a URL, path, Response, ArrayBuffer, typed array or WebAssembly.Module, got number',
    );
    expect(r.unreachable.message).toMatch(
      /^init: cannot fetch http:\/\/127\.0\.0\.1:1\/nabla\.wasm: Failed to fetch/,
    );
    expect(r.usedBody.message).toMatch(/^init: the body of .*nabla\.wasm was already read$/);
  });

  it('runs dist/index.js, the Node-and-browser build, unbundled', async () => {
    expect(await call<unknown>(h.page, 'loader-checks.js', 'universalBuild')).toEqual({
      works: true,
      simd: 'relaxed',
      source: 'nabla-relaxed.wasm',
    });
  });
});

describe('init in Node', () => {
  const wasmPath = `${root}dist/nabla.wasm`;
  let server: StaticServer;
  beforeAll(async () => {
    server = await serveStatic({ '/': `${root}dist` });
  });
  afterAll(async () => {
    await server?.close();
  });

  /** A fresh copy of nabla (its own core) initialised with `wasm`. */
  async function fresh(wasm?: Nabla.WasmSource): Promise<typeof Nabla> {
    vi.resetModules();
    const nb = (await import('../../ts/index.js')) as typeof Nabla;
    await nb.init(wasm === undefined ? {} : { wasm });
    return nb;
  }

  const sources: [string, () => Nabla.WasmSource | undefined][] = [
    ['the default file', () => undefined],
    ['a path', () => wasmPath],
    ['a path relative to the working directory', () => 'dist/nabla.wasm'],
    ['a file: URL string', () => pathToFileURL(wasmPath).href],
    ['a file: URL', () => pathToFileURL(wasmPath)],
    ['an http URL', () => `${server.url}/nabla.wasm`],
    ['a promise of a fetch Response', () => fetch(`${server.url}/nabla.wasm`)],
    ['a Buffer', () => readFileSync(wasmPath)],
    ['a compiled module', () => new WebAssembly.Module(readFileSync(wasmPath))],
  ];
  for (const [name, make] of sources) {
    it(`loads from ${name}`, async () => {
      const nb = await fresh(make());
      expect(nb.arange(5).sum().item()).toBe(10);
    });
  }

  it('names the file it cannot read, or that is not wasm', async () => {
    await expect(fresh(`${root}dist/missing.wasm`)).rejects.toThrow(
      /^init: cannot read .*missing\.wasm: ENOENT/,
    );
    await expect(fresh(`${root}package.json`)).rejects.toThrow(
      /^init: .*package\.json is not a WebAssembly module \(it starts with "\{\\n  ", not "\\0asm"\)/,
    );
    await expect(fresh(`${server.url}/missing.wasm`)).rejects.toThrow(/answered 404 Not Found/);
  });
});
