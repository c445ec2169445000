//! Fused LayerNorm over the rows of a contiguous `[rows, d]` array: `y = x̂ * weight + bias` with
//! `x̂ = (x - mean) * rstd`, `rstd = 1 / sqrt(var + eps)` and the biased variance, forward and
//! backward, weight and bias each optional.
//!
//! Statistics are two-pass: the mean, then the centred sums `Σc` and `Σc²` with `c = x - m`. The
//! mean `m` is an f32, off by up to half an ulp of itself, which matters when `|mean| >> std`
//! (5e-4 at 1e4, next to a std of 1e-2), so `Σc / d` recovers the residual `δ`: each row saves
//! the pair `mean[2r..2r + 2] = (m, δ)` and every pass centres as `(x - m) - δ`, where `x - m`
//! is exact near the mean. The variance is `(Σc² - (Σc)² / d) / d`. Sums run in four-lane
//! accumulators over blocks of `BLOCK` floats, each block's total added in f64.

use crate::simd::F32x4;

/// Floats a four-lane accumulator sums before its total moves to f64.
const BLOCK: usize = 512;

/// Which optional parameter buffers a call has (each empty slice means "absent").
#[derive(Clone, Copy)]
struct Affine<'a> {
    weight: &'a [f32],
    bias: &'a [f32],
}

/// LayerNorm forward of `rows = x.len() / d` rows: writes `y`, the `(m, δ)` pair of each row
/// into `mean` (`2 * rows` floats) and `rstd` (`rows`). `weight` and `bias` hold `d` floats or
/// are empty for none.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_f32(
    x: &[f32],
    y: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
    weight: &[f32],
    bias: &[f32],
    d: usize,
    eps: f32,
) {
    debug_assert!(d > 0 && y.len() == x.len());
    let rows = x.len() / d;
    debug_assert!(rows * d == x.len() && mean.len() == 2 * rows && rstd.len() == rows);
    debug_assert!(weight.is_empty() || weight.len() == d);
    debug_assert!(bias.is_empty() || bias.len() == d);
    let p = Affine { weight, bias };
    let rows_iter = x.chunks_exact(d).zip(y.chunks_exact_mut(d));
    for ((xr, yr), (mr, sr)) in rows_iter.zip(mean.chunks_exact_mut(2).zip(rstd.iter_mut())) {
        let (m, delta, s) = row_stats(xr, eps);
        mr[0] = m;
        mr[1] = delta;
        *sr = s;
        match (p.weight.is_empty(), p.bias.is_empty()) {
            (true, true) => normalize_row::<false, false>(xr, yr, m, delta, s, p),
            (false, true) => normalize_row::<true, false>(xr, yr, m, delta, s, p),
            (true, false) => normalize_row::<false, true>(xr, yr, m, delta, s, p),
            (false, false) => normalize_row::<true, true>(xr, yr, m, delta, s, p),
        }
    }
}

/// LayerNorm backward from the upstream gradient `g`, the input `x` and the forward's `mean`
/// pairs and `rstd`: writes `dx` (empty to skip) and adds `Σ_rows g * x̂` into `dweight` and
/// `Σ_rows g` into `dbias` (each empty to skip). `weight` is empty when the forward had none.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_bwd_f32(
    g: &[f32],
    x: &[f32],
    mean: &[f32],
    rstd: &[f32],
    weight: &[f32],
    dx: &mut [f32],
    dweight: &mut [f32],
    dbias: &mut [f32],
    d: usize,
) {
    debug_assert!(d > 0 && g.len() == x.len());
    let rows = x.len() / d;
    debug_assert!(rows * d == x.len() && mean.len() == 2 * rows && rstd.len() == rows);
    debug_assert!(dx.is_empty() || dx.len() == x.len());
    debug_assert!(weight.is_empty() || weight.len() == d);
    debug_assert!(dweight.is_empty() || dweight.len() == d);
    debug_assert!(dbias.is_empty() || dbias.len() == d);
    for (r, ((gr, xr), &s)) in g
        .chunks_exact(d)
        .zip(x.chunks_exact(d))
        .zip(rstd)
        .enumerate()
    {
        let c = Centre {
            m: mean[2 * r],
            delta: mean[2 * r + 1],
            rstd: s,
        };
        if !dx.is_empty() {
            let dxr = &mut dx[r * d..(r + 1) * d];
            if weight.is_empty() {
                dx_row::<false>(gr, xr, weight, dxr, c);
            } else {
                dx_row::<true>(gr, xr, weight, dxr, c);
            }
        }
        match (dweight.is_empty(), dbias.is_empty()) {
            (true, true) => {}
            (false, true) => param_row::<true, false>(gr, xr, dweight, dbias, c),
            (true, false) => param_row::<false, true>(gr, xr, dweight, dbias, c),
            (false, false) => param_row::<true, true>(gr, xr, dweight, dbias, c),
        }
    }
}

