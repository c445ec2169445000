// A compute thread killed mid-job while running a share that cannot be redone (here a raw
// pool call, as an in-place optimizer update or an accumulating GEMM would be): the join is a
// WorkerError naming the worker and its lost share, the pool stops, and later ops run on one
// thread with the results the pool gave before (threads-death.test.ts: the op that is redone).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { pool } from '../ts/wasm/core.js';

const built = existsSync(fileURLToPath(new URL('../dist/nabla-threads.wasm', import.meta.url)));

describe.runIf(built)('a worker that dies mid-job, with a share that cannot be redone', () => {
  beforeAll(async () => {
    await nb.init({ threads: 3 });
  });

  it('is a WorkerError naming the lost share; later ops run on one thread', () => {
    const workers = pool();
    expect(workers?.size).toBe(3);
    nb.manualSeed(6);
    const a = nb.randn([96, 300]);
    const b = nb.randn([300, 200]);
    const before = Array.from(nb.matmul(a, b).toArray()); // split: 5.8 M multiply-adds
    // One 4096×1024×1024 product per worker, a quarter of a second or more each on 2 cores.
    const x = nb.randn([4096, 1024]);
    const y = nb.randn([1024, 1024]);
    const outs = [nb.zeros([4096, 1024]), nb.zeros([4096, 1024])];
    const share = (i: number): number[] => [
      ...[x.ptr, y.ptr, outs[i].ptr, 4096, 1024, 1024, 1024, 1024, 1, 1024, 1, 0],
      workers!.scratch[i],
    ];
    workers!.killWorker(0, 50);
    workers!.dispatch([0, 1].map((i) => ({ fn: 'matmul_f32' as const, args: share(i) })));
    let error: unknown = null;
    try {
      workers!.join();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(nb.WorkerError);
    expect((error as nb.WorkerError).lostShares).toEqual([0]);
    expect(String(error)).toMatch(
      /worker 1 \(exited with code \d+\) died while running its share of an op/,
    );
    expect(pool()).toBeNull();
    expect(nb.threads()).toBe(1);
    expect(nb.backendInfo().threadsReason).toMatch(/worker 1 \(exited with code \d+\) died/);
    expect(Array.from(nb.matmul(a, b).toArray())).toEqual(before);
  }, 60_000);
});
