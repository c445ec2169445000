// Page-side checks for weights in browser storage: Blob round trips, IndexedDB (including
// weights a worker saved), the download link, and the Node-only APIs' errors.
import { makeModel } from './train-small.js';
import { base64, nabla, rejection } from './util.js';

function stateDict(nb) {
  nb.manualSeed(5);
  const sd = makeModel(nb).stateDict();
  sd.steps = nb.tensor([1, 2, 3], { dtype: 'int32' }); // an int32 entry too
  return sd;
}

const bytesOf = (nb, sd, metadata) => base64(nb.io.saveSafetensors(sd, metadata));

export async function blobRoundTrip() {
  const nb = await nabla();
  const sd = stateDict(nb);
  const blob = nb.io.toBlob(sd, { note: 'blob' });
  const loaded = await nb.io.fromBlob(blob);
  const metadata = await nb.io.blobMetadata(blob);
  const file = new File([blob], 'w.safetensors'); // what an <input type=file> gives
  const fromFile = await nb.io.fromBlob(file);
  const junk = new File(['not safetensors'], 'junk.bin');
  return {
    type: blob.type,
    size: blob.size,
    original: bytesOf(nb, sd, { note: 'blob' }),
    loaded: bytesOf(nb, loaded, metadata),
    fromFile: bytesOf(nb, fromFile, await nb.io.blobMetadata(file)),
    keys: Object.keys(loaded),
    metadata,
    notABlob: await rejection(nb.io.fromBlob(new Uint8Array(4))),
    corrupt: await rejection(nb.io.fromBlob(new Blob(['not safetensors']))),
    corruptFile: await rejection(nb.io.fromBlob(junk)),
    corruptMetadata: await rejection(nb.io.blobMetadata(junk)),
  };
}

export async function indexedDB() {
  const nb = await nabla();
  const sd = stateDict(nb);
  await nb.io.saveToIndexedDB('model-a', sd, { epoch: '3' });
  await nb.io.saveToIndexedDB('model-b', sd, undefined, { database: 'nabla-other' });
  const loaded = await nb.io.loadFromIndexedDB('model-a');
  const metadata = await nb.io.indexedDBMetadata('model-a');
  const keys = await nb.io.listIndexedDB();
  const otherKeys = await nb.io.listIndexedDB({ database: 'nabla-other' });
  const deleted = await nb.io.deleteFromIndexedDB('model-a');
  const deletedAgain = await nb.io.deleteFromIndexedDB('model-a');
  return {
    original: bytesOf(nb, sd, { epoch: '3' }),
    loaded: bytesOf(nb, loaded, metadata),
    metadata,
    keys,
    otherKeys,
    deleted,
    deletedAgain,
    missing: await rejection(nb.io.loadFromIndexedDB('model-a')),
    missingMetadata: await rejection(nb.io.indexedDBMetadata('model-a')),
    badKey: await rejection(nb.io.saveToIndexedDB('', sd)),
  };
}

/** A worker trains and saves to IndexedDB; the page loads what it saved. */
export async function indexedDBFromWorker() {
  const nb = await nabla();
  const client = nb.worker.connect(new Worker('/pages/train-worker.js', { type: 'module' }));
  const run = await client.run('train', { seed: 3, epochs: 1, samples: 64, batchSize: 16 });
  await client.run('saveToIndexedDB', 'from-worker');
  client.terminate();
  const loaded = await nb.io.loadFromIndexedDB('from-worker');
  const metadata = await nb.io.indexedDBMetadata('from-worker');
  await nb.io.deleteFromIndexedDB('from-worker');
  return {
    trained: base64(run.weights),
    loaded: bytesOf(nb, loaded),
    metadata,
  };
}

/** Starts a download; the test catches it and returns the expected bytes for comparison. */
export async function download() {
  const nb = await nabla();
  const sd = stateDict(nb);
  nb.io.download(sd, 'weights.safetensors', { note: 'download' });
  return bytesOf(nb, sd, { note: 'download' });
}

/**
 * saveFile and loadMnist are Node-only; the browser build says so every time it is asked.
 * (loadMnist() without a directory reads `process.cwd()` first, a ReferenceError here.)
 */
export async function nodeOnly() {
  const nb = await nabla();
  const sd = stateDict(nb);
  return [
    await rejection(nb.io.saveFile('w.safetensors', sd)),
    await rejection(nb.io.saveFile('w.safetensors', sd)),
    await rejection(nb.io.loadFile('w.safetensors')),
    await rejection(nb.io.fileMetadata('w.safetensors')),
    await rejection(nb.data.loadMnist('mnist')),
  ];
}
