// Learning-rate schedulers with PyTorch 1.13 semantics: constructing one sets the initial lr
// (step 0), and each `step()` moves one epoch using the chainable form (the next lr is derived
// from the group's current lr), so the same sequence of calls gives PyTorch's values.
import { ValueError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';

/** What a scheduler drives: an optimizer's parameter groups and their learning rates. */
export interface LrGroups {
  paramGroups: { lr: number; initialLr?: number }[];
}

type StateValue = number | string | number[] | null;
/** Numbers, strings and number arrays only, so it can be saved as JSON. */
export type SchedulerStateDict = Record<string, StateValue>;

function checkOptimizer(where: string, opt: LrGroups): void {
  const groups = (opt as Partial<LrGroups> | null)?.paramGroups;
  if (!Array.isArray(groups) || groups.some((g) => typeof g?.lr !== 'number')) {
    throw new ValueError(`${where}: expected an optimizer whose paramGroups have a numeric lr`);
  }
}

function finite(where: string, key: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new ValueError(`${where}: ${key} must be a finite number, got ${String(v)}`);
  }
}

function count(where: string, key: string, v: unknown, min: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new ValueError(`${where}: ${key} must be an integer >= ${min}, got ${String(v)}`);
  }
}

/**
 * Checks that `sd` has exactly the keys of `current` with values of the same kinds (arrays of
 * the same length; `nullable` keys may also be null) and returns a copy of it.
 */
function checkState(
  where: string,
  current: SchedulerStateDict,
  sd: unknown,
  nullable: readonly string[] = [],
): SchedulerStateDict {
  if (sd === null || typeof sd !== 'object') throw new ValueError(`${where}: expected an object`);
  const src = sd as Record<string, unknown>;
  const extra = Object.keys(src).filter((k) => !(k in current));
  if (extra.length) throw new ValueError(`${where}: unexpected keys ${extra.join(', ')}`);
  const out: SchedulerStateDict = {};
  for (const [k, cur] of Object.entries(current)) {
    const v = src[k];
    if (v === null && nullable.includes(k)) {
      out[k] = null;
      continue;
    }
    const ok = Array.isArray(cur)
      ? Array.isArray(v) && v.length === cur.length && v.every((x) => typeof x === 'number')
      : typeof v === typeof cur || (cur === null && typeof v === 'number');
    if (!ok) {
      throw new ValueError(
        `${where}: ${k} must be like ${JSON.stringify(cur)}, got ${JSON.stringify(v)}`,
      );
    }
    out[k] = Array.isArray(v) ? [...(v as number[])] : (v as StateValue);
  }
  return out;
}

/** The base of epoch-driven schedulers (PyTorch's `_LRScheduler`). */
export abstract class LRScheduler {
  /** Each group's `initialLr` when the scheduler was made. */
  baseLrs: number[] = [];
  /** Steps taken: 0 right after construction. */
  lastEpoch = -1;
  private stepCount = 0;
  private lastLr: number[] = [];
  /** The scheduler's own hyperparameters, saved in its state dict. */
  protected abstract hp: Record<string, number | string>;

  protected constructor(
    readonly name: string,
    readonly optimizer: LrGroups,
  ) {
    checkOptimizer(name, optimizer);
  }

  /** The next lr of every group from the current ones (PyTorch's chainable `get_lr`). */
  protected abstract getLr(): number[];
  /** Range checks of the hyperparameters; throws ValueError. */
  protected abstract check(where: string, hp: Record<string, number | string>): void;

  /** Called last by each subclass constructor: records base lrs and sets the step-0 lr. */
  protected start(): void {
    this.check(this.name, this.hp);
    for (const g of this.optimizer.paramGroups) g.initialLr ??= g.lr;
    this.baseLrs = this.optimizer.paramGroups.map((g) => g.initialLr!);
    this.step();
  }

