// The worker pool (issue 14): `init({ threads })` instantiates the shared-memory core
// (nabla-threads.wasm) on the calling thread and in `threads - 1` compute threads running
// nabla-worker.js (Node's worker_threads; in a browser, module Workers started from a
// cross-origin isolated worker, since the pool's caller must be able to block), all on one
// shared memory. A watcher thread (the same script) starts them and reports a death, since the
// caller cannot hear one while it blocks. Each compute thread gets its own stack, TLS block
// and GEMM scratch (allocated here, by the calling thread) and then waits on a control word.
// `dispatch` hands each one export call with its own arguments; the caller does its own share
// and `join`s. Waits re-check their condition, because a notify can come before the wait starts.
import { NablaError, ValueError } from '../errors.js';
import { engineCores, isNode } from './env.js';

/** A worker trapped, died, or stopped answering: the pool is gone, ops run on one thread from now on. */
export class WorkerError extends NablaError {
  override name = 'WorkerError';
  /**
   * Pool workers (0-based) that died before finishing their share of the op in flight: those
   * shares are lost (perhaps half written); the rest of the op is done. Empty for a trap.
   */
  lostShares: readonly number[] = [];
}

// Control words (Int32Array over a SharedArrayBuffer).
const GEN = 0; // bumped per job (wrapping)
// Bumped (wrapping) and notified whenever a worker finishes a job or dies: only a wake-up
// signal, never a count of the current job's finishers. A worker can finish (FIN) and be
// descheduled before its bump, which then lands in the next job: counting bumps took that
// worker's next share as done before it was.
const DONE = 1;
const FAILED = 2; // a worker's call threw (a trap)
const STOP = 3; // set to shut the pool down
const HOLD = 4; // tests only: milliseconds each worker sleeps between FIN and its DONE bump
const STALL = 5; // tests only: milliseconds each worker sleeps before it claims its share
// Then PER words per worker from WORDS, at these offsets:
const WORDS = 6;
const PER = 3;
// The last job (generation) whose share was claimed, by the worker or by the caller: whoever
// swaps it to the job's generation first runs the share, so a worker that is slow to wake
// (descheduled by other processes) never holds an op up; the caller runs its share instead.
const CLAIM = 0;
const FIN = 1; // the last job it finished
const DEAD = 2; // set by the watcher when the worker died
/** Float64 argument slots per worker: export index, argument count, arguments. */
const SLOT = 32;
const STACK_BYTES = 1 << 20;
/**
 * Loads of the control word a thread spins through before it sleeps in Atomics.wait (a few
 * hundred microseconds): waking a sleeper costs ~70 µs, and the calling thread's unsplit work
 * between two split ops often outlasts a short spin. 20,000 left an MLP step at 2 threads
 * bimodal, 3.2 or 4.2 ms by process; 200,000 gave 2.7 ms every time (one thread: 3.8 ms).
 */
const SPIN = 200_000;
/**
 * The spin with more threads than cores (`init({ threads })` above the core count): a spinning
 * thread then holds a core another one needs, so threads go to sleep almost at once.
 */
const SPIN_OVERSUBSCRIBED = 2_000;

/** The started watcher, whichever kind of worker. */
interface Handle {
  post(message: unknown): void;
  terminate(): void;
}

/**
 * Starts the watcher (nabla-worker.js, beside the bundles, so no bundle contains it) on
 * `data`, which starts the compute threads; resolves once all are instantiated. A
 * worker_thread in Node, a module Worker in a browser (from inside a cross-origin isolated
 * worker).
 */
