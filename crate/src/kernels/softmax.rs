//! Softmax and log-softmax along the middle axis of a contiguous `[outer, r, inner]` array, and
//! their backward passes. Inputs are shifted by their max so `exp` never overflows. Nothing is
//! allocated: with `inner > 1` the forward keeps the per-column max and sum of one tile of
//! columns on the stack while the tile's rows are walked several times.

use super::reduce::{
    dot_f32, fold_row, map1, max_nan, sum_f32, sum_map, tile_rows, tile_rows_mut, tiles, zip2,
    zip3, TILE,
};
use crate::math::{self, exp, exp4, log4};
use crate::simd::F32x4;

/// `out = softmax(x)` (or `log_softmax(x)` when `log`) along the middle axis.
pub fn softmax_f32(x: &[f32], out: &mut [f32], outer: usize, r: usize, inner: usize, log: bool) {
    debug_assert!(x.len() == outer * r * inner && out.len() == x.len());
    if x.is_empty() {
        return;
    }
    let n = r * inner;
    for (xb, ob) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        match (inner, log) {
            (1, false) => softmax_row(xb, ob),
            (1, true) => log_softmax_row(xb, ob),
            _ => {
                for (c0, w) in tiles(inner) {
                    softmax_cols(&xb[c0..], &mut ob[c0..], inner, w, log);
                }
            }
        }
    }
}

/// Gradient of `softmax_f32` from its output `y` and the upstream gradient `g`:
/// softmax `y * (g - Σ g*y)`, log-softmax `g - exp(y) * Σ g`.
pub fn softmax_bwd_f32(
    y: &[f32],
    g: &[f32],
    out: &mut [f32],
    outer: usize,
    r: usize,
    inner: usize,
    log: bool,
) {
    debug_assert!(y.len() == outer * r * inner && g.len() == y.len() && out.len() == y.len());
    if y.is_empty() {
        return;
    }
    let n = r * inner;
    let blocks = y.chunks_exact(n).zip(g.chunks_exact(n));
    for ((yb, gb), ob) in blocks.zip(out.chunks_exact_mut(n)) {
        match (inner, log) {
            (1, false) => softmax_bwd_row(yb, gb, ob),
            (1, true) => log_softmax_bwd_row(yb, gb, ob),
            _ => bwd_block(yb, gb, ob, inner, log),
        }
    }
}

// ---------------------------------------------------------------- inner == 1: contiguous rows

fn softmax_row(x: &[f32], out: &mut [f32]) {
    let m = fold_row(x, F32x4::max, max_nan);
    let mv = F32x4::splat(m);
    zip2(out, x, |_, v| exp4(v.sub(mv)), |_, v| exp(v - m));
    let inv = 1.0 / sum_f32(out);
    let iv = F32x4::splat(inv);
    map1(out, |e| e.mul(iv), |e| e * inv);
}

fn log_softmax_row(x: &[f32], out: &mut [f32]) {
    let m = fold_row(x, F32x4::max, max_nan);
    let mv = F32x4::splat(m);
    let ls = math::log(sum_map(x, |v| exp4(v.sub(mv)), |v| exp(v - m)));
    let lv = F32x4::splat(ls);
    // `(x - m) - ls`, not `x - (m + ls)`: the latter rounds at the scale of `m`.
    zip2(out, x, |_, v| v.sub(mv).sub(lv), |_, v| (v - m) - ls);
}

fn softmax_bwd_row(y: &[f32], g: &[f32], out: &mut [f32]) {
    let d = dot_f32(g, y);
    let dv = F32x4::splat(d);
    zip3(out, y, g, |_, y, g| y.mul(g.sub(dv)), |_, y, g| y * (g - d));
}

fn log_softmax_bwd_row(y: &[f32], g: &[f32], out: &mut [f32]) {
    let s = sum_f32(g);
    let sv = F32x4::splat(s);
    zip3(
        out,
        y,
        g,
        |_, y, g| g.sub(exp4(y).mul(sv)),
        |_, y, g| g - exp(y) * s,
    );
}

// ---------------------------------------------------------------- inner > 1

/// Softmax of `w` columns whose rows (stride `inner`) start at `x` and `out`.
fn softmax_cols(x: &[f32], out: &mut [f32], inner: usize, w: usize, log: bool) {
    let mut max = [0.0f32; TILE];
    let m = &mut max[..w];
    let mut rows = tile_rows(x, inner, w);
    m.copy_from_slice(rows.next().unwrap_or(&[]));
    for row in rows {
        zip2(m, row, F32x4::max, max_nan);
    }
    let m = &*m;
    let mut sum = [0.0f32; TILE];
    let s = &mut sum[..w];
    if log {
        for row in tile_rows(x, inner, w) {
            zip3(
                s,
                row,
                m,
                |a, v, m| a.add(exp4(v.sub(m))),
                |a, v, m| a + exp(v - m),
            );
        }
        map1(s, log4, math::log);
        for (o, row) in tile_rows_mut(out, inner, w).zip(tile_rows(x, inner, w)) {
            zip3(o, row, m, |_, v, m| v.sub(m), |_, v, m| v - m);
            zip2(o, s, F32x4::sub, |v, l| v - l);
        }
    } else {
        for (o, row) in tile_rows_mut(out, inner, w).zip(tile_rows(x, inner, w)) {
            zip3(o, row, m, |_, v, m| exp4(v.sub(m)), |_, v, m| exp(v - m));
            zip2(s, o, F32x4::add, |a, e| a + e);
        }
        let one = F32x4::splat(1.0);
        map1(s, |v| one.div(v), |v| 1.0 / v);
        for o in tile_rows_mut(out, inner, w) {
            zip2(o, s, F32x4::mul, |e, i| e * i);
        }
    }
}

