// Loading Hugging Face checkpoints as they are, shared by the HF-named models (GPT-2, BERT).
// HF files come in two layouts: a base model's keys (`wte.weight`, `embeddings.…`) and a head
// model's, where the base sits under a prefix (`transformer.`, `bert.`) beside the head's own
// keys (`lm_head.weight`, `cls.…`). `hfStateDict` maps either layout onto a model of either
// kind and drops the buffers HF files may carry; `loadHuggingFace` then loads strictly.
import type { Tensor } from '../tensor/tensor.js';
import { loadSafetensors } from '../io/safetensors.js';
import type { Module } from './module.js';

export interface HfLoadSpec {
  /** The base model's field in the head models ('transformer', 'bert'). */
  basePrefix: string;
  /** Keys of buffers HF files may hold that are not the model's weights: dropped. */
  ignore?: readonly RegExp[];
  /**
   * When the file holds none of the model's head keys (a base-model file, or another head's
   * file), keep the head's initialisation and drop the file's other head keys, as HF's
   * `from_pretrained` does for a new task head (default false: strict).
   */
  newHeadAllowed?: boolean;
  /** Model keys a file may lack (BERT's pooler in an MLM file): kept at their initialisation. */
  optional?: RegExp;
}

export interface HfLoadResult {
  /** Model keys the file did not hold, left at their initialisation (a new head). */
  newlyInitialized: string[];
  /** File keys outside the base that were dropped (another head's, or HF's buffers). */
  dropped: string[];
}

/**
 * `dict` renamed into `model`'s key space: prefix added (base file into a head model) or
 * stripped (head file into a base model, whose head keys are dropped), ignored buffers gone.
 * With `newHeadAllowed` and no head key in the file, the head's keys are filled with the
 * model's own tensors so a strict load keeps them.
 */
export function hfStateDict(
  model: Module,
  dict: Record<string, Tensor>,
  spec: HfLoadSpec,
): { state: Record<string, Tensor> } & HfLoadResult {
  const pre = `${spec.basePrefix}.`;
  // The module's own tensors by state-dict name (tied ones under each name, the same object).
  const own = new Map<string, Tensor>([
    ...model.namedParameters('', false),
    ...model.namedBuffers(true),
  ]);
  const ownKeys = [...own.keys()];
  const modelIsHead = ownKeys.some((k) => k.startsWith(pre));
  const fileIsHead = Object.keys(dict).some((k) => k.startsWith(pre));
  const state: Record<string, Tensor> = {};
  const dropped: string[] = [];
  for (const [k, t] of Object.entries(dict)) {
    if (spec.ignore?.some((re) => re.test(k))) {
      dropped.push(k);
      continue;
    }
    let key = k;
    if (modelIsHead && !fileIsHead && !own.has(k)) key = pre + k;
    else if (!modelIsHead && fileIsHead) {
      if (!k.startsWith(pre)) {
        dropped.push(k);
        continue;
      }
      key = k.slice(pre.length);
    }
    state[key] = t;
  }
  const newlyInitialized: string[] = [];
  const keepOwn = (k: string): void => {
    state[k] = own.get(k)!;
    newlyInitialized.push(k);
  };
  // A head key tied to a base key (a decoder tied to the word embeddings) loads through its
  // alias, so it is neither head evidence nor missing.
  const tied = (k: string): boolean =>
    ownKeys.some((j) => j !== k && j.startsWith(pre) && own.get(j) === own.get(k));
  if (spec.newHeadAllowed && modelIsHead) {
    const head = ownKeys.filter((k) => !k.startsWith(pre) && !tied(k));
    if (!head.some((k) => k in state)) {
      for (const k of Object.keys(state)) {
        if (!k.startsWith(pre)) {
          dropped.push(k);
          delete state[k];
        }
      }
      head.forEach(keepOwn);
    }
  }
  if (spec.optional) {
    // All or nothing: a file holding some of them must hold all (strict load below).
    const opt = ownKeys.filter((k) => spec.optional!.test(k) && !tied(k));
    if (!opt.some((k) => k in state)) opt.forEach(keepOwn);
  }
  return { state, newlyInitialized, dropped };
}

/** Loads `dict` (either HF layout) into `model` strictly after `hfStateDict`'s mapping. */
export function loadHuggingFace(
  model: Module,
  dict: Record<string, Tensor>,
  spec: HfLoadSpec,
): HfLoadResult {
  const { state, newlyInitialized, dropped } = hfStateDict(model, dict, spec);
  model.loadStateDict(state, { strict: true });
  return { newlyInitialized, dropped };
}

/** `model` with weights from HF safetensors bytes; a failed load disposes it and rethrows. */
export function fromHfSafetensors<
  M extends Module & { loadHuggingFace(d: Record<string, Tensor>): unknown },
>(model: M, bytes: Uint8Array | ArrayBuffer): M {
  const dict = loadSafetensors(bytes);
  try {
    model.loadHuggingFace(dict);
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    for (const t of Object.values(dict)) t.dispose();
  }
  return model;
}