async function spawn(url: URL, data: Record<string, unknown>): Promise<Handle> {
  const answer = (m: unknown): void => {
    const error = (m as { error?: string } | null)?.error;
    if (error !== undefined) throw new Error(error);
  };
  if (isNode) {
    const { Worker } = await import('node:worker_threads');
    const w = new Worker(url, { workerData: data });
    await new Promise<void>((resolve, reject) => {
      w.once('message', (m) => {
        try {
          answer(m);
          resolve();
        } catch (e) {
          reject(e);
        }
      });
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`the watcher exited with code ${code}`)));
    }).catch((e: unknown) => {
      void w.terminate();
      throw e;
    });
    w.removeAllListeners();
    w.unref(); // a pool must not keep the process alive
    return { post: (m) => w.postMessage(m), terminate: () => void w.terminate() };
  }
  const w = new Worker(url, { type: 'module' });
  await new Promise<void>((resolve, reject) => {
    w.onmessage = ({ data: m }) => {
      try {
        answer(m);
        resolve();
      } catch (e) {
        reject(e);
      }
    };
    w.onerror = (e) => reject(new Error(e.message));
    w.postMessage(data);
  }).catch((e: unknown) => {
    w.terminate();
    throw e;
  });
  w.onmessage = null;
  w.onerror = null;
  return { post: (m) => w.postMessage(m), terminate: () => w.terminate() };
}

/** The exports a worker can be asked to run, by index. */
export const POOL_EXPORTS = [
  'matmul_f32',
  'fill_u32',
  'add_inplace_f32',
  'cast_f32_i32',
  'cast_i32_f32',
  'adam_step_f32',
  'sgd_step_f32',
  'rmsprop_step_f32',
  'adagrad_step_f32',
  'reduce_f32',
  'reduce_i32',
  'argreduce_f32',
  'arg_parts_f32',
  'sort_rows_f32',
  'unfold_f32',
  'fold_f32',
  'one_hot_i32',
  'multinomial_f32',
  'flush_subnormal_f32',
  'prod_f32',
  'prod_i32',
  'prod_bwd_f32',
  'cumsum_f32',
  'cumsum_i32',
  'pow_sum_chunks_f32',
  'reduce_parts_f32',
  'binary_flat_f32',
  'copy_strided_u32',
  'accumulate_strided_f32',
  'index_select_u32',
  'index_add_f32',
  'gather_u32',
  'scatter_add_f32',
  'rng_uniform_f32',
  'rng_normal_f32',
  'rng_randint_i32',
  'rng_bernoulli_f32',
  'binary_f32',
  'binary_i32',
  'compare_f32',
  'compare_i32',
  'where_u32',
  'cross_entropy_f32',
  'cross_entropy_bwd_f32',
  'cross_entropy_prob_f32',
  'cross_entropy_prob_bwd_f32',
  'layer_norm_f32',
  'layer_norm_bwd_chunks_f32',
  'conv2d_f32',
  'conv2d_bwd_input_f32',
  'conv2d_bwd_weight_f32',
  'conv2d_bwd_weight_chunks_f32',
  'lstm_cell_f32',
  'lstm_cell_bwd_f32',
  'gru_cell_f32',
  'gru_cell_bwd_f32',
  'rnn_cell_f32',
  'rnn_cell_bwd_f32',
  'unary_f32',
  'unary_bwd_f32',
  'softmax_f32',
  'softmax_bwd_f32',
  'max_pool2d_f32',
  'max_pool2d_bwd_f32',
  'avg_pool2d_f32',
  'avg_pool2d_bwd_f32',
  'batch_norm_f32',
  'batch_norm_bwd_f32',
  'sdpa_fwd_f32',
  'sdpa_bwd_f32',
] as const;
export type PoolExport = (typeof POOL_EXPORTS)[number];

/** What the calling thread needs from the core to set workers up. */
export interface PoolCore {
  nb_alloc(bytes: number): number;
  matmul_scratch_len(): number;
  __tls_size: WebAssembly.Global;
  __tls_align: WebAssembly.Global;
}