  protected currentLrs(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  /** Advances one epoch (or batch) and writes the new lr into every group. */
  step(): void {
    this.stepCount++;
    this.lastEpoch++;
    const lrs = this.getLr();
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = lrs[i]));
    this.lastLr = this.currentLrs();
  }

  /** The lr of each group as last set by this scheduler. */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  stateDict(): SchedulerStateDict {
    return {
      ...this.hp,
      baseLrs: [...this.baseLrs],
      lastEpoch: this.lastEpoch,
      stepCount: this.stepCount,
      lastLr: [...this.lastLr],
    };
  }

  /** Restores a `stateDict()`; like PyTorch it leaves the optimizer's lr to the optimizer's own. */
  loadStateDict(sd: SchedulerStateDict): void {
    const where = `${this.name}.loadStateDict`;
    const s = checkState(where, this.stateDict(), sd);
    const hp = Object.fromEntries(Object.keys(this.hp).map((k) => [k, s[k] as number | string]));
    this.check(where, hp);
    count(where, 'lastEpoch', s.lastEpoch, 0);
    count(where, 'stepCount', s.stepCount, 1);
    this.hp = hp;
    this.baseLrs = s.baseLrs as number[];
    this.lastEpoch = s.lastEpoch as number;
    this.stepCount = s.stepCount as number;
    this.lastLr = s.lastLr as number[];
  }
}

/** Multiplies the lr by `gamma` every `stepSize` epochs. */
export class StepLR extends LRScheduler {
  protected hp: { stepSize: number; gamma: number };
  constructor(optimizer: LrGroups, opts: { stepSize: number; gamma?: number }) {
    super('StepLR', optimizer);
    this.hp = { stepSize: opts?.stepSize, gamma: opts?.gamma ?? 0.1 };
    this.start();
  }
  protected check(where: string, hp: Record<string, unknown>): void {
    count(where, 'stepSize', hp.stepSize, 1);
    finite(where, 'gamma', hp.gamma);
  }
  protected getLr(): number[] {
    const { stepSize, gamma } = this.hp;
    const e = this.lastEpoch;
    return this.currentLrs().map((lr) => (e === 0 || e % stepSize !== 0 ? lr : lr * gamma));
  }
}

/** Multiplies the lr by `gamma` every epoch. */
export class ExponentialLR extends LRScheduler {
  protected hp: { gamma: number };
  constructor(optimizer: LrGroups, opts: { gamma: number }) {
    super('ExponentialLR', optimizer);
    this.hp = { gamma: opts?.gamma };
    this.start();
  }
  protected check(where: string, hp: Record<string, unknown>): void {
    finite(where, 'gamma', hp.gamma);
  }
  protected getLr(): number[] {
    return this.currentLrs().map((lr) => (this.lastEpoch === 0 ? lr : lr * this.hp.gamma));
  }
}

/** Cosine annealing from the base lr to `etaMin` over `tMax` epochs (then back up, periodically). */
export class CosineAnnealingLR extends LRScheduler {
  protected hp: { tMax: number; etaMin: number };
  constructor(optimizer: LrGroups, opts: { tMax: number; etaMin?: number }) {
    super('CosineAnnealingLR', optimizer);
    this.hp = { tMax: opts?.tMax, etaMin: opts?.etaMin ?? 0 };
    this.start();
  }
  protected check(where: string, hp: Record<string, unknown>): void {
    count(where, 'tMax', hp.tMax, 1);
    finite(where, 'etaMin', hp.etaMin);
  }
  // PyTorch's recurrence, operation for operation, so the floats match its chained values.
  protected getLr(): number[] {
    const { tMax: T, etaMin } = this.hp;
    const e = this.lastEpoch;
    return this.currentLrs().map((lr, i) => {
      if (e === 0) return lr;
      if ((e - 1 - T) % (2 * T) === 0) {
        return lr + ((this.baseLrs[i] - etaMin) * (1 - Math.cos(Math.PI / T))) / 2;
      }
      return (
        ((1 + Math.cos((Math.PI * e) / T)) / (1 + Math.cos((Math.PI * (e - 1)) / T))) *
          (lr - etaMin) +
        etaMin
      );
    });
  }
}

/** Scales the lr linearly from `startFactor` to `endFactor` over `totalIters` epochs. */
export class LinearLR extends LRScheduler {
  protected hp: { startFactor: number; endFactor: number; totalIters: number };
  constructor(
    optimizer: LrGroups,
    opts: { startFactor?: number; endFactor?: number; totalIters?: number } = {},
  ) {
    super('LinearLR', optimizer);
    this.hp = {
      startFactor: opts?.startFactor ?? 1 / 3,
      endFactor: opts?.endFactor ?? 1,
      totalIters: opts?.totalIters ?? 5,
    };
    this.start();
  }
  protected check(where: string, hp: Record<string, unknown>): void {
    const { startFactor: s, endFactor: e } = hp as Record<string, number>;
    // a zero start factor would divide by zero in the chainable form
    if (!(s > 0 && s <= 1))
      throw new ValueError(`${where}: startFactor must be in (0, 1], got ${s}`);
    if (!(e >= 0 && e <= 1))
      throw new ValueError(`${where}: endFactor must be in [0, 1], got ${e}`);
    count(where, 'totalIters', hp.totalIters, 1);
  }
  protected getLr(): number[] {
    const { startFactor: s, endFactor: f, totalIters: n } = this.hp;
    const e = this.lastEpoch;
    return this.currentLrs().map((lr) => {
      if (e === 0) return lr * s;
      if (e > n) return lr;
      return lr * (1 + (f - s) / (n * s + (e - 1) * (f - s)));
    });
  }
}

