// Weights as a safetensors Blob: for downloads, uploads (`<input type=file>` gives Files,
// which are Blobs) and fetch bodies. Blob exists in browsers, workers and Node 18+.
import { ValueError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { loadSafetensors, saveSafetensors, type Safetensors } from './safetensors.js';

/** safetensors has no registered media type; this is what Hugging Face serves. */
const TYPE = 'application/octet-stream';

/** A Blob holding `stateDict` as a .safetensors file. */
export function toBlob(stateDict: Record<string, Tensor>, metadata?: Record<string, string>): Blob {
  return new Blob([saveSafetensors(stateDict, metadata) as Uint8Array<ArrayBuffer>], {
    type: TYPE,
  });
}

/** Reads and validates a .safetensors Blob or File (see `loadSafetensors`). */
export async function fromBlob(blob: Blob): Promise<Safetensors> {
  if (typeof Blob === 'undefined' || !(blob instanceof Blob)) {
    throw new ValueError(`fromBlob: expected a Blob or File, got ${describe(blob)}`);
  }
  return loadSafetensors(new Uint8Array(await blob.arrayBuffer()));
}

/**
 * Makes the browser download `stateDict` as a .safetensors file (page only: a worker has no
 * document, so post the bytes to the page with `nb.worker.packWeights` and download there).
 */
export function download(
  stateDict: Record<string, Tensor>,
  filename = 'model.safetensors',
  metadata?: Record<string, string>,
): void {
  const doc = (globalThis as { document?: Document }).document;
  if (!doc?.body) {
    throw new ValueError(
      'download: needs a page with a document; in a worker, send the bytes to the page (nb.worker.packWeights) and download there',
    );
  }
  const url = URL.createObjectURL(toBlob(stateDict, metadata));
  const a = doc.createElement('a');
  a.href = url;
  a.download = filename;
  a.style.display = 'none';
  doc.body.append(a);
  a.click();
  a.remove();
  // The download reads the URL asynchronously; revoking it at once can cancel it.
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
}

function describe(v: unknown): string {
  if (v === null || typeof v !== 'object') return v === null ? 'null' : typeof v;
  return (v as object).constructor?.name ?? 'an object';
}
