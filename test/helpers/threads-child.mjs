// Run by test/threads.test.ts: loads the built package with init({ threads: argv[2] }) and
// prints test/browser/pages/threads-run.js's run (whose bits must not depend on the thread
// count) as one JSON line.
import * as nb from '../../dist/index.js';
import { runThreaded } from '../browser/pages/threads-run.js';

await nb.init({ threads: Number(process.argv[2]), simd: 'plain' });
console.log(JSON.stringify(runThreaded(nb)));
