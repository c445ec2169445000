// The threads of nabla's worker pool (ts/wasm/threads.ts starts them: worker_threads in Node,
// module Workers in a browser; the file ships beside the bundles, so no bundle contains it).
// One program, two roles:
// - a compute thread gets the shared-memory core's module, the pool's memory and control words,
//   its own stack and TLS block; answers once its core is instantiated; then runs one export
//   call per job until told to stop, never returning to its event loop. Waits re-check the
//   generation word, because a notify can come before the wait starts. A job's share is
//   claimed first, since the caller runs any share still unclaimed when its own is done.
// - the watcher starts the compute threads and keeps its event loop free, so it hears when one
//   dies (an exit, an uncaught error) even while the pool's caller blocks in a join, and says
//   so in the control words (the thread's DEAD word, then a bump and notify on DONE), which the join
//   re-checks.
function serve(setup, ready) {
  const { wasmModule, memory, ctrlBuffer, argsBuffer, stackTop, tls, index, names, layout } = setup;
  const { GEN, DONE, FAILED, STOP, HOLD, STALL, WORDS, PER, CLAIM, FIN, SLOT, SPIN } = layout;
  const mine = WORDS + PER * index;
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
    const stall = Atomics.load(ctrl, STALL);
    if (stall) Atomics.wait(ctrl, STOP, 0, stall);
    // Claim the share, unless the caller, done with its own, has taken it (or a later job's:
    // then `seen` is stale and the loop reads the generation again).
    const last = Atomics.load(ctrl, mine + CLAIM);
    if (((seen - last) | 0) <= 0) continue;
    if (Atomics.compareExchange(ctrl, mine + CLAIM, last, seen) !== last) continue;
    if (args[0] >= 0) {
      try {
        fns[args[0]](...args.subarray(2, 2 + args[1]));
      } catch {
        Atomics.store(ctrl, FAILED, 1);
      }
    }
    Atomics.store(ctrl, mine + FIN, seen);
    const hold = Atomics.load(ctrl, HOLD);
    if (hold) Atomics.wait(ctrl, STOP, 0, hold);
    Atomics.add(ctrl, DONE, 1);
    Atomics.notify(ctrl, DONE);
  }
}

/**
 * The watcher: starts one compute thread per setup with `start(url, setup, onDeath)` and
 * answers `reply({ ready: true })` once all are ready (or `{ error }`). A death after that sets
 * the thread's DEAD word. `{ kill, afterMs }` messages (tests only) terminate a compute thread
 * after a delay, as a crash would.
 */
function watch({ setups, workerUrl }, start, reply, onMessage) {
  const { DONE, WORDS, PER, DEAD } = setups[0].layout;
  const ctrl = new Int32Array(setups[0].ctrlBuffer);
  let started = false;
  // DEAD holds how it died, for the caller's message: 1 an uncaught error, 2 + its exit code.
  const died = (index, why, code) => {
    if (!started) return reply({ error: `worker ${index + 1}: ${why}` });
    Atomics.compareExchange(ctrl, WORDS + PER * index + DEAD, 0, code >= 0 ? code + 2 : 1);
    Atomics.add(ctrl, DONE, 1);
    Atomics.notify(ctrl, DONE);
  };
  const threads = setups.map((setup) =>
    start(workerUrl, setup, (why, code) => died(setup.index, why, code)),
  );
  Promise.all(threads.map((t) => t.ready)).then(
    () => {
      started = true;
      reply({ ready: true });
    },
    (e) => reply({ error: String(e) }),
  );
  onMessage(({ kill, afterMs }) => {
    setTimeout(() => threads[kill].terminate(), afterMs);
  });
}

/** A compute thread started from the watcher: `{ ready, terminate }`. */
function startNode(Worker, url, setup, onDeath) {
  const w = new Worker(new URL(url), { workerData: setup });
  const ready = new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', (e) => reject(new Error(String(e))));
    w.once('exit', (code) => reject(new Error(`exited with code ${code}`)));
  }).then(() => {
    w.removeAllListeners();
    w.on('error', (e) => onDeath(String(e), -1));
    w.on('exit', (code) => onDeath(`exited with code ${code}`, code));
  });
  return { ready, terminate: () => void w.terminate() };
}

function startBrowser(url, setup, onDeath) {
  const w = new Worker(url, { type: 'module' });
  const ready = new Promise((resolve, reject) => {
    w.onmessage = resolve;
    w.onerror = (e) => reject(new Error(e.message));
    w.postMessage(setup);
  }).then(() => {
    w.onmessage = null;
    w.onerror = (e) => onDeath(e.message ?? 'an uncaught error', -1);
  });
  // A browser Worker has no exit event: a termination from here is a death by definition.
  const terminate = () => {
    w.terminate();
    onDeath('terminated', 0);
  };
  return { ready, terminate };
}

if (typeof WorkerGlobalScope !== 'undefined') {
  self.addEventListener(
    'message',
    ({ data }) => {
      if (data.role === 'watch') {
        watch(
          data,
          startBrowser,
          (m) => self.postMessage(m),
          (f) => {
            self.onmessage = ({ data: m }) => f(m);
          },
        );
      } else serve(data, () => self.postMessage('ready'));
    },
    { once: true },
  );
} else {
  // Node. The specifier is not a literal, so browser bundlers leave it alone.
  const builtin = 'node:worker_threads';
  // No top-level await: bundlers may emit this file as a classic worker.
  void import(/* @vite-ignore */ builtin).then(({ Worker, parentPort, workerData }) => {
    if (workerData.role === 'watch') {
      const start = (url, setup, onDeath) => startNode(Worker, url, setup, onDeath);
      watch(
        workerData,
        start,
        (m) => parentPort.postMessage(m),
        (f) => parentPort.on('message', f),
      );
    } else serve(workerData, () => parentPort.postMessage('ready'));
  });
}
