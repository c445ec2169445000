//! Fused cross-entropy over the rows of a contiguous `[rows, classes]` array of logits:
//! log-softmax and the negative log-likelihood in one pass per row, forward and backward,
//! against int32 class indices or float class probabilities, with optional class weights and
//! label smoothing, as PyTorch 1.13's `cross_entropy`.
//!
//! Each row is shifted by its max `m` so `exp` never overflows, and log-probabilities are formed
//! as `(x - m) - log Σ exp(x - m)`, never as `x - lse`, so nothing rounds at the scale of large
//! logits. The forward saves each row's logsumexp so the backward need not recompute it, split
//! the same way as the pair `lse[2r..2r + 2] = (m, log Σ exp(x - m))`: a single f32 `m + ls`
//! would be off by up to half an ulp of `m` (5e-4 at `m = 1e4`), and so would every probability.
//!
//! With smoothing `ε` over `C` classes the target distribution is `(1 - ε) * target + ε / C`;
//! for class indices PyTorch spells this `(1 - ε) * w_t * nll + ε / C * Σ_c -w_c * logp_c`.

use super::reduce::{fold_row, max_nan, sum_map, zip2, zip3};
use crate::math::{exp, exp4, log};
use crate::simd::F32x4;

/// Terms a row sum adds sequentially before splitting in halves (as `reduce`'s pairwise sums).
const LEAF: usize = 256;

/// The class axis: its length, optional per-class weights and the label smoothing.
#[derive(Clone, Copy)]
pub struct Classes<'a> {
    pub n: usize,
    /// One weight per class, or empty for all ones.
    pub weight: &'a [f32],
    /// Label smoothing `ε` in `[0, 1]`.
    pub smoothing: f32,
}

impl Classes<'_> {
    fn w(&self, c: usize) -> f32 {
        if self.weight.is_empty() {
            1.0
        } else {
            self.weight[c]
        }
    }

    fn w4(&self, c: usize) -> F32x4 {
        if self.weight.is_empty() {
            F32x4::splat(1.0)
        } else {
            F32x4::load(&self.weight[c..])
        }
    }

    /// `Σ_c w_c`.
    fn weight_sum(&self) -> f32 {
        if self.weight.is_empty() {
            self.n as f32
        } else {
            sum_terms(self.n, |c| self.w4(c), |c| self.w(c))
        }
    }

    /// The smoothing mass each class receives, `ε / C`.
    fn share(&self) -> f32 {
        self.smoothing / self.n as f32
    }

    /// The smoothed target `(1 - ε) t + ε / C`, four lanes at a time.
    fn smooth4(&self, t: F32x4) -> F32x4 {
        t.mul(F32x4::splat(1.0 - self.smoothing))
            .add(F32x4::splat(self.share()))
    }

    fn smooth(&self, t: f32) -> f32 {
        t * (1.0 - self.smoothing) + self.share()
    }
}

/// Position of the first `target` outside `[0, classes)` that is not `ignore_index`, or -1.
pub fn class_target_check_i32(target: &[i32], classes: usize, ignore_index: i32) -> i32 {
    let bad = |&t: &i32| t != ignore_index && (t < 0 || t as usize >= classes);
    target.iter().position(bad).map_or(-1, |p| p as i32)
}

/// `Σ w_target` over the rows whose target is not `ignore_index`, in row order: the divisor of
/// PyTorch's `'mean'` cross-entropy. Targets are in range (`class_target_check_i32`).
pub fn class_weight_total(target: &[i32], cls: Classes, ignore_index: i32) -> f64 {
    let kept = target.iter().filter(|&&t| t != ignore_index);
    kept.fold(0.0f64, |total, &t| total + cls.w(t as usize) as f64)
}