export interface Pool {
  /** Threads in all, the calling one included. */
  readonly size: number;
  /** Worker `i`'s GEMM packing scratch (worker threads only; the caller has its own). */
  readonly scratch: readonly number[];
  /** Starts one call per worker (`null`: nothing for that worker this time). */
  dispatch(calls: readonly ({ fn: PoolExport; args: readonly number[] } | null)[]): void;
  /**
   * Finishes the current job: runs `steal(i)` here for each worker `i` whose share no worker has
   * started (it must compute what worker `i` would, with the calling thread's scratch), then
   * waits for the shares workers took. Without `steal` (tests), waits for the workers to run
   * every share. Throws WorkerError on a failure.
   */
  join(steal?: (worker: number) => void): void;
  /** Why the pool stopped working, or null while it works. */
  readonly broken: string | null;
  /** Stops the workers. */
  close(): void;
  /** Tests only: terminates compute thread `index` after `afterMs`, as a crash would. */
  killWorker(index: number, afterMs: number): void;
  /**
   * Tests only: every worker sleeps `ms` between finishing a job and signalling it, as a
   * descheduled thread would (0: no pause).
   */
  holdAfterFinish(ms: number): void;
  /** Tests only: every worker sleeps `ms` before claiming a job's share, as a descheduled one. */
  stallBeforeClaim(ms: number): void;
}

