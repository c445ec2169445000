// Weights as a safetensors Blob: for downloads, uploads (`<input type=file>` gives Files,
// which are Blobs) and fetch bodies. Blob exists in browsers, workers and Node 18+.
import { ValueError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { headerLength, parseHeader } from './header.js';
import { describe, readTensors, saveSafetensors } from './safetensors.js';

/** safetensors has no registered media type; this is what Hugging Face serves. */
const TYPE = 'application/octet-stream';

/** A Blob holding `stateDict` as a .safetensors file. */
export function toBlob(stateDict: Record<string, Tensor>, metadata?: Record<string, string>): Blob {
  return new Blob([saveSafetensors(stateDict, metadata) as Uint8Array<ArrayBuffer>], {
    type: TYPE,
  });
}

function checkBlob(op: string, blob: unknown): void {
  if (typeof Blob === 'undefined' || !(blob instanceof Blob)) {
    throw new ValueError(`${op}: expected a Blob or File, got ${describe(blob)}`);
  }
}

/** `op`, plus the file name when the Blob is a File. */
function where(op: string, blob: Blob): string {
  const name = (blob as { name?: unknown }).name;
  return typeof name === 'string' && name !== '' ? `${op}: ${name}` : op;
}

/** Reads and validates a .safetensors Blob or File into a state dict (see `loadSafetensors`). */
export async function fromBlob(blob: Blob): Promise<Record<string, Tensor>> {
  checkBlob('fromBlob', blob);
  return readTensors(new Uint8Array(await blob.arrayBuffer()), where('fromBlob', blob));
}

/** The `__metadata__` strings of a .safetensors Blob or File, reading only its header. */
export async function blobMetadata(blob: Blob): Promise<Record<string, string>> {
  checkBlob('blobMetadata', blob);
  const context = where('blobMetadata', blob);
  const head = new Uint8Array(await blob.slice(0, 8).arrayBuffer());
  const n = headerLength(head, context, blob.size);
  const bytes = new Uint8Array(await blob.slice(0, 8 + n).arrayBuffer());
  return parseHeader(bytes, context, blob.size).metadata;
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
