//! Fused scaled dot-product attention, `out = softmax(q kᵀ · scale + mask) v`, flash-attention
//! style: queries go in blocks of `QB` rows against keys in blocks of `KB` columns, each row
//! keeping a running maximum and sum, so the `[T, S]` weights never exist whole. The forward
//! saves each row's log-sum-exp; the backward recomputes every weight block from `q`, `k` and
//! that log-sum-exp, so what lives between the two passes is O(T) per (batch, head).
//!
//! Layouts are contiguous: `q [bh, t, d]`, `k [bh, s, d]`, `v [bh, s, dv]`, `out [bh, t, dv]`,
//! `lse [bh, t]`. `bh` runs over batch · heads with `heads` innermost. The optional additive
//! mask is read through four strides `(batch, head, row, column)`, any of which may be 0 for a
//! broadcast dim. `causal` keeps column `j` of row `i` only when `j <= i` (top-left aligned, as
//! PyTorch's `is_causal`). A row whose every score is `-inf` has no softmax: its output and
//! log-sum-exp are NaN, as the composition `softmax(...) @ v` gives.

use crate::math::{exp, exp4};
use crate::simd::F32x4;

/// Query rows per block.
pub const QB: usize = 16;
/// Key columns per block; the forward's scratch is one `QB × KB` block of scores.
pub const KB: usize = 64;

/// Sizes and options of one attention call.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    /// Heads per batch element (to split the `bh` index for the mask strides).
    pub heads: usize,
    /// Query rows.
    pub t: usize,
    /// Key/value rows.
    pub s: usize,
    /// Query/key width.
    pub d: usize,
    /// Value width.
    pub dv: usize,
    pub scale: f32,
    pub causal: bool,
}

/// An additive mask and its `(batch, head, row, column)` strides; an empty slice means none.
#[derive(Clone, Copy)]
pub struct Mask<'a> {
    pub data: &'a [f32],
    pub strides: [usize; 4],
}

impl Mask<'_> {
    #[inline(always)]
    fn base(&self, bh: usize, heads: usize) -> usize {
        (bh / heads) * self.strides[0] + (bh % heads) * self.strides[1]
    }
}

/// Query blocks per (batch, head): the forward's work range runs over `bh * query_blocks(t)`.
pub fn query_blocks(t: usize) -> usize {
    // Written out: `usize::div_ceil` is newer than the Rust 1.63 this crate builds with.
    let full = t / QB;
    if full * QB < t {
        full + 1
    } else {
        full
    }
}

/// Scratch floats the forward needs.
pub const FWD_SCRATCH: usize = QB * KB;

/// Scratch floats the backward needs for `t` query rows.
pub fn bwd_scratch(t: usize) -> usize {
    t + QB * KB
}

/// `Σ a[i] * b[i]` in four lanes with a scalar tail.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len();
    let b = &b[..n];
    let n4 = n / 4 * 4;
    let mut acc = F32x4::splat(0.0);
    let mut i = 0;
    while i < n4 {
        acc = F32x4::load(&a[i..]).mul_add(F32x4::load(&b[i..]), acc);
        i += 4;
    }
    let [a0, a1, a2, a3] = acc.to_array();
    let mut sum = (a0 + a1) + (a2 + a3);
    while i < n {
        sum += a[i] * b[i];
        i += 1;
    }
    sum
}

/// `y += alpha * x`.
#[inline(always)]
fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    let n = y.len();
    let x = &x[..n];
    let n4 = n / 4 * 4;
    let av = F32x4::splat(alpha);
    let mut i = 0;
    while i < n4 {
        av.mul_add(F32x4::load(&x[i..]), F32x4::load(&y[i..]))
            .store(&mut y[i..]);
        i += 4;
    }
    while i < n {
        y[i] += alpha * x[i];
        i += 1;
    }
}

/// `y *= alpha`.
#[inline(always)]
fn scale_row(alpha: f32, y: &mut [f32]) {
    let n = y.len();
    let n4 = n / 4 * 4;
    let av = F32x4::splat(alpha);
    let mut i = 0;
    while i < n4 {
        F32x4::load(&y[i..]).mul(av).store(&mut y[i..]);
        i += 4;
    }
    while i < n {
        y[i] *= alpha;
        i += 1;
    }
}

