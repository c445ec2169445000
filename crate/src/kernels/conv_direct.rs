//! Direct 2-d convolution for one input channel (a first layer on grey images: LeNet's
//! 1→6 5×5), forward and weight gradient, at stride and dilation 1. With 25 taps the im2col
//! GEMM moves as many floats (unfold, then packing) as it multiplies; here each image is copied
//! once into a zero-padded plane in scratch and every tap reads it in place: the forward holds
//! four output channels × eight columns in registers and loads each input vector once for all
//! four, the weight gradient holds one channel's kernel row of taps in registers.
//! `conv.rs` routes here (`Conv::direct`); the input gradient stays on the GEMM path.
//! Work ranges as there: images for the forward, output channels for the weight gradient.

use super::conv::Conv;
use super::matmul::round_up;
use crate::simd::F32x4;

/// Widest kernel row the weight gradient keeps in registers.
pub const MAX_KW: usize = 7;

/// The padded plane's (rows, row length): output rows padded to whole 8-column blocks, plus the
/// kernel's reach, so every block's loads stay inside it (extra lanes read zeros).
fn padded(cv: &Conv) -> (usize, usize) {
    let g = &cv.win;
    (g.oh + g.kh - 1, round_up(g.ow, 8) + g.kw - 1)
}

/// Floats of scratch the direct kernels use: the padded plane, then one vector per weight
/// (its splat in the forward, its lane partial sums in the weight gradient).
pub fn scratch_len(cv: &Conv) -> usize {
    let (hp, wp) = padded(cv);
    hp * wp + 4 * cv.cog * cv.win.kh * cv.win.kw
}

/// Copies plane `x` `[h, w]` into `pad` `[hp, wp]` shifted by the padding, zeros elsewhere.
fn pad_plane(x: &[f32], cv: &Conv, pad: &mut [f32]) {
    let g = &cv.win;
    let (hp, wp) = padded(cv);
    let pad = &mut pad[..hp * wp];
    pad.fill(0.0);
    for r in 0..hp {
        let xr = r as isize - g.ph as isize;
        if xr < 0 || xr >= g.h as isize {
            continue;
        }
        // Input columns c land at c + pw; those past the padded row are never read.
        let n = g.w.min(wp - g.pw);
        let src = &x[xr as usize * g.w..][..n];
        pad[r * wp + g.pw..][..n].copy_from_slice(src);
    }
}

/// Forward for images `begin..end`: `x` `[N, 1, h, w]`, `w` `[Co, 1, kh, kw]`, `y`
/// `[N, Co, oh, ow]`; `scratch` holds `scratch_len(cv)` floats. The bias is added after the
/// product, as `conv + bias` would.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_f32(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    cv: &Conv,
    begin: usize,
    end: usize,
    scratch: &mut [f32],
) {
    let g = &cv.win;
    let (plane, l, co, taps) = (g.h * g.w, g.oh * g.ow, cv.cog, g.kh * g.kw);
    let (hp, wp) = padded(cv);
    let (pad, splats) = scratch.split_at_mut(hp * wp);
    // Each weight as a ready vector, tap-major within a channel block (one load, no shuffle,
    // in the inner loop).
    let splats = &mut splats[..4 * co * taps];
    let mut c0 = 0;
    while c0 < co {
        let cb = (co - c0).min(4);
        for t in 0..taps {
            for c in 0..cb {
                let at = 4 * (c0 * taps + t * cb + c);
                splats[at..at + 4].fill(w[(c0 + c) * taps + t]);
            }
        }
        c0 += cb;
    }
    let splats = &splats[..];
    for img in begin..end {
        pad_plane(&x[img * plane..(img + 1) * plane], cv, pad);
        let out = &mut y[img * co * l..(img + 1) * co * l];
        let mut c0 = 0;
        while c0 < co {
            let ws = &splats[4 * c0 * taps..];
            let pad = &pad[..];
            let o = &mut out[c0 * l..];
            // 5-wide rows (LeNet's) unroll at compile time. Adding 3- and 7-wide instances as
            // well made this one slower (0.53 -> 0.80 ms), so only 5 has its own.
            let used = match (co - c0, g.kw) {
                (1, 5) => rows::<1, 5>(pad, wp, ws, cv, o),
                (2, 5) => rows::<2, 5>(pad, wp, ws, cv, o),
                (3, 5) => rows::<3, 5>(pad, wp, ws, cv, o),
                (_, 5) => rows::<4, 5>(pad, wp, ws, cv, o),
                (1, _) => rows::<1, 0>(pad, wp, ws, cv, o),
                (2, _) => rows::<2, 0>(pad, wp, ws, cv, o),
                (3, _) => rows::<3, 0>(pad, wp, ws, cv, o),
                _ => rows::<4, 0>(pad, wp, ws, cv, o),
            };
            c0 += used;
        }
        if let Some(b) = bias {
            for (row, &v) in out.chunks_exact_mut(l).zip(b) {
                row.iter_mut().for_each(|t| *t += v);
            }
        }
    }
}

