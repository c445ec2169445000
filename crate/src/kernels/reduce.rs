//! Reductions along the middle axis of a contiguous `[outer, r, inner]` array, and the lane
//! helpers that `softmax` and `copy` share. With `inner == 1` each output reduces one
//! contiguous row (SIMD along it); otherwise rows of `inner` values are combined (SIMD across
//! them), one tile of at most `TILE` columns at a time when per-column state must sit on the stack.

use crate::abi::{ARG_MAX, ARG_MIN, REDUCE_LOGSUMEXP, REDUCE_MAX, REDUCE_MIN, REDUCE_SUM};
use crate::math::{exp, exp4, log};
use crate::simd::F32x4;

/// Longest run a pairwise sum adds sequentially (over 16 lanes). Rounding error then grows
/// with `LEAF / 16 + log2(n / LEAF)` rather than with `n`.
const LEAF: usize = 256;
/// Rows a column sum adds sequentially before merging halves pairwise.
const LEAF_ROWS: usize = 16;
/// Columns per tile when `inner > 1`; per-column state is a stack array of this length.
pub(crate) const TILE: usize = 128;

/// Reduces `x` (`[outer, r, inner]`) into `out` (`[outer, inner]`) with a `REDUCE_*` op.
pub fn reduce_f32(op: u32, x: &[f32], out: &mut [f32], outer: usize, r: usize, inner: usize) {
    reduce_cols_f32(op, x, out, outer, r, inner, 0, inner);
}

/// `reduce_f32` of columns `c0..c1` only (of every block), writing only those outputs. Each
/// column is reduced alone, by the same operations whatever range holds it as long as `c0` and
/// `c1` are multiples of 4 (or `c1 == inner`), so SIMD lanes and the scalar tail cover the same
/// columns: the pool's split when there are few blocks but many columns (a bias gradient's
/// `sum(0)`).
#[allow(clippy::too_many_arguments)]
pub fn reduce_cols_f32(
    op: u32,
    x: &[f32],
    out: &mut [f32],
    outer: usize,
    r: usize,
    inner: usize,
    c0: usize,
    c1: usize,
) {
    debug_assert!(r >= 1 && c0 <= c1 && c1 <= inner);
    debug_assert!(x.len() == outer * r * inner && out.len() == outer * inner);
    if out.is_empty() || c0 == c1 {
        return;
    }
    for (xb, ob) in x.chunks_exact(r * inner).zip(out.chunks_exact_mut(inner)) {
        let (xc, oc) = (&xb[c0..], &mut ob[c0..c1]);
        match op {
            REDUCE_SUM => sum_block(xc, inner, r, oc),
            REDUCE_MAX => extreme_block(xc, inner, r, oc, F32x4::max, max_nan),
            REDUCE_MIN => extreme_block(xc, inner, r, oc, F32x4::min, min_nan),
            REDUCE_LOGSUMEXP => logsumexp_block(xc, inner, r, oc),
            _ => debug_assert!(false, "unknown reduce_f32 op {}", op),
        }
    }
}

/// `reduce_f32` for int32: SUM (wrapping), MAX, MIN.
pub fn reduce_i32(op: u32, x: &[i32], out: &mut [i32], outer: usize, r: usize, inner: usize) {
    debug_assert!(r >= 1);
    debug_assert!(x.len() == outer * r * inner && out.len() == outer * inner);
    if out.is_empty() {
        return;
    }
    // Plain loops over a generic `f`: LLVM vectorises integer add/max/min reductions itself.
    match op {
        REDUCE_SUM => fold_i32(x, out, r, inner, i32::wrapping_add),
        REDUCE_MAX => fold_i32(x, out, r, inner, i32::max),
        REDUCE_MIN => fold_i32(x, out, r, inner, i32::min),
        _ => debug_assert!(false, "unknown reduce_i32 op {}", op),
    }
}

/// Index (int32) of the first maximum (`ARG_MAX`) or minimum (`ARG_MIN`) along the middle axis.
/// A NaN counts as the extreme, so the first NaN wins, as in PyTorch.
pub fn argreduce_f32(op: u32, x: &[f32], out: &mut [i32], outer: usize, r: usize, inner: usize) {
    debug_assert!(r >= 1);
    debug_assert!(x.len() == outer * r * inner && out.len() == outer * inner);
    if out.is_empty() {
        return;
    }
    for (xb, ob) in x.chunks_exact(r * inner).zip(out.chunks_exact_mut(inner)) {
        match op {
            ARG_MAX => arg_block(xb, ob, F32x4::max, max_nan, |v, b| v > b),
            ARG_MIN => arg_block(xb, ob, F32x4::min, min_nan, |v, b| v < b),
            _ => debug_assert!(false, "unknown argreduce_f32 op {}", op),
        }
    }
}

// ---------------------------------------------------------------- f32 blocks

// The block functions reduce the `ob.len()` columns starting at `x[0]` of `r` rows `inner` apart.

fn sum_block(x: &[f32], inner: usize, r: usize, ob: &mut [f32]) {
    if inner == 1 {
        ob[0] = sum_f32(&x[..r]);
        return;
    }
    for (c0, w) in tiles(ob.len()) {
        let add_row = |acc: &mut [f32], row: &[f32]| zip2(acc, row, F32x4::add, |a, v| a + v);
        col_sum(&x[c0..], inner, r, &mut ob[c0..c0 + w], add_row);
    }
}

