// nb.io: reading and writing weights in the safetensors format. Every loader returns a state
// dict (tensors by name) that `Module.loadStateDict` accepts; the `__metadata__` strings are
// read by a separate function beside each one.
export { saveSafetensors, loadSafetensors, safetensorsMetadata } from './safetensors.js';
export { saveFile, loadFile, fileMetadata } from './node.js';
export { toBlob, fromBlob, blobMetadata, download } from './blob.js';
export {
  saveToIndexedDB,
  loadFromIndexedDB,
  indexedDBMetadata,
  deleteFromIndexedDB,
  listIndexedDB,
  type IndexedDBOptions,
} from './indexeddb.js';
