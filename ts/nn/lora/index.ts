// `nb.nn.lora`: PEFT-style LoRA. `apply` wraps the target layers in place and freezes the rest,
// `merge`/`unmerge` fold the adapters into the base weights and back, `stateDict` gives the
// adapter tensors under PEFT's file names (`base_model.model.<path>.lora_A.weight`) plus an
// adapter_config.json object, and `load` reads them (creating the adapters if needed).
import { ShapeError, DTypeError, ValueError, fmt } from '../../errors.js';
import { Tensor } from '../../tensor/tensor.js';
import { noGrad } from '../../autograd/node.js';
import { Module } from '../module.js';
import {
  LoraEmbedding,
  LoraLayer,
  LoraLinear,
  LoraMultiheadAttention,
  checkLoraTarget,
  wrapLora,
} from './layers.js';

export { LoraLayer, LoraLinear, LoraEmbedding, LoraMultiheadAttention } from './layers.js';

export type LoraBias = 'none' | 'all' | 'lora_only';

export interface LoraOptions {
  /**
   * Which layers get adapters (PEFT's rule): a list of names, each matching a module path
   * exactly or as a dotted suffix (`'query'` matches `encoder.layer.0.attention.self.query`),
   * or a string taken as a RegExp that must match the whole path.
   */
  targetModules: string[] | string;
  /** Rank (default 8). */
  r?: number;
  /** Scaling numerator: the adapter is multiplied by alpha / r (default 8). */
  alpha?: number;
  /**
   * Ranks other than `r` for some layers (PEFT's `rank_pattern`): a key matches a module path
   * when the path is the key or ends in `.key` (the key read as a RegExp, as PEFT does); the
   * first matching key in insertion order wins.
   */
  rankPattern?: Record<string, number>;
  /** Alphas other than `alpha` for some layers (PEFT's `alpha_pattern`), matched as `rankPattern`. */
  alphaPattern?: Record<string, number>;
  /** Dropout on the adapter's input (default 0; PEFT applies none to embeddings). */
  dropout?: number;
  /** Which biases train (and are saved): none, all of the model's, or those of wrapped layers. */
  biases?: LoraBias;
  /** PEFT's spelling of `biases`. */
  bias?: LoraBias;
  /** Module paths (same matching) that stay fully trainable and are saved (a new head). */
  modulesToSave?: string[] | null;
  /** Scale by alpha / √r (rsLoRA) instead of alpha / r (default false). */
  useRslora?: boolean;
  /** Written to the config's `base_model_name_or_path` (default null). */
  baseModelNameOrPath?: string | null;
  /** Written to the config's `task_type` (`'SEQ_CLS'`, `'CAUSAL_LM'`, …; default null). */
  taskType?: string | null;
}

/** The adapter_config.json PEFT writes for LoRA (snake_case, as in the file). */
export interface LoraConfig {
  peft_type: 'LORA';
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: string[] | string;
  bias: LoraBias;
  modules_to_save: string[] | null;
  fan_in_fan_out: boolean;
  use_rslora: boolean;
  use_dora: boolean;
  init_lora_weights: boolean;
  inference_mode: boolean;
  base_model_name_or_path: string | null;
  task_type: string | null;
  revision: null;
  layers_to_transform: null;
  layers_pattern: null;
  rank_pattern: Record<string, number>;
  alpha_pattern: Record<string, number>;
}

/** PEFT's prefix of every saved key. */
export const PREFIX = 'base_model.model.';

const configs = new WeakMap<Module, LoraConfig>();

/**
 * PEFT's `get_pattern_key`: the first key of `pattern` that matches `path` as
 * `^(.*\.)?(key)$`, or undefined.
 */
export function patternKey(path: string, pattern: Record<string, number>): string | undefined {
  return Object.keys(pattern).find((k) => new RegExp(`^(?:.*\\.)?(?:${k})$`).test(path));
}

