// Ships the core next to the bundles: dist/nabla.wasm is what `init()` loads by default.
import { copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
copyFileSync(join(root, 'ts', 'wasm', 'nabla.wasm'), join(root, 'dist', 'nabla.wasm'));
