// Finishes dist/ after tsup. Ships the core next to the bundles: dist/nabla.wasm (and
// dist/nabla-relaxed.wasm, dist/nabla-threads.wasm) is what `init()` loads by default. And makes the shipped types self-contained: Tensor and Scope are
// Disposable (`using`), whose types live in TypeScript's "esnext.disposable" lib, so the .d.ts
// files reference that lib themselves (tsup's type bundler drops such directives from the
// sources) and a user's tsconfig needs no esnext lib for them.
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
copyFileSync(join(root, 'ts', 'wasm', 'nabla.wasm'), join(root, 'dist', 'nabla.wasm'));
// The relaxed-SIMD and shared-memory builds, when the toolchain made them (`init()` prefers the
// first where it validates, and loads the second for `init({ threads })`).
copyFileSync(join(root, 'ts', 'wasm', 'nabla-worker.js'), join(root, 'dist', 'nabla-worker.js'));
for (const file of ['nabla-relaxed.wasm', 'nabla-threads.wasm', 'nabla-threads-relaxed.wasm']) {
  const built = join(root, 'ts', 'wasm', file);
  if (existsSync(built)) copyFileSync(built, join(root, 'dist', file));
  else rmSync(join(root, 'dist', file), { force: true });
}

const LIB = '/// <reference lib="esnext.disposable" />\n';
for (const file of ['index.d.ts', 'index.d.cts']) {
  const path = join(root, 'dist', file);
  const text = readFileSync(path, 'utf8');
  if (!text.startsWith(LIB)) writeFileSync(path, LIB + text);
}