function checkPattern(name: string, pattern: unknown, isRank: boolean): Record<string, number> {
  if (pattern === undefined || pattern === null) return {};
  if (typeof pattern !== 'object' || Array.isArray(pattern)) {
    throw new ValueError(`lora.apply: ${name} must be an object of module names to numbers`);
  }
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(pattern as Record<string, unknown>)) {
    try {
      new RegExp(k);
    } catch {
      throw new ValueError(`lora.apply: ${name} key '${k}' is not a valid pattern`);
    }
    const ok = isRank
      ? Number.isInteger(v) && (v as number) > 0
      : typeof v === 'number' && Number.isFinite(v);
    if (k.length === 0 || !ok) {
      throw new ValueError(
        `lora.apply: ${name}['${k}'] must be ${isRank ? 'a positive integer' : 'a finite number'}, got ${String(v)}`,
      );
    }
    out[k] = v as number;
  }
  return out;
}

/** PEFT's `check_target_module_exists`: exact or dotted-suffix match, or a full RegExp match. */
export function matchesTarget(path: string, targets: string[] | string): boolean {
  if (typeof targets === 'string') return new RegExp(`^(?:${targets})$`).test(path);
  return targets.some((t) => path === t || path.endsWith(`.${t}`));
}

/** Every option `apply` reads; anything else is a misspelling (PEFT's LoraConfig raises too). */
const OPTION_NAMES: readonly (keyof LoraOptions)[] = [
  'targetModules',
  'r',
  'alpha',
  'rankPattern',
  'alphaPattern',
  'dropout',
  'biases',
  'bias',
  'modulesToSave',
  'useRslora',
  'baseModelNameOrPath',
  'taskType',
];

function checkOptions(o: LoraOptions): Required<Omit<LoraOptions, 'bias'>> {
  if (o === null || typeof o !== 'object')
    throw new ValueError('lora.apply: options must be an object');
  const unknown = Object.keys(o).filter((k) => !(OPTION_NAMES as string[]).includes(k));
  if (unknown.length) {
    throw new ValueError(
      `lora.apply: unknown option ${unknown.join(', ')} (options: ${OPTION_NAMES.join(', ')})`,
    );
  }
  const r = o.r ?? 8;
  const alpha = o.alpha ?? 8;
  const dropout = o.dropout ?? 0;
  if (o.bias !== undefined && o.biases !== undefined && o.bias !== o.biases) {
    throw new ValueError(`lora.apply: bias '${o.bias}' and biases '${o.biases}' disagree`);
  }
  const biases = o.biases ?? o.bias ?? 'none';
  const t = o.targetModules;
  const validTargets =
    (typeof t === 'string' && t.length > 0) ||
    (Array.isArray(t) && t.length > 0 && t.every((x) => typeof x === 'string' && x.length > 0));
  if (!validTargets) {
    throw new ValueError(
      `lora.apply: targetModules must be a non-empty list of names or a pattern, got ${JSON.stringify(t)}`,
    );
  }
  if (!Number.isInteger(r) || r <= 0)
    throw new ValueError(`lora.apply: r must be a positive integer, got ${r}`);
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) {
    throw new ValueError(`lora.apply: alpha must be a finite number, got ${alpha}`);
  }
  if (!(dropout >= 0 && dropout < 1))
    throw new ValueError(`lora.apply: dropout must be in [0, 1), got ${dropout}`);
  if (!['none', 'all', 'lora_only'].includes(biases)) {
    throw new ValueError(
      `lora.apply: biases must be 'none', 'all' or 'lora_only', got '${biases}'`,
    );
  }
  return {
    targetModules: typeof t === 'string' ? t : [...t],
    r,
    alpha,
    rankPattern: checkPattern('rankPattern', o.rankPattern, true),
    alphaPattern: checkPattern('alphaPattern', o.alphaPattern, false),
    dropout,
    biases,
    modulesToSave: o.modulesToSave ? [...o.modulesToSave] : null,
    useRslora: o.useRslora ?? false,
    baseModelNameOrPath: o.baseModelNameOrPath ?? null,
    taskType: o.taskType ?? null,
  };
}

/** Every LoRA wrapper in `model` with its path. */
export function loraLayers(model: Module): [string, LoraLayer][] {
  return [...model.namedModules()].filter(
    (e): e is [string, LoraLayer] => e[1] instanceof LoraLayer,
  );
}

/** The config `apply` (or `load`) attached to `model`, or null. */
export function config(model: Module): LoraConfig | null {
  const c = configs.get(model);
  return c ? structuredClone(c) : null;
}

