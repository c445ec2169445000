// nb.io: reading and writing weights in the safetensors format.
export { saveSafetensors, loadSafetensors, type Safetensors } from './safetensors.js';
export { saveFile, loadFile } from './node.js';