export interface WarmupOptions {
  /** Steps of linear warmup from 0 to the base lr. */
  warmupSteps: number;
  /** Step at which the decay reaches `minLr` (and stays). */
  totalSteps: number;
  decay?: 'cosine' | 'linear';
  minLr?: number;
}

/**
 * Linear warmup from 0 to the base lr over `warmupSteps`, then cosine or linear decay to
 * `minLr` at `totalSteps` (the usual transformer schedule; step it every batch). Closed form in
 * the step count, like PyTorch's `LambdaLR`.
 */
export class WarmupLR extends LRScheduler {
  protected hp: { warmupSteps: number; totalSteps: number; decay: string; minLr: number };
  constructor(optimizer: LrGroups, opts: WarmupOptions) {
    super('WarmupLR', optimizer);
    this.hp = {
      warmupSteps: opts?.warmupSteps,
      totalSteps: opts?.totalSteps,
      decay: opts?.decay ?? 'cosine',
      minLr: opts?.minLr ?? 0,
    };
    this.start();
  }
  protected check(where: string, hp: Record<string, unknown>): void {
    count(where, 'warmupSteps', hp.warmupSteps, 0);
    count(where, 'totalSteps', hp.totalSteps, hp.warmupSteps as number);
    if (hp.decay !== 'cosine' && hp.decay !== 'linear') {
      throw new ValueError(`${where}: decay must be 'cosine' or 'linear', got ${String(hp.decay)}`);
    }
    finite(where, 'minLr', hp.minLr);
  }
  protected getLr(): number[] {
    const { warmupSteps: w, totalSteps: total, decay, minLr } = this.hp;
    const t = this.lastEpoch;
    return this.baseLrs.map((base) => {
      if (t < w) return (base * t) / w;
      const p = Math.min(1, (t - w) / Math.max(1, total - w));
      const f = decay === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * p)) : 1 - p;
      return minLr + (base - minLr) * f;
    });
  }
}

/** `new WarmupLR(optimizer, opts)`: linear warmup, then cosine (default) or linear decay. */
export function warmup(optimizer: LrGroups, opts: WarmupOptions): WarmupLR {
  return new WarmupLR(optimizer, opts);
}

export interface ReduceLROnPlateauOptions {
  mode?: 'min' | 'max';
  factor?: number;
  patience?: number;
  threshold?: number;
  thresholdMode?: 'rel' | 'abs';
  cooldown?: number;
  /** One floor for all groups, or one per group. */
  minLr?: number | number[];
  /** Reductions smaller than this are skipped. */
  eps?: number;
}

/**
 * Multiplies the lr by `factor` when the metric passed to `step(metric)` has not improved for
 * more than `patience` steps. Before the first step `best` is ±Infinity, which JSON writes as
 * null; `loadStateDict` reads null back as that worst value.
 */
export class ReduceLROnPlateau {
  readonly name = 'ReduceLROnPlateau';
  private s: {
    mode: string;
    factor: number;
    patience: number;
    threshold: number;
    thresholdMode: string;
    cooldown: number;
    minLrs: number[];
    eps: number;
    best: number;
    numBadEpochs: number;
    cooldownCounter: number;
    lastEpoch: number;
  };
  private lastLr: number[];