/// `C` output channels (planes `l` apart in `out`) of one image from its padded plane; `w`
/// holds the block's weights as vectors, tap-major. Returns `C`.
#[inline(always)]
fn rows<const C: usize, const KW: usize>(
    pad: &[f32],
    wp: usize,
    w: &[f32],
    cv: &Conv,
    out: &mut [f32],
) -> usize {
    let g = &cv.win;
    for oi in 0..g.oh {
        let mut j = 0;
        while j < g.ow {
            // A row's last block of at most four columns (LeNet's 28 = 3 × 8 + 4) takes one
            // vector per channel rather than computing four lanes it would throw away.
            if g.ow - j <= 4 {
                block::<C, 1, KW>(pad, wp, w, cv, out, oi, j);
            } else {
                block::<C, 2, KW>(pad, wp, w, cv, out, oi, j);
            }
            j += 8;
        }
    }
    C
}

/// Output columns `j..j+4V` (those inside the row) of row `oi` for `C` channels: `C × V`
/// accumulators, each input vector loaded once for all `C`. A kernel row width known at
/// compile time (`KW > 0`; 0: `cv`'s) unrolls the taps of a row: LeNet's 1→6 5×5 forward
/// 0.66 → 0.53 ms.
#[inline(always)]
fn block<const C: usize, const V: usize, const KW: usize>(
    pad: &[f32],
    wp: usize,
    w: &[f32],
    cv: &Conv,
    out: &mut [f32],
    oi: usize,
    j: usize,
) {
    let g = &cv.win;
    let l = g.oh * g.ow;
    let kw = if KW == 0 { g.kw } else { KW };
    let mut acc = [[F32x4::splat(0.0); V]; C];
    for ki in 0..g.kh {
        let line = &pad[(oi + ki) * wp + j..][..kw + 7];
        let wr = &w[4 * C * ki * kw..][..4 * C * kw];
        for (kj, wt) in wr.chunks_exact(4 * C).enumerate() {
            let xv: [F32x4; V] = core::array::from_fn(|v| F32x4::load(&line[kj + 4 * v..]));
            for (c, a) in acc.iter_mut().enumerate() {
                let wv = F32x4::load(&wt[4 * c..]);
                for (av, &x) in a.iter_mut().zip(&xv) {
                    *av = wv.mul_add(x, *av);
                }
            }
        }
    }
    let n = (g.ow - j).min(4 * V);
    for (c, a) in acc.iter().enumerate() {
        let dst = &mut out[c * l + oi * g.ow + j..][..n];
        if n == 4 * V {
            for (v, x) in a.iter().enumerate() {
                x.store(&mut dst[4 * v..4 * v + 4]);
            }
        } else {
            let mut tmp = [0.0f32; 8];
            for (v, x) in a.iter().enumerate() {
                x.store(&mut tmp[4 * v..4 * v + 4]);
            }
            dst.copy_from_slice(&tmp[..n]);
        }
    }
}

