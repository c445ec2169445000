// Page side of test/browser/threads.test.ts.

/** Runs threads-worker.js with `threads` and resolves with what it posts. */
export function inWorker(threads) {
  return new Promise((resolve, reject) => {
    const w = new Worker(`/pages/threads-worker.js?threads=${threads}`, { type: 'module' });
    w.onmessage = ({ data }) => {
      w.terminate();
      resolve(data);
    };
    w.onerror = (e) => reject(new Error(e.message));
  });
}

/** init({ threads: 2 }) on the page itself: one thread, and the reason. */
export async function onMainThread() {
  const nb = await import('/dist/browser.js');
  await nb.init({ threads: 2, simd: 'plain' });
  return { isolated: self.crossOriginIsolated, info: nb.backendInfo(), threads: nb.threads() };
}
