// Which op families run as fused kernels. Every fused op also exists as a composition of
// simpler ops (the definition it is tested against); turning a flag off routes the public
// functions back to the composition, for tests and benchmarks. Internal: not exported from the
// package.
export const fused = {
  /** conv1d / conv2d / convTranspose2d through the conv kernels (ts/ops/conv-kernel.ts). */
  conv: true,
  /** maxPool / avgPool through the pooling kernels (ts/ops/pool-kernel.ts). */
  pool: true,
  /** batchNorm through the fused kernel pair (ts/ops/batchnorm-kernel.ts). */
  batchNorm: true,
};

/** Runs `fn` with the given families composed instead of fused, then restores the flags. */
export function composed<T>(
  fn: () => T,
  families: (keyof typeof fused)[] = ['conv', 'pool', 'batchNorm'],
): T {
  const before = { ...fused };
  for (const f of families) fused[f] = false;
  try {
    return fn();
  } finally {
    Object.assign(fused, before);
  }
}