/// `x[j] = exp(x[j] - m)` over a row of scores.
#[inline(always)]
fn exp_sub(x: &mut [f32], m: f32) {
    let n = x.len();
    let n4 = n / 4 * 4;
    let mv = F32x4::splat(m);
    let mut i = 0;
    while i < n4 {
        exp4(F32x4::load(&x[i..]).sub(mv)).store(&mut x[i..]);
        i += 4;
    }
    while i < n {
        x[i] = exp(x[i] - m);
        i += 1;
    }
}

/// End of the key range row `i` may see.
#[inline(always)]
fn key_end(dm: &Dims, i: usize) -> usize {
    if dm.causal {
        (i + 1).min(dm.s)
    } else {
        dm.s
    }
}

/// Writes the scores of rows `i0..i1` against keys `j0..j1` of head `bh` into `sc` (row stride
/// `KB`): `q_i · k_j * scale + mask`, `-inf` past the causal edge.
#[allow(clippy::too_many_arguments)]
fn scores(
    q: &[f32],
    k: &[f32],
    mask: Mask,
    dm: &Dims,
    bh: usize,
    (i0, i1): (usize, usize),
    (j0, j1): (usize, usize),
    sc: &mut [f32],
) {
    let d = dm.d;
    let base = if mask.data.is_empty() {
        0
    } else {
        mask.base(bh, dm.heads)
    };
    for i in i0..i1 {
        let qi = &q[(bh * dm.t + i) * d..][..d];
        let row = &mut sc[(i - i0) * KB..][..j1 - j0];
        let end = key_end(dm, i);
        for (j, out) in (j0..j1).zip(row.iter_mut()) {
            *out = if j >= end {
                f32::NEG_INFINITY
            } else {
                let kj = &k[(bh * dm.s + j) * d..][..d];
                let m = if mask.data.is_empty() {
                    0.0
                } else {
                    mask.data[base + i * mask.strides[2] + j * mask.strides[3]]
                };
                dot(qi, kj) * dm.scale + m
            };
        }
    }
}

/// Forward over work items `begin..end` of `bh * query_blocks(t)`: writes the rows of `out`
/// and `lse` those query blocks own. `scratch` holds `FWD_SCRATCH` floats.
#[allow(clippy::too_many_arguments)]
pub fn sdpa_fwd_f32(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Mask,
    out: &mut [f32],
    lse: &mut [f32],
    scratch: &mut [f32],
    dm: Dims,
    begin: usize,
    end: usize,
) {
    debug_assert!(scratch.len() >= FWD_SCRATCH);
    let nqb = query_blocks(dm.t);
    let dv = dm.dv;
    for w in begin..end {
        let (bh, qb) = (w / nqb, w % nqb);
        let i0 = qb * QB;
        let i1 = (i0 + QB).min(dm.t);
        let mut m = [f32::NEG_INFINITY; QB];
        let mut l = [0f32; QB];
        for x in out[(bh * dm.t + i0) * dv..(bh * dm.t + i1) * dv].iter_mut() {
            *x = 0.0;
        }
        let kend = key_end(&dm, i1 - 1);
        let mut j0 = 0;
        while j0 < kend {
            let j1 = (j0 + KB).min(kend);
            scores(q, k, mask, &dm, bh, (i0, i1), (j0, j1), scratch);
            for i in i0..i1 {
                let r = i - i0;
                let row = &mut scratch[r * KB..][..j1 - j0];
                let bm = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                let m_new = m[r].max(bm);
                if m_new == f32::NEG_INFINITY {
                    continue; // nothing visible yet in this row
                }
                let orow = &mut out[(bh * dm.t + i) * dv..][..dv];
                if m[r] != m_new {
                    // Earlier blocks' terms were relative to the old maximum.
                    let alpha = exp(m[r] - m_new);
                    l[r] *= alpha;
                    scale_row(alpha, orow);
                    m[r] = m_new;
                }
                exp_sub(row, m_new);
                for (j, &p) in (j0..j1).zip(row.iter()) {
                    if p != 0.0 {
                        l[r] += p;
                        axpy(p, &v[(bh * dm.s + j) * dv..][..dv], orow);
                    }
                }
            }
            j0 = j1;
        }
        for i in i0..i1 {
            let r = i - i0;
            let orow = &mut out[(bh * dm.t + i) * dv..][..dv];
            if l[r] > 0.0 {
                scale_row(1.0 / l[r], orow);
                lse[bh * dm.t + i] = m[r] + l[r].ln();
            } else {
                // Every score -inf (or NaN): the softmax is undefined.
                for x in orow.iter_mut() {
                    *x = f32::NAN;
                }
                lse[bh * dm.t + i] = f32::NAN;
            }
        }
    }
}

