// Issue 14's first measurement: the shared-memory core (ts/wasm/nabla-threads.wasm: simd128 +
// atomics, imported shared memory, built by scripts/build-wasm.mjs) instantiated on the main
// thread and in N-1 worker_threads, each with its own stack, TLS block and GEMM scratch, and a
// GEMM split by rows across them through the unchanged `matmul_f32` export (each thread gets a
// row range of A and C and packs all of B itself). Reports the cost of one dispatch (an empty
// job: notify, wake, run nothing, report back), GEMM GFLOP/s at 1..N threads, and checks that
// every split gives a product bitwise equal to one thread's. Not part of the test suite:
//
//   npm run build && node bench/threads-probe.mjs [--threads 2] [--reps 20] [--sizes 128,512]
//
// `--json` prints one JSON line instead (test/threads-core.test.ts reads it); products of up to
// 256 rows are also checked against float64 there.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const WASM = new URL('../ts/wasm/nabla-threads.wasm', import.meta.url);
const STACK = 1 << 20;
// Loads of the control word spun through before sleeping (as ts/wasm/threads.ts; 0: no spin).
const SPIN = Number(process.env.NABLA_SPIN ?? 200000);
// The control block, one int32 each: a generation counter the workers wait on, the count of
// workers done with it, and the job.
const GEN = 0;
const DONE = 1;
const FAILED = 2; // set by a worker whose job threw (a trap), so the main thread does not hang
const JOB = 3; // a, b, c, m, k, n, then per worker: row begin, row end

/** Instantiates the core on `memory`; a thread other than the first gets its own stack and TLS. */
async function instantiate(module, memory, own) {
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const ex = instance.exports;
  if (own) {
    ex.__stack_pointer.value = own.stackTop;
    ex.__wasm_init_tls(own.tls);
  }
  return ex;
}

/** `matmul_f32` on rows [begin, end) of a row-major A (m×k) and C (m×n). */
function gemmRows(ex, job, begin, end, scratch) {
  const [a, b, c, , k, n] = job;
  if (end <= begin) return;
  ex.matmul_f32(
    a + begin * k * 4,
    b,
    c + begin * n * 4,
    end - begin,
    k,
    n,
    n,
    k,
    1,
    n,
    1,
    0,
    scratch,
  );
}

function readJob(ctrl) {
  return Array.from(ctrl.subarray(JOB, JOB + 6), (v) => v >>> 0);
}

