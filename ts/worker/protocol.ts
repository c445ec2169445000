// The messages between a page and a worker serving nabla jobs (see serve.ts and connect.ts).
// Every message carries TAG, so the same channel can carry the application's own messages.
import { NablaError } from '../errors.js';

export const TAG = 'nabla.worker/1';

/** Page → worker. `hello` asks the worker to (re)announce itself with `ready`. */
export type PageMessage =
  | { tag: typeof TAG; kind: 'hello' }
  | { tag: typeof TAG; kind: 'run'; id: number; method: string; payload: unknown }
  | { tag: typeof TAG; kind: 'cancel'; id: number };

/** Worker → page. */
export type WorkerMessage =
  | { tag: typeof TAG; kind: 'ready'; methods: string[] }
  | { tag: typeof TAG; kind: 'progress'; id: number; progress: unknown }
  | { tag: typeof TAG; kind: 'result'; id: number; value: unknown }
  | { tag: typeof TAG; kind: 'error'; id: number; error: ErrorInfo };

/** An error as it crosses the boundary (Error objects lose their class in structured clone). */
export interface ErrorInfo {
  name: string;
  message: string;
  stack?: string;
}

export function isMessage<M extends { tag: string }>(data: unknown): data is M {
  return typeof data === 'object' && data !== null && (data as { tag?: unknown }).tag === TAG;
}

export function errorInfo(e: unknown): ErrorInfo {
  if (e instanceof Error || (typeof e === 'object' && e !== null && 'message' in e)) {
    const err = e as Error;
    return { name: String(err.name ?? 'Error'), message: String(err.message), stack: err.stack };
  }
  return { name: 'Error', message: String(e) };
}

/** A job failed in the worker (`remoteName` is the original error class), or the worker did. */
export class WorkerError extends NablaError {
  override name = 'WorkerError';
  constructor(
    message: string,
    readonly remoteName = 'Error',
    readonly remoteStack?: string,
  ) {
    super(message);
  }
}

/** A value posted with a transfer list: its ArrayBuffers move instead of being copied. */
export class Transfer<T> {
  constructor(
    readonly value: T,
    readonly transfer: Transferable[],
  ) {}
}

/** Marks a handler's result for transfer: `return nb.worker.transfer(msg, [msg.bytes])`. */
export function transfer<T>(value: T, list: Transferable[]): Transfer<T> {
  return new Transfer(value, list);
}

/** The side of a channel a Worker, a worker's global scope and a MessagePort all have. */
export interface Endpoint {
  postMessage(message: unknown, transfer: Transferable[]): void;
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  removeEventListener(type: string, listener: (event: MessageEvent) => void): void;
  /** MessagePorts deliver nothing until started. */
  start?(): void;
}

/** What a handler sees besides its payload. */
export interface JobContext<P = unknown> {
  /** Posts a progress message to the page's `onProgress` (dropped once cancelled). */
  report(progress: P, transfer?: Transferable[]): void;
  /** Aborted when the page cancels the job. */
  signal: AbortSignal;
}

/** A job: the payload and context in, a result (or `transfer(result, list)`) out. */
// `never` parameters: any function is assignable, so handlers keep their own payload types.
export type Handler = (payload: never, ctx: never) => unknown;
export type Handlers = Record<string, Handler>;

export type PayloadOf<H> = H extends (payload: infer I, ...rest: never[]) => unknown ? I : never;
export type ProgressOf<H> = H extends (payload: never, ctx: JobContext<infer P>) => unknown
  ? P
  : unknown;
export type ResultOf<H> = H extends (...args: never[]) => infer R
  ? Awaited<R> extends Transfer<infer V>
    ? V
    : Awaited<R>
  : never;
