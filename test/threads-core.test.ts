// Issue 14's shared-memory core (ts/wasm/nabla-threads.wasm) on three threads: the main thread and
// two worker_threads instantiate it on one shared memory, each with its own stack, TLS and
// scratch, and split GEMMs by rows (bench/threads-probe.mjs). Every split must give the product
// of one thread bit for bit, and one thread's product must match float64.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const probe = fileURLToPath(new URL('../bench/threads-probe.mjs', import.meta.url));
const built = existsSync(fileURLToPath(new URL('../ts/wasm/nabla-threads.wasm', import.meta.url)));

interface Report {
  threads: number;
  dispatchMicroseconds: number;
  gemm: { m: number; k: number; n: number; bitwiseEqual: boolean; maxErr: number | null }[];
}

describe.runIf(built)('the shared-memory core', () => {
  it('splits GEMMs by rows over 1, 2 and 3 threads with bitwise equal products', () => {
    const args = [probe, '--threads', '3', '--reps', '1', '--sizes', '1,5,67,128,255', '--json'];
    const report = JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8' })) as Report;
    expect(report.threads).toBe(3);
    expect(report.dispatchMicroseconds).toBeGreaterThan(0);
    expect(report.gemm.map((g) => g.m)).toEqual([1, 5, 67, 128, 255]);
    for (const g of report.gemm) {
      expect(g.bitwiseEqual, `${g.m}×${g.k}×${g.n}`).toBe(true);
      expect(g.maxErr, `${g.m}×${g.k}×${g.n}`).toBeLessThan(1e-5);
    }
  });
});
