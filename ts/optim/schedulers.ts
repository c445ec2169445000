// Learning-rate schedulers with PyTorch 1.13 semantics: constructing one sets the initial lr
// (step 0), and each `step()` moves one epoch using the chainable form (the next lr is derived
// from the group's current lr), so the same sequence of calls gives PyTorch's values.
import { ValueError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';

/** What a scheduler drives: an optimizer's parameter groups and their learning rates. */
export interface LrGroups {
  paramGroups: { lr: number; initialLr?: number }[];
}

type StateValue = number | string | boolean | number[] | null;
/** A scheduler hyperparameter as saved in its state dict. */
type HpValue = number | string | boolean | number[];
/** Numbers, strings, booleans and number arrays only, so it can be saved as JSON. */
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
  protected abstract hp: Record<string, HpValue>;

  protected constructor(
    readonly name: string,
    readonly optimizer: LrGroups,
  ) {
    checkOptimizer(name, optimizer);
  }

  /** The next lr of every group from the current ones (PyTorch's chainable `get_lr`). */
  protected abstract getLr(): number[];
  /** Range checks of the hyperparameters; throws ValueError. */
  protected abstract check(where: string, hp: Record<string, HpValue>): void;

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
    const hp = Object.fromEntries(Object.keys(this.hp).map((k) => [k, s[k] as HpValue]));
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

/** A factor of the base lr by epoch, for `LambdaLR`. */
export type LrLambda = (epoch: number) => number;

/**
 * `lr = baseLr · lrLambda(epoch)`, with one function for all groups or one per group. The
 * functions are not part of the state dict (as in PyTorch, which saves only callable objects);
 * pass the same ones when restoring.
 */
export class LambdaLR extends LRScheduler {
  protected hp: Record<string, never> = {};
  private readonly lambdas: LrLambda[];

  constructor(optimizer: LrGroups, lrLambda: LrLambda | readonly LrLambda[]) {
    super('LambdaLR', optimizer);
    const n = optimizer.paramGroups.length;
    const list = typeof lrLambda === 'function' ? new Array<LrLambda>(n).fill(lrLambda) : lrLambda;
    if (!Array.isArray(list) || list.length !== n || list.some((f) => typeof f !== 'function')) {
      throw new ValueError(
        `LambdaLR: expected a function or ${n} functions (one per parameter group), got ${Array.isArray(list) ? `${list.length} values` : String(lrLambda)}`,
      );
    }
    this.lambdas = [...list];
    this.start();
  }
  protected check(): void {}
  protected getLr(): number[] {
    return this.baseLrs.map((base, i) => {
      const f = this.lambdas[i](this.lastEpoch);
      if (typeof f !== 'number' || Number.isNaN(f)) {
        throw new ValueError(
          `LambdaLR: lrLambda[${i}](${this.lastEpoch}) returned ${String(f)}, not a number`,
        );
      }
      return base * f;
    });
  }
}

/**
 * Multiplies the lr by `gamma` at each milestone epoch (by `gamma^k` at a milestone listed k
 * times, as PyTorch counts them).
 */
export class MultiStepLR extends LRScheduler {
  protected hp: { milestones: number[]; gamma: number };
  constructor(optimizer: LrGroups, opts: { milestones: readonly number[]; gamma?: number }) {
    super('MultiStepLR', optimizer);
    const m = opts?.milestones;
    this.hp = { milestones: Array.isArray(m) ? [...m] : (m as never), gamma: opts?.gamma ?? 0.1 };
    this.start();
  }
  protected check(where: string, hp: Record<string, unknown>): void {
    const m = hp.milestones;
    if (!Array.isArray(m)) {
      throw new ValueError(`${where}: milestones must be an array of epochs, got ${String(m)}`);
    }
    m.forEach((v, i) => count(where, `milestones[${i}]`, v, 0));
    finite(where, 'gamma', hp.gamma);
  }
  protected getLr(): number[] {
    const hits = this.hp.milestones.filter((m) => m === this.lastEpoch).length;
    return this.currentLrs().map((lr) => (hits === 0 ? lr : lr * this.hp.gamma ** hits));
  }
}

export interface OneCycleLROptions {
  /** The peak lr: one for all groups or one per group. */
  maxLr: number | readonly number[];
  /** Steps in the cycle; or give `epochs` and `stepsPerEpoch`. */
  totalSteps?: number;
  epochs?: number;
  stepsPerEpoch?: number;
  /** Fraction of the cycle spent increasing the lr (default 0.3). */
  pctStart?: number;
  annealStrategy?: 'cos' | 'linear';
  /** Cycle SGD's `momentum` (or Adam's beta1) inversely to the lr (default true). */
  cycleMomentum?: boolean;
  /** Lowest momentum, reached at the peak lr (default 0.85); one or one per group. */
  baseMomentum?: number | readonly number[];
  /** Highest momentum, at the start and end (default 0.95); one or one per group. */
  maxMomentum?: number | readonly number[];
  /** The initial lr is `maxLr / divFactor` (default 25). */
  divFactor?: number;
  /** The final lr is the initial lr / `finalDivFactor` (default 1e4). */
  finalDivFactor?: number;
  /** A third phase: back to the initial lr, then down to the final one (default false). */
  threePhase?: boolean;
}

/** A parameter group whose momentum OneCycleLR may drive. */
type MomentumGroup = { momentum?: unknown; betas?: unknown };

/**
 * The 1cycle policy (step it every batch): the lr rises from `maxLr / divFactor` to `maxLr`
 * over `pctStart` of the steps, then anneals to `initialLr / finalDivFactor`, while the
 * momentum moves the opposite way between `maxMomentum` and `baseMomentum`. Closed form in the
 * step count, as PyTorch; stepping past `totalSteps` throws.
 */
export class OneCycleLR extends LRScheduler {
  protected hp: {
    totalSteps: number;
    pctStart: number;
    annealStrategy: string;
    cycleMomentum: boolean;
    divFactor: number;
    finalDivFactor: number;
    threePhase: boolean;
    maxLrs: number[];
    baseMomentums: number[];
    maxMomentums: number[];
  };
  /** Whether momentum lives in `betas[0]` (Adam) rather than `momentum` (SGD, RMSprop). */
  private readonly useBeta1: boolean;

  constructor(optimizer: LrGroups, opts: OneCycleLROptions) {
    super('OneCycleLR', optimizer);
    const where = this.name;
    const n = optimizer.paramGroups.length;
    const perGroup = (key: string, v: unknown): number[] => {
      if (typeof v === 'number') return new Array<number>(n).fill(v);
      if (Array.isArray(v) && v.length === n) return [...(v as number[])];
      throw new ValueError(
        `${where}: ${key} must be a number or ${n} numbers (one per parameter group), got ${JSON.stringify(v)}`,
      );
    };
    let totalSteps = opts?.totalSteps;
    if (totalSteps === undefined) {
      if (opts?.epochs === undefined || opts?.stepsPerEpoch === undefined) {
        throw new ValueError(`${where}: give totalSteps, or epochs and stepsPerEpoch`);
      }
      count(where, 'epochs', opts.epochs, 1);
      count(where, 'stepsPerEpoch', opts.stepsPerEpoch, 1);
      totalSteps = opts.epochs * opts.stepsPerEpoch;
    }
    this.hp = {
      totalSteps,
      pctStart: opts.pctStart ?? 0.3,
      annealStrategy: opts.annealStrategy ?? 'cos',
      cycleMomentum: opts.cycleMomentum ?? true,
      divFactor: opts.divFactor ?? 25,
      finalDivFactor: opts.finalDivFactor ?? 1e4,
      threePhase: opts.threePhase ?? false,
      maxLrs: perGroup('maxLr', opts.maxLr),
      baseMomentums: perGroup('baseMomentum', opts.baseMomentum ?? 0.85),
      maxMomentums: perGroup('maxMomentum', opts.maxMomentum ?? 0.95),
    };
    this.check(where, this.hp);
    const groups = optimizer.paramGroups as (LrGroups['paramGroups'][number] & MomentumGroup)[];
    this.useBeta1 = Array.isArray(groups[0]?.betas);
    if (this.hp.cycleMomentum) {
      const ok = groups.every((g) =>
        this.useBeta1 ? Array.isArray(g.betas) : typeof g.momentum === 'number',
      );
      if (!ok) {
        throw new ValueError(
          `${where}: cycleMomentum needs an optimizer with momentum (SGD, RMSprop) or betas (Adam)`,
        );
      }
    }
    // A fresh cycle overrides the groups' initial lr (PyTorch does the same).
    groups.forEach((g, i) => (g.initialLr = this.hp.maxLrs[i] / this.hp.divFactor));
    this.start();
  }

  protected check(where: string, hp: Record<string, unknown>): void {
    count(where, 'totalSteps', hp.totalSteps, 1);
    const p = hp.pctStart as number;
    if (!(p >= 0 && p <= 1)) throw new ValueError(`${where}: pctStart must be in [0, 1], got ${p}`);
    if (hp.annealStrategy !== 'cos' && hp.annealStrategy !== 'linear') {
      throw new ValueError(
        `${where}: annealStrategy must be 'cos' or 'linear', got ${String(hp.annealStrategy)}`,
      );
    }
    finite(where, 'divFactor', hp.divFactor);
    finite(where, 'finalDivFactor', hp.finalDivFactor);
    for (const k of ['maxLrs', 'baseMomentums', 'maxMomentums']) {
      (hp[k] as number[]).forEach((v, i) => finite(where, `${k}[${i}]`, v));
    }
  }

  /** Refuses a step past the end of the cycle before anything changes. */
  override step(): void {
    const { totalSteps } = this.hp;
    if (this.lastEpoch + 1 > totalSteps) {
      throw new ValueError(
        `${this.name}: tried to step ${this.lastEpoch + 1} times; the cycle has ${totalSteps} total steps`,
      );
    }
    super.step();
  }

  private anneal(start: number, end: number, pct: number): number {
    if (this.hp.annealStrategy === 'linear') return (end - start) * pct + start;
    return end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);
  }

  protected getLr(): number[] {
    const { totalSteps: T, pctStart: p, threePhase, cycleMomentum } = this.hp;
    const t = this.lastEpoch;
    const groups = this.optimizer.paramGroups as (LrGroups['paramGroups'][number] &
      MomentumGroup)[];
    return groups.map((g, i) => {
      const initial = this.baseLrs[i];
      const peak = this.hp.maxLrs[i];
      const final = initial / this.hp.finalDivFactor;
      const [mMax, mBase] = [this.hp.maxMomentums[i], this.hp.baseMomentums[i]];
      // [end step, start lr, end lr, start momentum, end momentum] of each phase
      const phases: [number, number, number, number, number][] = threePhase
        ? [
            [p * T - 1, initial, peak, mMax, mBase],
            [2 * p * T - 2, peak, initial, mBase, mMax],
            [T - 1, initial, final, mMax, mMax],
          ]
        : [
            [p * T - 1, initial, peak, mMax, mBase],
            [T - 1, peak, final, mBase, mMax],
          ];
      let begin = 0;
      for (let k = 0; k < phases.length; k++) {
        const [end, lr0, lr1, m0, m1] = phases[k];
        if (t <= end || k === phases.length - 1) {
          const pct = (t - begin) / (end - begin);
          if (cycleMomentum) {
            const m = this.anneal(m0, m1, pct);
            if (this.useBeta1) g.betas = [m, ...(g.betas as number[]).slice(1)];
            else g.momentum = m;
          }
          return this.anneal(lr0, lr1, pct);
        }
        begin = end;
      }
      return g.lr; // unreachable: the last phase always matches
    });
  }
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
