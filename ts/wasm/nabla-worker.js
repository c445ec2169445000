// One thread of nabla's worker pool (ts/wasm/threads.ts starts it: a worker_thread in Node, a
// module Worker in a browser; the file ships beside the bundles, so no bundle contains it). It
// gets the shared-memory core's module, the pool's memory and control words, its own stack and
// TLS block; answers once its core is instantiated; then runs one export call per job until told
// to stop, never returning to its event loop. Waits re-check the generation word, because a
// notify can come before the wait starts.
function serve(setup, ready) {
  const { wasmModule, memory, ctrlBuffer, argsBuffer, stackTop, tls, index, names, layout } = setup;
  const { GEN, DONE, FAILED, STOP, ACK, SLOT, SPIN } = layout;
  const ex = new WebAssembly.Instance(wasmModule, { env: { memory } }).exports;
  ex.__stack_pointer.value = stackTop;
  ex.__wasm_init_tls(tls);
  const ctrl = new Int32Array(ctrlBuffer);
  const args = new Float64Array(argsBuffer, index * SLOT * 8, SLOT);
  const fns = names.map((n) => ex[n]);
  ready();
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
}

if (typeof WorkerGlobalScope !== 'undefined') {
  self.addEventListener('message', ({ data }) => serve(data, () => self.postMessage('ready')), {
    once: true,
  });
} else {
  // Node. The specifier is not a literal, so browser bundlers leave it alone.
  const builtin = 'node:worker_threads';
  // No top-level await: bundlers may emit this file as a classic worker.
  void import(/* @vite-ignore */ builtin).then(({ parentPort, workerData }) =>
    serve(workerData, () => parentPort.postMessage('ready')),
  );
}
