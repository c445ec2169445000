// One thread of nabla's worker pool in a browser (ts/wasm/threads.ts starts it as a module Worker;
// nabla-worker.cjs is the same loop for Node). Its first message sets it up: the shared-memory
// core's module, the pool's memory and control words, its own stack and TLS block. It then
// answers, and runs one export call per job until told to stop; it never returns to its event
// loop. Waits re-check the generation word, because a notify can come before the wait starts.
self.addEventListener(
  'message',
  ({ data }) => {
    const { wasmModule, memory, ctrlBuffer, argsBuffer, stackTop, tls, index, names, layout } =
      data;
    const { GEN, DONE, FAILED, STOP, ACK, SLOT, SPIN } = layout;
    const ex = new WebAssembly.Instance(wasmModule, { env: { memory } }).exports;
    ex.__stack_pointer.value = stackTop;
    ex.__wasm_init_tls(tls);
    const ctrl = new Int32Array(ctrlBuffer);
    const args = new Float64Array(argsBuffer, index * SLOT * 8, SLOT);
    const fns = names.map((n) => ex[n]);
    self.postMessage('ready');
    let seen = 0;
    for (;;) {
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
  },
  { once: true },
);
