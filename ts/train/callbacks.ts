// Training callbacks: hooks the loop calls per batch and per epoch, plus the two that every
// training run wants, EarlyStopping and ModelCheckpoint.
import { ValueError } from '../errors.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';
import { keep } from '../tensor/scope.js';

/** Numbers logged for a batch or an epoch: `loss`, `valLoss`, metrics, `lr`, ... */
export type Logs = Record<string, number>;

/** What a callback can see and steer. */
export interface TrainState {
  model: Module;
  epoch: number;
  /** Set to true to stop after the current epoch. */
  stopTraining: boolean;
}

export interface Callback {
  onTrainBegin?(state: TrainState): void | Promise<void>;
  onEpochBegin?(epoch: number, state: TrainState): void | Promise<void>;
  onBatchEnd?(batch: number, logs: Logs, state: TrainState): void | Promise<void>;
  onEpochEnd?(epoch: number, logs: Logs, state: TrainState): void | Promise<void>;
  onTrainEnd?(logs: Logs, state: TrainState): void | Promise<void>;
}

export type Mode = 'min' | 'max' | 'auto';

/** Tracks the best value of a monitored log entry ('min' for losses, 'max' for accuracies). */
class Monitor {
  best: number;
  readonly mode: 'min' | 'max';
  constructor(
    readonly key: string,
    mode: Mode,
    private readonly minDelta: number,
  ) {
    this.mode = mode === 'auto' ? (/acc|f1|precision|recall/i.test(key) ? 'max' : 'min') : mode;
    this.best = this.mode === 'min' ? Infinity : -Infinity;
  }

  /** Reads the monitored value from `logs`; a missing key is a configuration error. */
  value(logs: Logs, owner: string): number {
    const v = logs[this.key];
    if (v === undefined) {
      throw new ValueError(
        `${owner}: monitored value '${this.key}' is not logged (have: ${Object.keys(logs).join(', ')})`,
      );
    }
    return v;
  }

  /** True (and records it) when `v` beats the best by more than minDelta. */
  improves(v: number): boolean {
    const better =
      this.mode === 'min' ? v < this.best - this.minDelta : v > this.best + this.minDelta;
    if (better) this.best = v;
    return better;
  }
}

export interface EarlyStoppingOptions {
  monitor?: string;
  patience?: number;
  minDelta?: number;
  mode?: Mode;
  /** Copy the best epoch's weights back into the model when training ends. */
  restoreBestWeights?: boolean;
}

/** Stops training when `monitor` has not improved for `patience` epochs. */
export class EarlyStopping implements Callback {
  private readonly monitor: Monitor;
  private readonly patience: number;
  private readonly restore: boolean;
  private wait = 0;
  private bestWeights: Record<string, Tensor> | null = null;
  /** The epoch whose weights were best (0-based), or -1 before any epoch. */
  bestEpoch = -1;
  /** The epoch after which training stopped, or -1 if it ran to the end. */
  stoppedEpoch = -1;

  constructor(opts: EarlyStoppingOptions = {}) {
    this.monitor = new Monitor(opts.monitor ?? 'valLoss', opts.mode ?? 'auto', opts.minDelta ?? 0);
    this.patience = opts.patience ?? 0;
    this.restore = opts.restoreBestWeights ?? false;
  }

  onTrainBegin(): void {
    this.wait = 0;
    this.bestEpoch = -1;
    this.stoppedEpoch = -1;
    this.monitor.best = this.monitor.mode === 'min' ? Infinity : -Infinity;
  }

  onEpochEnd(epoch: number, logs: Logs, state: TrainState): void {
    if (this.monitor.improves(this.monitor.value(logs, 'EarlyStopping'))) {
      this.wait = 0;
      this.bestEpoch = epoch;
      if (this.restore) this.snapshot(state.model);
      return;
    }
    if (++this.wait > this.patience) {
      this.stoppedEpoch = epoch;
      state.stopTraining = true;
    }
  }

  onTrainEnd(_logs: Logs, state: TrainState): void {
    if (this.restore && this.bestWeights) {
      state.model.loadStateDict(this.bestWeights, { adapters: true });
      this.release();
    }
  }

  private snapshot(model: Module): void {
    this.release();
    const sd = model.stateDict({ adapters: true });
    this.bestWeights = Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, keep(t.clone())]));
    Object.values(sd).forEach((t) => t.dispose());
  }

  private release(): void {
    if (this.bestWeights) Object.values(this.bestWeights).forEach((t) => t.dispose());
    this.bestWeights = null;
  }
}

export interface ModelCheckpointOptions {
  /**
   * Called with the model's state dict (and the epoch's logs) whenever a checkpoint is due;
   * adapter parameters (nn.lora, nn.adapters) are included (`loadStateDict(sd, {adapters: true})`).
   */
  save: (stateDict: Record<string, Tensor>, epoch: number, logs: Logs) => void | Promise<void>;
  monitor?: string;
  mode?: Mode;
  /** Only save when the monitored value improves (default true). */
  saveBestOnly?: boolean;
}

/**
 * Saves the model after epochs, or only after improving ones. `save` decides where: e.g.
 * `(sd) => nb.io.saveFile('best.safetensors', sd)` in Node, or IndexedDB in a browser.
 */
export class ModelCheckpoint implements Callback {
  private readonly monitor: Monitor;
  private readonly opts: ModelCheckpointOptions;
  /** Epochs at which a checkpoint was written. */
  readonly savedEpochs: number[] = [];

  constructor(opts: ModelCheckpointOptions) {
    this.opts = opts;
    this.monitor = new Monitor(opts.monitor ?? 'valLoss', opts.mode ?? 'auto', 0);
  }

  async onEpochEnd(epoch: number, logs: Logs, state: TrainState): Promise<void> {
    const due =
      (this.opts.saveBestOnly ?? true)
        ? this.monitor.improves(this.monitor.value(logs, 'ModelCheckpoint'))
        : true;
    if (!due) return;
    const sd = state.model.stateDict({ adapters: true });
    try {
      await this.opts.save(sd, epoch, logs);
      this.savedEpochs.push(epoch);
    } finally {
      Object.values(sd).forEach((t) => t.dispose());
    }
  }
}