/** Starts `size - 1` workers on `memory`; the caller is the pool's first thread. */
export async function startPool(
  size: number,
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
  core: PoolCore,
): Promise<Pool> {
  const workers = size - 1;
  const spin = size <= (await engineCores()) ? SPIN : SPIN_OVERSUBSCRIBED;
  const ctrl = new Int32Array(new SharedArrayBuffer(4 * (WORDS + PER * workers)));
  const word = (i: number, offset: number): number => Atomics.load(ctrl, WORDS + PER * i + offset);
  const argsBuffer = new SharedArrayBuffer(8 * SLOT * workers);
  const args = new Float64Array(argsBuffer);
  const scratchBytes = (core.matmul_scratch_len() >>> 0) * 4;
  const tlsAlign = Math.max(16, Number(core.__tls_align.value));
  const tlsBytes = Math.max(tlsAlign, Number(core.__tls_size.value));
  const alloc = (bytes: number): number => {
    const p = core.nb_alloc(bytes) >>> 0;
    if (p === 0) throw new ValueError(`init: threads: cannot allocate ${bytes} bytes per worker`);
    return p;
  };
  const scratch: number[] = [];
  const setups = [];
  for (let i = 0; i < workers; i++) {
    const stackTop = alloc(STACK_BYTES) + STACK_BYTES;
    const tls = alloc(tlsBytes + tlsAlign);
    scratch.push(alloc(scratchBytes));
    setups.push({
      layout: {
        GEN,
        DONE,
        FAILED,
        STOP,
        HOLD,
        STALL,
        WORDS,
        PER,
        CLAIM,
        FIN,
        DEAD,
        SLOT,
        SPIN: spin,
      },
      wasmModule: module,
      memory,
      ctrlBuffer: ctrl.buffer,
      argsBuffer,
      stackTop,
      tls: Math.ceil(tls / tlsAlign) * tlsAlign,
      index: i,
      names: [...POOL_EXPORTS],
    });
  }
  const url = new URL('./nabla-worker.js', import.meta.url);
  let watcher: Handle;
  try {
    watcher = await spawn(url, { role: 'watch', workerUrl: url.href, setups });
  } catch (e) {
    throw new WorkerError(`init: threads: a worker did not start: ${String(e)}`);
  }

  let broken: string | null = null;
  let pending = 0;
  /** Which workers the current job gives a call. */
  let calls: boolean[] = [];
  /** 1 + the first dead worker's index, or 0. */
  const dead = (): number => {
    for (let i = 0; i < workers; i++) if (word(i, DEAD)) return i + 1;
    return 0;
  };
  /** "worker 2 (exited with code 1)": who died and how, as the watcher recorded it. */
  const deaths = (list: readonly number[]): string =>
    list
      .map((i) => {
        const how = word(i, DEAD);
        const why = how === 1 ? 'an uncaught error' : how >= 2 ? `exited with code ${how - 2}` : '';
        return `worker ${i + 1}${why ? ` (${why})` : ''}`;
      })
      .join(', ');
  const pool: Pool = {
    size,
    scratch,
    dispatch(jobs) {
      if (broken !== null) throw new WorkerError(broken);
      calls = jobs.map((c) => c !== null && c !== undefined);
      if (dead()) fail(`${deaths([dead() - 1])} died`);
      for (let i = 0; i < workers; i++) {
        const call = jobs[i] ?? null;
        const base = i * SLOT;
        if (call === null) {
          args[base] = -1;
          continue;
        }
        if (call.args.length > SLOT - 2) throw new RangeError('pool: too many arguments');
        args[base] = POOL_EXPORTS.indexOf(call.fn);
        args[base + 1] = call.args.length;
        args.set(call.args, base + 2);
      }
      pending = (Atomics.add(ctrl, GEN, 1) + 1) | 0;
      Atomics.notify(ctrl, GEN);
    },
    join(steal) {
      // Shares still unclaimed run here, in worker order (each claim is one compare-exchange
      // against the worker's own).
      const stolen: boolean[] = [];
      let failure: { error: unknown } | null = null; // thrown by a stolen share, after the wait
      for (let i = 0; i < workers; i++) {
        const at = WORDS + PER * i + CLAIM;
        const last = Atomics.load(ctrl, at);
        stolen[i] =
          steal !== undefined &&
          ((pending - last) | 0) > 0 &&
          Atomics.compareExchange(ctrl, at, last, pending) === last;
        if (stolen[i] && calls[i] && failure === null) {
          try {
            steal!(i);
          } catch (error) {
            failure = { error };
          }
        }
      }
      // Done when every share was run here, finished by its worker (its FIN word) or lost with
      // its worker (its DEAD word).
      const settled = (): boolean => {
        for (let i = 0; i < workers; i++) {
          if (!stolen[i] && word(i, FIN) !== pending && word(i, DEAD) === 0) return false;
        }
        return true;
      };
      // Spin first, re-checking only when a worker signals.
      let seen = Atomics.load(ctrl, DONE);
      for (let i = 0; i < spin && !settled();) {
        for (; i < spin && Atomics.load(ctrl, DONE) === seen; i++);
        seen = Atomics.load(ctrl, DONE);
      }
      for (;;) {
        // Read the wake-up word before the check: a finish after the check bumps it, so the
        // wait below returns at once instead of sleeping through that finish.
        const bumps = Atomics.load(ctrl, DONE);
        if (settled()) break;
        Atomics.wait(ctrl, DONE, bumps, 100);
      }
      if (failure !== null) throw failure.error;
      const lost: number[] = [];
      for (let i = 0; i < workers; i++) if (!stolen[i] && word(i, FIN) !== pending) lost.push(i);
      if (lost.length > 0) fail(`${deaths(lost)} died while running its share of an op`, lost);
      if (Atomics.load(ctrl, FAILED)) fail('a worker trapped while running its share of an op');
    },
    get broken() {
      // A thread that died between jobs: the pool stops here, before any op depends on it.
      if (broken === null && dead()) stop(`${deaths([dead() - 1])} died`);
      return broken;
    },
    close() {
      Atomics.store(ctrl, STOP, 1);
      Atomics.add(ctrl, GEN, 1);
      Atomics.notify(ctrl, GEN);
    },
    killWorker(index, afterMs) {
      watcher.post({ kill: index, afterMs });
    },
    holdAfterFinish(ms) {
      Atomics.store(ctrl, HOLD, ms);
    },
    stallBeforeClaim(ms) {
      Atomics.store(ctrl, STALL, ms);
    },
  };
  function stop(why: string): void {
    broken = `threads: ${why}; the pool is stopped and ops run on one thread from now on`;
    pool.close();
    watcher.terminate(); // and with it the compute threads it started
  }
  function fail(why: string, lostShares: readonly number[] = []): never {
    stop(why);
    const e = new WorkerError(broken!);
    e.lostShares = lostShares;
    throw e;
  }
  return pool;
}