/// First row of chunk `c` when `rows` rows are cut into `chunks` fixed chunks.
pub fn chunk_start(rows: usize, chunks: usize, c: usize) -> usize {
    (rows as u64 * c as u64 / chunks as u64) as usize
}

/// `layer_norm_bwd_f32` over chunks `begin..end` of `rows` rows cut into `chunks` fixed chunks
/// (`chunk_start`): `g`, `x`, `mean`, `rstd` and `dx` hold only those chunks' rows, and chunk
/// `c`'s parameter-gradient sums overwrite row `c - begin` of `dweight_parts`/`dbias_parts`
/// (`d` floats each; empty to skip). The caller adds the parts in chunk order, so every split of
/// the chunks over threads gives the same bits.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_bwd_chunks_f32(
    g: &[f32],
    x: &[f32],
    mean: &[f32],
    rstd: &[f32],
    weight: &[f32],
    dx: &mut [f32],
    dweight_parts: &mut [f32],
    dbias_parts: &mut [f32],
    (rows, d): (usize, usize),
    (chunks, begin, end): (usize, usize, usize),
) {
    let r0 = chunk_start(rows, chunks, begin);
    for c in begin..end {
        let (a, b) = (
            chunk_start(rows, chunks, c) - r0,
            chunk_start(rows, chunks, c + 1) - r0,
        );
        let k = c - begin;
        let (dw, db) = (
            rows_or_empty(dweight_parts, k * d..(k + 1) * d),
            rows_or_empty(dbias_parts, k * d..(k + 1) * d),
        );
        dw.fill(0.0);
        db.fill(0.0);
        let dxr = rows_or_empty(dx, a * d..b * d);
        layer_norm_bwd_f32(
            &g[a * d..b * d],
            &x[a * d..b * d],
            &mean[2 * a..2 * b],
            &rstd[a..b],
            weight,
            dxr,
            dw,
            db,
            d,
        );
    }
}

/// `s[r]`, or `s` itself when it is empty (an output the caller skips).
fn rows_or_empty(s: &mut [f32], r: std::ops::Range<usize>) -> &mut [f32] {
    if s.is_empty() {
        s
    } else {
        &mut s[r]
    }
}

/// `(m, δ, rstd)` of one row.
fn row_stats(x: &[f32], eps: f32) -> (f32, f32, f32) {
    let n = x.len() as f64;
    let [sum] = block_sums(x.len(), |i| [F32x4::load(&x[i..])], |i| [x[i]]);
    let m = (sum / n) as f32;
    let mv = F32x4::splat(m);
    let [s1, s2] = block_sums(
        x.len(),
        |i| {
            let c = F32x4::load(&x[i..]).sub(mv);
            [c, c.mul(c)]
        },
        |i| {
            let c = x[i] - m;
            [c, c * c]
        },
    );
    let var = ((s2 - s1 * s1 / n) / n).max(0.0);
    let rstd = 1.0 / (var + eps as f64).sqrt();
    (m, (s1 / n) as f32, rstd as f32)
}

