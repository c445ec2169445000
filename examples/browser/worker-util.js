// Helpers the demo's model workers (gpt-worker.js, lora-worker.js) share.
import * as nb from '/dist/index.js';

/** A MessageChannel task lets the worker's pending messages (a cancel) run between steps. */
export function yieldToEventLoop() {
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      resolve();
    };
    port2.postMessage(null);
  });
}

/** mulberry32: a small seeded generator (reproducible batches). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function positiveInt(name, value, max = Infinity) {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new nb.ValueError(`${name} must be an integer in [1, ${max}], got ${value}`);
  }
  return value;
}

let busy = null; // the job holding the worker's model: { name, signal, done }

/**
 * Runs `fn` as the one job that holds the model. A stopped job may still be finishing its
 * step when the page's next request arrives, so that request waits for it; a running one
 * makes it fail.
 */
export async function exclusive(name, ctx, fn) {
  if (busy?.signal?.aborted) await busy.done.catch(() => {});
  if (busy) throw new nb.ValueError(`${name}: the worker is busy with ${busy.name}; stop it first`);
  const job = { name, signal: ctx?.signal, done: null };
  busy = job;
  job.done = fn().finally(() => (busy = null));
  return job.done;
}
