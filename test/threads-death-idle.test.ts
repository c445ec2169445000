// A compute thread that dies between ops (killed while idle): the next op notices before it
// dispatches anything, runs on one thread without an error or a warning, with the bits the
// pool gave, and `backendInfo().threadsReason` says which worker died.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import * as nb from '../ts/index.js';
import { pool } from '../ts/wasm/core.js';

const built = existsSync(fileURLToPath(new URL('../dist/nabla-threads.wasm', import.meta.url)));

describe.runIf(built)('a worker that dies between ops', () => {
  beforeAll(async () => {
    await nb.init({ threads: 2 });
  });

  it('leaves the next op to the calling thread, with the same bits', async () => {
    const workers = pool();
    expect(workers?.size).toBe(2);
    nb.manualSeed(8);
    const a = nb.randn([96, 300]);
    const b = nb.randn([300, 200]);
    const before = Array.from(nb.matmul(a, b).toArray()); // split: 5.8 M multiply-adds
    workers!.killWorker(0, 0);
    for (let i = 0; i < 100 && pool() !== null; i++) await sleep(20);
    const warn = vi.spyOn(console, 'warn');
    expect(Array.from(nb.matmul(a, b).toArray())).toEqual(before);
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
    expect(pool()).toBeNull();
    expect(nb.threads()).toBe(1);
    expect(nb.backendInfo().threadsReason).toMatch(
      /worker 1 \(exited with code \d+\) died; the pool is stopped/,
    );
  });
});
