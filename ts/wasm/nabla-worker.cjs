// One thread of nabla's worker pool (ts/wasm/threads.ts starts it with worker_threads; it is not
// part of the browser bundle). Instantiates the shared-memory core on the pool's memory with its
// own stack and TLS block, then runs one export call per job until told to stop. Waits re-check
// the generation word, because a notify can come before the wait starts.
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { wasmModule, memory, ctrlBuffer, argsBuffer, stackTop, tls, index, names, layout } =
  workerData;
const { GEN, DONE, FAILED, STOP, ACK, SLOT, SPIN } = layout;
const ex = new WebAssembly.Instance(wasmModule, { env: { memory } }).exports;
ex.__stack_pointer.value = stackTop;
ex.__wasm_init_tls(tls);
const ctrl = new Int32Array(ctrlBuffer);
const args = new Float64Array(argsBuffer, index * SLOT * 8, SLOT);
const fns = names.map((n) => ex[n]);
parentPort.postMessage('ready');
let seen = 0;
for (;;) {
  // Spin a little first: the next op's job usually comes within microseconds, and waking a
  // sleeping thread costs tens of them.
  for (let i = 0; i < SPIN && Atomics.load(ctrl, GEN) === seen; i++);
  while (Atomics.load(ctrl, GEN) === seen) Atomics.wait(ctrl, GEN, seen);
  seen = Atomics.load(ctrl, GEN);
  if (Atomics.load(ctrl, STOP)) break;
  Atomics.store(ctrl, ACK + index, seen);
  if (args[0] >= 0) {
    try {
      fns[args[0]](...args.subarray(2, 2 + args[1]));
    } catch {
      Atomics.store(ctrl, FAILED, 1);
    }
  }
  Atomics.add(ctrl, DONE, 1);
  Atomics.notify(ctrl, DONE);
}
