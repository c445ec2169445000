// A compute thread that dies while the caller blocks in a join (killed mid-job by the pool's
// watcher thread, as a crash would). An op whose kernel only overwrites its outputs finishes:
// the lost share runs again on the calling thread, with a warning, and the results are those
// of one thread. Either way the pool stops and later ops run on one thread. (Each file gets its
// own process, so its own pool: threads-death-lost.test.ts has the op that cannot be redone,
// threads.test.ts a thread that traps.)
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import * as nb from '../ts/index.js';
import { pool } from '../ts/wasm/core.js';

const built = existsSync(fileURLToPath(new URL('../dist/nabla-threads.wasm', import.meta.url)));

describe.runIf(built)('a worker that dies mid-job', () => {
  beforeAll(async () => {
    await nb.init({ threads: 3 });
  });

  it("finishes an op that can be redone, with that thread's share run again here", () => {
    const workers = pool();
    expect(workers?.size).toBe(3);
    nb.manualSeed(5);
    // 8.6 G multiply-adds, a quarter of a second or more per thread on 2 cores: the kill
    // lands while it runs.
    const a = nb.randn([4096, 2048]);
    const b = nb.randn([2048, 1024]);
    const live = nb.memory().tensors;
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    workers!.killWorker(1, 50);
    const t0 = performance.now();
    const during = nb.matmul(a, b);
    expect(performance.now() - t0).toBeGreaterThan(50);
    expect(warn).toHaveBeenCalledOnce();
    expect(String(warn.mock.calls[0][0])).toMatch(
      /worker 2 \(exited with code \d+\) died while running its share of an op.*matmul_f32 was run again on this thread/,
    );
    warn.mockRestore();
    expect(nb.memory().tensors).toBe(live + 1);
    expect(pool()).toBeNull();
    expect(nb.threads()).toBe(1);
    expect(nb.backendInfo().threadsReason).toMatch(
      /worker 2 \(exited with code \d+\) died while running/,
    );
    const after = nb.matmul(a, b); // one thread now: the same bits
    expect(Array.from(during.toArray())).toEqual(Array.from(after.toArray()));
  }, 60_000);
});
