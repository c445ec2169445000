// Spot-checks a GEMM result against a float64 dot product, so a fast but wrong kernel fails
// the run instead of reporting a good figure. Operands are in their stored layouts.
import { rng } from './random.mjs';

const SPOTS = 64;

export function verifyProduct({ form, m, k, n }, a, b, c) {
  const A = form === 'AtB' ? (i, p) => a[p * m + i] : (i, p) => a[i * k + p];
  const B = form === 'ABt' ? (p, j) => b[j * k + p] : (p, j) => b[p * n + j];
  const r = rng(m * 7919 + k * 31 + n);
  const spots = [
    [0, 0],
    [m - 1, n - 1],
  ];
  while (spots.length < SPOTS) spots.push([Math.floor(r() * m), Math.floor(r() * n)]);
  // f32 accumulation error grows with depth; a wrong kernel is off by O(√k) or more.
  const tol = 1e-4 + 5e-5 * k;
  for (const [i, j] of spots) {
    let want = 0;
    for (let p = 0; p < k; p++) want += A(i, p) * B(p, j);
    const got = c[i * n + j];
    if (!(Math.abs(got - want) <= tol)) {
      throw new Error(
        `wrong ${form} product ${m}x${k}x${n}: C[${i},${j}] = ${got}, expected ${want.toFixed(6)}`,
      );
    }
  }
}
