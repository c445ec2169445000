// The relaxed-SIMD core (dist/nabla-relaxed.wasm, fused multiply-add in the GEMM micro-kernel)
// against the plain simd128 core: init() picks it only where the engine validates it, says why
// when it does not, and computes the same values as the plain build within float32 rounding.
// Node 20 validates relaxed SIMD only with --experimental-wasm-relaxed-simd, so each case runs
// in a child Node with or without that flag.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const child = fileURLToPath(new URL('./helpers/relaxed-child.mjs', import.meta.url));
const threadsChild = fileURLToPath(new URL('./helpers/threads-child.mjs', import.meta.url));
const relaxedBuilt = existsSync(
  fileURLToPath(new URL('../dist/nabla-relaxed.wasm', import.meta.url)),
);

interface Run {
  error?: { name: string; message: string };
  info: { simd: string; relaxedSimdSupported: boolean; source: string; reason?: string };
  a: number[];
  b: number[];
  product: number[];
  conv: Record<'gemm' | 'depthwise' | 'direct', { x: number[]; w: number[] }>;
  attention: { q: number[]; k: number[]; v: number[] };
  losses: number[];
  nan: { softmax: (number | null)[]; max: (number | null)[]; relu: (number | null)[] };
}

function runChild(simd: string, flag: boolean): Run {
  const args = [...(flag ? ['--experimental-wasm-relaxed-simd'] : []), child, simd];
  return JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8' })) as Run;
}

/** Largest |x - y| / (1 + |y|) over two equally long arrays. */
function maxRelDiff(x: number[], y: number[]): number {
  expect(x.length).toBe(y.length);
  let worst = 0;
  for (let i = 0; i < x.length; i++)
    worst = Math.max(worst, Math.abs(x[i] - y[i]) / (1 + Math.abs(y[i])));
  return worst;
}

describe.runIf(relaxedBuilt)('relaxed SIMD core', () => {
  const plain = runChild('plain', true);
  const relaxed = runChild('auto', true);

  it('is chosen by auto only where the engine validates it, with the reason otherwise', () => {
    expect(relaxed.info.simd).toBe('relaxed');
    expect(relaxed.info.source).toMatch(/nabla-relaxed\.wasm$/);
    expect(plain.info).toMatchObject({ simd: 'simd128', reason: "init({ simd: 'plain' })" });
    const unflagged = runChild('auto', false);
    if (!unflagged.info.relaxedSimdSupported) {
      // Node 20: relaxed SIMD is behind a flag, so auto falls back and says so.
      expect(unflagged.info.simd).toBe('simd128');
      expect(unflagged.info.reason).toMatch(/does not support relaxed SIMD/);
      const forced = runChild('relaxed', false);
      expect(forced.error?.name).toBe('ValueError');
      expect(forced.error?.message).toMatch(/simd: 'relaxed'/);
    } else {
      expect(unflagged.info.simd).toBe('relaxed');
    }
  });

  it('gives the GEMM of a float64 reference within float32 rounding', () => {
    expect(relaxed.a).toEqual(plain.a); // same seed, same inputs
    const [m, k, n] = [67, 130, 45];
    const ref: number[] = [];
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += relaxed.a[i * k + p] * relaxed.b[p * n + j];
        ref.push(s);
      }
    }
    expect(maxRelDiff(relaxed.product, ref)).toBeLessThan(1e-5);
    expect(maxRelDiff(plain.product, ref)).toBeLessThan(1e-5);
    // fused rounding really is in use: the two builds differ in the last bits somewhere
    expect(relaxed.product).not.toEqual(plain.product);
  });

  it('matches the plain build on convolution and attention gradients and a training run', () => {
    for (const path of ['gemm', 'depthwise', 'direct'] as const) {
      expect(maxRelDiff(relaxed.conv[path].x, plain.conv[path].x), path).toBeLessThan(1e-5);
      expect(maxRelDiff(relaxed.conv[path].w, plain.conv[path].w), path).toBeLessThan(1e-5);
    }
    for (const g of ['q', 'k', 'v'] as const) {
      expect(maxRelDiff(relaxed.attention[g], plain.attention[g]), g).toBeLessThan(1e-5);
    }
    expect(maxRelDiff(relaxed.losses, plain.losses)).toBeLessThan(1e-4);
    expect(relaxed.losses[19]).toBeLessThan(relaxed.losses[0] * 0.8);
  });

  it('runs on threads too (nabla-threads-relaxed.wasm), bit for bit as on one thread', () => {
    const threaded = (threads: number) =>
      JSON.parse(
        execFileSync(
          process.execPath,
          ['--experimental-wasm-relaxed-simd', threadsChild, String(threads), 'relaxed'],
          { encoding: 'utf8', maxBuffer: 64 << 20 },
        ),
      ) as {
        info: { simd: string; threads: number; source: string };
        productsPrint: string;
        convPrint: string;
        losses: number[];
        weightsPrint: string;
      };
    const [one, two] = [threaded(1), threaded(2)];
    expect(one.info).toMatchObject({ simd: 'relaxed', threads: 1 });
    expect(two.info).toMatchObject({ simd: 'relaxed', threads: 2 });
    expect(two.info.source).toMatch(/nabla-threads-relaxed\.wasm$/);
    expect(two.productsPrint).toBe(one.productsPrint);
    expect(two.convPrint).toBe(one.convPrint);
    expect(two.losses).toEqual(one.losses);
    expect(two.weightsPrint).toBe(one.weightsPrint);
  });

  it('propagates NaN through max, softmax and ReLU like the plain build (JSON writes NaN as null)', () => {
    expect(relaxed.nan).toEqual(plain.nan);
    expect(relaxed.nan.max).toEqual([null]);
    expect(relaxed.nan.softmax.every((v) => v === null)).toBe(true);
    expect(relaxed.nan.relu[1]).toBeNull();
  });
});
