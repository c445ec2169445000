// init({ threads }) in chromium: the page is cross-origin isolated (scripts/serve.mjs sends
// COOP/COEP), nabla runs in a module Worker that starts the pool's workers, and the run of
// test/browser/pages/threads-run.js gives the same bits at 1 and 2 threads as in Node. On the
// page's own thread, which cannot block, init stays at one thread and says why.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Nabla from '../../ts/index.js';
import { call, importFromRoot, startHarness, type Harness } from './harness.js';

interface Result {
  error?: string;
  info: Nabla.BackendInfo;
  threads: number;
  productsPrint: string;
  convPrint: string;
  cnnPrint: string;
  attentionPrint: string;
  opsPrint: string;
  recurrentPrints: Record<string, string>;
  losses: number[];
  weightsPrint: string;
}

let h: Harness;
let node: Result;

beforeAll(async () => {
  const nb = await importFromRoot<typeof Nabla>('dist/index.js');
  const { runThreaded } = await importFromRoot<{ runThreaded(n: typeof Nabla): Result }>(
    'test/browser/pages/threads-run.js',
  );
  await nb.init({ simd: 'plain' });
  node = runThreaded(nb);
  h = await startHarness();
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('threads in chromium', () => {
  it('trains on 2 threads in a worker, bit for bit as on 1 thread and in Node', async () => {
    const one = await call<Result>(h.page, 'threads-checks.js', 'inWorker', 1);
    const two = await call<Result>(h.page, 'threads-checks.js', 'inWorker', 2);
    expect(one.error).toBeUndefined();
    expect(two.error).toBeUndefined();
    expect(one.threads).toBe(1);
    expect(two.threads).toBe(2);
    expect(two.info).toMatchObject({ threads: 2, simd: 'simd128' });
    expect(two.info.source).toMatch(/nabla-threads\.wasm$/);
    expect(node.losses[7]).toBeLessThan(node.losses[0]);
    for (const r of [one, two]) {
      expect(r.losses).toEqual(node.losses);
      expect(r.productsPrint).toBe(node.productsPrint);
      expect(r.convPrint).toBe(node.convPrint);
      expect(r.cnnPrint).toBe(node.cnnPrint);
      expect(r.attentionPrint).toBe(node.attentionPrint);
      expect(r.opsPrint).toBe(node.opsPrint);
      expect(r.recurrentPrints).toEqual(node.recurrentPrints);
      expect(r.weightsPrint).toBe(node.weightsPrint);
    }
    expect(h.errors).toEqual([]);
  }, 60_000);

  it("stays on one thread on the page's main thread, and says why", async () => {
    const r = await call<{ isolated: boolean; info: Nabla.BackendInfo; threads: number }>(
      h.page,
      'threads-checks.js',
      'onMainThread',
    );
    expect(r.isolated).toBe(true);
    expect(r.threads).toBe(1);
    expect(r.info.threadsReason).toMatch(/main thread cannot block/);
  });
});
