// Reverse-mode accumulation over the recorded graph. The walk is iterative (a 10,000-op chain
// cannot overflow the stack), runs with grad mode off, and frees each intermediate gradient as
// soon as it has been pushed to the op's inputs. Leaf gradients are owned by their tensors.
//
// The contract is PyTorch's: a walk frees the graph it passed through, so a second backward
// through it throws unless the first passed `retainGraph`; and a node refuses to run if a
// tensor it reads was modified in place after the op recorded it (version counters).
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Storage } from '../tensor/storage.js';
import { keep } from '../tensor/scope.js';
import { sameShape } from '../tensor/shape.js';
import { checkedTensors, noGrad, outputIndex, type GradNode } from './node.js';
import { addInPlace, clone } from '../ops/copy.js';
import { onesLike } from '../ops/creation.js';

export interface BackwardOptions {
  /** Keep the graph so backward can run through it again (PyTorch's `retain_graph`). */
  retainGraph?: boolean;
}

/** Tensors reachable from `roots`, each after everything it depends on. */
function topoOrder(roots: readonly Tensor[]): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  for (const root of roots) {
    if (visited.has(root)) continue;
    visited.add(root);
    const stack: [Tensor, number][] = [[root, 0]];
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [t, i] = top;
      const inputs = t._node?.inputs ?? [];
      if (i < inputs.length) {
        top[1]++;
        const next = inputs[i];
        if (next && !visited.has(next)) {
          visited.add(next);
          stack.push([next, 0]);
        }
      } else {
        stack.pop();
        order.push(t);
      }
    }
  }
  return order;
}

/** Checks `root`/`grad` the way `Tensor.backward` and `autograd.grad` need them. */
function seedFor(op: string, root: Tensor, grad: Tensor | null | undefined): Tensor {
  if (!root.requiresGrad) {
    throw new ValueError(
      `${op}: tensor ${fmt(root.shape)} does not require grad and has no grad_fn`,
    );
  }
  if (grad == null) {
    if (root.size !== 1) {
      throw new ValueError(
        `${op}: grad can be implicitly created only for one-element outputs, got shape ${fmt(root.shape)}`,
      );
    }
    return onesLike(root);
  }
  if (!sameShape(grad.shape, root.shape)) {
    throw new ShapeError(
      `${op}: grad shape ${fmt(grad.shape)} does not match output shape ${fmt(root.shape)}`,
    );
  }
  if (grad.dtype !== root.dtype) {
    throw new DTypeError(`${op}: grad is ${grad.dtype} but the output is ${root.dtype}`);
  }
  return clone(grad);
}

export function backward(root: Tensor, grad?: Tensor, opts: BackwardOptions = {}): void {
  noGrad(() => {
    const seed = seedFor('backward', root, grad);
    walk([root], [seed], opts.retainGraph === true, null);
  });
}

export interface GradOptions {
  /** The gradient of each output (default: 1 for one-element outputs). */
  gradOutputs?: readonly (Tensor | null)[] | Tensor | null;
  /** Keep the graph for another backward (default false). */
  retainGraph?: boolean;
  /** Return null for an input the outputs do not depend on, instead of throwing. */
  allowUnused?: boolean;
}

/**
 * `torch.autograd.grad`: the gradients of `outputs` with respect to `inputs`, returned in input
 * order, without touching any tensor's `.grad`.
 */
export function grad(
  outputs: Tensor | readonly Tensor[],
  inputs: Tensor | readonly Tensor[],
  opts: GradOptions = {},
): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? (outputs as Tensor[]) : [outputs as Tensor];
  const ins = Array.isArray(inputs) ? (inputs as Tensor[]) : [inputs as Tensor];
  const gos =
    opts.gradOutputs == null
      ? outs.map(() => null)
      : Array.isArray(opts.gradOutputs)
        ? (opts.gradOutputs as (Tensor | null)[])
        : [opts.gradOutputs as Tensor];
  if (gos.length !== outs.length) {
    throw new ValueError(`autograd.grad: got ${gos.length} gradOutputs for ${outs.length} outputs`);
  }
  ins.forEach((t, i) => {
    if (!t.requiresGrad) {
      throw new ValueError(`autograd.grad: input ${i} ${fmt(t.shape)} does not require grad`);
    }
  });
  return noGrad(() => {
    const seeds = outs.map((o, i) => seedFor('autograd.grad', o, gos[i]));
    const found = new Map<Tensor, Tensor>();
    walk(outs, seeds, opts.retainGraph === true, { targets: new Set(ins), found });
    return ins.map((t, i) => {
      const g = found.get(t) ?? null;
      if (g === null && !opts.allowUnused) {
        throw new ValueError(
          `autograd.grad: input ${i} ${fmt(t.shape)} is not reachable from the outputs (pass allowUnused: true to get null)`,
        );
      }
      return g;
    });
  });
}