/// Backward along the middle axis of one `[r, inner]` block. Output row 0 first holds the
/// per-column `Σ g*y` (or `Σ g`) so whole rows stream; row 0 itself is finished last, in place.
fn bwd_block(y: &[f32], g: &[f32], out: &mut [f32], inner: usize, log: bool) {
    let (acc, rest) = out.split_at_mut(inner);
    let (y0, g0) = (&y[..inner], &g[..inner]);
    let rows = || y.chunks_exact(inner).zip(g.chunks_exact(inner));
    if log {
        acc.copy_from_slice(g0);
        for gr in g.chunks_exact(inner).skip(1) {
            zip2(acc, gr, F32x4::add, |a, v| a + v);
        }
        for (o, (yr, gr)) in rest.chunks_exact_mut(inner).zip(rows().skip(1)) {
            zip3(o, yr, acc, |_, y, s| exp4(y).mul(s), |_, y, s| exp(y) * s);
            zip2(o, gr, |e, g| g.sub(e), |e, g| g - e);
        }
        zip3(
            acc,
            y0,
            g0,
            |s, y, g| g.sub(exp4(y).mul(s)),
            |s, y, g| g - exp(y) * s,
        );
    } else {
        acc.fill(0.0);
        for (yr, gr) in rows() {
            zip3(acc, yr, gr, |a, y, g| a.add(y.mul(g)), |a, y, g| a + y * g);
        }
        for (o, (yr, gr)) in rest.chunks_exact_mut(inner).zip(rows().skip(1)) {
            zip3(o, gr, acc, |_, g, d| g.sub(d), |_, g, d| g - d);
            zip2(o, yr, F32x4::mul, |v, y| v * y);
        }
        zip3(
            acc,
            y0,
            g0,
            |d, y, g| y.mul(g.sub(d)),
            |d, y, g| y * (g - d),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random;

    const LENS: [usize; 9] = [1, 3, 4, 5, 15, 16, 17, 67, 257];

    type Shape = (usize, usize, usize);

    fn shapes(rs: &[usize], inners: &[usize]) -> Vec<Shape> {
        let mut v = vec![];
        for outer in [1, 3] {
            for &r in rs {
                for &inner in inners {
                    v.push((outer, r, inner));
                }
            }
        }
        v
    }

    fn widen(x: &[f32]) -> Vec<f64> {
        x.iter().map(|&v| v as f64).collect()
    }

    /// Calls `f(positions)` with the flat positions of every column `[o, :, i]`.
    fn columns((outer, r, inner): Shape, mut f: impl FnMut(&[usize])) {
        for o in 0..outer {
            for i in 0..inner {
                let at: Vec<usize> = (0..r).map(|j| (o * r + j) * inner + i).collect();
                f(&at);
            }
        }
    }

    fn reference(x: &[f64], sh: Shape, log: bool) -> Vec<f64> {
        let mut out = vec![0.0; x.len()];
        columns(sh, |at| {
            let m = at.iter().fold(f64::NEG_INFINITY, |m, &p| m.max(x[p]));
            let s: f64 = at.iter().map(|&p| (x[p] - m).exp()).sum();
            for &p in at {
                out[p] = if log {
                    x[p] - m - s.ln()
                } else {
                    (x[p] - m).exp() / s
                };
            }
        });
        out
    }

    /// The analytic gradient in f64, with the magnitude of its terms (for a tolerance).
    fn reference_bwd(y: &[f64], g: &[f64], sh: Shape, log: bool) -> Vec<(f64, f64)> {
        let mut out = vec![(0.0, 0.0); y.len()];
        columns(sh, |at| {
            let d: f64 = at
                .iter()
                .map(|&p| if log { g[p] } else { g[p] * y[p] })
                .sum();
            let mass: f64 = at
                .iter()
                .map(|&p| if log { g[p].abs() } else { (g[p] * y[p]).abs() })
                .sum();
            for &p in at {
                out[p] = if log {
                    (g[p] - y[p].exp() * d, g[p].abs() + y[p].exp() * mass)
                } else {
                    (y[p] * (g[p] - d), y[p] * (g[p].abs() + mass))
                };
            }
        });
        out
    }

    fn forward(x: &[f32], (outer, r, inner): Shape, log: bool) -> Vec<f32> {
        let mut out = vec![f32::NAN; x.len()];
        softmax_f32(x, &mut out, outer, r, inner, log);
        out
    }

    fn backward(y: &[f32], g: &[f32], (outer, r, inner): Shape, log: bool) -> Vec<f32> {
        let mut out = vec![f32::NAN; y.len()];
        softmax_bwd_f32(y, g, &mut out, outer, r, inner, log);
        out
    }

    /// Softmax within a few ulps relative; log-softmax within a few ulps of its magnitude.
    fn assert_forward_close(got: &[f32], want: &[f64], sh: Shape, log: bool) {
        for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
            let tol = if log {
                2e-6 * (1.0 + w.abs())
            } else {
                5e-6 * w + 1e-30
            };
            assert!(
                (g as f64 - w).abs() <= tol,
                "{:?} log={} at {}: {} vs {}",
                sh,
                log,
                k,
                g,
                w
            );
        }
    }

    #[test]
    fn softmax_matches_f64() {
        for (k, sh) in shapes(&LENS, &LENS).into_iter().enumerate() {
            let x = random(sh.0 * sh.1 * sh.2, k as u32, -10.0, 10.0);
            for log in [false, true] {
                let want = reference(&widen(&x), sh, log);
                assert_forward_close(&forward(&x, sh, log), &want, sh, log);
            }
        }
    }

    #[test]
    fn softmax_of_large_values_stays_finite() {
        let pattern = [1e4, -1e4, 0.0, 1e4 - 1.0, -1e4, 1e4, 3e4, -3e4];
        for r in [2, 6, 8, 17] {
            for inner in [1, 3, 70] {
                let sh = (2, r, inner);
                let x: Vec<f32> = (0..2 * r * inner)
                    .map(|p| pattern[(p / inner + p) % 8])
                    .collect();
                for log in [false, true] {
                    let got = forward(&x, sh, log);
                    assert!(got.iter().all(|v| v.is_finite()), "{:?} log={}", sh, log);
                    assert_forward_close(&got, &reference(&widen(&x), sh, log), sh, log);
                }
            }
        }
    }

    #[test]
    fn softmax_propagates_nan_per_column() {
        for inner in [1, 5] {
            let mut x = random(4 * inner, 3, -1.0, 1.0);
            x[2 * inner] = f32::NAN; // row 2 of column 0
            for log in [false, true] {
                let got = forward(&x, (1, 4, inner), log);
                for j in 0..4 {
                    assert!(got[j * inner].is_nan());
                    assert!(got[j * inner + 1..(j + 1) * inner]
                        .iter()
                        .all(|v| v.is_finite()));
                }
            }
        }
    }

    #[test]
    fn softmax_bwd_matches_analytic_f64() {
        for (k, sh) in shapes(&LENS, &LENS).into_iter().enumerate() {
            let n = sh.0 * sh.1 * sh.2;
            let x = random(n, 500 + k as u32, -5.0, 5.0);
            let g = random(n, 900 + k as u32, -1.0, 1.0);
            for log in [false, true] {
                let y = forward(&x, sh, log);
                let got = backward(&y, &g, sh, log);
                for (p, (want, mass)) in reference_bwd(&widen(&y), &widen(&g), sh, log)
                    .into_iter()
                    .enumerate()
                {
                    let err = (got[p] as f64 - want).abs();
                    assert!(
                        err <= 4e-6 * mass + 1e-12,
                        "{:?} log={} at {}: {} vs {}",
                        sh,
                        log,
                        p,
                        got[p],
                        want
                    );
                }
            }
        }
    }

    #[test]
    fn softmax_bwd_matches_finite_differences() {
        let h = 1e-4;
        for (k, sh) in shapes(&[1, 3, 4, 5, 17], &[1, 3, 5, 17])
            .into_iter()
            .enumerate()
        {
            let n = sh.0 * sh.1 * sh.2;
            let x = random(n, 700 + k as u32, -3.0, 3.0);
            let g = random(n, 800 + k as u32, -1.0, 1.0);
            let (xd, gd) = (widen(&x), widen(&g));
            let g_mass: f64 = gd.iter().map(|v| v.abs()).sum();
            for log in [false, true] {
                let loss = |xs: &[f64]| -> f64 {
                    reference(xs, sh, log)
                        .iter()
                        .zip(&gd)
                        .map(|(a, b)| a * b)
                        .sum()
                };
                let got = backward(&forward(&x, sh, log), &g, sh, log);
                for p in 0..n {
                    let (mut up, mut down) = (xd.clone(), xd.clone());
                    up[p] += h;
                    down[p] -= h;
                    let fd = (loss(&up) - loss(&down)) / (2.0 * h);
                    let tol = 1e-5 * (1.0 + g_mass / sh.0 as f64);
                    assert!(
                        (got[p] as f64 - fd).abs() <= tol,
                        "{:?} log={} at {}: {} vs {}",
                        sh,
                        log,
                        p,
                        got[p],
                        fd
                    );
                }
            }
        }
    }
}
