// nabla in a browser bundle: the published files hold no static Node built-in imports,
// `import 'nabla'` bundled for the browser (esbuild --platform=browser picks the `browser`
// export) has no Node built-ins at all and runs in chromium, and even dist/index.js, the
// Node-and-browser build, bundles for the browser without errors. A Vite production build of
// an app that installed nabla emits nabla.wasm as an asset and runs.
import {
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, type BuildResult } from 'esbuild';
import { build as viteBuild } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, root, type Harness } from './harness.js';

const dist = join(root, 'dist');
const out = mkdtempSync(join(tmpdir(), 'nabla-bundle-'));
/** Any import or require of a built-in (`node:x`, or a bare fs, path, module, url, os). */
const NODE_SPECIFIER =
  /(?:\bimport\s*\(|\brequire\s*\(|\bfrom)\s*["'](?:node:|(?:fs|path|module|url|os)["'/])|["']node:/;
/** A static import statement of a built-in. */
const STATIC_IMPORT =
  /^\s*(?:import|export)\b[^;]*?from\s*["'](?:node:|(?:fs|path|module|url|os)["'/])|^\s*import\s*["']node:/m;
/^\s*(import|export)\b[^;]*?from\s*["'](node:|fs|path|module)|^\s*import\s*["']node:/m;

const APP = `
  import * as nb from 'nabla';
  await nb.init();
  const x = nb.tensor([[1, 2], [3, 4]], { dtype: 'float32' });
  window.result = x.matmul(x).tolist();
`;

/** esbuild's messages, as text, so a failure shows them. */
const messages = (r: BuildResult): string[] =>
  [...r.errors, ...r.warnings].map((m) => `${m.id}: ${m.text}`);

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ '/bundle/': out });
}, 60_000);

afterAll(async () => {
  await h?.close();
  rmSync(out, { recursive: true, force: true });
});

describe('browser bundles', () => {
  it('dist/index.js and its chunks import no Node built-in statically', () => {
    const files = readdirSync(dist).filter((f) => f.endsWith('.js'));
    expect(files).toContain('index.js');
    for (const f of files)
      expect(readFileSync(join(dist, f), 'utf8'), f).not.toMatch(STATIC_IMPORT);
  });

  it('dist/browser.js names no Node built-in at all', () => {
    const code = readFileSync(join(dist, 'browser.js'), 'utf8');
    expect(code).not.toMatch(NODE_SPECIFIER);
    expect(code).not.toMatch(/\brequire\(/);
    expect(code).toContain('new URL("./nabla.wasm", import.meta.url)');
  });

  it("bundles `import 'nabla'` for the browser cleanly, and the bundle runs in chromium", async () => {
    const result = await build({
      stdin: { contents: APP, resolveDir: root, loader: 'js' },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      outfile: join(out, 'app.js'),
      logLevel: 'silent',
    });
    expect(messages(result)).toEqual([]);
    const code = readFileSync(join(out, 'app.js'), 'utf8');
    expect(code).not.toMatch(NODE_SPECIFIER);
    // The bundler keeps `new URL('./nabla.wasm', import.meta.url)` (and the relaxed build's):
    // the app ships both files beside it.
    for (const f of ['nabla.wasm', 'nabla-relaxed.wasm']) copyFileSync(join(dist, f), join(out, f));
    const value = await h.page.evaluate("import('/bundle/app.js').then(() => window.result)");
    expect(value).toEqual([
      [7, 10],
      [15, 22],
    ]);
    expect(h.errors).toEqual([]);
  });

  it('bundles dist/index.js itself for the browser without errors', async () => {
    const result = await build({
      entryPoints: [join(dist, 'index.js')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      outfile: join(out, 'universal.js'),
      logLevel: 'silent',
    });
    expect(result.errors).toEqual([]);
    // Only notes that chunks' bare imports of the shared runtime chunk are dropped
    // (package.json says "sideEffects": false, which is true of them).
    expect(messages(result).filter((m) => !m.startsWith('ignored-bare-import:'))).toEqual([]);
  });

  it('builds with Vite (the wasm becomes an asset) and the app runs in chromium', async () => {
    const app = join(out, 'vite-app');
    const pkg = join(app, 'node_modules', 'nabla');
    mkdirSync(pkg, { recursive: true });
    cpSync(join(root, 'package.json'), join(pkg, 'package.json'));
    cpSync(dist, join(pkg, 'dist'), { recursive: true });
    writeFileSync(join(app, 'main.js'), APP);
    writeFileSync(
      join(app, 'index.html'),
      '<!doctype html><link rel="icon" href="data:,"><script type="module" src="./main.js"></script>',
    );
    await viteBuild({
      root: app,
      base: './',
      configFile: false,
      logLevel: 'silent',
      build: { outDir: 'dist', target: 'es2022' },
    });
    const assets = readdirSync(join(app, 'dist', 'assets'));
    expect(
      assets.some((f) => /^nabla-[\w-]+\.wasm$/.test(f) && !f.startsWith('nabla-relaxed')),
    ).toBe(true);
    expect(assets.some((f) => /^nabla-relaxed-.*\.wasm$/.test(f))).toBe(true);
    // Vite resolved the `browser` export condition.
    const js = assets.find((f) => f.endsWith('.js'))!;
    expect(readFileSync(join(app, 'dist', 'assets', js), 'utf8')).toContain(
      "nabla's browser build",
    );
    await h.page.goto(`${h.server.url}/bundle/vite-app/dist/index.html`);
    await h.page.waitForFunction('window.result !== undefined', null, { timeout: 10_000 });
    expect(await h.page.evaluate('window.result')).toEqual([
      [7, 10],
      [15, 22],
    ]);
    expect(h.errors).toEqual([]);
  });
});
