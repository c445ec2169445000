// Finishes dist/ after tsup. Ships the core next to the bundles: dist/nabla.wasm (and
// dist/nabla-relaxed.wasm) is what `init()` loads by default. And makes the shipped types self-contained: Tensor and Scope are
// Disposable (`using`), whose types live in TypeScript's "esnext.disposable" lib, so the .d.ts
// files reference that lib themselves (tsup's type bundler drops such directives from the
// sources) and a user's tsconfig needs no esnext lib for them.
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
copyFileSync(join(root, 'ts', 'wasm', 'nabla.wasm'), join(root, 'dist', 'nabla.wasm'));
// The relaxed-SIMD build, when the toolchain made one (`init()` prefers it where it validates).
const relaxed = join(root, 'ts', 'wasm', 'nabla-relaxed.wasm');
if (existsSync(relaxed)) copyFileSync(relaxed, join(root, 'dist', 'nabla-relaxed.wasm'));
else rmSync(join(root, 'dist', 'nabla-relaxed.wasm'), { force: true });

const LIB = '/// <reference lib="esnext.disposable" />\n';
for (const file of ['index.d.ts', 'index.d.cts']) {
  const path = join(root, 'dist', file);
  const text = readFileSync(path, 'utf8');
  if (!text.startsWith(LIB)) writeFileSync(path, LIB + text);
}
