// File helpers for Node. Node built-ins are imported on demand so browser bundles never
// load them.
import type { Tensor } from '../tensor/tensor.js';
import { loadSafetensors, saveSafetensors, type Safetensors } from './safetensors.js';

/** Writes `stateDict` to `path` as a .safetensors file. */
export async function saveFile(
  path: string,
  stateDict: Record<string, Tensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const { writeFile } = await import('node:fs/promises');
  await writeFile(path, saveSafetensors(stateDict, metadata));
}

/** Reads and validates a .safetensors file (see `loadSafetensors`). */
export async function loadFile(path: string): Promise<Safetensors> {
  const { readFile } = await import('node:fs/promises');
  return loadSafetensors(await readFile(path));
}
