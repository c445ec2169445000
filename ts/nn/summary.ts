// `nb.nn.summary(model)`: every submodule's path, type and parameter count, and the totals
// (all, trainable = requiresGrad, non-trainable, trainable percent). There is no output-shape column: modules
// are not traced, so shapes are unknown until a forward runs.
import { ValueError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module } from './module.js';

export interface SummaryRow {
  /** Dotted path from the model (`body.0`), as in state-dict names. */
  path: string;
  /** The class name (`Linear`). */
  type: string;
  /** Elements of every parameter of this submodule and its descendants (shared ones once). */
  params: number;
  /** Of those, the ones that require grad. */
  trainable: number;
}

export interface SummaryInfo {
  /** The model's class name. */
  type: string;
  /** One row per submodule, depth first in registration order; the model itself is not a row. */
  rows: SummaryRow[];
  total: number;
  trainable: number;
  nonTrainable: number;
  /** trainable / total in percent (PEFT's `print_trainable_parameters`); 0 for no parameters. */
  trainablePercent: number;
}

export interface SummaryOptions {
  /** Return the structured `SummaryInfo` instead of the printed table. */
  asObject?: boolean;
}

function counts(params: Tensor[]): { params: number; trainable: number } {
  let all = 0;
  let trainable = 0;
  for (const p of params) {
    all += p.size;
    if (p.requiresGrad) trainable += p.size;
  }
  return { params: all, trainable };
}

/** The parameter counts of `model` as an object (what `summary(model, {asObject: true})` gives). */
function summaryInfo(model: Module): SummaryInfo {
  if (!(model instanceof Module)) {
    throw new ValueError(`summary: expected a Module, got ${String(model)}`);
  }
  const rows: SummaryRow[] = [];
  for (const [path, m] of model.namedModules()) {
    if (path === '') continue;
    rows.push({ path, type: m.constructor.name, ...counts(m.parameters()) });
  }
  const { params: total, trainable } = counts(model.parameters());
  const trainablePercent = total ? (100 * trainable) / total : 0;
  return {
    type: model.constructor.name,
    rows,
    total,
    trainable,
    nonTrainable: total - trainable,
    trainablePercent,
  };
}

const group = (n: number): string => n.toLocaleString('en-US');

/** The table `summary` prints: one line per submodule, then the totals. */
function table(info: SummaryInfo): string {
  const head = ['Layer (path)', 'Type', 'Params', 'Trainable'];
  const body = info.rows.map((r) => [r.path, r.type, group(r.params), group(r.trainable)]);
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((row) => row[c].length)));
  const line = (cells: string[]): string =>
    cells
      .map((s, c) => (c < 2 ? s.padEnd(widths[c]) : s.padStart(widths[c])))
      .join('   ')
      .trimEnd();
  const rule = '='.repeat(widths.reduce((a, b) => a + b, 0) + 3 * (widths.length - 1));
  return [
    info.type,
    rule,
    line(head),
    rule,
    ...body.map(line),
    rule,
    `Total params: ${group(info.total)}`,
    `Trainable params: ${group(info.trainable)}`,
    `Non-trainable params: ${group(info.nonTrainable)}`,
    `Trainable %: ${info.trainablePercent.toFixed(4)}`,
  ].join('\n');
}

/**
 * A summary of `model`'s parameters: a printable table by default, or with `{asObject: true}`
 * the `SummaryInfo` it is built from (rows plus `total`, `trainable`, `nonTrainable`).
 */
export function summary(model: Module, opts: SummaryOptions & { asObject: true }): SummaryInfo;
export function summary(model: Module, opts?: SummaryOptions & { asObject?: false }): string;
export function summary(model: Module, opts: SummaryOptions = {}): string | SummaryInfo {
  const info = summaryInfo(model);
  return opts.asObject ? info : table(info);
}