/**
 * Wraps every target layer of `model` in place (PEFT's `get_peft_model`), then freezes every
 * parameter except the adapters, the biases `biases` selects and `modulesToSave`. Checks
 * everything first: a bad option, a target that matches nothing or a module type LoRA does not
 * support throws a typed error and leaves the model unchanged. Returns the wrapped paths.
 */
export function apply(model: Module, options: LoraOptions): string[] {
  if (!(model instanceof Module))
    throw new ValueError(`lora.apply: expected a Module, got ${String(model)}`);
  if (configs.has(model) || loraLayers(model).length) {
    throw new ValueError('lora.apply: the model already has LoRA adapters (unload() them first)');
  }
  const o = checkOptions(options);
  const targets = [...model.namedModules()].filter(
    ([p]) => p !== '' && matchesTarget(p, o.targetModules),
  );
  if (targets.length === 0) {
    throw new ValueError(
      `lora.apply: target modules ${JSON.stringify(o.targetModules)} match no module of ${model.constructor.name}`,
    );
  }
  const save = o.modulesToSave ?? [];
  const savePaths = [...model.namedModules()]
    .filter(([p]) => p !== '' && matchesTarget(p, save))
    .map(([p]) => p);
  const missing = save.filter((s) => !savePaths.some((p) => p === s || p.endsWith(`.${s}`)));
  if (missing.length) {
    throw new ValueError(`lora.apply: modulesToSave [${missing.join(', ')}] match no module`);
  }
  targets.forEach(([p, m]) => checkLoraTarget(p, m)); // before any adapter is allocated
  const pick = (p: string, pattern: Record<string, number>, otherwise: number): number => {
    const key = patternKey(p, pattern);
    return key === undefined ? otherwise : pattern[key];
  };
  const rankOf = (p: string): number => pick(p, o.rankPattern, o.r);
  const alphaOf = (p: string): number => pick(p, o.alphaPattern, o.alpha);
  const wrappers = targets.map(
    ([p, m]) => [p, wrapLora(p, m, { ...o, r: rankOf(p), alpha: alphaOf(p) })] as const,
  );
  for (const [p, w] of wrappers) model.setSubmodule(p, w);
  const cfg: LoraConfig = {
    peft_type: 'LORA',
    r: o.r,
    lora_alpha: o.alpha,
    lora_dropout: o.dropout,
    target_modules: o.targetModules,
    bias: o.biases,
    modules_to_save: o.modulesToSave,
    fan_in_fan_out: wrappers.some(([, w]) => w instanceof LoraLinear && w.fanInFanOut),
    use_rslora: o.useRslora,
    use_dora: false,
    init_lora_weights: true,
    inference_mode: false,
    base_model_name_or_path: o.baseModelNameOrPath,
    task_type: o.taskType,
    revision: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: { ...o.rankPattern },
    alpha_pattern: { ...o.alphaPattern },
  };
  configs.set(model, cfg);
  markTrainable(model, cfg, savePaths);
  return wrappers.map(([p]) => p);
}

/** PEFT's `_mark_only_adapters_as_trainable`, then the biases and modules to save. */
function markTrainable(model: Module, cfg: LoraConfig, savePaths: string[]): void {
  const adapter = new Set(adapterEntries(model, 'none').map(([, t]) => t));
  for (const [name, p] of model.namedParameters()) {
    p.requiresGrad = adapter.has(p) || (cfg.bias === 'all' && name.includes('bias'));
  }
  if (cfg.bias === 'lora_only') {
    for (const [, l] of loraLayers(model)) {
      const b = (l as unknown as { bias?: Tensor | null }).bias;
      if (b) b.requiresGrad = true;
    }
  }
  for (const p of savePaths) model.getSubmodule(p).requiresGrad_(true);
}