if (!isMainThread) {
  const { module, memory, ctrlBuffer, own, scratch, index } = workerData;
  const ex = await instantiate(module, memory, own);
  const ctrl = new Int32Array(ctrlBuffer);
  let seen = 0;
  parentPort.postMessage('ready');
  for (;;) {
    // Re-check after every wake: a notify may come before the wait starts.
    for (let i = 0; i < SPIN && Atomics.load(ctrl, GEN) === seen; i++);
    while (Atomics.load(ctrl, GEN) === seen) Atomics.wait(ctrl, GEN, seen);
    seen = Atomics.load(ctrl, GEN);
    if (seen < 0) break;
    try {
      const job = readJob(ctrl);
      gemmRows(ex, job, ctrl[JOB + 6 + 2 * index], ctrl[JOB + 7 + 2 * index], scratch);
    } catch {
      Atomics.store(ctrl, FAILED, 1);
    }
    Atomics.add(ctrl, DONE, 1);
    Atomics.notify(ctrl, DONE);
  }
} else {
  const { values: args } = parseArgs({
    options: {
      threads: { type: 'string', default: '2' },
      reps: { type: 'string', default: '20' },
      sizes: { type: 'string', default: '128,256,512,1024' },
      json: { type: 'boolean', default: false },
    },
  });
  const threads = Number(args.threads);
  const reps = Number(args.reps);
  const sizes = args.sizes.split(',').map(Number);
  const report = { threads, dispatchMicroseconds: 0, gemm: [] };
  const say = (line) => args.json || console.log(line);
  const module = await WebAssembly.compile(readFileSync(WASM));
  const memory = new WebAssembly.Memory({ initial: 64, maximum: 65536, shared: true });
  const ex = await instantiate(module, memory, null);
  const scratchBytes = ex.matmul_scratch_len() * 4;
  const ctrlBuffer = new SharedArrayBuffer(4 * (JOB + 6 + 2 * threads));
  const ctrl = new Int32Array(ctrlBuffer);
  const mainScratch = ex.nb_alloc(scratchBytes);
  const workers = [];
  for (let i = 0; i < threads - 1; i++) {
    const stack = ex.nb_alloc(STACK);
    const tls = ex.nb_alloc(Math.max(16, ex.__tls_size.value));
    const scratch = ex.nb_alloc(scratchBytes);
    const own = { stackTop: stack + STACK, tls };
    const w = new Worker(new URL(import.meta.url), {
      workerData: { module, memory, ctrlBuffer, own, scratch, index: i },
    });
    await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    workers.push(w);
  }

  /** Runs `job` with rows split at fixed points over `n` threads (n-1 workers + this one). */
  function run(job, n) {
    if (n === 1) return gemmRows(ex, job, 0, job[3], mainScratch); // no dispatch at all
    const m = job[3];
    // Fixed split points (multiples of 4 rows), so a given thread count always splits alike.
    const bounds = Array.from({ length: n + 1 }, (_, t) =>
      t === n ? m : Math.floor((m * t) / n / 4) * 4,
    );
    for (let i = 0; i < 6; i++) ctrl[JOB + i] = job[i];
    for (let w = 0; w < threads - 1; w++) {
      ctrl[JOB + 6 + 2 * w] = w + 1 < n ? bounds[w + 1] : 0;
      ctrl[JOB + 7 + 2 * w] = w + 1 < n ? bounds[w + 2] : 0;
    }
    Atomics.store(ctrl, DONE, 0);
    Atomics.add(ctrl, GEN, 1);
    Atomics.notify(ctrl, GEN);
    gemmRows(ex, job, bounds[0], bounds[1], mainScratch);
    for (let i = 0; i < SPIN && Atomics.load(ctrl, DONE) < threads - 1; i++);
    for (;;) {
      const done = Atomics.load(ctrl, DONE);
      if (done >= threads - 1) break;
      // A dead worker never reports: give up after 10 s instead of hanging.
      if (Atomics.wait(ctrl, DONE, done, 10_000) === 'timed-out') {
        throw new Error('threads-probe: a worker did not report within 10 s');
      }
    }
    if (Atomics.load(ctrl, FAILED)) throw new Error('threads-probe: a worker trapped');
  }

  const best = (fn) => {
    fn();
    let t = Infinity;
    for (let r = 0; r < reps; r++) {
      const s = performance.now();
      fn();
      t = Math.min(t, performance.now() - s);
    }
    return t;
  };

  // Dispatch cost: a job with no rows anywhere.
  const empty = [0, 0, 0, 0, 0, 0];
  const rounds = 2000;
  const d = best(() => {
    for (let i = 0; i < rounds; i++) run(empty, threads);
  });
  report.dispatchMicroseconds = (d / rounds) * 1000;
  say(
    `dispatch to ${threads - 1} worker(s) and back: ${report.dispatchMicroseconds.toFixed(1)} µs`,
  );

  say(
    '| m×k×n | 1 thread GFLOP/s | ' +
      [...Array(threads - 1)].map((_, i) => `${i + 2} threads`).join(' | ') +
      ' | bitwise equal |',
  );
  for (const s of sizes) {
    // Odd sizes make k and n odd too, so the GEMM's edge paths are in the split.
    const [m, k, n] = s % 2 ? [s, s + 2, s + 4] : [s, s, s];
    const a = ex.nb_alloc(m * k * 4);
    const b = ex.nb_alloc(k * n * 4);
    const c = ex.nb_alloc(m * n * 4);
    const f32 = () => new Float32Array(memory.buffer);
    let seed = 1;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
    f32()
      .subarray(a / 4, a / 4 + m * k)
      .forEach((_, i, arr) => (arr[i] = rand()));
    f32()
      .subarray(b / 4, b / 4 + k * n)
      .forEach((_, i, arr) => (arr[i] = rand()));
    const job = [a, b, c, m, k, n];
    const cells = [];
    let reference = null;
    let equal = true;
    for (let t = 1; t <= threads; t++) {
      // NaN first, so a row no thread wrote shows up in the comparisons.
      f32().fill(Number.NaN, c / 4, c / 4 + m * n);
      const ms = best(() => run(job, t));
      cells.push(((2 * m * k * n) / ms / 1e6).toFixed(1));
      const out = f32().slice(c / 4, c / 4 + m * n);
      if (reference === null) reference = out;
      else equal &&= out.every((v, i) => Object.is(v, reference[i]));
    }
    const ratio = (Number(cells[threads - 1]) / Number(cells[0])).toFixed(2);
    say(`| ${m}×${k}×${n} | ${cells.join(' | ')} (${ratio}x) | ${equal} |`);
    let maxErr = null;
    if (m <= 256) {
      const [x, y] = [f32().slice(a / 4, a / 4 + m * k), f32().slice(b / 4, b / 4 + k * n)];
      maxErr = 0;
      for (let i = 0; i < m; i++)
        for (let j = 0; j < n; j++) {
          let acc = 0;
          for (let p = 0; p < k; p++) acc += x[i * k + p] * y[p * n + j];
          maxErr = Math.max(maxErr, Math.abs(reference[i * n + j] - acc) / (1 + Math.abs(acc)));
        }
    }
    report.gemm.push({ m, k, n, gflops: cells.map(Number), bitwiseEqual: equal, maxErr });
    ex.nb_free(a, m * k * 4);
    ex.nb_free(b, k * n * 4);
    ex.nb_free(c, m * n * 4);
  }
  if (args.json) console.log(JSON.stringify(report));
  Atomics.store(ctrl, GEN, -1);
  Atomics.notify(ctrl, GEN);
  await Promise.all(workers.map((w) => new Promise((r) => w.once('exit', r))));
}
