// `einsum` lowered to ops that already have gradients: a sum over labels only one operand
// uses, a permute and reshape into `[batch, m, k] @ [batch, k, n]`, one matmul, and a
// reshape and permute into the output's label order. More than two operands contract left
// to right. Repeated labels within one operand (diagonals) are not supported.
import { ShapeError, ValueError, fmt } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { releaseIntermediates } from '../autograd/node.js';
import { matmul } from './matmul.js';
import { sum } from './reduce.js';
import { expand, permute, reshape } from './shape.js';

/** One operand during the contraction: a tensor and one label per dim. */
interface Term {
  t: Tensor;
  labels: string[];
}

const LETTER = /^[a-zA-Z]$/;

/** Splits an operand's subscript into labels, the ellipsis becoming `ndim - letters` labels. */
function parseTerm(sub: string, ndim: number, eq: string, which: string): string[] {
  const parts = sub.split('...');
  if (parts.length > 2) throw new ValueError(`einsum: more than one ellipsis in '${eq}'`);
  const letters = parts.join('');
  for (const c of letters) {
    if (!LETTER.test(c)) throw new ValueError(`einsum: invalid subscript '${c}' in '${eq}'`);
  }
  if (parts.length === 1) {
    if (letters.length !== ndim) {
      throw new ShapeError(
        `einsum: ${which} has ${ndim} dims but subscript '${sub}' names ${letters.length} in '${eq}'`,
      );
    }
    return [...letters];
  }
  const rest = ndim - letters.length;
  if (rest < 0) {
    throw new ShapeError(
      `einsum: ${which} has ${ndim} dims, fewer than subscript '${sub}' names in '${eq}'`,
    );
  }
  // Ellipsis dims get labels '0', '1', ... counted from the right, so they align across operands.
  const dots = Array.from({ length: rest }, (_, i) => String(rest - 1 - i));
  return [...parts[0], ...dots, ...parts[1]];
}

/** Sums away dims whose label no later consumer (other operands or the output) needs. */
function reduceUnused(term: Term, needed: Set<string>, temps: Tensor[]): Term {
  const drop = term.labels.map((l, d) => (needed.has(l) ? -1 : d)).filter((d) => d >= 0);
  if (drop.length === 0) return term;
  const t = sum(term.t, drop);
  temps.push(t);
  return { t, labels: term.labels.filter((l) => needed.has(l)) };
}

/** Permutes `term` to `order` (a permutation of its labels). */
function arrange(term: Term, order: string[], temps: Tensor[]): Tensor {
  const perm = order.map((l) => term.labels.indexOf(l));
  if (perm.every((p, i) => p === i)) return term.t;
  const t = permute(term.t, perm);
  temps.push(t);
  return t;
}

/** Contracts two terms, keeping the labels in `keep`. */
function contract(
  a: Term,
  b: Term,
  keep: Set<string>,
  sizes: Map<string, number>,
  temps: Tensor[],
): Term {
  const inB = new Set(b.labels);
  const inA = new Set(a.labels);
  const batch = a.labels.filter((l) => inB.has(l) && keep.has(l));
  const summed = a.labels.filter((l) => inB.has(l) && !keep.has(l));
  const aOnly = a.labels.filter((l) => !inB.has(l));
  const bOnly = b.labels.filter((l) => !inA.has(l));
  const size = (ls: string[]) => ls.reduce((p, l) => p * (sizes.get(l) as number), 1);
  // Broadcast size-1 dims (ellipsis broadcasting) to the common size first.
  const widen = (term: Term): Term => {
    const target = term.labels.map((l) => sizes.get(l) as number);
    if (target.every((s, i) => s === term.t.shape[i])) return term;
    const t = expand(term.t, target);
    temps.push(t);
    return { t, labels: term.labels };
  };
  const wa = widen(a);
  const wb = widen(b);
  const at = arrange(wa, [...batch, ...aOnly, ...summed], temps);
  const bt = arrange(wb, [...batch, ...summed, ...bOnly], temps);
  const [nb, m, k, n] = [size(batch), size(aOnly), size(summed), size(bOnly)];
  const a3 = reshape(at, [nb, m, k], 'einsum');
  const b3 = reshape(bt, [nb, k, n], 'einsum');
  const c3 = matmul(a3, b3);
  temps.push(a3, b3, c3);
  const labels = [...batch, ...aOnly, ...bOnly];
  const t = reshape(
    c3,
    labels.map((l) => sizes.get(l) as number),
    'einsum',
  );
  temps.push(t);
  return { t, labels };
}

