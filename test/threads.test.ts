// init({ threads }): the GEMM behind matmul and Linear split over worker_threads on the
// shared-memory core. Products, gradients and a training run must be bitwise those of one
// thread for 2 and 3 threads (each count in its own child process: init runs once per
// process); a worker that traps is reported as a WorkerError and later ops run on one thread.
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { pool } from '../ts/wasm/core.js';

const child = fileURLToPath(new URL('./helpers/threads-child.mjs', import.meta.url));
const built = existsSync(fileURLToPath(new URL('../dist/nabla-threads.wasm', import.meta.url)));

interface Run {
  info: nb.BackendInfo;
  threads: number;
  products: Record<string, { a: number[]; b: number[]; c: number[] }>;
  convPrint: string;
  cnnPrint: string;
  attentionPrint: string;
  opsPrint: string;
  recurrentPrints: Record<string, string>;
  losses: number[];
  weights: number[][];
}

const runChild = (threads: number | 'default'): Run =>
  JSON.parse(
    execFileSync(process.execPath, [child, String(threads)], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    }),
  ) as Run;

describe.runIf(built)('init({ threads })', () => {
  const one = runChild(1);
  const runs = [2, 3].map(runChild);

  it('defaults to the core count, at most 8', () => {
    const cores = Math.min(8, availableParallelism());
    const r = runChild('default');
    expect(r.threads).toBe(cores);
    expect(r.info.threads).toBe(cores);
    if (cores > 1) expect(r.info.source).toMatch(/nabla-threads\.wasm$/);
    expect(r.weights).toEqual(one.weights);
  });

  it('starts the pool and reports it', () => {
    expect(one.info.threads).toBe(1);
    expect(one.info.source).toMatch(/nabla\.wasm$/);
    for (const [i, r] of runs.entries()) {
      expect(r.threads).toBe(i + 2);
      expect(r.info).toMatchObject({ threads: i + 2, simd: 'simd128' });
      expect(r.info.source).toMatch(/nabla-threads\.wasm$/);
    }
  });

  it('gives products bitwise equal to one thread, below and above the split size', () => {
    for (const r of runs) {
      for (const [name, p] of Object.entries(one.products)) {
        expect(r.products[name].a, name).toEqual(p.a); // same inputs
        expect(r.products[name].c, `${name} at ${r.threads} threads`).toEqual(p.c);
      }
    }
  });

  it('gives convolutions and their gradients bitwise equal to one thread', () => {
    expect(one.convPrint).toMatch(/^[0-9a-f]+$/);
    for (const r of runs) expect(r.convPrint, `${r.threads} threads`).toBe(one.convPrint);
  });

  it('gives fused attention and its gradients bitwise equal to one thread', () => {
    expect(one.attentionPrint).toMatch(/^[0-9a-f]+$/);
    for (const r of runs) expect(r.attentionPrint, `${r.threads} threads`).toBe(one.attentionPrint);
  });

  it('gives elementwise ops, reductions, layer norm and optimizer updates bitwise equal to one thread', () => {
    expect(one.opsPrint).toMatch(/^[0-9a-f]+$/);
    for (const r of runs) expect(r.opsPrint, `${r.threads} threads`).toBe(one.opsPrint);
  });

  it('gives a CNN (pooling, batch norm, activations, softmax) bitwise equal to one thread', () => {
    expect(one.cnnPrint).toMatch(/^[0-9a-f]+$/);
    for (const r of runs) expect(r.cnnPrint, `${r.threads} threads`).toBe(one.cnnPrint);
  });

  it('gives recurrent layers and cells, outputs and gradients, bitwise equal to one thread', () => {
    expect(Object.keys(one.recurrentPrints)).toHaveLength(6);
    for (const r of runs)
      expect(r.recurrentPrints, `${r.threads} threads`).toEqual(one.recurrentPrints);
  });

  it("one thread's product matches float64", () => {
    const { a, b, c } = one.products.odd;
    const [m, k, n] = [67, 130, 45];
    let worst = 0;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
        worst = Math.max(worst, Math.abs(c[i * n + j] - s) / (1 + Math.abs(s)));
      }
    expect(worst).toBeLessThan(1e-5);
  });

  it('trains an MLP to the same losses and weights, bit for bit', () => {
    expect(one.losses[7]).toBeLessThan(one.losses[0]);
    for (const r of runs) {
      expect(r.losses).toEqual(one.losses);
      expect(r.weights).toEqual(one.weights);
    }
  });
});

describe('init({ threads }) option checks', () => {
  it('refuses counts that are not integers from 1 to 64, and relaxed SIMD where there is none', async () => {
    for (const threads of [0, -1, 2.5, 65, Number.NaN]) {
      await expect(nb.init({ threads })).rejects.toThrow(
        /init: threads must be an integer from 1 to 64/,
      );
    }
    // Node 20 without its flag has no relaxed SIMD (test/relaxed-simd.test.ts runs with it).
    await expect(nb.init({ threads: 2, simd: 'relaxed' })).rejects.toThrow(
      /simd: 'relaxed' but this engine does not validate relaxed SIMD/,
    );
  });
});

describe.runIf(built)('a worker that traps', () => {
  beforeAll(async () => {
    await nb.init({ threads: 3 });
  });

  it('keeps the heap flat over 10,000 threaded training steps written as a plain loop', () => {
    nb.manualSeed(0);
    // 64×128×256 = 2^21 multiply-adds: the forward and both gradients of the first layer split.
    const model = new nb.nn.Sequential(
      new nb.nn.Linear(128, 256),
      new nb.nn.ReLU(),
      new nb.nn.Linear(256, 4),
    );
    const opt = new nb.optim.SGD(model.parameters(), { lr: 1e-3, momentum: 0.9 });
    const x = nb.randn([64, 128]);
    const y = nb.randint(0, 4, [64]);
    const step = (): number => {
      opt.zeroGrad();
      const loss = nb.nn.functional.crossEntropy(model.forward(x), y);
      loss.backward();
      opt.step();
      return loss.item();
    };
    const first = step();
    for (let i = 0; i < 200; i++) step();
    const warm = nb.memory();
    let last = first;
    // Synchronous throughout: a turn of the event loop would let finalizers free tensors and
    // make the counts below depend on the garbage collector.
    for (let i = 0; i < 10_000; i++) last = step();
    const after = nb.memory();
    expect(nb.threads()).toBe(3);
    expect(last).toBeLessThan(first);
    expect(after.tensors).toBe(warm.tensors);
    expect(after.bytes).toBe(warm.bytes);
    expect(after.heapBytes).toBe(warm.heapBytes);
  }, 120_000);

  it('is a WorkerError, and the ops after it run on one thread with the same results', () => {
    const workers = pool();
    expect(workers?.size).toBe(3);
    nb.manualSeed(3);
    const a = nb.randn([96, 80]);
    const b = nb.randn([80, 70]);
    const before = Array.from(nb.matmul(a, b).toArray());
    // A share whose output lies past the end of memory: the worker's call traps.
    const bad = [0, 0, 0xfffffff0, 4, 4, 4, 4, 4, 1, 4, 1, 0, workers!.scratch[0]];
    workers!.dispatch([{ fn: 'matmul_f32', args: bad }, null]);
    expect(() => workers!.join()).toThrow(nb.WorkerError);
    expect(pool()).toBeNull();
    expect(nb.threads()).toBe(1);
    expect(nb.backendInfo()).toMatchObject({ threads: 1 });
    expect(nb.backendInfo().threadsReason).toMatch(/a worker trapped/);
    expect(Array.from(nb.matmul(a, b).toArray())).toEqual(before);
  });
});