/// Weight (and bias) gradient for output channels `begin..end`, summed over all `n` images:
/// overwrites those rows of `dw` `[Co, 1, kh, kw]` and entries of `db`. Each weight's sum is
/// kept as four lane partials in scratch across images and reduced at the end.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_bwd_weight_f32(
    x: &[f32],
    dy: &[f32],
    dw: Option<&mut [f32]>,
    db: Option<&mut [f32]>,
    n: usize,
    cv: &Conv,
    begin: usize,
    end: usize,
    scratch: &mut [f32],
) {
    let g = &cv.win;
    let (plane, l, co, taps) = (g.h * g.w, g.oh * g.ow, cv.cog, g.kh * g.kw);
    if let Some(db) = db {
        for (c, d) in db.iter_mut().enumerate().take(end).skip(begin) {
            *d = (0..n)
                .map(|img| super::conv::sum(&dy[(img * co + c) * l..][..l]))
                .sum();
        }
    }
    let dw = match dw {
        Some(dw) => dw,
        None => return,
    };
    let (hp, wp) = padded(cv);
    let (pad, parts) = scratch.split_at_mut(hp * wp);
    let parts = &mut parts[..4 * co * taps];
    parts.fill(0.0);
    for img in 0..n {
        pad_plane(&x[img * plane..(img + 1) * plane], cv, pad);
        // Channels in pairs where both rows of sums fit the registers (kernel rows up to 5):
        // each input vector is then loaded once for two channels.
        let mut c = begin;
        while c < end {
            let plane_of = |c: usize| &dy[(img * co + c) * l..][..l];
            if c + 1 < end && g.kw <= 5 {
                let d = [plane_of(c), plane_of(c + 1)];
                for ki in 0..g.kh {
                    match g.kw {
                        1 => taps_row::<1, 2>(pad, wp, d, cv, parts, c, ki),
                        2 => taps_row::<2, 2>(pad, wp, d, cv, parts, c, ki),
                        3 => taps_row::<3, 2>(pad, wp, d, cv, parts, c, ki),
                        4 => taps_row::<4, 2>(pad, wp, d, cv, parts, c, ki),
                        _ => taps_row::<5, 2>(pad, wp, d, cv, parts, c, ki),
                    }
                }
                c += 2;
                continue;
            }
            let d = [plane_of(c)];
            for ki in 0..g.kh {
                match g.kw {
                    1 => taps_row::<1, 1>(pad, wp, d, cv, parts, c, ki),
                    2 => taps_row::<2, 1>(pad, wp, d, cv, parts, c, ki),
                    3 => taps_row::<3, 1>(pad, wp, d, cv, parts, c, ki),
                    4 => taps_row::<4, 1>(pad, wp, d, cv, parts, c, ki),
                    5 => taps_row::<5, 1>(pad, wp, d, cv, parts, c, ki),
                    6 => taps_row::<6, 1>(pad, wp, d, cv, parts, c, ki),
                    _ => taps_row::<7, 1>(pad, wp, d, cv, parts, c, ki),
                }
            }
            c += 1;
        }
    }
    for (t, v) in dw[begin * taps..end * taps].iter_mut().enumerate() {
        let p = &parts[4 * (begin * taps + t)..][..4];
        *v = (p[0] + p[1]) + (p[2] + p[3]);
    }
}

/// Adds Σ_{oi, oj} dy_c[oi, oj] · pad[oi + ki, oj + kj] for `kj < KW` and the `C` channels
/// of `dy` (output channels `c..c+C`) onto their lane partials in `parts` (`[channel, tap,
/// 4]`): the `C × KW` sums stay in registers over the whole plane, and each input vector is
/// loaded once for all `C`.
#[inline(always)]
fn taps_row<const KW: usize, const C: usize>(
    pad: &[f32],
    wp: usize,
    dy: [&[f32]; C],
    cv: &Conv,
    parts: &mut [f32],
    c: usize,
    ki: usize,
) {
    let g = &cv.win;
    // Each image's sums start from zero and are added to the partials once, so no chain of
    // additions runs longer than one plane (as the GEMM's depth slices): the composition's
    // accuracy, not a long running sum's.
    let mut acc = [[F32x4::splat(0.0); KW]; C];
    let full = g.ow / 4 * 4;
    let mut tail = [[0.0f32; KW]; C];
    for oi in 0..g.oh {
        let line = &pad[(oi + ki) * wp..];
        let rows: [&[f32]; C] = core::array::from_fn(|c| &dy[c][oi * g.ow..(oi + 1) * g.ow]);
        let mut j = 0;
        while j < full {
            let dv: [F32x4; C] = core::array::from_fn(|c| F32x4::load(&rows[c][j..]));
            for kj in 0..KW {
                let xv = F32x4::load(&line[j + kj..]);
                for (a, d) in acc.iter_mut().zip(&dv) {
                    a[kj] = d.mul_add(xv, a[kj]);
                }
            }
            j += 4;
        }
        for (c, row) in rows.iter().enumerate() {
            for (jt, &dv) in row.iter().enumerate().skip(full) {
                for (kj, t) in tail[c].iter_mut().enumerate() {
                    *t += dv * line[jt + kj];
                }
            }
        }
    }
    let taps = g.kh * g.kw;
    for (i, (sums, tail)) in acc.iter().zip(&tail).enumerate() {
        let part = &mut parts[4 * ((c + i) * taps + ki * g.kw)..][..4 * KW];
        for (kj, a) in sums.iter().enumerate() {
            let p = &mut part[4 * kj..4 * kj + 4];
            F32x4::load(p).add(*a).store(p);
            p[0] += tail[kj];
        }
    }
}
