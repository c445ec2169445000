// Bottleneck adapters (Houlsby et al. 2019): `x + up(act(down(x)))`, inserted after a
// sublayer by a forward hook on it, so every call of that sublayer (inside any container)
// passes through its adapter. The adapter lives as the field `adapter` of the sublayer (so
// `parameters()` and optimizers see it); its parameters are marked as adapter parameters, so
// the model's `stateDict()` keeps the base names.
import { ValueError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { Module, markAdapter } from './module.js';
import { Linear } from './layers.js';
import { ModuleDict } from './containers.js';
import { Conv1D } from './gpt2/model.js';
import * as init from './init.js';
import type { RemovableHandle } from './hooks.js';

export type AdapterActivation = 'relu' | 'gelu' | 'gelu_new' | 'tanh' | 'silu' | 'swish';

export interface BottleneckOptions {
  /** dim / reductionFactor units in the bottleneck (default 16, as AdapterHub's Houlsby). */
  reductionFactor?: number;
  /** The bottleneck width (instead of reductionFactor). */
  bottleneckDim?: number;
  /** The nonlinearity between the projections (default 'relu'). */
  activation?: AdapterActivation;
}

const ACTIVATIONS: Record<AdapterActivation, (x: Tensor) => Tensor> = {
  relu: (x) => x.relu(),
  gelu: (x) => x.gelu(),
  gelu_new: (x) => x.gelu({ approximate: 'tanh' }),
  tanh: (x) => x.tanh(),
  silu: (x) => x.silu(),
  swish: (x) => x.silu(),
};

/**
 * Down-projection, nonlinearity, up-projection, plus the residual. The down-projection has
 * Linear's default init; the up-projection starts at zero, so a new adapter is the identity.
 */
export class Bottleneck extends Module {
  adapter_down: Linear;
  adapter_up: Linear;
  readonly activation: AdapterActivation;

  constructor(
    readonly dim: number,
    opts: BottleneckOptions = {},
  ) {
    super();
    if (!Number.isInteger(dim) || dim <= 0) {
      throw new ValueError(`Bottleneck: dim must be a positive integer, got ${dim}`);
    }
    if (opts.bottleneckDim !== undefined && opts.reductionFactor !== undefined) {
      throw new ValueError('Bottleneck: give reductionFactor or bottleneckDim, not both');
    }
    const rf = opts.reductionFactor ?? 16;
    if (!(rf > 0)) throw new ValueError(`Bottleneck: reductionFactor must be > 0, got ${rf}`);
    const hidden = opts.bottleneckDim ?? Math.max(1, Math.floor(dim / rf));
    if (!Number.isInteger(hidden) || hidden <= 0) {
      throw new ValueError(`Bottleneck: bottleneckDim must be a positive integer, got ${hidden}`);
    }
    this.activation = opts.activation ?? 'relu';
    if (!(this.activation in ACTIVATIONS)) {
      throw new ValueError(
        `Bottleneck: activation must be one of ${Object.keys(ACTIVATIONS).join(', ')}, got '${this.activation}'`,
      );
    }
    this.adapter_down = new Linear(dim, hidden);
    this.adapter_up = new Linear(hidden, dim);
    init.zeros_(this.adapter_up.weight);
    init.zeros_(this.adapter_up.bias!);
  }

  forward(x: Tensor): Tensor {
    const h = ACTIVATIONS[this.activation](this.adapter_down.forward(x));
    return x.add(this.adapter_up.forward(h));
  }

  override extraRepr(): string {
    return `dim=${this.dim}, bottleneck_dim=${this.adapter_down.outFeatures}, activation=${this.activation}`;
  }
}

export interface InsertOptions extends BottleneckOptions {
  /**
   * Sublayers whose output gets an adapter, matched like LoRA targets (exact path or dotted
   * suffix): e.g. `['self_attn', 'linear2']` for TransformerEncoderLayer, `['attn', 'mlp']`
   * for GPT-2 blocks, `['attention.output.dense', 'output.dense']` for BERT.
   */
  after: string[];
  /** The feature width; by default read from the sublayer (Linear, Conv1D, attention, GPT-2). */
  dim?: number;
}

const inserted = new WeakMap<Module, { handle: RemovableHandle; adapter: Bottleneck }>();

/** The output width of `m` when it can be read off its configuration. */
function widthOf(m: Module): number | null {
  if (m instanceof Linear) return m.outFeatures;
  if (m instanceof Conv1D) return m.nf;
  const o = m as unknown as { embedDim?: number; config?: { nEmbd?: number; hiddenSize?: number } };
  return o.embedDim ?? o.config?.nEmbd ?? o.config?.hiddenSize ?? null;
}

/**
 * Inserts a Bottleneck after every sublayer of `model` that `after` names: its output (or
 * the first element of an output array, as attention modules return) goes through the
 * adapter. Checks every target first, so a failure leaves the model unchanged. Freezes
 * nothing (use `nn.freeze`). Returns the paths that got an adapter.
 */
export function insert(model: Module, opts: InsertOptions): string[] {
  if (!(model instanceof Module))
    throw new ValueError(`adapters.insert: expected a Module, got ${String(model)}`);
  const after = opts?.after;
  if (!Array.isArray(after) || after.length === 0) {
    throw new ValueError('adapters.insert: after must be a non-empty list of module names');
  }
  const targets = [...model.namedModules()].filter(
    ([p]) => p !== '' && after.some((t) => p === t || p.endsWith(`.${t}`)),
  );
  if (targets.length === 0) {
    throw new ValueError(
      `adapters.insert: [${after.join(', ')}] match no module of ${model.constructor.name}`,
    );
  }
  const checked = targets.map(([p, m]) => {
    if (inserted.has(m) || 'adapter' in m)
      throw new ValueError(`adapters.insert: '${p}' already has an adapter`);
    if (m instanceof ModuleDict)
      throw new ValueError(`adapters.insert: '${p}' is a ModuleDict, which has no output`);
    const dim = opts.dim ?? widthOf(m);
    if (dim === null) {
      throw new ValueError(
        `adapters.insert: cannot tell the width of '${p}' (${m.constructor.name}); pass dim`,
      );
    }
    return [p, m, dim] as const;
  });
  // Everything is checked: only now allocate (a bad option throws before the first Linear).
  const made = checked.map(([p, m, dim]) => [p, m, new Bottleneck(dim, opts)] as const);
  for (const [, m, adapter] of made) {
    markAdapter(adapter);
    (m as unknown as { adapter: Bottleneck }).adapter = adapter;
    const handle = m.registerForwardHook((_mod, _args, out) => {
      if (out instanceof Tensor) return adapter.forward(out);
      if (Array.isArray(out) && out[0] instanceof Tensor)
        return [adapter.forward(out[0]), ...out.slice(1)];
      throw new ValueError(
        `adapters: the output of '${m.constructor.name}' is not a tensor or an array starting with one`,
      );
    });
    inserted.set(m, { handle, adapter });
  }
  return made.map(([p]) => p);
}

/** Every inserted adapter with the path of the sublayer it follows. */
export function list(model: Module): [string, Bottleneck][] {
  return [...model.namedModules()].flatMap(([p, m]) => {
    const e = inserted.get(m);
    return e ? [[p, e.adapter] as [string, Bottleneck]] : [];
  });
}

/** The adapters' parameters by their dotted names in the model (`<path>.adapter.adapter_up.weight`). */
export function stateDict(model: Module): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [p, a] of list(model)) {
    for (const [k, t] of a.namedParameters()) out[`${p}.adapter.${k}`] = t.detach();
  }
  return out;
}

/** Removes every inserted adapter (hooks and fields) and frees its parameters. */
export function remove(model: Module): void {
  for (const [, m] of [...model.namedModules()]) {
    const e = inserted.get(m);
    if (!e) continue;
    e.handle.remove();
    delete (m as unknown as { adapter?: Bottleneck }).adapter;
    e.adapter.dispose();
    inserted.delete(m);
  }
}
