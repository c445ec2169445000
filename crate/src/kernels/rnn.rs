//! Fused recurrent cells, one timestep per call: the recurrent GEMM `h_prev · W_hhᵀ` (the packed
//! kernel of `matmul.rs`) plus every gate, the state update and the saved activations in one
//! pass, and the matching backward. PyTorch's layouts and gate orders: LSTM `i, f, g, o`, GRU
//! `r, z, n` with `n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`, Elman `tanh`/`relu`.
//!
//! The input projection `gx = x · W_ihᵀ + b_ih` of all timesteps is one GEMM done by the caller,
//! so a step takes `gx[t]` (`[batch, G·H]`). The backward writes the gradient of the
//! pre-activation gates per step instead of accumulating weight gradients: the caller keeps them
//! in a `[T, batch, G·H]` buffer and gets `dW_ih`, `dW_hh` and the biases with one GEMM (or sum)
//! each over all steps, which beats T rank-`batch` updates.
//!
//! Every function works on the batch rows `begin..end` (GEMM included), so a pool can split a
//! step by rows. Scratch (`pre`, `scratch`) is the caller's; nothing allocates. Absent optional
//! inputs (`b_hh`, `dh`, `dc`) are empty slices and read as zeros.
//!
//! `W_hh` is the same at every step, so a layer packs it once per pass (`pack_w_hh_f32`, one
//! layout for the forward GEMM and one for the backward's) and passes the panels as
//! `w_hh_packed`; an empty `w_hh_packed` packs per call (a cell module's single step). Both give
//! the same bits.

use crate::kernels::matmul;
use crate::math::{sigmoid4, tanh4};
use crate::simd::F32x4;

/// Runs `f` over the columns `0..n` of the rows `ins`/`outs`, four lanes at a time. The tail
/// (`n % 4` columns) runs the same `f` on zero-padded copies, so lanes and tail share one formula.
/// An empty input reads as zeros.
///
/// The rows are cut to `n` once, so the loads of the whole-vector loop need no per-load length
/// checks; only absent inputs are tested, and every call site's are the same at every column.
#[inline(always)]
fn lanes<const I: usize, const O: usize>(
    n: usize,
    ins: [&[f32]; I],
    outs: [&mut [f32]; O],
    f: impl Fn([F32x4; I]) -> [F32x4; O],
) {
    let ins = ins.map(|s| if s.is_empty() { s } else { &s[..n] });
    let mut outs = outs.map(|o| &mut o[..n]);
    let full = n - n % 4;
    let mut j = 0;
    while j < full {
        let x = core::array::from_fn(|i| {
            let s = ins[i];
            if s.is_empty() {
                F32x4::splat(0.0)
            } else {
                F32x4::load(&s[j..j + 4])
            }
        });
        for (o, v) in outs.iter_mut().zip(f(x)) {
            v.store(&mut o[j..j + 4]);
        }
        j += 4;
    }
    if full < n {
        let len = n - full;
        let x = ins.map(|s| {
            let mut p = [0.0f32; 4];
            if !s.is_empty() {
                p[..len].copy_from_slice(&s[full..n]);
            }
            F32x4::load(&p)
        });
        for (o, v) in outs.iter_mut().zip(f(x)) {
            let mut p = [0.0f32; 4];
            v.store(&mut p);
            o[full..n].copy_from_slice(&p[..len]);
        }
    }
}

/// Column block `k` (of width `h`) of a row.
#[inline(always)]
fn part(row: &[f32], k: usize, h: usize) -> &[f32] {
    if row.is_empty() {
        row
    } else {
        &row[k * h..(k + 1) * h]
    }
}

/// Row `r` of a `[rows, w]` array (empty stays empty).
#[inline(always)]
fn row(a: &[f32], r: usize, w: usize) -> &[f32] {
    if a.is_empty() {
        a
    } else {
        &a[r * w..(r + 1) * w]
    }
}

/// Splits a mutable row into its `N` gate blocks of width `h`.
fn parts_mut<const N: usize>(row: &mut [f32], h: usize) -> [&mut [f32]; N] {
    let mut rest = row;
    [(); N].map(|_| {
        let (a, b) = core::mem::take(&mut rest).split_at_mut(h);
        rest = b;
        a
    })
}

/// W_hh (`[g, hidden]` row-major) as the B operand of the forward GEMM (`h_prev · W_hhᵀ`, B is
/// `hidden×g` read through strides) or of the backward's (`dgates · W_hh`, `g×hidden`).
fn w_hh_operand(g: usize, hidden: usize, backward: bool) -> (usize, usize, [usize; 2]) {
    if backward {
        (g, hidden, [hidden, 1])
    } else {
        (hidden, g, [1, hidden])
    }
}

/// Floats `pack_w_hh_f32` writes for a `[g, hidden]` W_hh.
pub fn w_hh_packed_len(g: usize, hidden: usize, backward: bool) -> usize {
    let (k, n, _) = w_hh_operand(g, hidden, backward);
    matmul::packed_b_len(k, n)
}

/// Packs W_hh `[g, hidden]` into `dst` (`w_hh_packed_len` floats) as the cells' forward
/// (`backward == false`) or backward kernels read it as `w_hh_packed`.
pub fn pack_w_hh_f32(w_hh: &[f32], g: usize, hidden: usize, backward: bool, dst: &mut [f32]) {
    let (k, n, strides) = w_hh_operand(g, hidden, backward);
    matmul::pack_b_f32(w_hh, k, n, strides, dst);
}

