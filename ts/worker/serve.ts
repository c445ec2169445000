// The worker side: `nb.worker.serve({ train: async (config, ctx) => ... })` answers the page's
// `run` calls, passing progress through and sending results or errors back.
import { ValueError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import {
  TAG,
  Transfer,
  errorInfo,
  isMessage,
  type Endpoint,
  type Handlers,
  type JobContext,
  type PageMessage,
  type WorkerMessage,
} from './protocol.js';

/**
 * Serves `handlers` on `endpoint` (the worker's global scope by default) and announces the
 * method names to the page. Jobs run concurrently, interleaving at their awaits. Returns a
 * function that stops serving.
 */
export function serve<H extends Handlers>(
  handlers: H,
  endpoint: Endpoint = globalThis as unknown as Endpoint,
): () => void {
  const methods = Object.keys(handlers);
  const jobs = new Map<number, AbortController>();
  const post = (msg: WorkerMessage, transfer: Transferable[] = []): void =>
    endpoint.postMessage(msg, transfer);

  async function run(id: number, method: string, payload: unknown): Promise<void> {
    const controller = new AbortController();
    jobs.set(id, controller);
    try {
      const handler = Object.hasOwn(handlers, method) ? handlers[method] : undefined;
      if (typeof handler !== 'function') {
        throw new ValueError(
          `serve: no handler "${method}" (this worker serves ${methods.join(', ') || 'nothing'})`,
        );
      }
      const ctx: JobContext = {
        signal: controller.signal,
        report: (progress, transfer = []) => {
          if (!controller.signal.aborted)
            post({ tag: TAG, kind: 'progress', id, progress }, transfer);
        },
      };
      const out = await handler(payload as never, ctx as never);
      const [value, list] = out instanceof Transfer ? [out.value, out.transfer] : [out, []];
      if (value instanceof Tensor) {
        // A Tensor is a handle into this worker's wasm memory; a clone of it means nothing.
        throw new ValueError(
          `serve: "${method}" returned a Tensor; return nb.worker.packTensor(t) instead`,
        );
      }
      post({ tag: TAG, kind: 'result', id, value }, list);
    } catch (e) {
      post({ tag: TAG, kind: 'error', id, error: errorInfo(e) });
    } finally {
      jobs.delete(id);
    }
  }

  const onMessage = (event: MessageEvent): void => {
    const msg: unknown = event.data;
    if (!isMessage<PageMessage>(msg)) return;
    if (msg.kind === 'hello') post({ tag: TAG, kind: 'ready', methods });
    else if (msg.kind === 'cancel') jobs.get(msg.id)?.abort();
    else if (msg.kind === 'run') void run(msg.id, msg.method, msg.payload);
  };
  endpoint.addEventListener('message', onMessage);
  endpoint.start?.();
  post({ tag: TAG, kind: 'ready', methods });
  return () => endpoint.removeEventListener('message', onMessage);
}
