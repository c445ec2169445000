// A module worker that runs threads-run.js with init({ threads: ?threads }) and posts the result
// (or the error). nabla's pool can run here, not on the page: a browser's main thread cannot block.
import * as nb from '/dist/browser.js';
import { runThreaded } from './threads-run.js';

const threads = Number(new URL(self.location.href).searchParams.get('threads'));
try {
  await nb.init({ threads, simd: 'plain' });
  // The raw products and weights stay here: their fingerprints travel.
  const { products: _p, weights: _w, ...result } = runThreaded(nb);
  self.postMessage(result);
} catch (e) {
  self.postMessage({ error: `${e.name}: ${e.message}` });
}
