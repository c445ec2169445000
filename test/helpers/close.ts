// Comparing float32 results with float64 references: fails with the worst element's index,
// both values and the tolerance, so a failure says where and by how much.
import { expect } from 'vitest';

export interface Tolerance {
  rtol?: number;
  atol?: number;
}

export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { rtol = 1e-5, atol = 1e-6 }: Tolerance = {},
  label = '',
): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  let worst = -1;
  let worstScore = 1;
  let failures = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (e === a) continue; // covers equal infinities
    const score = Math.abs(a - e) / (atol + rtol * Math.abs(e));
    if (!(score <= 1)) failures++;
    if (!(score <= worstScore)) {
      worstScore = score;
      worst = i;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${label}: ${failures}/${actual.length} elements outside rtol ${rtol}, atol ${atol}; ` +
        `worst at ${worst}: ${actual[worst]}, expected ${expected[worst]}`,
    );
  }
}

/** Deterministic pseudo-random floats in [lo, hi) for references computed in JavaScript. */
export function seeded(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = lo + ((s >>> 0) / 2 ** 32) * (hi - lo);
  }
  return out;
}