/// Rows `begin..end` of `pre = gx + b_hh + h_prev · W_hhᵀ` (`[batch, g]`; `gx` and `b_hh` may be
/// empty). `w_hh` is `[g, hidden]` row-major, read transposed through strides (or its panels
/// from `w_packed` when not empty).
#[allow(clippy::too_many_arguments)]
fn recurrent_gemm(
    gx: &[f32],
    h_prev: &[f32],
    w_hh: &[f32],
    w_packed: &[f32],
    b_hh: &[f32],
    pre: &mut [f32],
    g: usize,
    hidden: usize,
    begin: usize,
    end: usize,
    scratch: &mut [f32],
) {
    for r in begin..end {
        let out = &mut pre[r * g..(r + 1) * g];
        lanes(g, [row(gx, r, g), b_hh], [out], |[x, b]| [x.add(b)]);
    }
    let (k, n, b_strides) = w_hh_operand(g, hidden, false);
    matmul::matmul_prepacked_f32(
        &h_prev[begin * hidden..end * hidden],
        w_hh,
        w_packed,
        &mut pre[begin * g..end * g],
        end - begin,
        k,
        n,
        n,
        [hidden, 1],
        b_strides,
        true,
        scratch,
    );
}

/// Rows `begin..end` of `out (+)= dgates · W_hh` (`dgates` `[batch, g]`, `out` `[batch, hidden]`),
/// W_hh's panels from `w_packed` when not empty.
#[allow(clippy::too_many_arguments)]
fn recurrent_gemm_bwd(
    dgates: &[f32],
    w_hh: &[f32],
    w_packed: &[f32],
    out: &mut [f32],
    g: usize,
    hidden: usize,
    begin: usize,
    end: usize,
    accumulate: bool,
    scratch: &mut [f32],
) {
    let (k, n, b_strides) = w_hh_operand(g, hidden, true);
    matmul::matmul_prepacked_f32(
        &dgates[begin * g..end * g],
        w_hh,
        w_packed,
        &mut out[begin * hidden..end * hidden],
        end - begin,
        k,
        n,
        n,
        [g, 1],
        b_strides,
        accumulate,
        scratch,
    );
}

fn one() -> F32x4 {
    F32x4::splat(1.0)
}

/// `y · (1 - y)`: the sigmoid's derivative from its output.
fn dsigmoid(y: F32x4) -> F32x4 {
    y.mul(one().sub(y))
}

/// `1 - y²`: tanh's derivative from its output.
fn dtanh(y: F32x4) -> F32x4 {
    one().sub(y.mul(y))
}

// ---------------------------------------------------------------- LSTM

/// One LSTM step for rows `begin..end`: `gates = gx + b_hh + h_prev · W_hhᵀ` (`[batch, 4H]`,
/// in `pre`), `c = σ(f) c_prev + σ(i) tanh(g)`, `h = σ(o) tanh(c)`. Saves the activated gates
/// `(σ(i), σ(f), tanh(g), σ(o))` into `act` `[batch, 4H]` for the backward.
#[allow(clippy::too_many_arguments)]
pub fn lstm_cell_f32(
    gx: &[f32],
    h_prev: &[f32],
    c_prev: &[f32],
    w_hh: &[f32],
    w_hh_packed: &[f32],
    b_hh: &[f32],
    h: &mut [f32],
    c: &mut [f32],
    act: &mut [f32],
    pre: &mut [f32],
    hidden: usize,
    begin: usize,
    end: usize,
    scratch: &mut [f32],
) {
    let g4 = 4 * hidden;
    recurrent_gemm(
        gx,
        h_prev,
        w_hh,
        w_hh_packed,
        b_hh,
        pre,
        g4,
        hidden,
        begin,
        end,
        scratch,
    );
    for r in begin..end {
        let p = &pre[r * g4..(r + 1) * g4];
        let span = r * hidden..(r + 1) * hidden;
        let [ai, af, ag, ao] = parts_mut::<4>(&mut act[r * g4..(r + 1) * g4], hidden);
        lanes(
            hidden,
            [
                part(p, 0, hidden),
                part(p, 1, hidden),
                part(p, 2, hidden),
                part(p, 3, hidden),
                &c_prev[span.clone()],
            ],
            [ai, af, ag, ao, &mut c[span.clone()], &mut h[span.clone()]],
            |[i, f, g, o, cp]| {
                let (i, f, g, o) = (sigmoid4(i), sigmoid4(f), tanh4(g), sigmoid4(o));
                let cn = f.mul(cp).add(i.mul(g));
                [i, f, g, o, cn, o.mul(tanh4(cn))]
            },
        );
    }
}