/** The adapter tensors by their names inside the model (no PEFT prefix). */
function adapterEntries(model: Module, bias: LoraBias): [string, Tensor][] {
  const out: [string, Tensor][] = [];
  for (const [path, l] of loraLayers(model)) {
    if (l instanceof LoraLinear || l instanceof LoraMultiheadAttention) {
      out.push(
        [`${path}.lora_A.weight`, l.lora_A.weight],
        [`${path}.lora_B.weight`, l.lora_B.weight],
      );
    } else if (l instanceof LoraEmbedding) {
      out.push([`${path}.lora_embedding_A`, l.lora_embedding_A]);
      out.push([`${path}.lora_embedding_B`, l.lora_embedding_B]);
    }
    const b = (l as unknown as { bias?: Tensor | null }).bias;
    if (bias === 'lora_only' && b) out.push([`${path}.bias`, b]);
  }
  if (bias === 'all') {
    for (const [name, t] of Object.entries(model.stateDict())) {
      if (name.includes('bias')) out.push([name, t]);
    }
  }
  return out;
}

/** Everything `stateDict`/`load` move: adapters, selected biases, modules to save. */
function savedEntries(model: Module, cfg: LoraConfig): [string, Tensor][] {
  const out = adapterEntries(model, cfg.bias);
  const seen = new Set(out.map(([n]) => n));
  for (const [p, m] of model.namedModules()) {
    if (p === '' || !cfg.modules_to_save || !matchesTarget(p, cfg.modules_to_save)) continue;
    // The module's own tensors, not stateDict()'s views: a view made here would stay live.
    for (const [k, t] of [...m.namedParameters('', false), ...m.namedBuffers(true)]) {
      const name = `${p}.${k}`;
      if (!seen.has(name)) out.push([name, t]);
      seen.add(name);
    }
  }
  return out;
}

function configOf(op: string, model: Module): LoraConfig {
  const c = configs.get(model);
  if (!c)
    throw new ValueError(`lora.${op}: the model has no LoRA adapters (call lora.apply first)`);
  return c;
}

/**
 * The adapter as PEFT saves it: `tensors` under `base_model.model.<path>.lora_A.weight`,
 * `…lora_B.weight` (embeddings: `…lora_embedding_A`/`_B`), plus the biases and modules to save
 * the config selects, and `config`, the adapter_config.json object. The tensors share the
 * model's data (save them with `io.saveSafetensors`). Only valid while not merged.
 */
export function stateDict(model: Module): { tensors: Record<string, Tensor>; config: LoraConfig } {
  const cfg = configOf('stateDict', model);
  if (loraLayers(model).some(([, l]) => l.merged)) {
    throw new ValueError(
      'lora.stateDict: the adapters are merged into the base weights; unmerge() first',
    );
  }
  const tensors: Record<string, Tensor> = {};
  for (const [name, t] of savedEntries(model, cfg)) tensors[PREFIX + name] = t.detach();
  return { tensors, config: structuredClone(cfg) };
}

/** `LoraOptions` from an adapter_config.json object. */
export function optionsFromConfig(c: Partial<LoraConfig>): LoraOptions {
  if (c === null || typeof c !== 'object')
    throw new ValueError('lora.load: config must be an object');
  if (c.peft_type !== undefined && c.peft_type !== 'LORA') {
    throw new ValueError(`lora.load: peft_type is '${String(c.peft_type)}', expected 'LORA'`);
  }
  if (c.use_dora) throw new ValueError('lora.load: DoRA adapters (use_dora) are not supported');
  return {
    targetModules: c.target_modules as string[] | string,
    r: c.r,
    alpha: c.lora_alpha,
    rankPattern: c.rank_pattern ?? {},
    alphaPattern: c.alpha_pattern ?? {},
    dropout: c.lora_dropout,
    biases: c.bias,
    modulesToSave: c.modules_to_save ?? null,
    useRslora: c.use_rslora ?? false,
    baseModelNameOrPath: c.base_model_name_or_path ?? null,
    taskType: c.task_type ?? null,
  };
}

/**
 * Loads an adapter saved by `stateDict` (or by PEFT): creates the adapters from `config` when
 * the model has none, then copies every tensor. Strict: a missing or unexpected key, a shape
 * or dtype mismatch, or a config that disagrees with the attached adapters throws, and the
 * model is left exactly as it was (adapters created here are removed again).
 */
