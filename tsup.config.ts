import { builtinModules } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Options } from 'tsup';

// Three bundles of ts/index.ts, all in dist/ beside nabla.wasm (the loader finds it with
// `new URL('./nabla.wasm', import.meta.url)`):
// - index.js (ESM) and index.cjs (CommonJS, whose `shims` provide `import.meta.url`) for Node.
//   index.js also runs unbundled in browsers, and bundlers that read it see no Node built-in:
//   those are loaded only when Node is detected, through a specifier they cannot follow.
// - browser.js (ESM, one file): what the `browser` export condition gives bundlers. Node
//   built-ins are replaced by a module that throws a ValueError naming the browser APIs.

type Plugin = NonNullable<Options['esbuildPlugins']>[number];

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const BUILTIN = new RegExp(`^(node:)?(${builtinModules.map(escape).join('|')})$`);
const bare = (spec: string): string => spec.replace(/^node:/, '');
const errorsModule = fileURLToPath(new URL('./ts/errors.ts', import.meta.url));

/** A static import of a built-in would break browsers; only `await import()` is allowed. */
function rejectStatic(kind: string, spec: string, importer: string): void {
  if (kind !== 'dynamic-import') {
    throw new Error(
      `${importer}: import "${spec}" lazily (await import) so browsers never load it`,
    );
  }
}

/** The names a built-in exports (read from the Node running the build). */
async function exportNames(name: string): Promise<string[]> {
  const mod = (await import(`node:${name}`)) as Record<string, unknown>;
  return Object.keys(mod).filter((n) => n !== 'default' && /^[A-Za-z_$][\w$]*$/.test(n));
}

/** index.js: each built-in becomes a chunk that imports it at run time, out of bundlers' sight. */
const lazyNodeBuiltins: Plugin = {
  name: 'lazy-node-builtins',
  setup(build) {
    const esm = build.initialOptions.format === 'esm';
    build.onResolve({ filter: BUILTIN }, (args) => {
      // tsup's `shims` file (for CommonJS's import.meta.url) is tree-shaken out of the ESM build.
      if (args.importer.includes('/tsup/assets/')) return undefined;
      rejectStatic(args.kind, args.path, args.importer);
      // CommonJS keeps plain `require`s: it is for Node only, and has no top-level await.
      return esm ? { path: bare(args.path), namespace: 'lazy-node' } : undefined;
    });
    build.onLoad({ filter: /.*/, namespace: 'lazy-node' }, async (args) => {
      const contents = [
        '// A function argument, not a literal: webpack, Vite and esbuild leave it alone.',
        'const load = (s) => import(/* webpackIgnore: true */ /* @vite-ignore */ s);',
        `const mod = await load(${JSON.stringify(`node:${args.path}`)});`,
        `export const { ${(await exportNames(args.path)).join(', ')} } = mod;`,
        'export default mod.default;',
      ].join('\n');
      return { contents, loader: 'js' };
    });
  },
};

/** browser.js: every export of a built-in is a function that throws a ValueError. */
const noNodeBuiltins: Plugin = {
  name: 'no-node-builtins',
  setup(build) {
    build.onResolve({ filter: BUILTIN }, (args) => {
      rejectStatic(args.kind, args.path, args.importer);
      return { path: bare(args.path), namespace: 'no-node' };
    });
    build.onLoad({ filter: /.*/, namespace: 'no-node' }, async (args) => {
      const message =
        `${args.path} is a Node built-in, and this is nabla's browser build: nb.io.saveFile, ` +
        'nb.io.loadFile and nb.data.loadMnist need Node. In browsers use nb.io.toBlob, ' +
        'fromBlob, download and saveToIndexedDB, and nb.data.readIdx on fetched bytes.';
      const names = await exportNames(args.path);
      const contents = [
        `import { ValueError } from ${JSON.stringify(errorsModule)};`,
        `const fail = () => { throw new ValueError(${JSON.stringify(message)}); };`,
        `export const ${names.map((n) => `${n} = fail`).join(', ')};`,
        'export default fail;',
      ].join('\n');
      return { contents, loader: 'js', resolveDir: dirname(errorsModule) };
    });
  },
};

const common = {
  entry: { index: 'ts/index.ts' },
  sourcemap: true,
  target: 'es2022',
  outDir: 'dist',
  removeNodeProtocol: false,
} satisfies Options;

export default defineConfig([
  {
    ...common,
    format: ['esm', 'cjs'],
    dts: true,
    shims: true,
    // The two configs run concurrently: leave the browser bundle alone.
    clean: ['!browser.js', '!browser.js.map'],
    esbuildPlugins: [lazyNodeBuiltins],
  },
  {
    ...common,
    entry: { browser: 'ts/index.ts' },
    format: ['esm'],
    platform: 'browser',
    splitting: false,
    esbuildPlugins: [noNodeBuiltins],
  },
]);
