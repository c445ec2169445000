// The page side: `nb.worker.connect(new Worker(url, { type: 'module' }))` gives a client
// whose `run(method, payload, { onProgress, signal })` returns a Promise of the result.
import {
  TAG,
  WorkerError,
  isMessage,
  type Endpoint,
  type Handlers,
  type PageMessage,
  type PayloadOf,
  type ProgressOf,
  type ResultOf,
  type WorkerMessage,
} from './protocol.js';

export interface RunOptions<P = unknown> {
  /** Called with each progress message the job reports. */
  onProgress?: (progress: P) => void;
  /** Aborting rejects the run at once with the signal's reason and cancels the job. */
  signal?: AbortSignal;
  /** Buffers in the payload to move to the worker instead of copying. */
  transfer?: Transferable[];
}

/** `run`'s arguments: the payload may be left out when the handler takes none. */
export type RunArgs<H> =
  unknown extends PayloadOf<H>
    ? [payload?: unknown, options?: RunOptions<ProgressOf<H>>]
    : undefined extends PayloadOf<H>
      ? [payload?: PayloadOf<H>, options?: RunOptions<ProgressOf<H>>]
      : [payload: PayloadOf<H>, options?: RunOptions<ProgressOf<H>>];

export interface WorkerClient<H extends Handlers = Handlers> {
  /** Runs `method` in the worker; resolves with its result, rejects with a WorkerError. */
  run<K extends keyof H & string>(method: K, ...args: RunArgs<H[K]>): Promise<ResultOf<H[K]>>;
  /** The worker's method names, once its `serve` has started. */
  readonly ready: Promise<string[]>;
  /** Rejects pending runs and terminates the worker (or closes the port). */
  terminate(): void;
}

interface Pending {
  method: string;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  onProgress?: (progress: never) => void;
}

type Target = Endpoint & { terminate?(): void; close?(): void };

/**
 * Connects to a worker that calls `nb.worker.serve`. Runs wait until the worker has announced
 * itself, so messages are never lost while its module is still loading. Type the client with
 * the worker's handlers: `connect<typeof handlers>(worker)`.
 */
export function connect<H extends Handlers = Handlers>(endpoint: Target): WorkerClient<H> {
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let closed: WorkerError | null = null;
  let announce: (methods: string[]) => void = () => {};
  let fail: (e: WorkerError) => void = () => {};
  const ready = new Promise<string[]>((resolve, reject) => {
    announce = resolve;
    fail = reject;
  });
  ready.catch(() => {}); // reported through each run; nobody has to await `ready`
  let isReady = false;
  const post = (msg: PageMessage, transfer: Transferable[] = []): void =>
    endpoint.postMessage(msg, transfer);

  const onMessage = (event: MessageEvent): void => {
    const msg: unknown = event.data;
    if (!isMessage<WorkerMessage>(msg)) return;
    if (msg.kind === 'ready') {
      isReady = true;
      announce(msg.methods);
      return;
    }
    const job = pending.get(msg.id);
    if (!job) return; // cancelled, or another client's
    if (msg.kind === 'progress') {
      job.onProgress?.(msg.progress as never);
      return;
    }
    pending.delete(msg.id);
    if (msg.kind === 'result') job.resolve(msg.value);
    else {
      const { name, message, stack } = msg.error;
      job.reject(new WorkerError(`${name} in worker job "${job.method}": ${message}`, name, stack));
    }
  };

  // An error event before `ready` means the worker script failed to load or threw.
  const onError = (event: Event): void => {
    if (isReady) return; // later uncaught errors are outside jobs; jobs report their own
    const detail = (event as ErrorEvent).message;
    fail(
      new WorkerError(
        `the worker failed before serving: ${detail || 'its script did not load (check the URL, the type: "module" option and the console)'}`,
      ),
    );
  };

  endpoint.addEventListener('message', onMessage);
  endpoint.addEventListener('error', onError as (e: MessageEvent) => void);
  endpoint.start?.();
  post({ tag: TAG, kind: 'hello' });

  async function run(method: string, payload?: unknown, opts: RunOptions = {}): Promise<unknown> {
    if (closed) throw closed;
    opts.signal?.throwIfAborted();
    await ready;
    if (closed) throw closed;
    opts.signal?.throwIfAborted();
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const signal = opts.signal;
      const onAbort = (): void => {
        if (!pending.delete(id)) return;
        post({ tag: TAG, kind: 'cancel', id });
        reject(signal!.reason);
      };
      const done =
        <T>(f: (v: T) => void) =>
        (v: T): void => {
          signal?.removeEventListener('abort', onAbort);
          f(v);
        };
      pending.set(id, {
        method,
        resolve: done(resolve),
        reject: done(reject),
        onProgress: opts.onProgress,
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        post({ tag: TAG, kind: 'run', id, method, payload }, opts.transfer ?? []);
      } catch (e) {
        pending.delete(id);
        done(reject)(e); // e.g. a DataCloneError for a payload holding functions
      }
    });
  }

  return {
    run: run as WorkerClient<H>['run'],
    ready,
    terminate() {
      if (closed) return;
      closed = new WorkerError('the worker was terminated');
      fail(closed);
      for (const job of pending.values()) job.reject(closed);
      pending.clear();
      endpoint.removeEventListener('message', onMessage);
      endpoint.removeEventListener('error', onError as (e: MessageEvent) => void);
      if (endpoint.terminate) endpoint.terminate();
      else endpoint.close?.();
    },
  };
}