  constructor(
    readonly optimizer: LrGroups,
    opts: ReduceLROnPlateauOptions = {},
  ) {
    checkOptimizer(this.name, optimizer);
    const n = optimizer.paramGroups.length;
    const minLr = opts?.minLr ?? 0;
    const mode = opts?.mode ?? 'min';
    this.s = {
      mode,
      factor: opts?.factor ?? 0.1,
      patience: opts?.patience ?? 10,
      threshold: opts?.threshold ?? 1e-4,
      thresholdMode: opts?.thresholdMode ?? 'rel',
      cooldown: opts?.cooldown ?? 0,
      minLrs: Array.isArray(minLr) ? [...minLr] : new Array<number>(n).fill(minLr),
      eps: opts?.eps ?? 1e-8,
      best: mode === 'max' ? -Infinity : Infinity,
      numBadEpochs: 0,
      cooldownCounter: 0,
      lastEpoch: 0,
    };
    this.check(this.name, this.s);
    this.lastLr = optimizer.paramGroups.map((g) => g.lr);
  }

  private check(where: string, s: ReduceLROnPlateau['s']): void {
    if (s.mode !== 'min' && s.mode !== 'max') {
      throw new ValueError(`${where}: mode must be 'min' or 'max', got ${String(s.mode)}`);
    }
    if (s.thresholdMode !== 'rel' && s.thresholdMode !== 'abs') {
      throw new ValueError(
        `${where}: thresholdMode must be 'rel' or 'abs', got ${String(s.thresholdMode)}`,
      );
    }
    if (!(s.factor < 1 && s.factor >= 0))
      throw new ValueError(`${where}: factor must be in [0, 1), got ${s.factor}`);
    count(where, 'patience', s.patience, 0);
    count(where, 'cooldown', s.cooldown, 0);
    finite(where, 'threshold', s.threshold);
    finite(where, 'eps', s.eps);
    const n = this.optimizer.paramGroups.length;
    if (!Array.isArray(s.minLrs) || s.minLrs.length !== n) {
      throw new ValueError(`${where}: expected ${n} minLr values, got ${String(s.minLrs)}`);
    }
    s.minLrs.forEach((v, i) => finite(where, `minLr[${i}]`, v));
  }

  private isBetter(a: number): boolean {
    const { mode, thresholdMode, threshold, best } = this.s;
    if (mode === 'min')
      return thresholdMode === 'rel' ? a < best * (1 - threshold) : a < best - threshold;
    return thresholdMode === 'rel' ? a > best * (threshold + 1) : a > best + threshold;
  }

  /**
   * Records this epoch's metric (a number or a one-element tensor) and reduces lr if stuck.
   * The metric is required; it is typed optional only to fit the common `Scheduler` shape.
   */
  step(metric?: number | Tensor): void {
    const current = metric instanceof Tensor ? metric.item() : metric;
    if (typeof current !== 'number') {
      throw new ValueError(`${this.name}.step: metric must be a number, got ${String(metric)}`);
    }
    const s = this.s;
    s.lastEpoch += 1;
    if (this.isBetter(current)) {
      s.best = current;
      s.numBadEpochs = 0;
    } else {
      s.numBadEpochs += 1;
    }
    if (s.cooldownCounter > 0) {
      s.cooldownCounter -= 1;
      s.numBadEpochs = 0; // bad epochs during cooldown do not count
    }
    if (s.numBadEpochs > s.patience) {
      this.optimizer.paramGroups.forEach((g, i) => {
        const next = Math.max(g.lr * s.factor, s.minLrs[i]);
        if (g.lr - next > s.eps) g.lr = next;
      });
      s.cooldownCounter = s.cooldown;
      s.numBadEpochs = 0;
    }
    this.lastLr = this.optimizer.paramGroups.map((g) => g.lr);
  }

  getLastLr(): number[] {
    return [...this.lastLr];
  }

  stateDict(): SchedulerStateDict {
    return { ...this.s, minLrs: [...this.s.minLrs], lastLr: [...this.lastLr] };
  }

  loadStateDict(sd: SchedulerStateDict): void {
    const where = `${this.name}.loadStateDict`;
    const c = checkState(where, this.stateDict(), sd, ['best']);
    const worst = c.mode === 'max' ? -Infinity : Infinity;
    const next = {
      ...(c as unknown as ReduceLROnPlateau['s']),
      best: (c.best as number | null) ?? worst,
    };
    this.check(where, next);
    count(where, 'numBadEpochs', next.numBadEpochs, 0);
    count(where, 'cooldownCounter', next.cooldownCounter, 0);
    count(where, 'lastEpoch', next.lastEpoch, 0);
    const { lastLr, ...rest } = c;
    this.s = { ...(rest as unknown as ReduceLROnPlateau['s']), best: next.best };
    this.lastLr = lastLr as number[];
  }
}
