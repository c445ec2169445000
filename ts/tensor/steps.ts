// Automatic release for plain loops. JavaScript cannot tell nabla when a tensor becomes
// unreachable in synchronous code (a FinalizationRegistry only runs when the event loop gets a
// turn), so nabla watches what drives a PyTorch-style loop instead:
//
//   - each optimizer's `step()`                 (a training step ends)
//   - each model's top-level call under noGrad  (an inference or generation step; only modules
//                                                that have parameters, so losses do not count)
//
// Every tensor made outside any scope after the first such boundary is "stepped": it belongs to
// the driver whose boundary came last before it was made (its loop), and each op that reads it
// stamps it with the current boundary count. When a driver reaches a boundary, it releases its
// own stepped tensors that no op has read since its previous boundary: a loop advances twice
// past a tensor's last use before it goes. So a loop body's tensors live through the next
// iteration (`loss.item()` after `optimizer.step()` works), tensors in use stay alive however
// old, another loop running in between (a validation pass inside training) never releases the
// outer loop's tensors, data prepared before a loop began is never that loop's to release, and
// nothing accumulates. A training step takes over what was made since the latest boundary of
// any driver: after a validation pass, the resumed iteration's tensors were made after the
// model's boundaries but belong to the training loop, so they go with its next step instead of
// waiting for the next validation pass. Tensors made before the first boundary, kept with
// `nb.keep`, owned by a scope, a module (parameters, buffers), an optimizer, a dataset, or held
// as a gradient are never stepped. A released tensor used later throws a DisposedError saying
// when and why.
import type { Tensor } from './tensor.js';

/** The current step number (boundaries passed so far); read on every op, so a live binding. */
export let step = 0;
let started = false;
let enabled = true;
const stepped = new Set<Tensor>();
/** Tensors handed to the steps since the latest boundary (of any driver). */
let sinceLastBoundary: Tensor[] = [];

/** Why a tensor was released automatically, for the DisposedError it throws if used again. */
export interface Release {
  step: number;
  boundary: string;
  lastRead: number;
  /** The same driver's previous boundary, which the tensor had not been read since. */
  previous: number;
}

/** True once the program has passed a step boundary (and automatic release is on). */
export function stepsStarted(): boolean {
  return started && enabled;
}

let unstepped: (t: Tensor) => void = () => {};

/** @internal scope.ts's way to re-home tensors when automatic release is switched off. */
export function onUnstepped(f: (t: Tensor) => void): void {
  unstepped = f;
}

/** @internal Hands an unowned tensor to the steps. */
export function manage(t: Tensor): void {
  t._lastRead = step;
  t._home = lastDriver;
  stepped.add(t);
  sinceLastBoundary.push(t);
}

/** @internal Takes a tensor back (it was kept, disposed, or adopted by a scope). */
export function unmanage(t: Tensor): void {
  stepped.delete(t);
}

/** Each driver's latest boundary count. */
const lastBoundary = new WeakMap<object, number>();
/** The driver of the latest boundary: tensors made now belong to its loop. */
let lastDriver: object | null = null;

/**
 * Marks a boundary of `driver` (`what` names it in error messages): releases every stepped
 * tensor no op has read since this driver's previous boundary. `inUse` (a module call's
 * arguments) counts as read now. A training step (`takeOver`) first adopts the tensors made
 * since the latest boundary, whoever's it was, once this driver has a previous boundary (data
 * prepared before a loop's first step stays out of it).
 */
export function stepBoundary(
  driver: object,
  what: string,
  inUse: Iterable<Tensor> = [],
  takeOver = false,
): void {
  if (!enabled) return;
  started = true;
  step++;
  for (const t of inUse) t._lastRead = step;
  const prev = lastBoundary.get(driver);
  lastBoundary.set(driver, step);
  lastDriver = driver;
  const recent = sinceLastBoundary;
  sinceLastBoundary = [];
  if (prev === undefined) return;
  if (takeOver) for (const t of recent) if (stepped.has(t)) t._home = driver;
  for (const t of stepped) {
    if (t._home === driver && t._lastRead < prev) {
      stepped.delete(t);
      t._release = { step, boundary: what, lastRead: t._lastRead, previous: prev };
      t.dispose();
    }
  }
}

/** How many tensors the steps currently hold (for tests and `nb.memory()`). */
export function steppedCount(): number {
  return stepped.size;
}

/**
 * Turns automatic release on or off (on by default). Turning it off hands every stepped tensor
 * to the FinalizationRegistry's care, as before the first boundary.
 */
export function setAutoRelease(on: boolean): void {
  enabled = on;
  if (!on) {
    started = false;
    sinceLastBoundary = [];
    for (const t of [...stepped]) {
      stepped.delete(t);
      unstepped(t); // back to the FinalizationRegistry's care
    }
  }
}

/** @internal Forgets all step state (tests). */
export function resetSteps(): void {
  setAutoRelease(false);
  enabled = true;
  step = 0;
  lastDriver = null;
  sinceLastBoundary = [];
}