/// The LSTM step's backward for rows `begin..end` from `dh`, `dc` (either empty for zero), the
/// saved `act` and `c`, and `c_prev`: writes the pre-activation gate gradients `dgates`
/// (`[batch, 4H]`, which are `d(gx)` and the rows of `d(b_hh)`; `dW_hh = dgatesᵀ · h_prev`),
/// `dh_prev (+)= dgates · W_hh` (added when `accumulate`: a layer adds it onto the output
/// gradient of the previous step in place) and `dc_prev`.
#[allow(clippy::too_many_arguments)]
pub fn lstm_cell_bwd_f32(
    dh: &[f32],
    dc: &[f32],
    act: &[f32],
    c_prev: &[f32],
    c: &[f32],
    w_hh: &[f32],
    w_hh_packed: &[f32],
    dgates: &mut [f32],
    dh_prev: &mut [f32],
    dc_prev: &mut [f32],
    hidden: usize,
    begin: usize,
    end: usize,
    accumulate: bool,
    scratch: &mut [f32],
) {
    let g4 = 4 * hidden;
    for r in begin..end {
        let a = &act[r * g4..(r + 1) * g4];
        let span = r * hidden..(r + 1) * hidden;
        let [di, df, dg, d_o] = parts_mut::<4>(&mut dgates[r * g4..(r + 1) * g4], hidden);
        lanes(
            hidden,
            [
                row(dh, r, hidden),
                row(dc, r, hidden),
                part(a, 0, hidden),
                part(a, 1, hidden),
                part(a, 2, hidden),
                part(a, 3, hidden),
                &c_prev[span.clone()],
                &c[span.clone()],
            ],
            [di, df, dg, d_o, &mut dc_prev[span.clone()]],
            |[dh, dc, i, f, g, o, cp, cn]| {
                let tc = tanh4(cn);
                let dct = dc.add(dh.mul(o).mul(dtanh(tc)));
                [
                    dct.mul(g).mul(dsigmoid(i)),
                    dct.mul(cp).mul(dsigmoid(f)),
                    dct.mul(i).mul(dtanh(g)),
                    dh.mul(tc).mul(dsigmoid(o)),
                    dct.mul(f),
                ]
            },
        );
    }
    recurrent_gemm_bwd(
        dgates,
        w_hh,
        w_hh_packed,
        dh_prev,
        g4,
        hidden,
        begin,
        end,
        accumulate,
        scratch,
    );
}

// ---------------------------------------------------------------- GRU

/// One GRU step for rows `begin..end`: `gh = b_hh + h_prev · W_hhᵀ` (`[batch, 3H]`, in `pre`),
/// `r = σ(gx_r + gh_r)`, `z = σ(gx_z + gh_z)`, `n = tanh(gx_n + r gh_n)`,
/// `h = (1 - z) n + z h_prev`. Saves `(r, z, n, gh_n)` into `act` `[batch, 4H]`.
#[allow(clippy::too_many_arguments)]
pub fn gru_cell_f32(
    gx: &[f32],
    h_prev: &[f32],
    w_hh: &[f32],
    w_hh_packed: &[f32],
    b_hh: &[f32],
    h: &mut [f32],
    act: &mut [f32],
    pre: &mut [f32],
    hidden: usize,
    begin: usize,
    end: usize,
    scratch: &mut [f32],
) {
    let g3 = 3 * hidden;
    let g4 = 4 * hidden;
    recurrent_gemm(
        &[],
        h_prev,
        w_hh,
        w_hh_packed,
        b_hh,
        pre,
        g3,
        hidden,
        begin,
        end,
        scratch,
    );
    for r in begin..end {
        let p = &pre[r * g3..(r + 1) * g3];
        let x = &gx[r * g3..(r + 1) * g3];
        let span = r * hidden..(r + 1) * hidden;
        let [ar, az, an, ahn] = parts_mut::<4>(&mut act[r * g4..(r + 1) * g4], hidden);
        lanes(
            hidden,
            [
                part(x, 0, hidden),
                part(x, 1, hidden),
                part(x, 2, hidden),
                part(p, 0, hidden),
                part(p, 1, hidden),
                part(p, 2, hidden),
                &h_prev[span.clone()],
            ],
            [ar, az, an, ahn, &mut h[span.clone()]],
            |[xr, xz, xn, hr, hz, hn, hp]| {
                let rg = sigmoid4(xr.add(hr));
                let z = sigmoid4(xz.add(hz));
                let n = tanh4(xn.add(rg.mul(hn)));
                [rg, z, n, hn, n.add(z.mul(hp.sub(n)))]
            },
        );
    }
}

/// The GRU step's backward for rows `begin..end` from `dh`, the saved `act` and `h_prev`: writes
/// `dgx` (`d(gx)`, `[batch, 3H]`), `dgh` (the gradient of `gh`: rows of `d(b_hh)`, and
/// `dW_hh = dghᵀ · h_prev`) and `dh_prev = z dh + dgh · W_hh`.
#[allow(clippy::too_many_arguments)]
pub fn gru_cell_bwd_f32(
    dh: &[f32],
    act: &[f32],
    h_prev: &[f32],
    w_hh: &[f32],
    w_hh_packed: &[f32],
    dgx: &mut [f32],
    dgh: &mut [f32],
    dh_prev: &mut [f32],
    hidden: usize,
    begin: usize,
    end: usize,
    scratch: &mut [f32],
) {
    let g3 = 3 * hidden;
    let g4 = 4 * hidden;
    for r in begin..end {
        let a = &act[r * g4..(r + 1) * g4];
        let span = r * hidden..(r + 1) * hidden;
        let [xr, xz, xn] = parts_mut::<3>(&mut dgx[r * g3..(r + 1) * g3], hidden);
        let [hr, hz, hn] = parts_mut::<3>(&mut dgh[r * g3..(r + 1) * g3], hidden);
        lanes(
            hidden,
            [
                &dh[span.clone()],
                part(a, 0, hidden),
                part(a, 1, hidden),
                part(a, 2, hidden),
                part(a, 3, hidden),
                &h_prev[span.clone()],
            ],
            [xr, xz, xn, hr, hz, hn, &mut dh_prev[span.clone()]],
            |[dh, rg, z, n, ghn, hp]| {
                let dn = dh.mul(one().sub(z)).mul(dtanh(n));
                let dr = dn.mul(ghn).mul(dsigmoid(rg));
                let dz = dh.mul(hp.sub(n)).mul(dsigmoid(z));
                [dr, dz, dn, dr, dz, dn.mul(rg), dh.mul(z)]
            },
        );
    }
    recurrent_gemm_bwd(
        dgh,
        w_hh,
        w_hh_packed,
        dh_prev,
        g3,
        hidden,
        begin,
        end,
        true,
        scratch,
    );
}

