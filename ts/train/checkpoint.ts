// Checkpoints: model, optimizer, scheduler, epoch and the random generator's position in one
// safetensors file, so a resumed run continues exactly as an uninterrupted one would.
// Tensors go in the tensor section (`model.*`, `optimizer.<param>.<buffer>`); everything else
// is JSON in the `nabla.checkpoint` metadata entry.
import { ValueError } from '../errors.js';
import type { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { getRngState, setRngState } from '../ops/random.js';
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
  const tensors: Record<string, Tensor> = {};
  const model = parts.model.stateDict();
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

/**
 * Restores a checkpoint into the given parts and the global RNG. Everything is validated by
 * the parts' own `loadStateDict` before it writes, so a mismatched checkpoint throws and
 * leaves the model as it was.
 */
export function loadCheckpoint(bytes: Uint8Array, parts: CheckpointParts): CheckpointInfo {
  if (!(bytes instanceof Uint8Array))
    throw new ValueError(`loadCheckpoint: expected a Uint8Array, got ${describe(bytes)}`);
  // The metadata first: a file that is no checkpoint fails before any tensor is made.
  const raw = parseHeader(bytes, 'loadCheckpoint').metadata[KEY];
  if (raw === undefined)
    throw new ValueError(`loadCheckpoint: no '${KEY}' metadata: not a nabla checkpoint`);
  const tensors = readTensors(bytes, 'loadCheckpoint');
  try {
    const meta = JSON.parse(raw) as {
      epoch: number;
      extra: unknown;
      rng: { seed: number; counter: number };
      optimizer: {
        state: Record<string, Record<string, number | string>>;
        paramGroups: OptimizerStateDict['paramGroups'];
      } | null;
      scheduler: SchedulerStateDict | null;
    };
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
    const before = parts.model.stateDict();
    const snapshot = Object.fromEntries(Object.entries(before).map(([k, t]) => [k, t.clone()]));
    Object.values(before).forEach((t) => t.dispose());
    // The scheduler is loaded after the optimizer, so keep the optimizer's state to undo too.
    const optBefore = optSd ? parts.optimizer!.stateDict() : null;
    let optLoaded = false;
    try {
      parts.model.loadStateDict(model);
      if (optSd) {
        parts.optimizer!.loadStateDict(optSd);
        optLoaded = true;
      }
      if (meta.scheduler) parts.scheduler?.loadStateDict(meta.scheduler);
    } catch (e) {
      // the optimizer or scheduler refused: undo the model (and the optimizer)
      parts.model.loadStateDict(snapshot);
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