/// Cross-entropy against class indices. Writes each row's loss (0 where the target is
/// `ignore_index`) and logsumexp pair; rows are independent, so any run of them can be a work
/// range. Targets are in range (`class_target_check_i32`).
pub fn cross_entropy_f32(
    x: &[f32],
    target: &[i32],
    cls: Classes,
    ignore_index: i32,
    loss: &mut [f32],
    lse: &mut [f32],
) {
    let c = cls.n;
    debug_assert!(c >= 1 && x.len() == target.len() * c);
    debug_assert!(loss.len() == target.len() && lse.len() == 2 * target.len());
    let w_sum = if cls.smoothing > 0.0 {
        cls.weight_sum()
    } else {
        0.0
    };
    let rows = x.chunks_exact(c).zip(target).zip(loss.iter_mut());
    for (((row, &t), l), s) in rows.zip(lse.chunks_exact_mut(2)) {
        let (m, ls) = row_lse(row);
        s.copy_from_slice(&[m, ls]);
        if t == ignore_index {
            *l = 0.0;
            continue;
        }
        debug_assert!(t >= 0 && (t as usize) < c, "target {} of {} classes", t, c);
        let wt = cls.w(t as usize);
        let nll = -wt * ((row[t as usize] - m) - ls);
        *l = if cls.smoothing > 0.0 {
            // Σ_c -w_c logp_c = W * ls - Σ_c w_c (x_c - m): two non-negative terms, no cancelling.
            let mv = F32x4::splat(m);
            let d = sum_terms(
                c,
                |k| F32x4::load(&row[k..]).sub(mv).mul(cls.w4(k)),
                |k| (row[k] - m) * cls.w(k),
            );
            (1.0 - cls.smoothing) * nll + cls.share() * (w_sum * ls - d)
        } else {
            nll
        };
    }
}

/// Gradient of `cross_entropy_f32` with respect to the logits, from the saved `lse` pairs and
/// the upstream gradient `g` of each row's loss:
/// `dx_j = g * (p_j * ((1 - ε) w_t + ε/C * W) - ε/C * w_j - [j == t] (1 - ε) w_t)`.
pub fn cross_entropy_bwd_f32(
    x: &[f32],
    target: &[i32],
    cls: Classes,
    ignore_index: i32,
    lse: &[f32],
    g: &[f32],
    dx: &mut [f32],
) {
    let c = cls.n;
    debug_assert!(c >= 1 && x.len() == target.len() * c && dx.len() == x.len());
    debug_assert!(lse.len() == 2 * target.len() && g.len() == target.len());
    let (keep, share) = (1.0 - cls.smoothing, cls.share());
    let w_sum = cls.weight_sum();
    let rows = x.chunks_exact(c).zip(dx.chunks_exact_mut(c));
    for (((row, d), &t), (s, &g)) in rows.zip(target).zip(lse.chunks_exact(2).zip(g)) {
        if t == ignore_index {
            d.fill(0.0);
            continue;
        }
        let t = t as usize;
        let wt = cls.w(t);
        let (a, b) = (g * (keep * wt + share * w_sum), g * share);
        let (m, ls) = (s[0], s[1]);
        let (mv, lv) = (F32x4::splat(m), F32x4::splat(ls));
        let (av, bv) = (F32x4::splat(a), F32x4::splat(b));
        if cls.weight.is_empty() {
            zip2(
                d,
                row,
                |_, v| exp4(v.sub(mv).sub(lv)).mul(av).sub(bv),
                |_, v| exp((v - m) - ls) * a - b,
            );
        } else {
            zip3(
                d,
                row,
                cls.weight,
                |_, v, w| exp4(v.sub(mv).sub(lv)).mul(av).sub(w.mul(bv)),
                |_, v, w| exp((v - m) - ls) * a - w * b,
            );
        }
        d[t] -= g * keep * wt;
    }
}

