// File helpers for Node. Node built-ins are imported on demand so browser bundles never
// load them.
import { NablaError, ValueError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { headerLength, parseHeader } from './header.js';
import { describe, readTensors, saveSafetensors } from './safetensors.js';

function checkPath(op: string, path: unknown): asserts path is string {
  if (typeof path !== 'string' || path === '') {
    throw new ValueError(`${op}: the path must be a non-empty string, got ${describe(path)}`);
  }
}

/** A Node file-system error as a nabla error that names the path. */
function fsError(op: string, verb: string, path: string, e: unknown): NablaError {
  // e.g. the browser build's stand-in for node:fs, which explains itself
  if (e instanceof NablaError) return e;
  const code = (e as { code?: string })?.code;
  if (code === 'ENOENT') {
    return new ValueError(
      verb === 'read'
        ? `${op}: no such file: ${path}`
        : `${op}: cannot ${verb} ${path}: its directory does not exist`,
    );
  }
  if (code === 'EISDIR') return new ValueError(`${op}: ${path} is a directory, not a file`);
  return new ValueError(`${op}: cannot ${verb} ${path}: ${(e as Error)?.message ?? String(e)}`);
}

/** Writes `stateDict` to `path` as a .safetensors file. */
export async function saveFile(
  path: string,
  stateDict: Record<string, Tensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const { writeFile } = await import('node:fs/promises');
  checkPath('saveFile', path);
  const bytes = saveSafetensors(stateDict, metadata);
  try {
    await writeFile(path, bytes);
  } catch (e) {
    throw fsError('saveFile', 'write', path, e);
  }
}

/**
 * Reads and validates a .safetensors file into a state dict (see `loadSafetensors`), like
 * `safetensors.torch.load_file`. A missing or non-safetensors file is a ValueError naming it.
 */
export async function loadFile(path: string): Promise<Record<string, Tensor>> {
  const { readFile } = await import('node:fs/promises');
  checkPath('loadFile', path);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw fsError('loadFile', 'read', path, e);
  }
  return readTensors(bytes, `loadFile: ${path}`);
}

/**
 * The `__metadata__` strings of a .safetensors file ({} when it has none). Only the header is
 * read, so this is cheap on large files; it is validated as `loadFile` would.
 */
export async function fileMetadata(path: string): Promise<Record<string, string>> {
  const { open } = await import('node:fs/promises');
  checkPath('fileMetadata', path);
  const context = `fileMetadata: ${path}`;
  let file: Awaited<ReturnType<typeof open>>;
  try {
    file = await open(path, 'r');
  } catch (e) {
    throw fsError('fileMetadata', 'read', path, e);
  }
  try {
    const stat = await file.stat();
    if (stat.isDirectory()) throw fsError('fileMetadata', 'read', path, { code: 'EISDIR' });
    const size = stat.size;
    const head = new Uint8Array(Math.min(size, 8));
    await file.read(head, 0, head.length, 0);
    const n = headerLength(head, context, size);
    const bytes = new Uint8Array(8 + n);
    bytes.set(head);
    await file.read(bytes, 8, n, 8);
    return parseHeader(bytes, context, size).metadata;
  } catch (e) {
    throw fsError('fileMetadata', 'read', path, e);
  } finally {
    await file.close();
  }
}
