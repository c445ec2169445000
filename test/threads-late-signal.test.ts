// A worker descheduled between finishing its share and signalling it (here made to sleep
// there): the caller must not take that late signal for the next job's. Counting signals did,
// and took a share still running for a lost one, so a long threaded run stopped its pool with
// "worker 1 died" when no worker had.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as nb from '../ts/index.js';
import { pool } from '../ts/wasm/core.js';

const built = existsSync(fileURLToPath(new URL('../dist/nabla-threads.wasm', import.meta.url)));

describe.runIf(built)('a worker that signals late', () => {
  beforeAll(async () => {
    await nb.init({ threads: 2 });
  });
  afterAll(() => pool()?.holdAfterFinish(0));

  it('keeps the pool, and every split op has all its shares', () => {
    const workers = pool();
    expect(workers?.size).toBe(2);
    nb.manualSeed(3);
    const x = nb.randn([1 << 17]); // split by elements (from 2^16)
    const a = nb.randn([96, 300]);
    const b = nb.randn([300, 200]);
    const expectedRelu = Array.from(x.toArray(), (v) => Math.max(v, 0));
    const expectedMatmul = Array.from(nb.matmul(a, b).toArray());
    const warn = vi.spyOn(console, 'warn');
    // Ops back to back, so each next job is dispatched while the last signal is held.
    workers!.holdAfterFinish(40);
    const results: nb.Tensor[] = [];
    for (let i = 0; i < 10; i++) results.push(nb.relu(x), nb.matmul(a, b));
    workers!.holdAfterFinish(0);
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
    expect(pool()).toBe(workers);
    expect(nb.threads()).toBe(2);
    for (let i = 0; i < results.length; i += 2) {
      expect(Array.from(results[i].toArray())).toEqual(expectedRelu);
      expect(Array.from(results[i + 1].toArray())).toEqual(expectedMatmul);
    }
  }, 60_000);
});