// ---------------------------------------------------------------- Elman RNN

/// One Elman step for rows `begin..end`: `h = act(gx + b_hh + h_prev · W_hhᵀ)` with `act` tanh,
/// or relu when `relu`. `pre` (`[batch, H]`) is scratch; `h` is what the backward needs.
#[allow(clippy::too_many_arguments)]
pub fn rnn_cell_f32(
    gx: &[f32],
    h_prev: &[f32],
    w_hh: &[f32],
    w_hh_packed: &[f32],
    b_hh: &[f32],
    h: &mut [f32],
    pre: &mut [f32],
    relu: bool,
    hidden: usize,
    begin: usize,
    end: usize,
    scratch: &mut [f32],
) {
    recurrent_gemm(
        gx,
        h_prev,
        w_hh,
        w_hh_packed,
        b_hh,
        pre,
        hidden,
        hidden,
        begin,
        end,
        scratch,
    );
    let span = begin * hidden..end * hidden;
    let zero = F32x4::splat(0.0);
    if relu {
        lanes(span.len(), [&pre[span.clone()]], [&mut h[span]], |[p]| {
            [p.max(zero)]
        });
    } else {
        lanes(span.len(), [&pre[span.clone()]], [&mut h[span]], |[p]| {
            [tanh4(p)]
        });
    }
}