/// Cross-entropy against class probabilities `target` (`[rows, classes]`): writes each row's
/// `-Σ_c w_c t'_c logp_c` with the smoothed target `t'`, and its logsumexp pair.
pub fn cross_entropy_prob_f32(
    x: &[f32],
    target: &[f32],
    cls: Classes,
    loss: &mut [f32],
    lse: &mut [f32],
) {
    let c = cls.n;
    debug_assert!(c >= 1 && target.len() == x.len() && loss.len() * c == x.len());
    debug_assert!(lse.len() == 2 * loss.len());
    let rows = x.chunks_exact(c).zip(target.chunks_exact(c));
    for ((row, trow), (l, s)) in rows.zip(loss.iter_mut().zip(lse.chunks_exact_mut(2))) {
        let (m, ls) = row_lse(row);
        s.copy_from_slice(&[m, ls]);
        let mv = F32x4::splat(m);
        // -Σ w t' ((x - m) - ls) = ls * Σ w t' - Σ w t' (x - m): both terms non-negative.
        let mass = target_mass(trow, cls);
        let shifted = sum_terms(
            c,
            |k| {
                let wt = cls.smooth4(F32x4::load(&trow[k..])).mul(cls.w4(k));
                wt.mul(F32x4::load(&row[k..]).sub(mv))
            },
            |k| cls.smooth(trow[k]) * cls.w(k) * (row[k] - m),
        );
        *l = ls * mass - shifted;
    }
}

/// Gradients of `cross_entropy_prob_f32` for the upstream gradient `g` of each row's loss.
/// Either output may be empty when that gradient is not needed:
/// `dx_j = g * (p_j * Σ_c w_c t'_c - w_j t'_j)`, `dt_j = -g * (1 - ε) * w_j * logp_j`.
pub fn cross_entropy_prob_bwd_f32(
    x: &[f32],
    target: &[f32],
    cls: Classes,
    lse: &[f32],
    g: &[f32],
    dx: &mut [f32],
    dt: &mut [f32],
) {
    let c = cls.n;
    debug_assert!(c >= 1 && target.len() == x.len() && g.len() * c == x.len());
    debug_assert!(lse.len() == 2 * g.len());
    debug_assert!((dx.is_empty() || dx.len() == x.len()) && (dt.is_empty() || dt.len() == x.len()));
    for (r, (row, trow)) in x.chunks_exact(c).zip(target.chunks_exact(c)).enumerate() {
        let (m, ls, g) = (lse[2 * r], lse[2 * r + 1], g[r]);
        let (mv, lv) = (F32x4::splat(m), F32x4::splat(ls));
        if !dx.is_empty() {
            let d = &mut dx[r * c..(r + 1) * c];
            let gm = g * target_mass(trow, cls);
            let (gv, gmv) = (F32x4::splat(g), F32x4::splat(gm));
            // `d` first holds w_j t'_j, then becomes the gradient.
            if cls.weight.is_empty() {
                zip2(d, trow, |_, t| cls.smooth4(t), |_, t| cls.smooth(t));
            } else {
                zip3(
                    d,
                    trow,
                    cls.weight,
                    |_, t, w| cls.smooth4(t).mul(w),
                    |_, t, w| cls.smooth(t) * w,
                );
            }
            zip2(
                d,
                row,
                |wt, v| exp4(v.sub(mv).sub(lv)).mul(gmv).sub(wt.mul(gv)),
                |wt, v| exp((v - m) - ls) * gm - wt * g,
            );
        }
        if !dt.is_empty() {
            let d = &mut dt[r * c..(r + 1) * c];
            let k = -g * (1.0 - cls.smoothing);
            let kv = F32x4::splat(k);
            if cls.weight.is_empty() {
                zip2(
                    d,
                    row,
                    |_, v| v.sub(mv).sub(lv).mul(kv),
                    |_, v| ((v - m) - ls) * k,
                );
            } else {
                zip3(
                    d,
                    row,
                    cls.weight,
                    |_, v, w| v.sub(mv).sub(lv).mul(w.mul(kv)),
                    |_, v, w| ((v - m) - ls) * (w * k),
                );
            }
        }
    }
}

// ---------------------------------------------------------------- row helpers