fn extreme_block<V, S>(x: &[f32], inner: usize, r: usize, ob: &mut [f32], fv: V, fs: S)
where
    V: Fn(F32x4, F32x4) -> F32x4 + Copy,
    S: Fn(f32, f32) -> f32 + Copy,
{
    if inner == 1 {
        ob[0] = fold_row(&x[..r], fv, fs);
    } else {
        fold_rows(x, inner, r, ob, fv, fs);
    }
}

fn logsumexp_block(x: &[f32], inner: usize, r: usize, ob: &mut [f32]) {
    if inner == 1 {
        ob[0] = logsumexp_row(&x[..r]);
        return;
    }
    // `ob` holds the column maxima until each tile's sums are known.
    fold_rows(x, inner, r, ob, F32x4::max, max_nan);
    for (c0, w) in tiles(ob.len()) {
        let mut sums = [0.0f32; TILE];
        let m = &ob[c0..c0 + w];
        let add_row = |acc: &mut [f32], row: &[f32]| {
            zip3(
                acc,
                row,
                m,
                |a, v, m| a.add(exp4(v.sub(m))),
                |a, v, m| a + exp(v - m),
            )
        };
        col_sum(&x[c0..], inner, r, &mut sums[..w], add_row);
        for (o, &s) in ob[c0..c0 + w].iter_mut().zip(&sums[..w]) {
            *o = shifted_log(*o, s);
        }
    }
}

fn logsumexp_row(x: &[f32]) -> f32 {
    let m = fold_row(x, F32x4::max, max_nan);
    if !m.is_finite() {
        return m;
    }
    let mv = F32x4::splat(m);
    m + log(sum_map(x, |v| exp4(v.sub(mv)), |v| exp(v - m)))
}

/// `m + log(s)` for a sum `s` of `exp(x - m)`. A NaN or infinite max is already the answer:
/// all -inf gives -inf and any +inf gives +inf, as PyTorch's logsumexp.
fn shifted_log(m: f32, s: f32) -> f32 {
    if m.is_finite() {
        m + log(s)
    } else {
        m
    }
}

/// Folds `r` rows (`inner` apart, from `x[0]`) into `ob`, `ob.len()` columns wide, with `f`.
fn fold_rows<V, S>(x: &[f32], inner: usize, r: usize, ob: &mut [f32], fv: V, fs: S)
where
    V: Fn(F32x4, F32x4) -> F32x4 + Copy,
    S: Fn(f32, f32) -> f32 + Copy,
{
    let w = ob.len();
    ob.copy_from_slice(&x[..w]);
    for row in x.chunks(inner).take(r).skip(1) {
        zip2(ob, &row[..w], fv, fs);
    }
}

/// `acc[k] = Σ_j` (terms of row `j`) for the `rows` rows `x[j * inner..][..acc.len()]`: `add_row`
/// adds one row's terms into `acc`; leaves of `LEAF_ROWS` rows are merged pairwise.
fn col_sum<F>(x: &[f32], inner: usize, rows: usize, acc: &mut [f32], add_row: F)
where
    F: Fn(&mut [f32], &[f32]) + Copy,
{
    let w = acc.len();
    debug_assert!(w <= TILE);
    if rows <= LEAF_ROWS {
        acc.fill(0.0);
        for row in x.chunks(inner).take(rows) {
            add_row(acc, &row[..w]);
        }
        return;
    }
    let h = rows / 2;
    let (lo, hi) = x.split_at(h * inner);
    col_sum(lo, inner, h, acc, add_row);
    let mut part = [0.0f32; TILE];
    col_sum(hi, inner, rows - h, &mut part[..w], add_row);
    zip2(acc, &part[..w], F32x4::add, |a, p| a + p);
}

// ---------------------------------------------------------------- int32 and argmax blocks

fn fold_i32<F>(x: &[i32], out: &mut [i32], r: usize, inner: usize, f: F)
where
    F: Fn(i32, i32) -> i32 + Copy,
{
    for (xb, ob) in x.chunks_exact(r * inner).zip(out.chunks_exact_mut(inner)) {
        let (first, rest) = xb.split_at(inner);
        if inner == 1 {
            ob[0] = rest.iter().fold(first[0], |a, &v| f(a, v));
            continue;
        }
        ob.copy_from_slice(first);
        for row in rest.chunks_exact(inner) {
            for (o, &v) in ob.iter_mut().zip(row) {
                *o = f(*o, v);
            }
        }
    }
}

fn arg_block<V, S, B>(xb: &[f32], ob: &mut [i32], fv: V, fs: S, beats: B)
where
    V: Fn(F32x4, F32x4) -> F32x4 + Copy,
    S: Fn(f32, f32) -> f32 + Copy,
    B: Fn(f32, f32) -> bool + Copy,
{
    let inner = ob.len();
    if inner == 1 {
        ob[0] = arg_row(xb, fv, fs);
        return;
    }
    for (c0, w) in tiles(inner) {
        arg_cols(&xb[c0..], inner, &mut ob[c0..c0 + w], beats);
    }
}

/// The extreme by a SIMD fold (NaN-propagating), then the first element equal to it.
fn arg_row<V, S>(x: &[f32], fv: V, fs: S) -> i32
where
    V: Fn(F32x4, F32x4) -> F32x4 + Copy,
    S: Fn(f32, f32) -> f32 + Copy,
{
    let m = fold_row(x, fv, fs);
    let hit = if m.is_nan() {
        x.iter().position(|v| v.is_nan())
    } else {
        x.iter().position(|&v| v == m)
    };
    hit.unwrap_or(0) as i32
}