/// Backward over heads `begin..end` of `bh` (dq and dk/dv both accumulate within one head, so
/// a head is the unit a worker can own): from `g = dL/dout`, the forward's `out` and `lse`,
/// writes `dq`, `dk` and `dv` of those heads. `scratch` holds `bwd_scratch(t)` floats.
#[allow(clippy::too_many_arguments)]
pub fn sdpa_bwd_f32(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Mask,
    out: &[f32],
    lse: &[f32],
    g: &[f32],
    dq: &mut [f32],
    dk: &mut [f32],
    dvv: &mut [f32],
    scratch: &mut [f32],
    dm: Dims,
    begin: usize,
    end: usize,
) {
    let (t, s, d, dv) = (dm.t, dm.s, dm.d, dm.dv);
    debug_assert!(scratch.len() >= bwd_scratch(t));
    let (dsum, sc) = scratch.split_at_mut(t);
    for bh in begin..end {
        for x in dq[bh * t * d..(bh + 1) * t * d].iter_mut() {
            *x = 0.0;
        }
        for x in dk[bh * s * d..(bh + 1) * s * d].iter_mut() {
            *x = 0.0;
        }
        for x in dvv[bh * s * dv..(bh + 1) * s * dv].iter_mut() {
            *x = 0.0;
        }
        // D_i = Σ_c g_ic · out_ic = Σ_j p_ij (g_i · v_j), the softmax backward's row term.
        for (i, di) in dsum.iter_mut().enumerate() {
            let o = (bh * t + i) * dv;
            *di = dot(&g[o..o + dv], &out[o..o + dv]);
        }
        let mut i0 = 0;
        while i0 < t {
            let i1 = (i0 + QB).min(t);
            let kend = key_end(&dm, i1 - 1);
            let mut j0 = 0;
            while j0 < kend {
                let j1 = (j0 + KB).min(kend);
                scores(q, k, mask, &dm, bh, (i0, i1), (j0, j1), sc);
                for i in i0..i1 {
                    let row = &mut sc[(i - i0) * KB..][..j1 - j0];
                    exp_sub(row, lse[bh * t + i]);
                    let gi = &g[(bh * t + i) * dv..][..dv];
                    let qi = &q[(bh * t + i) * d..][..d];
                    for (j, p) in (j0..j1).zip(row.iter_mut()) {
                        if *p == 0.0 {
                            continue;
                        }
                        let vo = (bh * s + j) * dv;
                        axpy(*p, gi, &mut dvv[vo..vo + dv]);
                        let ds = *p * (dot(gi, &v[vo..vo + dv]) - dsum[i]) * dm.scale;
                        let ko = (bh * s + j) * d;
                        axpy(ds, &k[ko..ko + d], &mut dq[(bh * t + i) * d..][..d]);
                        axpy(ds, qi, &mut dk[ko..ko + d]);
                    }
                }
                j0 = j1;
            }
            i0 = i1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random;

    /// Naive f64 attention: weights `[bh, t, s]` and output.
    fn naive(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        mask: Option<(&[f32], [usize; 4])>,
        dm: Dims,
        bh: usize,
    ) -> (Vec<f64>, Vec<f64>) {
        let (t, s, d, dv) = (dm.t, dm.s, dm.d, dm.dv);
        let mut w = vec![0f64; bh * t * s];
        let mut o = vec![0f64; bh * t * dv];
        for b in 0..bh {
            for i in 0..t {
                let mut row = vec![f64::NEG_INFINITY; s];
                for (j, r) in row.iter_mut().enumerate() {
                    if dm.causal && j > i {
                        continue;
                    }
                    let mut acc = 0f64;
                    for c in 0..d {
                        acc += q[(b * t + i) * d + c] as f64 * k[(b * s + j) * d + c] as f64;
                    }
                    acc *= dm.scale as f64;
                    if let Some((m, st)) = mask {
                        let idx =
                            (b / dm.heads) * st[0] + (b % dm.heads) * st[1] + i * st[2] + j * st[3];
                        acc += m[idx] as f64;
                    }
                    *r = acc;
                }
                let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = row.iter().map(|x| (x - mx).exp()).sum();
                for j in 0..s {
                    let p = (row[j] - mx).exp() / z;
                    w[(b * t + i) * s + j] = p;
                    for c in 0..dv {
                        o[(b * t + i) * dv + c] += p * v[(b * s + j) * dv + c] as f64;
                    }
                }
            }
        }
        (w, o)
    }

    /// Naive f64 gradients of `Σ g · out` for q, k, v.
    #[allow(clippy::type_complexity)]
    fn naive_grads(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        g: &[f32],
        mask: Option<(&[f32], [usize; 4])>,
        dm: Dims,
        bh: usize,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (t, s, d, dv) = (dm.t, dm.s, dm.d, dm.dv);
        let (w, _) = naive(q, k, v, mask, dm, bh);
        let mut dq = vec![0f64; q.len()];
        let mut dk = vec![0f64; k.len()];
        let mut dvv = vec![0f64; v.len()];
        for b in 0..bh {
            for i in 0..t {
                let mut dp = vec![0f64; s];
                for (j, dpj) in dp.iter_mut().enumerate() {
                    let p = w[(b * t + i) * s + j];
                    for c in 0..dv {
                        let gi = g[(b * t + i) * dv + c] as f64;
                        dvv[(b * s + j) * dv + c] += p * gi;
                        *dpj += gi * v[(b * s + j) * dv + c] as f64;
                    }
                }
                let dd: f64 = (0..s).map(|j| w[(b * t + i) * s + j] * dp[j]).sum();
                for j in 0..s {
                    let ds = w[(b * t + i) * s + j] * (dp[j] - dd) * dm.scale as f64;
                    for c in 0..d {
                        dq[(b * t + i) * d + c] += ds * k[(b * s + j) * d + c] as f64;
                        dk[(b * s + j) * d + c] += ds * q[(b * t + i) * d + c] as f64;
                    }
                }
            }
        }
        (dq, dk, dvv)
    }

    fn close(a: &[f32], b: &[f64], tol: f64, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: length");
        for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x as f64 - y).abs() <= tol * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    fn run(heads: usize, batch: usize, t: usize, s: usize, d: usize, dv: usize, causal: bool) {
        let bh = batch * heads;
        let dm = Dims {
            heads,
            t,
            s,
            d,
            dv,
            scale: 1.0 / (d.max(1) as f32).sqrt(),
            causal,
        };
        let q = random(bh * t * d, 1, -1.0, 1.0);
        let k = random(bh * s * d, 2, -1.0, 1.0);
        let v = random(bh * s * dv, 3, -1.0, 1.0);
        let g = random(bh * t * dv, 4, -1.0, 1.0);
        // A [batch, 1, t, s] mask broadcast over heads.
        let mdata = random(batch * t * s, 5, -2.0, 2.0);
        let mst = [t * s, 0, s, 1];
        for mask in [None, Some((&mdata[..], mst))] {
            let m = match mask {
                Some((data, strides)) => Mask { data, strides },
                None => Mask {
                    data: &[],
                    strides: [0; 4],
                },
            };
            let mut out = vec![0f32; bh * t * dv];
            let mut lse = vec![0f32; bh * t];
            let mut scratch = vec![0f32; FWD_SCRATCH.max(bwd_scratch(t))];
            let work = bh * query_blocks(t);
            // Two calls over a split work range give the same as one.
            let mid = work / 2;
            sdpa_fwd_f32(&q, &k, &v, m, &mut out, &mut lse, &mut scratch, dm, 0, mid);
            sdpa_fwd_f32(
                &q,
                &k,
                &v,
                m,
                &mut out,
                &mut lse,
                &mut scratch,
                dm,
                mid,
                work,
            );
            if s == 0 || t == 0 {
                assert!(out.iter().all(|x| x.is_nan()));
                continue;
            }
            let (_, o) = naive(&q, &k, &v, mask, dm, bh);
            close(&out, &o, 2e-5, "out");
            let mut dq = vec![9f32; q.len()];
            let mut dk = vec![9f32; k.len()];
            let mut dvv = vec![9f32; v.len()];
            sdpa_bwd_f32(
                &q,
                &k,
                &v,
                m,
                &out,
                &lse,
                &g,
                &mut dq,
                &mut dk,
                &mut dvv,
                &mut scratch,
                dm,
                0,
                bh,
            );
            let (eq, ek, ev) = naive_grads(&q, &k, &v, &g, mask, dm, bh);
            close(&dq, &eq, 5e-5, "dq");
            close(&dk, &ek, 5e-5, "dk");
            close(&dvv, &ev, 5e-5, "dv");
        }
    }

    #[test]
    fn matches_naive_at_simd_lengths() {
        for &d in &[1usize, 3, 4, 5, 15, 16, 17] {
            run(2, 1, 5, 7, d, d, false);
            run(1, 2, 3, 3, d, (d + 2) % 6 + 1, true);
        }
    }

    #[test]
    fn matches_naive_across_blocks() {
        // Rows and columns past one block each (QB = 16, KB = 64), causal and not.
        run(2, 1, 17, 257, 16, 8, false);
        run(1, 1, 257, 257, 4, 4, true);
        run(1, 1, 33, 65, 5, 3, false);
        // A head width past the SIMD body's many chunks.
        run(1, 2, 3, 5, 257, 257, false);
    }

    #[test]
    fn empty_and_tiny() {
        run(1, 1, 1, 1, 1, 1, false);
        run(1, 1, 1, 1, 1, 1, true);
        run(1, 1, 4, 0, 3, 2, false);
        run(1, 1, 0, 4, 3, 2, false);
        // Zero-width heads: the SIMD loops run zero times.
        run(1, 1, 3, 4, 0, 2, false);
        run(1, 1, 3, 4, 2, 0, true);
    }

    #[test]
    fn fully_masked_row_is_nan_and_others_are_not() {
        let dm = Dims {
            heads: 1,
            t: 2,
            s: 3,
            d: 4,
            dv: 4,
            scale: 0.5,
            causal: false,
        };
        let q = random(8, 1, -1.0, 1.0);
        let k = random(12, 2, -1.0, 1.0);
        let v = random(12, 3, -1.0, 1.0);
        let ninf = f32::NEG_INFINITY;
        let mask = [ninf, ninf, ninf, 0.0, ninf, 0.0];
        let m = Mask {
            data: &mask,
            strides: [0, 0, 3, 1],
        };
        let mut out = vec![0f32; 8];
        let mut lse = vec![0f32; 2];
        let mut scratch = vec![0f32; FWD_SCRATCH];
        sdpa_fwd_f32(&q, &k, &v, m, &mut out, &mut lse, &mut scratch, dm, 0, 1);
        assert!(out[..4].iter().all(|x| x.is_nan()) && lse[0].is_nan());
        // Row 1 sees keys 0 and 2 only.
        let (_, o) = naive(&q, &k, &v, Some((&mask, [0, 0, 3, 1])), dm, 1);
        close(&out[4..], &o[4..], 1e-6, "row 1");
    }
}
