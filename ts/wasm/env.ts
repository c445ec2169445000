// Where this copy of nabla runs: Node's paths (files, worker_threads, os) are taken only there.
export const isNode = typeof process !== 'undefined' && !!process.versions?.node;