/// One tile of columns: the best value per column on the stack, its row index in `idx`.
fn arg_cols<B: Fn(f32, f32) -> bool>(x: &[f32], inner: usize, idx: &mut [i32], beats: B) {
    let w = idx.len();
    let mut best = [0.0f32; TILE];
    let best = &mut best[..w];
    let mut rows = tile_rows(x, inner, w);
    best.copy_from_slice(rows.next().unwrap_or(&[]));
    idx.fill(0);
    for (j, row) in (1..).zip(rows) {
        for ((b, i), &v) in best.iter_mut().zip(idx.iter_mut()).zip(row) {
            // Strict comparison keeps the first of ties; a NaN replaces any number, never itself.
            if beats(v, *b) || (v.is_nan() && !b.is_nan()) {
                *b = v;
                *i = j;
            }
        }
    }
}

// ---------------------------------------------------------------- lane and tile helpers

/// `max` that propagates NaN, as `F32x4::max` and `torch.max`.
pub(crate) fn max_nan(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

/// `min` that propagates NaN.
pub(crate) fn min_nan(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.min(b)
    }
}

/// `(first column, width)` of each tile of at most `TILE` columns in a row of `inner` values.
pub(crate) fn tiles(inner: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..inner)
        .step_by(TILE)
        .map(move |c0| (c0, TILE.min(inner - c0)))
}

/// The `w` leading values of each row of stride `inner`, for `x` starting at a tile's column.
pub(crate) fn tile_rows(x: &[f32], inner: usize, w: usize) -> impl Iterator<Item = &[f32]> {
    x.chunks(inner).map(move |row| &row[..w])
}

/// `tile_rows` for writing.
pub(crate) fn tile_rows_mut(
    x: &mut [f32],
    inner: usize,
    w: usize,
) -> impl Iterator<Item = &mut [f32]> {
    x.chunks_mut(inner).map(move |row| &mut row[..w])
}

/// `dst[i] = f(dst[i])`, four lanes at a time.
pub(crate) fn map1<V, S>(dst: &mut [f32], fv: V, fs: S)
where
    V: Fn(F32x4) -> F32x4,
    S: Fn(f32) -> f32,
{
    let mut d4 = dst.chunks_exact_mut(4);
    for d in &mut d4 {
        fv(F32x4::load(d)).store(d);
    }
    for d in d4.into_remainder() {
        *d = fs(*d);
    }
}

/// `dst[i] = f(dst[i], a[i])`, four lanes at a time.
pub(crate) fn zip2<V, S>(dst: &mut [f32], a: &[f32], fv: V, fs: S)
where
    V: Fn(F32x4, F32x4) -> F32x4,
    S: Fn(f32, f32) -> f32,
{
    debug_assert_eq!(dst.len(), a.len());
    let mut d4 = dst.chunks_exact_mut(4);
    let mut a4 = a.chunks_exact(4);
    for (d, x) in (&mut d4).zip(&mut a4) {
        fv(F32x4::load(d), F32x4::load(x)).store(d);
    }
    for (d, &x) in d4.into_remainder().iter_mut().zip(a4.remainder()) {
        *d = fs(*d, x);
    }
}

/// `dst[i] = f(dst[i], a[i], b[i])`, four lanes at a time.
pub(crate) fn zip3<V, S>(dst: &mut [f32], a: &[f32], b: &[f32], fv: V, fs: S)
where
    V: Fn(F32x4, F32x4, F32x4) -> F32x4,
    S: Fn(f32, f32, f32) -> f32,
{
    debug_assert!(dst.len() == a.len() && dst.len() == b.len());
    let mut d4 = dst.chunks_exact_mut(4);
    let (mut a4, mut b4) = (a.chunks_exact(4), b.chunks_exact(4));
    for ((d, x), y) in (&mut d4).zip(&mut a4).zip(&mut b4) {
        fv(F32x4::load(d), F32x4::load(x), F32x4::load(y)).store(d);
    }
    let tail = d4.into_remainder().iter_mut().zip(a4.remainder());
    for ((d, &x), &y) in tail.zip(b4.remainder()) {
        *d = fs(*d, x, y);
    }
}

/// Folds a non-empty row with an idempotent `f` (max or min) in four vector accumulators.
pub(crate) fn fold_row<V, S>(x: &[f32], fv: V, fs: S) -> f32
where
    V: Fn(F32x4, F32x4) -> F32x4 + Copy,
    S: Fn(f32, f32) -> f32 + Copy,
{
    debug_assert!(!x.is_empty());
    let mut acc = [F32x4::splat(x[0]); 4];
    let mut x16 = x.chunks_exact(16);
    for c in &mut x16 {
        for (k, a) in acc.iter_mut().enumerate() {
            *a = fv(*a, F32x4::load(&c[4 * k..]));
        }
    }
    let mut x4 = x16.remainder().chunks_exact(4);
    for c in &mut x4 {
        acc[0] = fv(acc[0], F32x4::load(c));
    }
    let v = fv(fv(acc[0], acc[1]), fv(acc[2], acc[3])).to_array();
    let m = fs(fs(v[0], v[1]), fs(v[2], v[3]));
    x4.remainder().iter().fold(m, |m, &t| fs(m, t))
}

