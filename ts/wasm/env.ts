// Where this copy of nabla runs: Node's paths (files, worker_threads, os) are taken only there.
export const isNode = typeof process !== 'undefined' && !!process.versions?.node;

/** The cores the engine reports (Node: `availableParallelism`; a browser: `hardwareConcurrency`). */
export async function engineCores(): Promise<number> {
  let cores = 1;
  if (isNode) {
    const os = await import('node:os');
    cores =
      typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  } else {
    cores =
      (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
        ?.hardwareConcurrency ?? 1;
  }
  return Math.max(1, Math.floor(cores) || 1);
}
