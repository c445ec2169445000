// Weights kept in the browser's IndexedDB as safetensors bytes, one record per key, in the
// object store "weights" of a database ("nabla" unless told). Works in pages and workers.
import { ValueError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { parseHeader } from './header.js';
import { readTensors, saveSafetensors } from './safetensors.js';

export interface IndexedDBOptions {
  /** Database name (default "nabla"). */
  database?: string;
}

const STORE = 'weights';

function checkKey(op: string, key: unknown): void {
  if (typeof key !== 'string' || key === '') {
    throw new ValueError(`${op}: the key must be a non-empty string, got ${JSON.stringify(key)}`);
  }
}

function open(op: string, name: string): Promise<IDBDatabase> {
  const idb = (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (!idb) {
    return Promise.reject(
      new ValueError(
        `${op}: IndexedDB is not available here (it is in browsers and their workers)`,
      ),
    );
  }
  return new Promise((resolve, reject) => {
    const req = idb.open(name, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () =>
      reject(
        new ValueError(`${op}: cannot open IndexedDB database "${name}": ${req.error?.message}`),
      );
    req.onblocked = () =>
      reject(new ValueError(`${op}: IndexedDB database "${name}" is blocked by another tab`));
  });
}

/** Runs `body` in one transaction; resolves with `result()` once the transaction commits. */
async function transact<T>(
  op: string,
  opts: IndexedDBOptions,
  mode: IDBTransactionMode,
  body: (store: IDBObjectStore) => () => T,
): Promise<T> {
  const name = opts.database ?? 'nabla';
  const db = await open(op, name);
  try {
    return await new Promise<T>((resolve, reject) => {
      const fail = (e: unknown): void =>
        reject(new ValueError(`${op}: IndexedDB database "${name}": ${(e as Error)?.message}`));
      let tx: IDBTransaction;
      let result: () => T;
      try {
        tx = db.transaction(STORE, mode);
        result = body(tx.objectStore(STORE));
      } catch (e) {
        fail(e); // e.g. a database of that name made by someone else, without our store
        return;
      }
      tx.oncomplete = () => resolve(result());
      tx.onerror = () => fail(tx.error);
      tx.onabort = () => fail(tx.error ?? new Error('the transaction was aborted'));
    });
  } finally {
    db.close();
  }
}

/** Stores `stateDict` under `key` as safetensors bytes, replacing what was there. */
export async function saveToIndexedDB(
  key: string,
  stateDict: Record<string, Tensor>,
  metadata?: Record<string, string>,
  opts: IndexedDBOptions = {},
): Promise<void> {
  checkKey('saveToIndexedDB', key);
  const bytes = saveSafetensors(stateDict, metadata);
  await transact('saveToIndexedDB', opts, 'readwrite', (store) => {
    store.put(bytes.buffer, key);
    return () => undefined;
  });
}

/** The bytes saved under `key`; a missing key is a ValueError listing the saved ones. */
async function loadBytes(op: string, key: string, opts: IndexedDBOptions): Promise<Uint8Array> {
  checkKey(op, key);
  const value = await transact(op, opts, 'readonly', (store) => {
    const req = store.get(key);
    return () => req.result as unknown;
  });
  if (!(value instanceof ArrayBuffer)) {
    const saved = await listIndexedDB(opts);
    throw new ValueError(
      `${op}: nothing saved under ${JSON.stringify(key)} in database "${opts.database ?? 'nabla'}" (saved: ${saved.length ? saved.map((k) => JSON.stringify(k)).join(', ') : 'none'})`,
    );
  }
  return new Uint8Array(value);
}

/** Loads the weights saved under `key` as a state dict (see `loadSafetensors`). */
export async function loadFromIndexedDB(
  key: string,
  opts: IndexedDBOptions = {},
): Promise<Record<string, Tensor>> {
  const bytes = await loadBytes('loadFromIndexedDB', key, opts);
  return readTensors(bytes, `loadFromIndexedDB: ${JSON.stringify(key)}`);
}

/** The `__metadata__` strings of the weights saved under `key`. */
export async function indexedDBMetadata(
  key: string,
  opts: IndexedDBOptions = {},
): Promise<Record<string, string>> {
  const bytes = await loadBytes('indexedDBMetadata', key, opts);
  return parseHeader(bytes, `indexedDBMetadata: ${JSON.stringify(key)}`).metadata;
}

/** Deletes the weights saved under `key`; true if there were any. */
export async function deleteFromIndexedDB(
  key: string,
  opts: IndexedDBOptions = {},
): Promise<boolean> {
  checkKey('deleteFromIndexedDB', key);
  return transact('deleteFromIndexedDB', opts, 'readwrite', (store) => {
    const count = store.count(key);
    store.delete(key);
    return () => count.result > 0;
  });
}

/** The keys that hold saved weights. */
export async function listIndexedDB(opts: IndexedDBOptions = {}): Promise<string[]> {
  return transact('listIndexedDB', opts, 'readonly', (store) => {
    const req = store.getAllKeys();
    return () => req.result.map(String);
  });
}
