import { defineConfig } from 'tsup';

// One ESM and one CommonJS bundle with declarations; `shims` gives the CommonJS build an
// `import.meta.url` so the loader finds dist/nabla.wasm the same way in both.
export default defineConfig({
  entry: { index: 'ts/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  shims: true,
  target: 'es2022',
  outDir: 'dist',
});