/// `y = ((x - m) - δ) * rstd (* weight) (+ bias)` over one row.
fn normalize_row<const W: bool, const B: bool>(
    x: &[f32],
    y: &mut [f32],
    m: f32,
    delta: f32,
    rstd: f32,
    p: Affine,
) {
    // Equal lengths up front let LLVM drop the bounds checks in the loops.
    let n = x.len();
    let y = &mut y[..n];
    let w = if W { &p.weight[..n] } else { p.weight };
    let b = if B { &p.bias[..n] } else { p.bias };
    let (mv, dv, sv) = (F32x4::splat(m), F32x4::splat(delta), F32x4::splat(rstd));
    let n4 = n / 4 * 4;
    let mut i = 0;
    while i < n4 {
        let mut v = F32x4::load(&x[i..]).sub(mv).sub(dv).mul(sv);
        if W {
            v = v.mul(F32x4::load(&w[i..]));
        }
        if B {
            v = v.add(F32x4::load(&b[i..]));
        }
        v.store(&mut y[i..]);
        i += 4;
    }
    for i in n4..n {
        let mut v = ((x[i] - m) - delta) * rstd;
        if W {
            v *= w[i];
        }
        if B {
            v += b[i];
        }
        y[i] = v;
    }
}

/// A row's saved statistics: `x̂ = ((x - m) - δ) * rstd`.
#[derive(Clone, Copy)]
struct Centre {
    m: f32,
    delta: f32,
    rstd: f32,
}

impl Centre {
    #[inline(always)]
    fn xhat4(self, x: F32x4) -> F32x4 {
        x.sub(F32x4::splat(self.m))
            .sub(F32x4::splat(self.delta))
            .mul(F32x4::splat(self.rstd))
    }
    #[inline(always)]
    fn xhat(self, x: f32) -> f32 {
        ((x - self.m) - self.delta) * self.rstd
    }
}

/// `dx = rstd * (ĝ - mean(ĝ) - x̂ * mean(ĝ x̂))` over one row, with `ĝ = g * weight`.
fn dx_row<const W: bool>(g: &[f32], x: &[f32], w: &[f32], dx: &mut [f32], c: Centre) {
    let (g, dx) = (&g[..x.len()], &mut dx[..x.len()]);
    let w = if W { &w[..x.len()] } else { w };
    let gh4 = |i: usize| {
        let v = F32x4::load(&g[i..]);
        if W {
            v.mul(F32x4::load(&w[i..]))
        } else {
            v
        }
    };
    let gh = |i: usize| if W { g[i] * w[i] } else { g[i] };
    let [sg, sgx] = block_sums(
        x.len(),
        |i| {
            let v = gh4(i);
            [v, v.mul(c.xhat4(F32x4::load(&x[i..])))]
        },
        |i| [gh(i), gh(i) * c.xhat(x[i])],
    );
    let n = x.len() as f64;
    let (a, b) = ((sg / n) as f32, (sgx / n) as f32);
    let (av, bv, sv) = (F32x4::splat(a), F32x4::splat(b), F32x4::splat(c.rstd));
    let n4 = x.len() / 4 * 4;
    let mut i = 0;
    while i < n4 {
        let xh = c.xhat4(F32x4::load(&x[i..]));
        gh4(i).sub(av).sub(xh.mul(bv)).mul(sv).store(&mut dx[i..]);
        i += 4;
    }
    for i in n4..x.len() {
        dx[i] = ((gh(i) - a) - c.xhat(x[i]) * b) * c.rstd;
    }
}

/// `dweight += g * x̂` and `dbias += g` over one row.
fn param_row<const DW: bool, const DB: bool>(
    g: &[f32],
    x: &[f32],
    dw: &mut [f32],
    db: &mut [f32],
    c: Centre,
) {
    let g = &g[..x.len()];
    let dw = if DW { &mut dw[..x.len()] } else { dw };
    let db = if DB { &mut db[..x.len()] } else { db };
    let n4 = x.len() / 4 * 4;
    let mut i = 0;
    while i < n4 {
        let gv = F32x4::load(&g[i..]);
        if DW {
            let xh = c.xhat4(F32x4::load(&x[i..]));
            F32x4::load(&dw[i..]).add(gv.mul(xh)).store(&mut dw[i..]);
        }
        if DB {
            F32x4::load(&db[i..]).add(gv).store(&mut db[i..]);
        }
        i += 4;
    }
    for i in n4..x.len() {
        if DW {
            dw[i] += g[i] * c.xhat(x[i]);
        }
        if DB {
            db[i] += g[i];
        }
    }
}