export function load(
  model: Module,
  tensors: Record<string, Tensor>,
  cfg?: Partial<LoraConfig>,
): void {
  if (!(model instanceof Module))
    throw new ValueError(`lora.load: expected a Module, got ${String(model)}`);
  if (tensors === null || typeof tensors !== 'object')
    throw new ValueError('lora.load: tensors must be an object');
  const existing = configs.get(model);
  let created = false;
  const flags = model.namedParameters().map(([, p]) => [p, p.requiresGrad] as const);
  if (!existing) {
    if (!cfg)
      throw new ValueError('lora.load: the model has no LoRA adapters; pass the adapter config');
    apply(model, optionsFromConfig(cfg));
    created = true;
  } else if (cfg) {
    for (const k of ['r', 'lora_alpha', 'bias', 'use_rslora'] as const) {
      if (cfg[k] !== undefined && cfg[k] !== existing[k]) {
        throw new ValueError(
          `lora.load: config ${k} is ${String(cfg[k])} but the model's adapters have ${String(existing[k])}`,
        );
      }
    }
    for (const k of ['rank_pattern', 'alpha_pattern'] as const) {
      const given = JSON.stringify(cfg[k]);
      if (cfg[k] !== undefined && given !== JSON.stringify(existing[k])) {
        throw new ValueError(
          `lora.load: config ${k} is ${given} but the model's adapters have ${JSON.stringify(existing[k])}`,
        );
      }
    }
  }
  try {
    const own = new Map(savedEntries(model, configs.get(model)!).map(([n, t]) => [PREFIX + n, t]));
    const missing = [...own.keys()].filter(
      (k) => !Object.prototype.hasOwnProperty.call(tensors, k),
    );
    const unexpected = Object.keys(tensors).filter((k) => !own.has(k));
    if (missing.length || unexpected.length) {
      throw new ValueError(
        `lora.load: missing keys [${missing.join(', ')}], unexpected keys [${unexpected.join(', ')}]`,
      );
    }
    for (const [k, target] of own) {
      const src = tensors[k];
      if (!(src instanceof Tensor)) throw new ValueError(`lora.load: ${k} is not a Tensor`);
      if (
        src.shape.length !== target.shape.length ||
        src.shape.some((s, i) => s !== target.shape[i])
      ) {
        throw new ShapeError(
          `lora.load: ${k} has shape ${fmt(src.shape)} but the model's is ${fmt(target.shape)}`,
        );
      }
      if (src.dtype !== target.dtype)
        throw new DTypeError(`lora.load: ${k} is ${src.dtype}, expected ${target.dtype}`);
      src.storage(); // a disposed source fails before anything is written
    }
    if (loraLayers(model).some(([, l]) => l.merged)) {
      throw new ValueError(
        'lora.load: the adapters are merged into the base weights; unmerge() first',
      );
    }
    noGrad(() => {
      for (const [k, target] of own) target.copy_(tensors[k]);
    });
  } catch (e) {
    if (created) unload(model);
    for (const [p, f] of flags) p.requiresGrad = f;
    throw e;
  }
}

/** Folds every adapter into its base weight (PEFT's `merge_adapter`); forward then skips them. */
export function merge(model: Module): void {
  configOf('merge', model);
  for (const [, l] of loraLayers(model)) l.merge();
}

/** Subtracts every merged adapter from its base weight again. */
export function unmerge(model: Module): void {
  configOf('unmerge', model);
  for (const [, l] of loraLayers(model)) l.unmerge();
}

/**
 * Puts the base layers back in place of the wrappers, dropping the adapters (disposed) without
 * merging them (PEFT's `unload`); the base parameters keep their current requiresGrad.
 */
export function unload(model: Module): void {
  configOf('unload', model);
  for (const [p, l] of loraLayers(model).reverse()) {
    if (l.merged) l.unmerge();
    model.setSubmodule(p, l.detachBase());
    for (const t of l.parameters()) {
      if (!l.base_layer.parameters().includes(t)) {
        t.grad?.dispose();
        t.dispose();
      }
    }
  }
  configs.delete(model);
}

/** Merges every adapter into its base weight and removes the wrappers (PEFT's `merge_and_unload`). */
export function mergeAndUnload(model: Module): void {
  merge(model);
  for (const [, l] of loraLayers(model)) l.merged = false; // folded for good: unload must not unmerge
  unload(model);
}