/// `Σ x[i]`, summed pairwise.
pub(crate) fn sum_f32(x: &[f32]) -> f32 {
    pairwise(x, x, |v, _| v, |v, _| v)
}

/// `(start, len)` of subtree `i` (left to right) of the `2^depth` at depth `depth` of
/// `pairwise`'s halving of `n` terms. A partition of `0..n` whatever the arguments.
fn subtree(n: usize, depth: u32, i: usize) -> (usize, usize) {
    let (mut start, mut len) = (0, n);
    for level in (0..depth).rev() {
        let h = len / 32 * 16;
        if (i >> level) & 1 == 0 {
            len = h;
        } else {
            start += h;
            len -= h;
        }
    }
    (start, len)
}

/// Whether `pairwise` over `n` terms halves every node above depth `depth` (each has more than
/// `LEAF` terms), so its subtrees there, summed and added back in tree order, are its own
/// operations. A left half is never longer than its right, so the leftmost path is the test.
pub fn parts_fit(n: usize, depth: u32) -> bool {
    let mut len = n;
    for _ in 0..depth {
        if len <= LEAF {
            return false;
        }
        len = len / 32 * 16;
    }
    true
}

/// Writes part `i` of a whole-tensor reduction, for `i` in `begin..end`, to `out[i]`: the
/// reduction of subtree `i` of `x`'s pairwise tree at `depth` (`REDUCE_SUM`: its sum,
/// `REDUCE_MAX`/`REDUCE_MIN`: its extreme, `REDUCE_LOGSUMEXP`: its sum of `exp(x - shift)`).
/// The pool's split of a whole-tensor reduction; `combine_parts_f32` finishes it.
pub fn reduce_parts_f32(
    op: u32,
    x: &[f32],
    depth: u32,
    shift: f32,
    out: &mut [f32],
    begin: usize,
    end: usize,
) {
    debug_assert!(parts_fit(x.len(), depth));
    let sv = F32x4::splat(shift);
    for (i, o) in out.iter_mut().enumerate().take(end).skip(begin) {
        let (start, len) = subtree(x.len(), depth, i);
        let part = &x[start..start + len];
        *o = match op {
            REDUCE_SUM => sum_f32(part),
            REDUCE_MAX => fold_row(part, F32x4::max, max_nan),
            REDUCE_MIN => fold_row(part, F32x4::min, min_nan),
            REDUCE_LOGSUMEXP => sum_map(part, |v| exp4(v.sub(sv)), |v| exp(v - shift)),
            _ => {
                debug_assert!(false, "unknown reduce_parts_f32 op {}", op);
                0.0
            }
        };
    }
}

/// The whole reduction from `reduce_parts_f32`'s parts (a power of two of them): sums (and
/// `LOGSUMEXP`'s sum of exponentials) are added in tree order, each pair of neighbours, then
/// each pair of those..., which repeats the top levels of `pairwise`; extremes fold, which
/// gives the same value in any order. So when `parts_fit(n, depth)` the result is
/// `reduce_f32`'s over the whole tensor, bit for bit (`LOGSUMEXP` with `shift` its maximum).
pub fn combine_parts_f32(op: u32, parts: &[f32], shift: f32) -> f32 {
    fn tree(p: &[f32]) -> f32 {
        if p.len() == 1 {
            return p[0];
        }
        let (l, r) = p.split_at(p.len() / 2);
        tree(l) + tree(r)
    }
    match op {
        REDUCE_MAX => fold_row(parts, F32x4::max, max_nan),
        REDUCE_MIN => fold_row(parts, F32x4::min, min_nan),
        REDUCE_LOGSUMEXP => shifted_log(shift, tree(parts)),
        _ => tree(parts),
    }
}

/// Writes part `i` of a whole-tensor argmax (`ARG_MAX`) or argmin (`ARG_MIN`), for `i` in
/// `begin..end`, to `out[i]`: the index in `x` of the first extreme of subtree `i` at `depth`
/// (`reduce_parts_f32`'s parts), or -1 for an empty subtree. `combine_arg_parts_f32` picks
/// the whole tensor's first extreme from them.
pub fn arg_parts_f32(op: u32, x: &[f32], depth: u32, out: &mut [i32], begin: usize, end: usize) {
    for (i, o) in out.iter_mut().enumerate().take(end).skip(begin) {
        let (start, len) = subtree(x.len(), depth, i);
        let part = &x[start..start + len];
        *o = if part.is_empty() {
            -1
        } else if op == ARG_MIN {
            start as i32 + arg_row(part, F32x4::min, min_nan)
        } else {
            start as i32 + arg_row(part, F32x4::max, max_nan)
        };
    }
}

/// The whole tensor's argmax/argmin from `arg_parts_f32`'s parts, taken in order: a later
/// part wins only with a strictly better value or the first NaN, so the first of ties stays,
/// as one thread's scan finds it.
pub fn combine_arg_parts_f32(op: u32, x: &[f32], parts: &[i32]) -> i32 {
    let beats = |v: f32, b: f32| if op == ARG_MIN { v < b } else { v > b };
    let mut best: Option<(i32, f32)> = None;
    for &i in parts.iter().filter(|&&i| i >= 0 && (i as usize) < x.len()) {
        let v = x[i as usize];
        best = match best {
            Some((_, b)) if !(beats(v, b) || (v.is_nan() && !b.is_nan())) => best,
            _ => Some((i, v)),
        };
    }
    best.map_or(0, |(i, _)| i)
}

