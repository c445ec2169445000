// Run by test/threads.test.ts and test/relaxed-simd.test.ts: loads the built package with
// init({ threads: argv[2], simd: argv[3] ?? 'plain' }) and prints
// test/browser/pages/threads-run.js's run (whose bits must not depend on the thread count) as
// one JSON line.
import * as nb from '../../dist/index.js';
import { runThreaded } from '../browser/pages/threads-run.js';

await nb.init({ threads: Number(process.argv[2]), simd: process.argv[3] ?? 'plain' });
console.log(JSON.stringify(runThreaded(nb)));
