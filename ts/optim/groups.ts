// Parameter groups with and without weight decay, the customary rule of Hugging Face's Trainer
// and nanoGPT: biases and normalisation weights (every 1-D parameter and everything owned by a
// *Norm module) get no decay; embeddings and other matrices are decayed (both HF's rule, which
// excludes LayerNorm weights and biases by name, and nanoGPT's, by dimension, decay them);
// frozen parameters are left out of every group.
import { ValueError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module } from '../nn/module.js';
import { LayerNorm } from '../nn/layers.js';
import { GroupNorm, RMSNorm } from '../nn/normalization.js';
import { nameMatcher, type NamePattern } from '../nn/freeze.js';

export interface DecayGroupsOptions {
  /** Decay of the decayed group (default 0.01). */
  weightDecay?: number;
  /** Further parameters without decay (a glob on dotted names, a RegExp or a predicate). */
  noDecay?: NamePattern;
  /** Options copied into both groups (a per-group lr, betas, …). */
  groupOptions?: Record<string, unknown>;
}

function isNorm(m: Module): boolean {
  return (
    m instanceof LayerNorm ||
    m instanceof GroupNorm ||
    m instanceof RMSNorm ||
    /Norm/.test(m.constructor.name)
  );
}

/**
 * `[{ params: decayed, weightDecay }, { params: notDecayed, weightDecay: 0 }]` for an
 * optimizer, with only trainable parameters; an empty group is omitted.
 */
export function paramGroupsWithDecay(
  model: Module,
  opts: DecayGroupsOptions = {},
): ({ params: Tensor[]; weightDecay: number } & Record<string, unknown>)[] {
  if (!(model instanceof Module)) {
    throw new ValueError(`paramGroupsWithDecay: expected a Module, got ${String(model)}`);
  }
  const wd = opts.weightDecay ?? 0.01;
  if (!(wd >= 0)) throw new ValueError(`paramGroupsWithDecay: weightDecay must be >= 0, got ${wd}`);
  const extra = opts.noDecay ? nameMatcher('paramGroupsWithDecay', opts.noDecay) : null;
  const normParams = new Set<Tensor>();
  for (const m of model.modules()) if (isNorm(m)) m.parameters().forEach((p) => normParams.add(p));
  const decay: Tensor[] = [];
  const noDecay: Tensor[] = [];
  for (const [name, p] of model.namedParameters()) {
    if (!p.requiresGrad) continue;
    const skip = p.ndim < 2 || normParams.has(p) || (extra !== null && extra(name, p));
    (skip ? noDecay : decay).push(p);
  }
  const base = opts.groupOptions ?? {};
  return [
    { ...base, params: decay, weightDecay: wd },
    { ...base, params: noDecay, weightDecay: 0 },
  ].filter((g) => g.params.length > 0);
}
