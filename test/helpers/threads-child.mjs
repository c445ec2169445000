// Run by test/threads.test.ts and test/relaxed-simd.test.ts: loads the built package with
// init({ threads: argv[2], simd: argv[3] ?? 'plain' }) and prints
// test/browser/pages/threads-run.js's run (whose bits must not depend on the thread count) as
// one JSON line.
import * as nb from '../../dist/index.js';
import { runThreaded } from '../browser/pages/threads-run.js';

// argv[2] 'default': no threads option, so init picks the core count (at most 8).
const threads = process.argv[2] === 'default' ? undefined : Number(process.argv[2]);
await nb.init({ threads, simd: process.argv[3] ?? 'plain' });
console.log(JSON.stringify(runThreaded(nb)));