/// The Elman step's backward for rows `begin..end` from `dh` and the saved `h`: writes the
/// pre-activation gradient `dpre` (`[batch, H]`: `d(gx)`, rows of `d(b_hh)`, and
/// `dW_hh = dpreᵀ · h_prev`) and `dh_prev = dpre · W_hh`. relu's derivative at 0 is 0.
#[allow(clippy::too_many_arguments)]
pub fn rnn_cell_bwd_f32(
    dh: &[f32],
    h: &[f32],
    w_hh: &[f32],
    w_hh_packed: &[f32],
    dpre: &mut [f32],
    dh_prev: &mut [f32],
    relu: bool,
    hidden: usize,
    begin: usize,
    end: usize,
    scratch: &mut [f32],
) {
    let span = begin * hidden..end * hidden;
    let (d, y) = (&dh[span.clone()], &h[span.clone()]);
    let zero = F32x4::splat(0.0);
    if relu {
        lanes(span.len(), [d, y], [&mut dpre[span.clone()]], |[g, y]| {
            [F32x4::select(y.gt(zero), g, zero)]
        });
    } else {
        lanes(span.len(), [d, y], [&mut dpre[span]], |[g, y]| {
            [g.mul(dtanh(y))]
        });
    }
    recurrent_gemm_bwd(
        dpre,
        w_hh,
        w_hh_packed,
        dh_prev,
        hidden,
        hidden,
        begin,
        end,
        false,
        scratch,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random;

    const HIDDEN: [usize; 9] = [0, 1, 3, 4, 5, 15, 16, 17, 257];
    const BATCH: usize = 3;

    fn sig(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// `gx + b + h · Wᵀ` in f64 for one row (`g` outputs).
    fn pre_ref(gx: &[f32], b: &[f32], h: &[f32], w: &[f32], g: usize, hid: usize) -> Vec<f64> {
        (0..g)
            .map(|j| {
                let mut s = gx.get(j).map_or(0.0, |&v| v as f64) + b[j] as f64;
                for k in 0..hid {
                    s += h[k] as f64 * w[j * hid + k] as f64;
                }
                s
            })
            .collect()
    }

    fn close(got: &[f32], want: &[f64], what: &str, hid: usize) {
        assert_eq!(got.len(), want.len(), "{what} length at hidden {hid}");
        for (k, (&a, &b)) in got.iter().zip(want).enumerate() {
            let tol = 2e-5 * (1.0 + b.abs()) + 1e-6 * hid as f64;
            assert!(
                (a as f64 - b).abs() <= tol,
                "{what}[{k}] at hidden {hid}: {a} vs {b}"
            );
        }
    }

    /// `Σ_j d[j] w[j, k]` for one row.
    fn back_ref(d: &[f64], w: &[f32], g: usize, hid: usize) -> Vec<f64> {
        (0..hid)
            .map(|k| (0..g).map(|j| d[j] * w[j * hid + k] as f64).sum())
            .collect()
    }

    struct Case {
        gx: Vec<f32>,
        h0: Vec<f32>,
        c0: Vec<f32>,
        w: Vec<f32>,
        b: Vec<f32>,
        dh: Vec<f32>,
        dc: Vec<f32>,
    }

    fn case(g: usize, hid: usize, seed: u32) -> Case {
        case_rows(BATCH, g, hid, seed)
    }

    fn case_rows(rows: usize, g: usize, hid: usize, seed: u32) -> Case {
        Case {
            gx: random(rows * g, seed, -1.5, 1.5),
            h0: random(rows * hid, seed + 1, -1.0, 1.0),
            c0: random(rows * hid, seed + 2, -1.0, 1.0),
            w: random(g * hid, seed + 3, -0.3, 0.3),
            b: random(g, seed + 4, -0.5, 0.5),
            dh: random(rows * hid, seed + 5, -1.0, 1.0),
            dc: random(rows * hid, seed + 6, -1.0, 1.0),
        }
    }

    #[test]
    fn lstm_matches_f64_reference() {
        for &hid in &HIDDEN {
            let g = 4 * hid;
            let k = case(g, hid, 7 + hid as u32);
            let mut scratch = vec![0.0; matmul::SCRATCH_LEN];
            let (mut h, mut c) = (vec![0.0; BATCH * hid], vec![0.0; BATCH * hid]);
            let (mut act, mut pre) = (vec![0.0; BATCH * g], vec![0.0; BATCH * g]);
            lstm_cell_f32(
                &k.gx,
                &k.h0,
                &k.c0,
                &k.w,
                &[],
                &k.b,
                &mut h,
                &mut c,
                &mut act,
                &mut pre,
                hid,
                0,
                BATCH,
                &mut scratch,
            );
            let (mut dg, mut dhp, mut dcp) = (
                vec![0.0; BATCH * g],
                vec![0.0; BATCH * hid],
                vec![0.0; BATCH * hid],
            );
            lstm_cell_bwd_f32(
                &k.dh,
                &k.dc,
                &act,
                &k.c0,
                &c,
                &k.w,
                &[],
                &mut dg,
                &mut dhp,
                &mut dcp,
                hid,
                0,
                BATCH,
                false,
                &mut scratch,
            );
            for r in 0..BATCH {
                let s = r * hid..(r + 1) * hid;
                let p = pre_ref(
                    &k.gx[r * g..(r + 1) * g],
                    &k.b,
                    &k.h0[s.clone()],
                    &k.w,
                    g,
                    hid,
                );
                let (mut hr, mut cr, mut dgr, mut dcr) = (vec![], vec![], vec![0.0; g], vec![]);
                for j in 0..hid {
                    let (i, f) = (sig(p[j]), sig(p[hid + j]));
                    let (gg, o) = (p[2 * hid + j].tanh(), sig(p[3 * hid + j]));
                    let cn = f * k.c0[r * hid + j] as f64 + i * gg;
                    cr.push(cn);
                    hr.push(o * cn.tanh());
                    let (dh, dc) = (k.dh[r * hid + j] as f64, k.dc[r * hid + j] as f64);
                    let dct = dc + dh * o * (1.0 - cn.tanh().powi(2));
                    dgr[j] = dct * gg * i * (1.0 - i);
                    dgr[hid + j] = dct * k.c0[r * hid + j] as f64 * f * (1.0 - f);
                    dgr[2 * hid + j] = dct * i * (1.0 - gg * gg);
                    dgr[3 * hid + j] = dh * cn.tanh() * o * (1.0 - o);
                    dcr.push(dct * f);
                }
                close(&h[s.clone()], &hr, "lstm h", hid);
                close(&c[s.clone()], &cr, "lstm c", hid);
                close(&dg[r * g..(r + 1) * g], &dgr, "lstm dgates", hid);
                close(&dcp[s.clone()], &dcr, "lstm dc_prev", hid);
                close(&dhp[s], &back_ref(&dgr, &k.w, g, hid), "lstm dh_prev", hid);
            }
        }
    }

    #[test]
    fn lstm_absent_dh_dc_read_as_zero_and_range_stays_inside() {
        let hid = 5;
        let g = 4 * hid;
        let k = case(g, hid, 99);
        let mut scratch = vec![0.0; matmul::SCRATCH_LEN];
        let (mut h, mut c) = (vec![7.0; BATCH * hid], vec![7.0; BATCH * hid]);
        let (mut act, mut pre) = (vec![7.0; BATCH * g], vec![0.0; BATCH * g]);
        // Only row 1: rows 0 and 2 keep their sentinel.
        lstm_cell_f32(
            &k.gx,
            &k.h0,
            &k.c0,
            &k.w,
            &[],
            &k.b,
            &mut h,
            &mut c,
            &mut act,
            &mut pre,
            hid,
            1,
            2,
            &mut scratch,
        );
        assert!(h[..hid].iter().chain(&h[2 * hid..]).all(|&v| v == 7.0));
        assert!(h[hid..2 * hid].iter().all(|&v| v != 7.0));
        let zeros = vec![0.0; BATCH * hid];
        let run = |dh: &[f32], dc: &[f32], start: f32, accumulate: bool| {
            let mut s = vec![0.0; matmul::SCRATCH_LEN];
            let (mut dg, mut dhp, mut dcp) = (
                vec![0.0; BATCH * g],
                vec![start; BATCH * hid],
                vec![0.0; BATCH * hid],
            );
            lstm_cell_bwd_f32(
                dh,
                dc,
                &act,
                &k.c0,
                &c,
                &k.w,
                &[],
                &mut dg,
                &mut dhp,
                &mut dcp,
                hid,
                1,
                2,
                accumulate,
                &mut s,
            );
            (dg, dhp, dcp)
        };
        assert!(run(&[], &k.dc, 0.0, false) == run(&zeros, &k.dc, 0.0, false));
        assert!(run(&k.dh, &[], 0.0, false) == run(&k.dh, &zeros, 0.0, false));
        // accumulate adds dh_prev onto what the buffer held, on the range's rows only.
        let (_, plain, _) = run(&k.dh, &k.dc, 0.0, false);
        let (_, added, _) = run(&k.dh, &k.dc, 0.5, true);
        for (j, (&p, &a)) in plain.iter().zip(&added).enumerate() {
            let want = if (hid..2 * hid).contains(&j) {
                p + 0.5
            } else {
                0.5
            };
            assert!(
                (a - want).abs() < 1e-6,
                "accumulated dh_prev[{j}]: {a} vs {want}"
            );
        }
    }

    #[test]
    fn gru_matches_f64_reference() {
        for &hid in &HIDDEN {
            let g = 3 * hid;
            let k = case(g, hid, 31 + hid as u32);
            let mut scratch = vec![0.0; matmul::SCRATCH_LEN];
            let mut h = vec![0.0; BATCH * hid];
            let (mut act, mut pre) = (vec![0.0; BATCH * 4 * hid], vec![0.0; BATCH * g]);
            gru_cell_f32(
                &k.gx,
                &k.h0,
                &k.w,
                &[],
                &k.b,
                &mut h,
                &mut act,
                &mut pre,
                hid,
                0,
                BATCH,
                &mut scratch,
            );
            let (mut dgx, mut dgh, mut dhp) = (
                vec![0.0; BATCH * g],
                vec![0.0; BATCH * g],
                vec![0.0; BATCH * hid],
            );
            gru_cell_bwd_f32(
                &k.dh,
                &act,
                &k.h0,
                &k.w,
                &[],
                &mut dgx,
                &mut dgh,
                &mut dhp,
                hid,
                0,
                BATCH,
                &mut scratch,
            );
            for r in 0..BATCH {
                let s = r * hid..(r + 1) * hid;
                let gh = pre_ref(&[], &k.b, &k.h0[s.clone()], &k.w, g, hid);
                let x = &k.gx[r * g..(r + 1) * g];
                let (mut hr, mut dxr, mut dhr, mut dhp_r) =
                    (vec![], vec![0.0; g], vec![0.0; g], vec![]);
                for j in 0..hid {
                    let rg = sig(x[j] as f64 + gh[j]);
                    let z = sig(x[hid + j] as f64 + gh[hid + j]);
                    let n = (x[2 * hid + j] as f64 + rg * gh[2 * hid + j]).tanh();
                    let hp = k.h0[r * hid + j] as f64;
                    hr.push((1.0 - z) * n + z * hp);
                    let dh = k.dh[r * hid + j] as f64;
                    let dn = dh * (1.0 - z) * (1.0 - n * n);
                    let dr = dn * gh[2 * hid + j] * rg * (1.0 - rg);
                    let dz = dh * (hp - n) * z * (1.0 - z);
                    dxr[j] = dr;
                    dxr[hid + j] = dz;
                    dxr[2 * hid + j] = dn;
                    dhr[j] = dr;
                    dhr[hid + j] = dz;
                    dhr[2 * hid + j] = dn * rg;
                    dhp_r.push(dh * z);
                }
                let back = back_ref(&dhr, &k.w, g, hid);
                let dhp_r: Vec<f64> = dhp_r.iter().zip(&back).map(|(a, b)| a + b).collect();
                close(&h[s.clone()], &hr, "gru h", hid);
                close(&dgx[r * g..(r + 1) * g], &dxr, "gru dgx", hid);
                close(&dgh[r * g..(r + 1) * g], &dhr, "gru dgh", hid);
                close(&dhp[s], &dhp_r, "gru dh_prev", hid);
            }
        }
    }

    #[test]
    fn rnn_matches_f64_reference() {
        for &relu in &[false, true] {
            for &hid in &HIDDEN {
                let k = case(hid, hid, 57 + hid as u32);
                let mut scratch = vec![0.0; matmul::SCRATCH_LEN];
                let (mut h, mut pre) = (vec![0.0; BATCH * hid], vec![0.0; BATCH * hid]);
                rnn_cell_f32(
                    &k.gx,
                    &k.h0,
                    &k.w,
                    &[],
                    &k.b,
                    &mut h,
                    &mut pre,
                    relu,
                    hid,
                    0,
                    BATCH,
                    &mut scratch,
                );
                let (mut dp, mut dhp) = (vec![0.0; BATCH * hid], vec![0.0; BATCH * hid]);
                rnn_cell_bwd_f32(
                    &k.dh,
                    &h,
                    &k.w,
                    &[],
                    &mut dp,
                    &mut dhp,
                    relu,
                    hid,
                    0,
                    BATCH,
                    &mut scratch,
                );
                for r in 0..BATCH {
                    let s = r * hid..(r + 1) * hid;
                    let p = pre_ref(&k.gx[s.clone()], &k.b, &k.h0[s.clone()], &k.w, hid, hid);
                    let hr: Vec<f64> = p
                        .iter()
                        .map(|&v| if relu { v.max(0.0) } else { v.tanh() })
                        .collect();
                    let dr: Vec<f64> = (0..hid)
                        .map(|j| {
                            let d = k.dh[r * hid + j] as f64;
                            if relu {
                                if p[j] > 0.0 {
                                    d
                                } else {
                                    0.0
                                }
                            } else {
                                d * (1.0 - hr[j] * hr[j])
                            }
                        })
                        .collect();
                    close(&h[s.clone()], &hr, "rnn h", hid);
                    close(&dp[s.clone()], &dr, "rnn dpre", hid);
                    close(&dhp[s], &back_ref(&dr, &k.w, hid, hid), "rnn dh_prev", hid);
                }
            }
        }
    }

    /// W_hh packed once (`pack_w_hh_f32`, both layouts) gives every kernel the same bits as
    /// packing per call, on batches big enough for the packed GEMM path (>= 4 rows) and on row
    /// ranges of a split step (a 2-row range takes the unpacked path, and must still agree).
    #[test]
    fn prepacked_w_hh_gives_the_same_bits() {
        const ROWS: usize = 6;
        let splits: [&[(usize, usize)]; 3] = [&[(0, ROWS)], &[(0, 4), (4, ROWS)], &[(1, ROWS)]];
        let bits =
            |v: &[Vec<f32>]| -> Vec<u32> { v.concat().iter().map(|x| x.to_bits()).collect() };
        let pack = |w: &[f32], g: usize, hid: usize, bwd: bool| {
            let mut p = vec![f32::NAN; w_hh_packed_len(g, hid, bwd)];
            pack_w_hh_f32(w, g, hid, bwd, &mut p);
            p
        };
        for &hid in &[1, 3, 5, 17, 64, 257] {
            for ranges in splits {
                // LSTM
                let g = 4 * hid;
                let k = case_rows(ROWS, g, hid, 11 + hid as u32);
                let run_lstm = |pf: &[f32], pb: &[f32]| {
                    let mut sc = vec![f32::NAN; matmul::SCRATCH_LEN];
                    let (mut h, mut c) = (vec![0.0; ROWS * hid], vec![0.0; ROWS * hid]);
                    let (mut act, mut pre) = (vec![0.0; ROWS * g], vec![0.0; ROWS * g]);
                    let (mut dg, mut dhp, mut dcp) = (
                        vec![0.0; ROWS * g],
                        vec![0.5; ROWS * hid],
                        vec![0.0; ROWS * hid],
                    );
                    for &(b, e) in ranges {
                        lstm_cell_f32(
                            &k.gx, &k.h0, &k.c0, &k.w, pf, &k.b, &mut h, &mut c, &mut act,
                            &mut pre, hid, b, e, &mut sc,
                        );
                        lstm_cell_bwd_f32(
                            &k.dh, &k.dc, &act, &k.c0, &c, &k.w, pb, &mut dg, &mut dhp, &mut dcp,
                            hid, b, e, true, &mut sc,
                        );
                    }
                    bits(&[h, c, act, dg, dhp, dcp])
                };
                let (pf, pb) = (pack(&k.w, g, hid, false), pack(&k.w, g, hid, true));
                assert!(
                    run_lstm(&[], &[]) == run_lstm(&pf, &pb),
                    "lstm hidden {hid}"
                );
                // GRU
                let g = 3 * hid;
                let k = case_rows(ROWS, g, hid, 12 + hid as u32);
                let run_gru = |pf: &[f32], pb: &[f32]| {
                    let mut sc = vec![f32::NAN; matmul::SCRATCH_LEN];
                    let mut h = vec![0.0; ROWS * hid];
                    let (mut act, mut pre) = (vec![0.0; ROWS * 4 * hid], vec![0.0; ROWS * g]);
                    let (mut dgx, mut dgh, mut dhp) = (
                        vec![0.0; ROWS * g],
                        vec![0.0; ROWS * g],
                        vec![0.0; ROWS * hid],
                    );
                    for &(b, e) in ranges {
                        gru_cell_f32(
                            &k.gx, &k.h0, &k.w, pf, &k.b, &mut h, &mut act, &mut pre, hid, b, e,
                            &mut sc,
                        );
                        gru_cell_bwd_f32(
                            &k.dh, &act, &k.h0, &k.w, pb, &mut dgx, &mut dgh, &mut dhp, hid, b, e,
                            &mut sc,
                        );
                    }
                    bits(&[h, act, dgx, dgh, dhp])
                };
                let (pf, pb) = (pack(&k.w, g, hid, false), pack(&k.w, g, hid, true));
                assert!(run_gru(&[], &[]) == run_gru(&pf, &pb), "gru hidden {hid}");
                // Elman, both nonlinearities
                let k = case_rows(ROWS, hid, hid, 13 + hid as u32);
                let run_rnn = |pf: &[f32], pb: &[f32], relu: bool| {
                    let mut sc = vec![f32::NAN; matmul::SCRATCH_LEN];
                    let (mut h, mut pre) = (vec![0.0; ROWS * hid], vec![0.0; ROWS * hid]);
                    let (mut dp, mut dhp) = (vec![0.0; ROWS * hid], vec![0.0; ROWS * hid]);
                    for &(b, e) in ranges {
                        rnn_cell_f32(
                            &k.gx, &k.h0, &k.w, pf, &k.b, &mut h, &mut pre, relu, hid, b, e,
                            &mut sc,
                        );
                        rnn_cell_bwd_f32(
                            &k.dh, &h, &k.w, pb, &mut dp, &mut dhp, relu, hid, b, e, &mut sc,
                        );
                    }
                    bits(&[h, dp, dhp])
                };
                let (pf, pb) = (pack(&k.w, hid, hid, false), pack(&k.w, hid, hid, true));
                for relu in [false, true] {
                    let same = run_rnn(&[], &[], relu) == run_rnn(&pf, &pb, relu);
                    assert!(same, "rnn hidden {hid} relu {relu}");
                }
            }
        }
    }

    /// Calls its argument with the row ranges of one way to split a step.
    type Ranges<'a> = &'a dyn Fn(&mut dyn FnMut(usize, usize));

    /// Running each batch row as its own range gives the same bits as one full-range call, for
    /// every kernel (so a pool can split a step by rows).
    #[test]
    fn row_ranges_compose_to_the_full_call() {
        let hid = 17;
        let split = |f: &mut dyn FnMut(usize, usize)| {
            for r in 0..BATCH {
                f(r, r + 1);
            }
        };
        // LSTM
        let g = 4 * hid;
        let k = case(g, hid, 5);
        let run_lstm = |ranges: Ranges| {
            let mut sc = vec![0.0; matmul::SCRATCH_LEN];
            let (mut h, mut c) = (vec![0.0; BATCH * hid], vec![0.0; BATCH * hid]);
            let (mut act, mut pre) = (vec![0.0; BATCH * g], vec![0.0; BATCH * g]);
            let (mut dg, mut dhp, mut dcp) = (
                vec![0.0; BATCH * g],
                vec![0.0; BATCH * hid],
                vec![0.0; BATCH * hid],
            );
            ranges(&mut |b, e| {
                lstm_cell_f32(
                    &k.gx,
                    &k.h0,
                    &k.c0,
                    &k.w,
                    &[],
                    &k.b,
                    &mut h,
                    &mut c,
                    &mut act,
                    &mut pre,
                    hid,
                    b,
                    e,
                    &mut sc,
                );
                lstm_cell_bwd_f32(
                    &k.dh,
                    &k.dc,
                    &act,
                    &k.c0,
                    &c,
                    &k.w,
                    &[],
                    &mut dg,
                    &mut dhp,
                    &mut dcp,
                    hid,
                    b,
                    e,
                    false,
                    &mut sc,
                );
            });
            [h, c, dg, dhp, dcp]
        };
        assert!(run_lstm(&|f| f(0, BATCH)) == run_lstm(&split));
        // GRU
        let g = 3 * hid;
        let k = case(g, hid, 6);
        let run_gru = |ranges: Ranges| {
            let mut sc = vec![0.0; matmul::SCRATCH_LEN];
            let mut h = vec![0.0; BATCH * hid];
            let (mut act, mut pre) = (vec![0.0; BATCH * 4 * hid], vec![0.0; BATCH * g]);
            let (mut dgx, mut dgh, mut dhp) = (
                vec![0.0; BATCH * g],
                vec![0.0; BATCH * g],
                vec![0.0; BATCH * hid],
            );
            ranges(&mut |b, e| {
                gru_cell_f32(
                    &k.gx,
                    &k.h0,
                    &k.w,
                    &[],
                    &k.b,
                    &mut h,
                    &mut act,
                    &mut pre,
                    hid,
                    b,
                    e,
                    &mut sc,
                );
                gru_cell_bwd_f32(
                    &k.dh,
                    &act,
                    &k.h0,
                    &k.w,
                    &[],
                    &mut dgx,
                    &mut dgh,
                    &mut dhp,
                    hid,
                    b,
                    e,
                    &mut sc,
                );
            });
            [h, dgx, dgh, dhp]
        };
        assert!(run_gru(&|f| f(0, BATCH)) == run_gru(&split));
        // Elman
        let k = case(hid, hid, 7);
        let run_rnn = |ranges: Ranges| {
            let mut sc = vec![0.0; matmul::SCRATCH_LEN];
            let (mut h, mut pre) = (vec![0.0; BATCH * hid], vec![0.0; BATCH * hid]);
            let (mut dp, mut dhp) = (vec![0.0; BATCH * hid], vec![0.0; BATCH * hid]);
            ranges(&mut |b, e| {
                rnn_cell_f32(
                    &k.gx,
                    &k.h0,
                    &k.w,
                    &[],
                    &k.b,
                    &mut h,
                    &mut pre,
                    false,
                    hid,
                    b,
                    e,
                    &mut sc,
                );
                rnn_cell_bwd_f32(
                    &k.dh,
                    &h,
                    &k.w,
                    &[],
                    &mut dp,
                    &mut dhp,
                    false,
                    hid,
                    b,
                    e,
                    &mut sc,
                );
            });
            [h, dp, dhp]
        };
        assert!(run_rnn(&|f| f(0, BATCH)) == run_rnn(&split));
    }
}