/// `N` sums over `len` elements: `vec(i)` gives the terms of elements `i..i + 4`, `one(i)` those
/// of element `i`. Each sum runs in four independent four-lane accumulators (one add chain
/// would stall on its latency) that restart every `BLOCK` elements; block totals add in f64.
#[inline(always)]
fn block_sums<const N: usize>(
    len: usize,
    vec: impl Fn(usize) -> [F32x4; N],
    one: impl Fn(usize) -> [f32; N],
) -> [f64; N] {
    let mut total = [0.0f64; N];
    let mut start = 0;
    while start < len {
        let end = len.min(start + BLOCK);
        let mut acc = [[F32x4::splat(0.0); 4]; N];
        let mut i = start;
        while i + 16 <= end {
            for u in 0..4 {
                for (a, t) in acc.iter_mut().zip(vec(i + 4 * u)) {
                    a[u] = a[u].add(t);
                }
            }
            i += 16;
        }
        while i + 4 <= end {
            for (a, t) in acc.iter_mut().zip(vec(i)) {
                a[0] = a[0].add(t);
            }
            i += 4;
        }
        let mut tail = [0.0f32; N];
        while i < end {
            for (s, t) in tail.iter_mut().zip(one(i)) {
                *s += t;
            }
            i += 1;
        }
        for ((t, a), s) in total.iter_mut().zip(acc).zip(tail) {
            let v = a[0].add(a[1]).add(a[2].add(a[3])).to_array();
            *t += ((v[0] + v[1]) + (v[2] + v[3]) + s) as f64;
        }
        start = end;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random;

    const DIMS: [usize; 8] = [1, 3, 4, 5, 15, 16, 17, 257];
    const ROWS: usize = 3;

    /// The naive f64 forward: `(y, mean, rstd)` per row.
    fn forward_ref(x: &[f32], w: &[f32], b: &[f32], d: usize, eps: f64) -> Vec<f64> {
        let mut y = vec![];
        for row in x.chunks(d) {
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
            let rstd = 1.0 / (var + eps).sqrt();
            for (j, &v) in row.iter().enumerate() {
                let wj = w.get(j).map_or(1.0, |&t| t as f64);
                let bj = b.get(j).map_or(0.0, |&t| t as f64);
                y.push((v as f64 - mean) * rstd * wj + bj);
            }
        }
        y
    }

    /// The naive f64 backward: `(dx, dweight, dbias)`.
    fn backward_ref(
        g: &[f32],
        x: &[f32],
        w: &[f32],
        d: usize,
        eps: f64,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (mut dx, mut dw, mut db) = (vec![], vec![0.0; d], vec![0.0; d]);
        for (gr, xr) in g.chunks(d).zip(x.chunks(d)) {
            let mean = xr.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
            let var = xr.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
            let rstd = 1.0 / (var + eps).sqrt();
            let xh: Vec<f64> = xr.iter().map(|&v| (v as f64 - mean) * rstd).collect();
            let gh: Vec<f64> = (0..d)
                .map(|j| gr[j] as f64 * w.get(j).map_or(1.0, |&t| t as f64))
                .collect();
            let a = gh.iter().sum::<f64>() / d as f64;
            let b = gh.iter().zip(&xh).map(|(p, q)| p * q).sum::<f64>() / d as f64;
            for j in 0..d {
                dx.push(rstd * (gh[j] - a - xh[j] * b));
                dw[j] += gr[j] as f64 * xh[j];
                db[j] += gr[j] as f64;
            }
        }
        (dx, dw, db)
    }

    /// Every element within `tol` relative to the row scale `scale`.
    fn assert_close(got: &[f32], want: &[f64], scale: f64, tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what} length");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let err = (g as f64 - w).abs();
            assert!(
                err <= tol * (scale + w.abs()),
                "{what}[{i}] = {g}, want {w} (err {err:e})"
            );
        }
    }

    fn run_forward(x: &[f32], w: &[f32], b: &[f32], d: usize, eps: f32) -> Vec<f32> {
        let rows = x.len() / d;
        let mut y = vec![f32::NAN; x.len()];
        let (mut mean, mut rstd) = (vec![f32::NAN; 2 * rows], vec![f32::NAN; rows]);
        layer_norm_f32(x, &mut y, &mut mean, &mut rstd, w, b, d, eps);
        y
    }

    #[test]
    fn forward_matches_f64_with_and_without_affine() {
        for &d in &DIMS {
            let x = random(ROWS * d, d as u32, -3.0, 5.0);
            let w = random(d, 7 + d as u32, 0.5, 1.5);
            let b = random(d, 11 + d as u32, -1.0, 1.0);
            for (wi, bi) in [
                (&w[..0], &b[..0]),
                (&w[..], &b[..0]),
                (&w[..0], &b[..]),
                (&w[..], &b[..]),
            ] {
                let y = run_forward(&x, wi, bi, d, 1e-5);
                let want = forward_ref(&x, wi, bi, d, 1e-5f32 as f64);
                assert_close(&y, &want, 1.0, 2e-6, &format!("y d={d}"));
            }
        }
    }

    #[test]
    fn forward_is_exact_for_a_large_mean() {
        // |mean| ~ 1e4 with a spread of ~1e-2: an f32 mean alone would shift x̂ by up to 0.05.
        for &d in &[16usize, 17, 257] {
            let x: Vec<f32> = random(ROWS * d, 3 * d as u32, -0.02, 0.02)
                .iter()
                .map(|v| 10_000.0 + v)
                .collect();
            let y = run_forward(&x, &[], &[], d, 0.0);
            let want = forward_ref(&x, &[], &[], d, 0.0);
            assert_close(&y, &want, 1.0, 2e-6, &format!("y d={d}"));
        }
    }

    #[test]
    fn constant_rows_give_zero_with_finite_stats() {
        let x = vec![3.25f32; 2 * 5];
        let mut y = vec![f32::NAN; 10];
        let (mut mean, mut rstd) = (vec![0.0; 4], vec![0.0; 2]);
        layer_norm_f32(&x, &mut y, &mut mean, &mut rstd, &[], &[], 5, 1e-5);
        assert!(y.iter().all(|&v| v == 0.0), "{y:?}");
        assert_eq!(mean, vec![3.25, 0.0, 3.25, 0.0]);
        assert!((rstd[0] as f64 - 1e-5f64.powf(-0.5)).abs() < 1e-2);
    }

    #[test]
    fn backward_matches_f64() {
        // The offset 1e3 puts the f32 mean's rounding at 3e-5, far above the tolerance.
        for (&d, offset) in DIMS.iter().flat_map(|d| [(d, 0.0f32), (d, 1e3)]) {
            let x: Vec<f32> = random(ROWS * d, 5 * d as u32, -2.0, 3.0)
                .iter()
                .map(|v| v + offset)
                .collect();
            let g = random(ROWS * d, 13 + d as u32, -1.0, 1.0);
            let w = random(d, 17 + d as u32, 0.5, 1.5);
            for wi in [&w[..0], &w[..]] {
                let rows = x.len() / d;
                let mut y = vec![0.0; x.len()];
                let (mut mean, mut rstd) = (vec![0.0; 2 * rows], vec![0.0; rows]);
                layer_norm_f32(&x, &mut y, &mut mean, &mut rstd, wi, &[], d, 1e-5);
                let mut dx = vec![f32::NAN; x.len()];
                let (mut dw, mut db) = (vec![0.0; d], vec![0.0; d]);
                layer_norm_bwd_f32(&g, &x, &mean, &rstd, wi, &mut dx, &mut dw, &mut db, d);
                let (rdx, rdw, rdb) = backward_ref(&g, &x, wi, d, 1e-5f32 as f64);
                assert_close(&dx, &rdx, 1.0, 1e-5, &format!("dx d={d}"));
                assert_close(&dw, &rdw, 1.0, 1e-5, &format!("dweight d={d}"));
                assert_close(&db, &rdb, 1.0, 1e-6, &format!("dbias d={d}"));
            }
        }
    }

    #[test]
    fn backward_skips_absent_outputs_and_accumulates() {
        let d = 9;
        let x = random(2 * d, 1, -1.0, 1.0);
        let g = random(2 * d, 2, -1.0, 1.0);
        let (mut mean, mut rstd, mut y) = (vec![0.0; 4], vec![0.0; 2], vec![0.0; 2 * d]);
        layer_norm_f32(&x, &mut y, &mut mean, &mut rstd, &[], &[], d, 1e-5);
        let mut db = vec![1.0; d];
        layer_norm_bwd_f32(&g, &x, &mean, &rstd, &[], &mut [], &mut [], &mut db, d);
        for (j, &v) in db.iter().enumerate() {
            let want = 1.0 + g[j] as f64 + g[d + j] as f64;
            assert!(
                (v as f64 - want).abs() < 1e-6,
                "dbias[{j}] = {v}, want {want}"
            );
        }
    }

    #[test]
    fn backward_chunks_sum_to_the_f64_gradients_for_any_split() {
        let (rows, d, chunks) = (11, 17, 4);
        let x = random(rows * d, 3, -2.0, 3.0);
        let g = random(rows * d, 4, -1.0, 1.0);
        let w = random(d, 5, 0.5, 1.5);
        let (mut y, mut mean, mut rstd) =
            (vec![0.0; rows * d], vec![0.0; 2 * rows], vec![0.0; rows]);
        layer_norm_f32(&x, &mut y, &mut mean, &mut rstd, &w, &[], d, 1e-5);
        let (rdx, rdw, rdb) = backward_ref(&g, &x, &w, d, 1e-5f32 as f64);
        let mut first: Option<(Vec<f32>, Vec<f32>, Vec<f32>)> = None;
        // The chunks run as one call, or as two calls cut after chunk `cut`, as two threads would.
        for cut in [chunks, 1, 2, 3] {
            let mut dx = vec![f32::NAN; rows * d];
            let (mut dw, mut db) = (vec![f32::NAN; chunks * d], vec![f32::NAN; chunks * d]);
            for (begin, end) in [(0, cut), (cut, chunks)] {
                let (r0, r1) = (
                    chunk_start(rows, chunks, begin),
                    chunk_start(rows, chunks, end),
                );
                layer_norm_bwd_chunks_f32(
                    &g[r0 * d..r1 * d],
                    &x[r0 * d..r1 * d],
                    &mean[2 * r0..2 * r1],
                    &rstd[r0..r1],
                    &w,
                    &mut dx[r0 * d..r1 * d],
                    &mut dw[begin * d..end * d],
                    &mut db[begin * d..end * d],
                    (rows, d),
                    (chunks, begin, end),
                );
            }
            let total = |parts: &[f32]| -> Vec<f32> {
                let mut t = vec![0.0f32; d];
                for p in parts.chunks_exact(d) {
                    t.iter_mut().zip(p).for_each(|(a, b)| *a += b);
                }
                t
            };
            let (tw, tb) = (total(&dw), total(&db));
            assert_close(&dx, &rdx, 1.0, 1e-5, "chunked dx");
            assert_close(&tw, &rdw, 1.0, 1e-5, "chunked dweight");
            assert_close(&tb, &rdb, 1.0, 1e-6, "chunked dbias");
            match &first {
                None => first = Some((dx, tw, tb)),
                Some(f) => assert!(
                    f.0 == dx && f.1 == tw && f.2 == tb,
                    "cut {cut} changed bits"
                ),
            }
        }
    }

    #[test]
    fn block_sums_match_f64_across_blocks() {
        for &n in &[0usize, 1, 3, 4, 5, 511, 512, 513, 2000] {
            let x = random(n, n as u32, -1.0, 1.0);
            let [s, sq] = block_sums(
                n,
                |i| {
                    let v = F32x4::load(&x[i..]);
                    [v, v.mul(v)]
                },
                |i| [x[i], x[i] * x[i]],
            );
            let want: f64 = x.iter().map(|&v| v as f64).sum();
            let want_sq: f64 = x.iter().map(|&v| (v as f64).powi(2)).sum();
            assert!(
                (s - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "n={n}: {s} vs {want}"
            );
            assert!((sq - want_sq).abs() <= 1e-6 * want_sq.max(1.0), "n={n}");
        }
    }
}