/// `Σ f(x[i])`, summed pairwise.
pub(crate) fn sum_map<V, S>(x: &[f32], fv: V, fs: S) -> f32
where
    V: Fn(F32x4) -> F32x4 + Copy,
    S: Fn(f32) -> f32 + Copy,
{
    pairwise(x, x, move |v, _| fv(v), move |v, _| fs(v))
}

/// `Σ a[i] * b[i]`, summed pairwise.
pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    pairwise(a, b, F32x4::mul, |x, y| x * y)
}

/// `Σ f(a[i], b[i])`: halves until a leaf of at most `LEAF` terms.
fn pairwise<V, S>(a: &[f32], b: &[f32], fv: V, fs: S) -> f32
where
    V: Fn(F32x4, F32x4) -> F32x4 + Copy,
    S: Fn(f32, f32) -> f32 + Copy,
{
    debug_assert_eq!(a.len(), b.len());
    if a.len() <= LEAF {
        return leaf_sum(a, b, fv, fs);
    }
    // A multiple of 16, so the left half runs without a tail.
    let h = a.len() / 32 * 16;
    let ((a0, a1), (b0, b1)) = (a.split_at(h), b.split_at(h));
    pairwise(a0, b0, fv, fs) + pairwise(a1, b1, fv, fs)
}

