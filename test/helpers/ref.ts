// Float64 reference math for tests, written independently of the kernels.

/** erf to ~1e-12: Taylor series near 0, asymptotic erfc expansion in the tails. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 80; n++) {
      term *= (-ax * ax) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  const x2 = ax * ax;
  let series = 1;
  let t = 1;
  for (let n = 1; n < 8; n++) {
    t *= -(2 * n - 1) / (2 * x2);
    series += t;
  }
  const erfc = (Math.exp(-x2) / (ax * Math.sqrt(Math.PI))) * series;
  return Math.sign(x) * (1 - erfc);
}

export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

export const geluErf = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));

const K = Math.sqrt(2 / Math.PI);
export const geluTanh = (x: number): number =>
  0.5 * x * (1 + Math.tanh(K * (x + 0.044715 * x ** 3)));

/** Central difference of a float64 function, for derivative references. */
export function derivative(f: (x: number) => number, x: number, h = 1e-6): number {
  return (f(x + h) - f(x - h)) / (2 * h);
}

/** Row-major `[m, k] x [k, n]` product in float64. */
export function matmulRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  k: number,
  n: number,
): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p];
      for (let j = 0; j < n; j++) c[i * n + j] += av * b[p * n + j];
    }
  return c;
}