/// `(m, log Σ exp(x - m))` for the row max `m` of a non-empty row.
fn row_lse(x: &[f32]) -> (f32, f32) {
    let m = fold_row(x, F32x4::max, max_nan);
    let mv = F32x4::splat(m);
    (m, log(sum_map(x, |v| exp4(v.sub(mv)), |v| exp(v - m))))
}

/// `Σ_c w_c t'_c` for one row of probabilities.
fn target_mass(trow: &[f32], cls: Classes) -> f32 {
    sum_terms(
        cls.n,
        |k| cls.smooth4(F32x4::load(&trow[k..])).mul(cls.w4(k)),
        |k| cls.smooth(trow[k]) * cls.w(k),
    )
}

/// `Σ_{k < n}` of terms given four at a time by `fv(k)` (terms `k..k + 4`) and one at a time by
/// `fs(k)`: four vector accumulators per leaf of at most `LEAF` terms, leaves added pairwise.
fn sum_terms<V, S>(n: usize, fv: V, fs: S) -> f32
where
    V: Fn(usize) -> F32x4 + Copy,
    S: Fn(usize) -> f32 + Copy,
{
    sum_range(0, n, fv, fs)
}

fn sum_range<V, S>(start: usize, n: usize, fv: V, fs: S) -> f32
where
    V: Fn(usize) -> F32x4 + Copy,
    S: Fn(usize) -> f32 + Copy,
{
    if n > LEAF {
        // A multiple of 16, so the left half runs without a tail.
        let h = n / 32 * 16;
        return sum_range(start, h, fv, fs) + sum_range(start + h, n - h, fv, fs);
    }
    let end = start + n;
    let mut acc = [F32x4::splat(0.0); 4];
    let mut k = start;
    while k + 16 <= end {
        for (j, a) in acc.iter_mut().enumerate() {
            *a = a.add(fv(k + 4 * j));
        }
        k += 16;
    }
    while k + 4 <= end {
        acc[0] = acc[0].add(fv(k));
        k += 4;
    }
    let v = acc[0].add(acc[1]).add(acc[2].add(acc[3])).to_array();
    let mut s = (v[0] + v[1]) + (v[2] + v[3]);
    while k < end {
        s += fs(k);
        k += 1;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random;

    const LENS: [usize; 8] = [1, 3, 4, 5, 15, 16, 17, 257];
    const ROWS: usize = 6;
    const IGNORE: i32 = -100;

    /// Rows of probabilities (non-negative, each summing to about 1).
    fn probs(rows: usize, c: usize, seed: u32) -> Vec<f32> {
        let mut t = random(rows * c, seed, 0.0, 1.0);
        for row in t.chunks_exact_mut(c) {
            let s: f32 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= s);
        }
        t
    }

    /// Class indices with every third row ignored.
    fn indices(rows: usize, c: usize, seed: u32) -> Vec<i32> {
        let r = random(rows, seed, 0.0, c as f32);
        let pick = |(i, &v): (usize, &f32)| {
            if i % 3 == 1 {
                IGNORE
            } else {
                (v as usize).min(c - 1) as i32
            }
        };
        r.iter().enumerate().map(pick).collect()
    }

    /// One option set: weights (empty for none) and smoothing.
    struct Case {
        weight: Vec<f32>,
        smoothing: f32,
    }

    fn cases(c: usize, seed: u32) -> Vec<Case> {
        let w = random(c, seed, 0.2, 2.0);
        let mut v = vec![];
        for weight in [vec![], w] {
            for smoothing in [0.0, 0.1] {
                v.push(Case {
                    weight: weight.clone(),
                    smoothing,
                });
            }
        }
        v
    }

    impl Case {
        fn classes(&self, n: usize) -> Classes<'_> {
            Classes {
                n,
                weight: &self.weight,
                smoothing: self.smoothing,
            }
        }
        fn w(&self, c: usize) -> f64 {
            self.weight.get(c).map_or(1.0, |&w| w as f64)
        }
    }

    fn logp(row: &[f64]) -> Vec<f64> {
        let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let ls = row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        row.iter().map(|v| v - m - ls).collect()
    }

    fn widen(x: &[f32]) -> Vec<f64> {
        x.iter().map(|&v| v as f64).collect()
    }

    /// PyTorch's definition: `(1 - ε) w_t nll + ε / C Σ_c -w_c logp_c`, 0 when ignored.
    fn ref_index(x: &[f64], t: &[i32], cs: &Case, c: usize) -> Vec<f64> {
        let eps = cs.smoothing as f64;
        let rows = x.chunks_exact(c).zip(t);
        rows.map(|(row, &t)| {
            if t == IGNORE {
                return 0.0;
            }
            let lp = logp(row);
            let smooth: f64 = (0..c).map(|k| -cs.w(k) * lp[k]).sum();
            (1.0 - eps) * -cs.w(t as usize) * lp[t as usize] + eps / c as f64 * smooth
        })
        .collect()
    }

    /// `-Σ_c w_c ((1 - ε) t_c + ε / C) logp_c`.
    fn ref_prob(x: &[f64], t: &[f64], cs: &Case, c: usize) -> Vec<f64> {
        let eps = cs.smoothing as f64;
        let rows = x.chunks_exact(c).zip(t.chunks_exact(c));
        rows.map(|(row, trow)| {
            let lp = logp(row);
            let tp = |k: usize| (1.0 - eps) * trow[k] + eps / c as f64;
            (0..c).map(|k| -cs.w(k) * tp(k) * lp[k]).sum()
        })
        .collect()
    }

    /// The saved pairs `(max, log Σ exp(x - max))`, flattened.
    fn lse_ref(x: &[f64], c: usize) -> Vec<f64> {
        let pair = |row: &[f64]| {
            let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
            [m, row[0] - m - logp(row)[0]]
        };
        x.chunks_exact(c).flat_map(pair).collect()
    }

    fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{}", what);
        for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
            let err = (g as f64 - w).abs();
            assert!(
                err <= tol * (1.0 + w.abs()),
                "{} at {}: {} vs {}",
                what,
                k,
                g,
                w
            );
        }
    }

    /// `Σ_r g_r * f(x)_r` differentiated by central differences in f64.
    fn numeric_grad(x: &[f64], g: &[f64], f: impl Fn(&[f64]) -> Vec<f64>) -> Vec<f64> {
        let h = 1e-6;
        let dot = |v: Vec<f64>| -> f64 { v.iter().zip(g).map(|(a, b)| a * b).sum() };
        (0..x.len())
            .map(|p| {
                let (mut up, mut down) = (x.to_vec(), x.to_vec());
                up[p] += h;
                down[p] -= h;
                (dot(f(&up)) - dot(f(&down))) / (2.0 * h)
            })
            .collect()
    }

    fn forward_index(x: &[f32], t: &[i32], cls: Classes) -> (Vec<f32>, Vec<f32>, f64) {
        let (mut loss, mut lse) = (vec![f32::NAN; t.len()], vec![f32::NAN; 2 * t.len()]);
        cross_entropy_f32(x, t, cls, IGNORE, &mut loss, &mut lse);
        (loss, lse, class_weight_total(t, cls, IGNORE))
    }

    fn forward_prob(x: &[f32], t: &[f32], cls: Classes) -> (Vec<f32>, Vec<f32>) {
        let rows = x.len() / cls.n;
        let (mut loss, mut lse) = (vec![f32::NAN; rows], vec![f32::NAN; 2 * rows]);
        cross_entropy_prob_f32(x, t, cls, &mut loss, &mut lse);
        (loss, lse)
    }

    #[test]
    fn index_forward_matches_f64() {
        for (i, &c) in LENS.iter().enumerate() {
            let x = random(ROWS * c, i as u32, -8.0, 8.0);
            let t = indices(ROWS, c, 50 + i as u32);
            for cs in cases(c, 90 + i as u32) {
                let (loss, lse, total) = forward_index(&x, &t, cs.classes(c));
                let what = format!("c={} eps={} w={}", c, cs.smoothing, cs.weight.len());
                assert_close(&loss, &ref_index(&widen(&x), &t, &cs, c), 2e-6, &what);
                assert_close(&lse, &lse_ref(&widen(&x), c), 2e-6, &what);
                let want: f64 = t
                    .iter()
                    .filter(|&&t| t != IGNORE)
                    .map(|&t| cs.w(t as usize))
                    .sum();
                assert!((total - want).abs() <= 1e-6 * want, "{}", what);
            }
        }
    }

    #[test]
    fn prob_forward_matches_f64() {
        for (i, &c) in LENS.iter().enumerate() {
            let x = random(ROWS * c, 10 + i as u32, -8.0, 8.0);
            let t = probs(ROWS, c, 60 + i as u32);
            for cs in cases(c, 95 + i as u32) {
                let (loss, lse) = forward_prob(&x, &t, cs.classes(c));
                let what = format!("c={} eps={} w={}", c, cs.smoothing, cs.weight.len());
                let want = ref_prob(&widen(&x), &widen(&t), &cs, c);
                assert_close(&loss, &want, 2e-6, &what);
                assert_close(&lse, &lse_ref(&widen(&x), c), 2e-6, &what);
            }
        }
    }

    #[test]
    fn index_backward_matches_finite_differences() {
        for (i, &c) in LENS.iter().enumerate() {
            let x = random(ROWS * c, 20 + i as u32, -4.0, 4.0);
            let t = indices(ROWS, c, 70 + i as u32);
            let g = random(ROWS, 30 + i as u32, -1.0, 1.0);
            for cs in cases(c, 99 + i as u32) {
                let (_, lse, _) = forward_index(&x, &t, cs.classes(c));
                let mut dx = vec![f32::NAN; x.len()];
                cross_entropy_bwd_f32(&x, &t, cs.classes(c), IGNORE, &lse, &g, &mut dx);
                let want = numeric_grad(&widen(&x), &widen(&g), |x| ref_index(x, &t, &cs, c));
                let what = format!("dx c={} eps={} w={}", c, cs.smoothing, cs.weight.len());
                assert_close(&dx, &want, 2e-6, &what);
            }
        }
    }

    #[test]
    fn prob_backward_matches_finite_differences() {
        for (i, &c) in LENS.iter().enumerate() {
            let x = random(ROWS * c, 40 + i as u32, -4.0, 4.0);
            let t = probs(ROWS, c, 80 + i as u32);
            let g = random(ROWS, 45 + i as u32, -1.0, 1.0);
            let (xd, td, gd) = (widen(&x), widen(&t), widen(&g));
            for cs in cases(c, 120 + i as u32) {
                let (_, lse) = forward_prob(&x, &t, cs.classes(c));
                let (mut dx, mut dt) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
                cross_entropy_prob_bwd_f32(&x, &t, cs.classes(c), &lse, &g, &mut dx, &mut dt);
                let what = format!("c={} eps={} w={}", c, cs.smoothing, cs.weight.len());
                let want_dx = numeric_grad(&xd, &gd, |x| ref_prob(x, &td, &cs, c));
                assert_close(&dx, &want_dx, 2e-6, &format!("dx {}", what));
                let want_dt = numeric_grad(&td, &gd, |t| ref_prob(&xd, t, &cs, c));
                assert_close(&dt, &want_dt, 2e-6, &format!("dt {}", what));
                // Each output on its own gives the same values.
                let mut only = vec![f32::NAN; x.len()];
                cross_entropy_prob_bwd_f32(&x, &t, cs.classes(c), &lse, &g, &mut only, &mut []);
                assert_eq!(only, dx);
                cross_entropy_prob_bwd_f32(&x, &t, cs.classes(c), &lse, &g, &mut [], &mut only);
                assert_eq!(only, dt);
            }
        }
    }

    #[test]
    fn ignored_rows_have_zero_loss_and_gradient() {
        let c = 5;
        let x = random(3 * c, 7, -3.0, 3.0);
        let t = [IGNORE, 2, IGNORE];
        let cs = Case {
            weight: vec![],
            smoothing: 0.1,
        };
        let (loss, _, total) = forward_index(&x, &t, cs.classes(c));
        assert_eq!((loss[0], loss[2], total), (0.0, 0.0, 1.0));
        let (_, lse, _) = forward_index(&x, &t, cs.classes(c));
        let mut dx = vec![f32::NAN; x.len()];
        cross_entropy_bwd_f32(&x, &t, cs.classes(c), IGNORE, &lse, &[1.0; 3], &mut dx);
        assert!(dx[..c].iter().chain(&dx[2 * c..]).all(|&v| v == 0.0));
        assert!((dx[c..2 * c].iter().sum::<f32>()).abs() < 1e-6);
    }

    #[test]
    fn extreme_logits_stay_exact() {
        // Rows of ±100 (and ±1e4): a max-shifted kernel gets 0, log 2 and 2 * big without overflow.
        for big in [100.0f32, 1e4] {
            let x = [big, -big, big, big, -big, big];
            let t = [0, 1, 0];
            let none = Case {
                weight: vec![],
                smoothing: 0.0,
            };
            let (loss, lse, _) = forward_index(&x, &t, none.classes(2));
            assert_eq!(loss[0], 0.0);
            assert!(
                (loss[1] - core::f32::consts::LN_2).abs() < 1e-7,
                "{}",
                loss[1]
            );
            assert!(
                (loss[2] - 2.0 * big).abs() <= 2.0 * big * 1e-7,
                "{}",
                loss[2]
            );
            let mut dx = [f32::NAN; 6];
            cross_entropy_bwd_f32(&x, &t, none.classes(2), IGNORE, &lse, &[1.0; 3], &mut dx);
            assert_eq!([dx[0], dx[1], dx[4], dx[5]], [0.0, 0.0, -1.0, 1.0]);
            assert!((dx[2] - 0.5).abs() < 1e-7 && (dx[3] + 0.5).abs() < 1e-7);
        }
    }

    #[test]
    fn zero_rows_touch_nothing() {
        let cs = Case {
            weight: vec![1.0; 3],
            smoothing: 0.1,
        };
        assert_eq!(forward_index(&[], &[], cs.classes(3)).2, 0.0);
        assert!(forward_prob(&[], &[], cs.classes(3)).0.is_empty());
        cross_entropy_bwd_f32(&[], &[], cs.classes(3), IGNORE, &[], &[], &mut []);
        cross_entropy_prob_bwd_f32(&[], &[], cs.classes(3), &[], &[], &mut [], &mut []);
    }

    #[test]
    fn target_check_skips_ignore_index() {
        assert_eq!(class_target_check_i32(&[0, 2, -100, 1], 3, -100), -1);
        assert_eq!(class_target_check_i32(&[0, 3, -1], 3, -100), 1);
        assert_eq!(class_target_check_i32(&[0, -1], 3, -100), 1);
        assert_eq!(class_target_check_i32(&[1, 1], 3, 1), -1);
        assert_eq!(class_target_check_i32(&[], 3, -100), -1);
    }

    #[test]
    fn sum_terms_matches_f64_at_every_length() {
        for n in [0, 1, 3, 4, 5, 15, 16, 17, 257, 1000] {
            let x = random(n, n as u32 + 1, -1.0, 1.0);
            let got = sum_terms(n, |k| F32x4::load(&x[k..]), |k| x[k]);
            let want: f64 = x.iter().map(|&v| v as f64).sum();
            assert!(
                (got as f64 - want).abs() < 1e-5,
                "n={}: {} vs {}",
                n,
                got,
                want
            );
        }
    }
}
