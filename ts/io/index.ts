// nb.io: reading and writing weights in the safetensors format.
export { saveSafetensors, loadSafetensors, type Safetensors } from './safetensors.js';
export { saveFile, loadFile } from './node.js';
export { toBlob, fromBlob, download } from './blob.js';
export {
  saveToIndexedDB,
  loadFromIndexedDB,
  deleteFromIndexedDB,
  listIndexedDB,
  type IndexedDBOptions,
} from './indexeddb.js';