/// `Σ f(a[i], b[i])` in four vector accumulators, then a scalar tail.
fn leaf_sum<V, S>(a: &[f32], b: &[f32], fv: V, fs: S) -> f32
where
    V: Fn(F32x4, F32x4) -> F32x4 + Copy,
    S: Fn(f32, f32) -> f32 + Copy,
{
    let mut acc = [F32x4::splat(0.0); 4];
    let (mut a16, mut b16) = (a.chunks_exact(16), b.chunks_exact(16));
    for (x, y) in (&mut a16).zip(&mut b16) {
        for (k, s) in acc.iter_mut().enumerate() {
            let (xk, yk) = (&x[4 * k..], &y[4 * k..]);
            *s = s.add(fv(F32x4::load(xk), F32x4::load(yk)));
        }
    }
    let (mut a4, mut b4) = (
        a16.remainder().chunks_exact(4),
        b16.remainder().chunks_exact(4),
    );
    for (k, (x, y)) in (&mut a4).zip(&mut b4).enumerate() {
        acc[k] = acc[k].add(fv(F32x4::load(x), F32x4::load(y)));
    }
    let tail = a4.remainder().iter().zip(b4.remainder());
    let t = tail.fold(0.0, |t, (&x, &y)| t + fs(x, y));
    let v = acc[0].add(acc[1]).add(acc[2].add(acc[3])).to_array();
    (v[0] + v[1]) + (v[2] + v[3]) + t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random;

    const LENS: [usize; 9] = [1, 3, 4, 5, 15, 16, 17, 67, 257];

    /// Every `(outer, r, inner)` the kernels are checked on.
    fn shapes() -> Vec<(usize, usize, usize)> {
        let mut v = vec![];
        for outer in [1, 3] {
            for &r in &LENS {
                for &inner in &LENS {
                    v.push((outer, r, inner));
                }
            }
        }
        v
    }

    /// `f` of each column `x[o, :, i]` in f64, laid out as `[outer, inner]`.
    fn reference<T: Copy, U>(
        x: &[T],
        (outer, r, inner): (usize, usize, usize),
        f: impl Fn(&[T]) -> U,
    ) -> Vec<U> {
        let mut out = vec![];
        for o in 0..outer {
            for i in 0..inner {
                let col: Vec<T> = (0..r).map(|j| x[(o * r + j) * inner + i]).collect();
                out.push(f(&col));
            }
        }
        out
    }

    fn run(op: u32, x: &[f32], (outer, r, inner): (usize, usize, usize)) -> Vec<f32> {
        let mut out = vec![-7.0; outer * inner];
        reduce_f32(op, x, &mut out, outer, r, inner);
        out
    }

    fn run_arg(op: u32, x: &[f32], (outer, r, inner): (usize, usize, usize)) -> Vec<i32> {
        let mut out = vec![-7; outer * inner];
        argreduce_f32(op, x, &mut out, outer, r, inner);
        out
    }

    fn f64_sum(col: &[f32]) -> (f64, f64) {
        let s = col.iter().map(|&v| v as f64).sum();
        (s, col.iter().map(|&v| (v as f64).abs()).sum())
    }

    fn f64_max(col: &[f32]) -> f32 {
        col.iter().fold(f32::NEG_INFINITY, |m, &v| {
            if v.is_nan() || m.is_nan() {
                f32::NAN
            } else {
                m.max(v)
            }
        })
    }

    fn f64_min(col: &[f32]) -> f32 {
        -f64_max(&col.iter().map(|&v| -v).collect::<Vec<_>>())
    }

    fn f64_logsumexp(col: &[f32]) -> f64 {
        let m = col.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        if col.iter().any(|v| v.is_nan()) {
            return f64::NAN;
        }
        if m.is_infinite() {
            return m;
        }
        m + col.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln()
    }

    /// First index of the extreme, with NaN as the most extreme value.
    fn first_arg(col: &[f32], beats: impl Fn(f32, f32) -> bool) -> i32 {
        let mut best = 0;
        for (j, &v) in col.iter().enumerate() {
            if col[best].is_nan() {
                break;
            }
            if v.is_nan() || beats(v, col[best]) {
                best = j;
            }
        }
        best as i32
    }

    fn same(got: f32, want: f32) -> bool {
        got == want || (got.is_nan() && want.is_nan())
    }

    /// A whole reduction's subtree parts, made in two ranges and combined, are `reduce_f32`'s
    /// bits: sums and log-sum-exps (added back in tree order), maxima and minima.
    #[test]
    fn whole_reductions_in_parts_give_the_same_bits() {
        let ops = [REDUCE_SUM, REDUCE_MAX, REDUCE_MIN, REDUCE_LOGSUMEXP];
        for &n in &[1025, 2048, 4111, 9999, 65_536, 100_003] {
            let mut x = random(n, n as u32, -4.0, 4.0);
            // Signed zeros and a repeated extreme, far apart, for the folds.
            x[7] = -0.0;
            x[n - 3] = 0.0;
            x[n / 2] = 9.5;
            x[n - 1] = 9.5;
            for &op in &ops {
                let mut whole = [0.0f32];
                reduce_f32(op, &x, &mut whole, 1, n, 1);
                let mut shift = [0.0f32];
                reduce_f32(REDUCE_MAX, &x, &mut shift, 1, n, 1);
                for depth in 0..=4u32 {
                    if !parts_fit(n, depth) {
                        continue;
                    }
                    let mut parts = vec![f32::NAN; 1 << depth];
                    let mid = parts.len() / 2;
                    reduce_parts_f32(op, &x, depth, shift[0], &mut parts, 0, mid);
                    reduce_parts_f32(op, &x, depth, shift[0], &mut parts, mid, 1 << depth);
                    let got = combine_parts_f32(op, &parts, shift[0]);
                    let at = format!("op={} n={} depth={}", op, n, depth);
                    assert_eq!(got.to_bits(), whole[0].to_bits(), "{}", at);
                }
            }
        }
        assert!(parts_fit(1025, 2) && !parts_fit(1023, 3) && !parts_fit(256, 1));
    }

    /// A NaN anywhere is the extreme and the log-sum-exp, whichever part holds it; an infinite
    /// maximum is the log-sum-exp.
    #[test]
    fn parts_propagate_nan_and_infinity() {
        let n = 5000;
        for &(at, v) in &[(3, f32::NAN), (4999, f32::NAN), (2600, f32::INFINITY)] {
            let mut x = random(n, 5, -1.0, 1.0);
            x[at] = v;
            for &op in &[REDUCE_MAX, REDUCE_MIN, REDUCE_LOGSUMEXP] {
                let mut shift = [0.0f32];
                reduce_f32(REDUCE_MAX, &x, &mut shift, 1, n, 1);
                let mut parts = [0.0f32; 8];
                reduce_parts_f32(op, &x, 3, shift[0], &mut parts, 0, 8);
                let got = combine_parts_f32(op, &parts, shift[0]);
                let mut whole = [0.0f32];
                reduce_f32(op, &x, &mut whole, 1, n, 1);
                assert!(
                    same(got, whole[0]),
                    "op={} at={} got {} want {}",
                    op,
                    at,
                    got,
                    whole[0]
                );
                let inf_min = op == REDUCE_MIN && v.is_infinite();
                assert!(inf_min || got.is_nan() == v.is_nan(), "op={} at={}", op, at);
            }
        }
    }

    /// A whole argmax/argmin made in subtree parts, in two ranges, is the one-thread index:
    /// ties across parts (the first wins), signed zeros, and NaN in the first, a middle or the
    /// last part.
    #[test]
    fn whole_arg_in_parts_is_the_first_extreme() {
        for &n in &[1025, 4111, 65_536, 100_003] {
            let base = random(n, n as u32, -4.0, 4.0);
            let mut cases = vec![base.clone()];
            let mut ties = base.clone();
            ties[n - 2] = 9.5;
            ties[n / 3] = 9.5;
            ties[n - 5] = -9.5;
            ties[n / 5] = -9.5;
            cases.push(ties);
            let mut zeros = vec![0.0f32; n];
            zeros[n / 2] = -0.0;
            zeros[1] = -0.0;
            cases.push(zeros);
            for &at in &[2, n / 2 + 1, n - 1] {
                let mut nan = base.clone();
                nan[at] = f32::NAN;
                nan[n - 1 - at / 2] = f32::NAN;
                cases.push(nan);
            }
            for x in &cases {
                for &op in &[ARG_MAX, ARG_MIN] {
                    let mut whole = [0i32];
                    argreduce_f32(op, x, &mut whole, 1, n, 1);
                    for depth in 0..=4u32 {
                        let mut parts = vec![-7i32; 1 << depth];
                        let mid = parts.len() / 2;
                        arg_parts_f32(op, x, depth, &mut parts, 0, mid);
                        arg_parts_f32(op, x, depth, &mut parts, mid, 1 << depth);
                        let got = combine_arg_parts_f32(op, x, &parts);
                        assert_eq!(got, whole[0], "op={} n={} depth={}", op, n, depth);
                    }
                }
            }
        }
        // Empty subtrees (a tensor shorter than the parts) are skipped.
        let x = [3.0f32, 1.0, 3.0];
        let mut parts = [0i32; 8];
        arg_parts_f32(ARG_MAX, &x, 3, &mut parts, 0, 8);
        assert!(parts.iter().filter(|&&i| i < 0).count() >= 5);
        assert_eq!(combine_arg_parts_f32(ARG_MAX, &x, &parts), 0);
    }

    /// Columns split at any multiple of 4 give the whole call's bits, and a range writes only
    /// its columns: the pool's split of a reduction with few blocks.
    #[test]
    fn column_ranges_give_the_same_bits() {
        for &(outer, r, inner) in &[(2, 37, 301), (1, 1000, 130), (3, 5, 9), (1, 70, 4)] {
            let x = random(outer * r * inner, (r + inner) as u32, -3.0, 3.0);
            for op in [REDUCE_SUM, REDUCE_MAX, REDUCE_MIN, REDUCE_LOGSUMEXP] {
                let whole = run(op, &x, (outer, r, inner));
                for cut in (0..=inner).step_by(4).chain([inner]) {
                    let mut out = vec![-7.0; outer * inner];
                    reduce_cols_f32(op, &x, &mut out, outer, r, inner, 0, cut);
                    for o in 0..outer {
                        assert!(out[o * inner + cut..(o + 1) * inner]
                            .iter()
                            .all(|&v| v == -7.0));
                    }
                    reduce_cols_f32(op, &x, &mut out, outer, r, inner, cut, inner);
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&out),
                        bits(&whole),
                        "op {op} cut {cut} {outer}x{r}x{inner}"
                    );
                }
            }
        }
    }

    #[test]
    fn sum_matches_f64() {
        for (k, sh) in shapes().into_iter().enumerate() {
            let x = random(sh.0 * sh.1 * sh.2, k as u32, -1.0, 1.0);
            let got = run(REDUCE_SUM, &x, sh);
            for (g, (want, mass)) in got.iter().zip(reference(&x, sh, f64_sum)) {
                let err = (*g as f64 - want).abs();
                assert!(err <= 1e-6 * mass, "{:?}: {} vs {}", sh, g, want);
            }
        }
    }

    #[test]
    fn sum_of_a_million_stays_accurate() {
        let x = random(1_000_000, 99, 0.0, 1.0);
        for sh in [
            (1, 1_000_000, 1),
            (1, 250_000, 4),
            (1, 200_000, 5),
            (2, 500_000, 1),
        ] {
            let got = run(REDUCE_SUM, &x, sh);
            for (g, (want, _)) in got.iter().zip(reference(&x, sh, f64_sum)) {
                let rel = (*g as f64 - want).abs() / want;
                assert!(rel < 1e-6, "{:?}: relative error {:e}", sh, rel);
            }
        }
        // The bound is one a plain running f32 sum misses, so the check above has teeth.
        let naive: f32 = x.iter().sum();
        let want = f64_sum(&x).0;
        assert!((naive as f64 - want).abs() / want > 1e-6);
    }

    #[test]
    fn sum_of_a_million_equal_values_stays_accurate() {
        // Every partial sum rounds the same way here: only pairwise merging keeps the error
        // small (16 running accumulators are off by ~6e-4, a single one by ~1e-2).
        let x = vec![0.1f32; 1_000_000];
        for sh in [(1, 1_000_000, 1), (1, 250_000, 4), (1, 40_000, 25)] {
            let want = sh.1 as f64 * 0.1f32 as f64;
            for g in run(REDUCE_SUM, &x, sh) {
                let rel = (g as f64 - want).abs() / want;
                assert!(rel < 1e-6, "{:?}: relative error {:e}", sh, rel);
            }
        }
    }

    #[test]
    fn max_min_match_reference() {
        for (k, sh) in shapes().into_iter().enumerate() {
            let x = random(sh.0 * sh.1 * sh.2, 1000 + k as u32, -5.0, 5.0);
            assert_eq!(
                run(REDUCE_MAX, &x, sh),
                reference(&x, sh, f64_max),
                "{:?}",
                sh
            );
            assert_eq!(
                run(REDUCE_MIN, &x, sh),
                reference(&x, sh, f64_min),
                "{:?}",
                sh
            );
        }
    }

    #[test]
    fn max_min_propagate_nan_and_see_infinities() {
        for &r in &LENS {
            for inner in [1, 5, 67] {
                let sh = (2, r, inner);
                for (at, v) in [
                    (0, f32::NAN),
                    (r / 2, f32::NAN),
                    (r - 1, f32::NAN),
                    (r - 1, f32::INFINITY),
                    (r / 2, f32::NEG_INFINITY),
                ] {
                    let mut x = random(2 * r * inner, r as u32, -1.0, 1.0);
                    x[(r + at) * inner + inner - 1] = v; // outer 1, last column
                    for (op, f) in [
                        (REDUCE_MAX, f64_max as fn(&[f32]) -> f32),
                        (REDUCE_MIN, f64_min),
                    ] {
                        let got = run(op, &x, sh);
                        let want = reference(&x, sh, f);
                        assert!(
                            got.iter().zip(&want).all(|(&g, &w)| same(g, w)),
                            "{:?} {}",
                            sh,
                            v
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn logsumexp_matches_f64() {
        for (k, sh) in shapes().into_iter().enumerate() {
            // around 1000, where an unshifted exp overflows
            let x = random(sh.0 * sh.1 * sh.2, 2000 + k as u32, 980.0, 1020.0);
            let got = run(REDUCE_LOGSUMEXP, &x, sh);
            for (g, want) in got.iter().zip(reference(&x, sh, f64_logsumexp)) {
                assert!(
                    (*g as f64 - want).abs() <= 2e-7 * want.abs(),
                    "{:?}: {} vs {}",
                    sh,
                    g,
                    want
                );
            }
        }
    }

    #[test]
    fn logsumexp_handles_infinities_like_torch() {
        let (inf, nan) = (f32::INFINITY, f32::NAN);
        let cases: [(&[f32], f32); 6] = [
            (&[-inf, -inf, -inf], -inf),
            (&[1.0, inf, 2.0], inf),
            (&[-inf, inf, -inf, -inf, 3.0], inf),
            (&[-inf, 0.0, -inf, 0.0, -inf], 2f32.ln()),
            (&[1.0, nan, inf], nan),
            (&[-inf; 19], -inf),
        ];
        for (col, want) in cases {
            let r = col.len();
            for inner in [1, 3, 70] {
                // column `inner - 1` holds the case, the others are zeros
                let mut x = vec![0.0; r * inner];
                for (j, &v) in col.iter().enumerate() {
                    x[j * inner + inner - 1] = v;
                }
                let got = run(REDUCE_LOGSUMEXP, &x, (1, r, inner));
                let g = got[inner - 1];
                assert!(
                    same(g, want) || (g - want).abs() < 1e-6,
                    "{:?} inner {}: {}",
                    col,
                    inner,
                    g
                );
                let zeros = (r as f32).ln();
                assert!(got[..inner - 1].iter().all(|&v| (v - zeros).abs() < 1e-6));
            }
        }
    }

    #[test]
    fn reduce_i32_matches_wrapping_reference() {
        for (k, sh) in shapes().into_iter().enumerate() {
            let x: Vec<i32> = random(sh.0 * sh.1 * sh.2, 3000 + k as u32, 0.0, 1.0)
                .iter()
                .map(|&v| ((v as f64 - 0.5) * 4.2e9) as i64 as i32)
                .collect();
            for op in [REDUCE_SUM, REDUCE_MAX, REDUCE_MIN] {
                let want = reference(&x, sh, |c| match op {
                    REDUCE_SUM => c.iter().map(|&v| v as i64).sum::<i64>() as i32,
                    REDUCE_MAX => *c.iter().max().unwrap(),
                    _ => *c.iter().min().unwrap(),
                });
                let mut got = vec![7; sh.0 * sh.2];
                reduce_i32(op, &x, &mut got, sh.0, sh.1, sh.2);
                assert_eq!(got, want, "op {} {:?}", op, sh);
            }
        }
    }

    #[test]
    fn argreduce_matches_reference_with_ties() {
        for (k, sh) in shapes().into_iter().enumerate() {
            // few distinct values, so most columns have ties
            let x: Vec<f32> = random(sh.0 * sh.1 * sh.2, 4000 + k as u32, 0.0, 4.0)
                .iter()
                .map(|v| v.floor())
                .collect();
            let want_max = reference(&x, sh, |c| first_arg(c, |v, b| v > b));
            let want_min = reference(&x, sh, |c| first_arg(c, |v, b| v < b));
            assert_eq!(run_arg(ARG_MAX, &x, sh), want_max, "{:?}", sh);
            assert_eq!(run_arg(ARG_MIN, &x, sh), want_min, "{:?}", sh);
        }
    }

    #[test]
    fn argreduce_picks_first_tie_and_first_nan() {
        let nan = f32::NAN;
        let cases: [(&[f32], i32, i32); 6] = [
            (&[2.0; 17], 0, 0),
            (&[1.0, 3.0, 3.0, 0.0, 0.0], 1, 3),
            (&[1.0, nan, 5.0, nan, -1.0], 1, 1),
            (&[nan, 1.0], 0, 0),
            (&[-0.0, 0.0, -1.0], 0, 2),
            (
                &[
                    f32::NEG_INFINITY,
                    f32::INFINITY,
                    1.0,
                    f32::INFINITY,
                    f32::NEG_INFINITY,
                ],
                1,
                0,
            ),
        ];
        for (col, amax, amin) in cases {
            let r = col.len();
            for inner in [1, 4, 70] {
                let mut x = vec![0.5; r * inner];
                for (j, &v) in col.iter().enumerate() {
                    x[j * inner + inner - 1] = v;
                }
                let (gmax, gmin) = (
                    run_arg(ARG_MAX, &x, (1, r, inner)),
                    run_arg(ARG_MIN, &x, (1, r, inner)),
                );
                assert_eq!(
                    (gmax[inner - 1], gmin[inner - 1]),
                    (amax, amin),
                    "{:?} inner {}",
                    col,
                    inner
                );
                assert!(gmax[..inner - 1]
                    .iter()
                    .chain(&gmin[..inner - 1])
                    .all(|&i| i == 0));
            }
        }
    }

    #[test]
    fn nan_scan_in_long_rows() {
        let mut x = random(1000, 5, -1.0, 1.0);
        x[700] = f32::NAN;
        x[900] = f32::NAN;
        assert_eq!(run_arg(ARG_MAX, &x, (1, 1000, 1)), [700]);
        assert_eq!(run_arg(ARG_MIN, &x, (1, 1000, 1)), [700]);
        assert!(run(REDUCE_SUM, &x, (1, 1000, 1))[0].is_nan());
        assert!(run(REDUCE_LOGSUMEXP, &x, (1, 1000, 1))[0].is_nan());
    }
}
