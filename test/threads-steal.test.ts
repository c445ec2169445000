// A worker slow to take its share (descheduled by other processes, here made to sleep before
// it claims): the calling thread, done with its own share, runs the unclaimed one itself, so
// the op never waits for the sleeper, and the results are those of one thread. The sleeper,
// waking after several jobs, must take none of them (an in-place optimizer update run twice
// would corrupt the parameters).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as nb from '../ts/index.js';
import { pool } from '../ts/wasm/core.js';

const built = existsSync(fileURLToPath(new URL('../dist/nabla-threads.wasm', import.meta.url)));

describe.runIf(built)('a worker slow to take its share', () => {
  beforeAll(async () => {
    await nb.init({ threads: 2 });
  });
  afterAll(() => pool()?.stallBeforeClaim(0));

  it('has its share run by the calling thread, with the bits of one thread', async () => {
    const workers = pool();
    expect(workers?.size).toBe(2);
    nb.manualSeed(4);
    const x = nb.randn([1 << 17]);
    const a = nb.randn([96, 300]);
    const b = nb.randn([300, 200]);
    const w = nb.randn([1 << 16], { requiresGrad: true });
    const g = nb.randn([1 << 16]);
    // Expected values first, with the worker prompt (the bits are the same either way).
    const expectedRelu = Array.from(x.toArray(), (v) => Math.max(v, 0));
    const expectedMatmul = Array.from(nb.matmul(a, b).toArray());
    const sgd = (p: nb.Tensor): number[] => {
      const out = Array.from(p.toArray());
      const grad = g.toArray();
      // lr 0.1 without momentum, as the kernel does it in float32: p + (-0.1 · g), three times.
      const negLr = Math.fround(-0.1);
      for (let s = 0; s < 3; s++) {
        for (let i = 0; i < out.length; i++) {
          out[i] = Math.fround(out[i] + Math.fround(negLr * grad[i]));
        }
      }
      return out;
    };
    const expectedW = sgd(w);
    const warn = vi.spyOn(console, 'warn');
    workers!.stallBeforeClaim(1500);
    const t0 = performance.now();
    const relu = Array.from(nb.relu(x).toArray());
    const product = Array.from(nb.matmul(a, b).toArray());
    const opt = new nb.optim.SGD([w], { lr: 0.1 });
    for (let s = 0; s < 3; s++) {
      w.grad = g.clone();
      opt.step(); // split by elements, in place: run twice, it would step twice
    }
    const ms = performance.now() - t0;
    workers!.stallBeforeClaim(0);
    expect(ms).toBeLessThan(1000); // no op waited for the sleeping worker
    expect(relu).toEqual(expectedRelu);
    expect(product).toEqual(expectedMatmul);
    // The sleeper wakes while nothing is pending: give it time to (not) act, then check.
    await new Promise((r) => setTimeout(r, 2000));
    expect(Array.from(w.toArray())).toEqual(expectedW);
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
    expect(pool()).toBe(workers);
    expect(Array.from(nb.relu(x).toArray())).toEqual(expectedRelu); // and it takes jobs again
  }, 60_000);
});