/**
 * `torch.einsum`: e.g. `einsum('bij,bjk->bik', a, b)`, `einsum('ij->ji', x)`,
 * `einsum('...ij,...jk', a, b)`. Without `->` the output takes the labels used once, in
 * alphabetical order after the ellipsis dims (PyTorch's rule).
 */
export function einsum(equation: string, ...operands: Tensor[]): Tensor {
  const eq = equation.replace(/\s+/g, '');
  const arrow = eq.indexOf('->');
  const lhs = arrow >= 0 ? eq.slice(0, arrow) : eq;
  const subs = lhs.split(',');
  if (subs.length !== operands.length || operands.length === 0) {
    throw new ValueError(
      `einsum: '${equation}' has ${subs.length} operand subscripts but ${operands.length} operands were given`,
    );
  }
  let terms: Term[] = subs.map((s, i) => ({
    t: operands[i],
    labels: parseTerm(s, operands[i].ndim, equation, `operand ${i} ${fmt(operands[i].shape)}`),
  }));
  const sizes = new Map<string, number>();
  const counts = new Map<string, number>();
  for (const [i, term] of terms.entries()) {
    if (new Set(term.labels).size !== term.labels.length) {
      throw new ValueError(
        `einsum: operand ${i} repeats a subscript in '${equation}' (diagonals are not supported)`,
      );
    }
    term.labels.forEach((l, d) => {
      const s = term.t.shape[d];
      const prev = sizes.get(l);
      if (prev !== undefined && prev !== s && prev !== 1 && s !== 1) {
        throw new ShapeError(
          `einsum: subscript '${/\d/.test(l) ? '...' : l}' has size ${prev} and ${s} in '${equation}' (operand ${i} ${fmt(term.t.shape)})`,
        );
      }
      sizes.set(l, prev === undefined || prev === 1 ? s : prev);
      counts.set(l, (counts.get(l) ?? 0) + 1);
    });
  }
  const dots = [...sizes.keys()].filter((l) => /\d/.test(l)).sort((x, y) => Number(y) - Number(x));
  let out: string[];
  if (arrow >= 0) {
    const rhs = eq.slice(arrow + 2);
    const parts = rhs.split('...');
    if (parts.length > 2) throw new ValueError(`einsum: more than one ellipsis in '${equation}'`);
    out = parts.length === 2 ? [...parts[0], ...dots, ...parts[1]] : [...rhs];
    for (const l of out) {
      if (!sizes.has(l)) {
        throw new ValueError(
          `einsum: output subscript '${l}' does not appear in an input of '${equation}'`,
        );
      }
    }
    if (new Set(out).size !== out.length) {
      throw new ValueError(`einsum: output subscripts repeat in '${equation}'`);
    }
    if (parts.length === 1 && dots.length > 0) {
      // torch sums no ellipsis dims away implicitly; an explicit output must name them.
      throw new ValueError(`einsum: the output of '${equation}' must include the ellipsis`);
    }
  } else {
    const once = [...counts.entries()].filter(([l, c]) => c === 1 && !/\d/.test(l)).map(([l]) => l);
    out = [...dots, ...once.sort()];
  }
  const temps: Tensor[] = [];
  const outSet = new Set(out);
  // Sum every label used by one operand only and absent from the output, then contract.
  const neededBy = (skip: number): Set<string> => {
    const s = new Set(outSet);
    terms.forEach((t, j) => j !== skip && t.labels.forEach((l) => s.add(l)));
    return s;
  };
  terms = terms.map((t, i) => reduceUnused(t, neededBy(i), temps));
  while (terms.length > 1) {
    const [a, b, ...rest] = terms;
    const keep = new Set(outSet);
    rest.forEach((t) => t.labels.forEach((l) => keep.add(l)));
    terms = [contract(a, b, keep, sizes, temps), ...rest];
  }
  const last = terms[0];
  let result = arrange(last, out, temps);
  if (result === operands[0] || temps.length === 0)
    result = reshape(result, result.shape, 'einsum');
  releaseIntermediates(
    result,
    temps.filter((t) => t !== result),
  );
  return result;
}