/** Where `autograd.grad` collects gradients instead of `.grad`. */
interface Capture {
  targets: ReadonlySet<Tensor>;
  found: Map<Tensor, Tensor>;
}

function secondBackward(name: string): ValueError {
  return new ValueError(
    `backward: trying to backward through the graph a second time (through ${name}); the graph is ` +
      `freed when backward() runs. Pass { retainGraph: true } to the first backward() (or ` +
      `autograd.grad) if you need to backward through it again`,
  );
}

/** Throws if a tensor the node reads was modified in place after the op recorded it. */
function checkVersions(node: GradNode): void {
  const ts = checkedTensors(node);
  ts.forEach((t, i) => {
    if (t.isDisposed) return; // reading it will say so, with why it was freed
    const v = t.storage().version;
    if (v !== node.versions[i]) {
      throw new ValueError(
        `backward: one of the variables needed for gradient computation has been modified by an ` +
          `inplace operation: ${t.dtype} ${fmt(t.shape)}, read by ${node.name}, is at version ${v}; ` +
          `expected version ${node.versions[i]} instead`,
      );
    }
  });
}

function walk(
  roots: readonly Tensor[],
  seeds: readonly Tensor[],
  retainGraph: boolean,
  capture: Capture | null,
): void {
  const order = topoOrder(roots);
  // Check the whole graph before touching anything, so a refused backward changes nothing.
  for (const t of order) {
    const node = t._node;
    if (!node) continue;
    if (node.freed) throw secondBackward(node.name);
    checkVersions(node);
  }
  const grads = new Map<Tensor, Tensor>();
  // Storages that some pending gradient holds: a second holder gets a copy, so in-place
  // accumulation can never change another tensor's gradient.
  const held = new Set<Storage>();

  /** Adds `g` to `t`'s pending gradient; true when `g` itself was stored (not copied). */
  const push = (t: Tensor, g: Tensor, op: string): boolean => {
    if (!sameShape(g.shape, t.shape)) {
      throw new ShapeError(`backward of ${op}: gradient ${fmt(g.shape)} for input ${fmt(t.shape)}`);
    }
    const prev = grads.get(t);
    if (prev) {
      addInPlace(prev, g);
      return false;
    }
    const own = held.has(g.storage()) ? clone(g) : g;
    held.add(own.storage());
    grads.set(t, own);
    return own === g;
  };
  roots.forEach((r, i) => {
    if (!push(r, seeds[i], 'backward')) seeds[i].dispose();
  });

  // A node with several outputs runs once, when the last of its outputs in the order has been
  // reached: every output comes after the node's inputs in `order`, so the inputs are still
  // ahead in the reverse walk. `pending` holds the outputs' gradients until then.
  const remaining = new Map<GradNode, number>();
  for (const t of order) if (t._node) remaining.set(t._node, (remaining.get(t._node) ?? 0) + 1);
  const pending = new Map<GradNode, (Tensor | null)[]>();

  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i];
    const g = grads.get(t);
    if (g) {
      grads.delete(t);
      if (capture?.targets.has(t)) {
        capture.found.set(t, keep(clone(g)));
      } else if (!capture && t._retainsGrad && t._node !== null) {
        storeGrad(t, clone(g));
      }
    }
    const node = t._node;
    if (node === null) {
      if (!g) continue;
      held.delete(g.storage());
      if (capture) g.dispose();
      else accumulateLeaf(t, g);
      continue;
    }
    let gs = pending.get(node);
    if (!gs) {
      gs = new Array<Tensor | null>(node.nOutputs).fill(null);
      pending.set(node, gs);
    }
    if (g) gs[outputIndex(t)] = g;
    const left = remaining.get(node)! - 1;
    remaining.set(node, left);
    if (left > 0) continue;
    pending.delete(node);
    if (gs.every((x) => x === null)) continue;
    for (const x of gs) if (x) held.delete(x.storage());
    const results = node.backward(gs);
    if (!retainGraph) node.freed = true;
    const stored = new Set<Tensor>();
    node.inputs.forEach((input, k) => {
      const gi = results[k];
      if (input && gi && push(input, gi, node.name)) stored.add(gi);
    });
    // The outputs' gradients and whatever the backward made are done unless stored above.
    for (const x of new Set([...gs, ...results])) if (x && !stored.has(x)) x.dispose();
  }
}

/** Moves `g` into `t.grad`, or adds it in place to an existing gradient. */
function storeGrad(t: Tensor, g: Tensor): void {
  if (t.grad && !t.grad.isDisposed) {
    addInPlace(t.grad, g);
    g.dispose();
  } else {
    t.grad = keep(g);
  }
}

function accumulateLeaf(t: Tensor, g: Tensor): void {
  if (!t.requiresGrad) {
    g.dispose();
    return;
  }
  storeGrad(t, g);
}
