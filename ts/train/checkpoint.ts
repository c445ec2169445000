// Checkpoints: model, optimizer, scheduler, epoch and the random generator's position in one
// safetensors file, so a resumed run continues exactly as an uninterrupted one would.
// Tensors go in the tensor section (`model.*`, `optimizer.<param>.<buffer>`); everything else
// is JSON in the `nabla.checkpoint` metadata entry.
import { ValueError } from '../errors.js';
import type { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { checkRngState, getRngState, setRngState, type RngState } from '../ops/random.js';
import { describe, readTensors, saveSafetensors } from '../io/safetensors.js';
import { parseHeader } from '../io/header.js';
import type { OptimizerStateDict } from '../optim/optimizer.js';
import type { SchedulerStateDict } from '../optim/schedulers.js';

interface Stateful<S> {
  stateDict(): S;
  loadStateDict(sd: S): void;
}

export interface CheckpointParts {
  model: Module;
  optimizer?: Stateful<OptimizerStateDict>;
  scheduler?: Stateful<SchedulerStateDict>;
}

export interface CheckpointInfo {
  /** Epochs completed when the checkpoint was written. */
  epoch: number;
  /** Anything JSON-serialisable the caller stored. */
  extra?: unknown;
}

const KEY = 'nabla.checkpoint';

/** Serialises the parts, the epoch and the RNG position as safetensors bytes. */
export function saveCheckpoint(parts: CheckpointParts, info: CheckpointInfo): Uint8Array {
  // what loadCheckpoint accepts, so every saved checkpoint loads
  if (!Number.isSafeInteger(info?.epoch) || info.epoch < 0) {
    throw new ValueError(
      `saveCheckpoint: epoch must be a non-negative integer, got ${JSON.stringify(info?.epoch)}`,
    );
  }
  const tensors: Record<string, Tensor> = {};
  const model = parts.model.stateDict({ adapters: true });
  for (const [k, t] of Object.entries(model)) tensors[`model.${k}`] = t;
  const opt = parts.optimizer?.stateDict();
  const optState: Record<string, Record<string, number | string>> = {};
  for (const [idx, entry] of Object.entries(opt?.state ?? {})) {
    optState[idx] = {};
    for (const [name, v] of Object.entries(entry)) {
      if (v instanceof Tensor) {
        tensors[`optimizer.${idx}.${name}`] = v;
        optState[idx][name] = 'tensor';
      } else optState[idx][name] = v;
    }
  }
  const meta = {
    epoch: info.epoch,
    extra: info.extra ?? null,
    rng: getRngState(),
    optimizer: opt ? { state: optState, paramGroups: opt.paramGroups } : null,
    scheduler: parts.scheduler?.stateDict() ?? null,
  };
  try {
    return saveSafetensors(tensors, { [KEY]: JSON.stringify(meta) });
  } finally {
    Object.values(tensors).forEach((t) => t.dispose());
  }
}

/** The `nabla.checkpoint` metadata, checked field by field before anything is applied. */
interface Meta {
  epoch: number;
  extra: unknown;
  rng: RngState;
  optimizer: {
    state: Record<string, Record<string, number | string>>;
    paramGroups: OptimizerStateDict['paramGroups'];
  } | null;
  scheduler: SchedulerStateDict | null;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

function fail(msg: string): never {
  throw new ValueError(`loadCheckpoint: ${msg}`);
}

function readMeta(raw: string | undefined): Meta {
  if (raw === undefined) fail(`no '${KEY}' metadata: not a nabla checkpoint`);
  let meta: unknown;
  try {
    meta = JSON.parse(raw);
  } catch (e) {
    fail(`the '${KEY}' metadata is not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(meta)) fail(`the '${KEY}' metadata must be a JSON object`);
  const { epoch, optimizer, scheduler } = meta;
  if (!Number.isSafeInteger(epoch) || (epoch as number) < 0) {
    fail(`epoch must be a non-negative integer, got ${JSON.stringify(epoch)}`);
  }
  const rng = checkRngState('loadCheckpoint', meta.rng);
  if (optimizer !== null && optimizer !== undefined) {
    if (!isObject(optimizer) || !isObject(optimizer.state) || !Array.isArray(optimizer.paramGroups))
      fail('optimizer must be { state, paramGroups } or null');
    for (const [idx, entry] of Object.entries(optimizer.state)) {
      if (!/^(0|[1-9][0-9]*)$/.test(idx))
        fail(`optimizer state key ${JSON.stringify(idx)} is not an index`);
      if (!isObject(entry)) fail(`optimizer state ${idx} must be an object`);
      for (const [name, v] of Object.entries(entry)) {
        if (v !== 'tensor' && typeof v !== 'number')
          fail(
            `optimizer state ${idx}.${name} must be a number or "tensor", got ${JSON.stringify(v)}`,
          );
      }
    }
  }
  if (scheduler !== null && scheduler !== undefined && !isObject(scheduler))
    fail('scheduler must be an object or null');
  return {
    epoch: epoch as number,
    extra: meta.extra ?? null,
    rng,
    optimizer: (optimizer ?? null) as Meta['optimizer'],
    scheduler: (scheduler ?? null) as Meta['scheduler'],
  };
}

/**
 * Restores a checkpoint into the given parts and the global RNG, all or nothing: the metadata
 * (epoch, RNG position, optimizer and scheduler layout) is validated before anything is
 * written, each part's own `loadStateDict` validates before it writes, and a part that still
 * refuses undoes the parts loaded before it. The RNG moves last, when nothing can fail.
 */
export function loadCheckpoint(bytes: Uint8Array, parts: CheckpointParts): CheckpointInfo {
  if (!(bytes instanceof Uint8Array))
    throw new ValueError(`loadCheckpoint: expected a Uint8Array, got ${describe(bytes)}`);
  // The metadata first, checked field by field: a file that is no valid checkpoint fails
  // before any tensor is made.
  const meta = readMeta(parseHeader(bytes, 'loadCheckpoint').metadata[KEY]);
  const tensors = readTensors(bytes, 'loadCheckpoint');
  try {
    const model: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(tensors)) if (k.startsWith('model.')) model[k.slice(6)] = t;
    if (parts.optimizer && !meta.optimizer)
      throw new ValueError('loadCheckpoint: the checkpoint has no optimizer state');
    if (parts.scheduler && !meta.scheduler)
      throw new ValueError('loadCheckpoint: the checkpoint has no scheduler state');
    let optSd: OptimizerStateDict | null = null;
    if (parts.optimizer && meta.optimizer) {
      const state: OptimizerStateDict['state'] = {};
      for (const [idx, entry] of Object.entries(meta.optimizer.state)) {
        state[Number(idx)] = {};
        for (const [name, v] of Object.entries(entry)) {
          const t = tensors[`optimizer.${idx}.${name}`];
          if (v === 'tensor' && !t)
            throw new ValueError(`loadCheckpoint: tensor optimizer.${idx}.${name} is missing`);
          state[Number(idx)][name] = v === 'tensor' ? t : (v as number);
        }
      }
      optSd = { state, paramGroups: meta.optimizer.paramGroups };
    }
    // Validate the model first (it throws before writing), then the rest.
    const before = parts.model.stateDict({ adapters: true });
    const snapshot = Object.fromEntries(Object.entries(before).map(([k, t]) => [k, t.clone()]));
    Object.values(before).forEach((t) => t.dispose());
    // The scheduler is loaded after the optimizer, so keep the optimizer's state to undo too.
    const optBefore = optSd ? parts.optimizer!.stateDict() : null;
    let optLoaded = false;
    try {
      parts.model.loadStateDict(model, { adapters: true });
      if (optSd) {
        parts.optimizer!.loadStateDict(optSd);
        optLoaded = true;
      }
      if (meta.scheduler) parts.scheduler?.loadStateDict(meta.scheduler);
    } catch (e) {
      // the optimizer or scheduler refused: undo the model (and the optimizer)
      parts.model.loadStateDict(snapshot, { adapters: true });
      if (optLoaded) parts.optimizer!.loadStateDict(optBefore!);
      throw e;
    } finally {
      Object.values(snapshot).forEach((t) => t.dispose());
      for (const entry of Object.values(optBefore?.state ?? {}))
        for (const v of Object.values(entry)) if (v instanceof Tensor) v.dispose();
    }
    setRngState(meta.rng);
    return { epoch: meta.epoch, extra: meta.extra ?? undefined };
  } finally {
    Object.values(tensors).forEach((t) => t.dispose());
  }
}
