//! Depthwise convolution (one input channel per group, `cog` outputs each), direct: every tap
//! adds a scaled run of an input row onto an output row, four lanes at a time. As a GEMM this
//! would be one row of `kh · kw` depth per plane, all packing and no arithmetic. The work
//! ranges are over output planes (forward), input planes (input gradient) and output channels
//! (weight gradient); `conv.rs` calls these for any geometry with `cig == 1` and `groups > 1`.

use super::conv::{sum, Conv};
use super::unfold::runs;
use crate::simd::F32x4;

/// `out[i] += a · src[at + i · step]`.
#[inline(always)]
fn axpy(out: &mut [f32], a: f32, src: &[f32], at: usize, step: usize) {
    if step != 1 {
        for (i, o) in out.iter_mut().enumerate() {
            *o += a * src[at + i * step];
        }
        return;
    }
    let av = F32x4::splat(a);
    let src = &src[at..at + out.len()];
    let mut o4 = out.chunks_exact_mut(4);
    let mut s4 = src.chunks_exact(4);
    for (o, s) in (&mut o4).zip(&mut s4) {
        av.mul_add(F32x4::load(s), F32x4::load(o)).store(o);
    }
    for (o, &s) in o4.into_remainder().iter_mut().zip(s4.remainder()) {
        *o += a * s;
    }
}

/// `Σ a[i] · src[at + i · step]`.
#[inline(always)]
fn dot(a: &[f32], src: &[f32], at: usize, step: usize) -> f32 {
    if step != 1 {
        return a
            .iter()
            .enumerate()
            .map(|(i, &v)| v * src[at + i * step])
            .sum();
    }
    let src = &src[at..at + a.len()];
    let mut acc = F32x4::splat(0.0);
    let (a4, s4) = (a.chunks_exact(4), src.chunks_exact(4));
    let tail: f32 = a4
        .remainder()
        .iter()
        .zip(s4.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a4.zip(s4) {
        acc = F32x4::load(x).mul_add(F32x4::load(y), acc);
    }
    let s = acc.to_array();
    (s[0] + s[1]) + (s[2] + s[3]) + tail
}

/// Forward for output planes `begin..end` (`img · Co + co`): `y` plane = bias + Σ taps.
pub fn depthwise_f32(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    cv: &Conv,
    begin: usize,
    end: usize,
) {
    let g = &cv.win;
    let (kk, l, plane) = (g.kh * g.kw, g.oh * g.ow, g.h * g.w);
    let co_total = cv.groups * cv.cog;
    for p in begin..end {
        let (img, co) = (p / co_total, p % co_total);
        let src = &x[(img * cv.groups + co / cv.cog) * plane..][..plane];
        let out = &mut y[p * l..(p + 1) * l];
        let b = bias.map_or(0.0, |b| b[co]);
        out.iter_mut().for_each(|o| *o = b);
        for tap in 0..kk {
            let wv = w[co * kk + tap];
            runs(g, tap / g.kw, tap % g.kw, 0, l, |t, n, at| {
                if let Some(a) = at {
                    axpy(&mut out[t..t + n], wv, src, a, g.sw);
                }
            });
        }
    }
}

/// Input gradient for input planes `begin..end` (`img · Ci + ci`): overwrites each with the
/// sum over its `cog` output channels of every tap's scaled gradient run.
pub fn depthwise_bwd_input_f32(
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    cv: &Conv,
    begin: usize,
    end: usize,
) {
    let g = &cv.win;
    let (kk, l, plane) = (g.kh * g.kw, g.oh * g.ow, g.h * g.w);
    let co_total = cv.groups * cv.cog;
    for p in begin..end {
        let (img, ci) = (p / cv.groups, p % cv.groups);
        let d = &mut dx[p * plane..(p + 1) * plane];
        d.iter_mut().for_each(|v| *v = 0.0);
        for co in ci * cv.cog..(ci + 1) * cv.cog {
            let gp = &dy[(img * co_total + co) * l..][..l];
            for tap in 0..kk {
                let wv = w[co * kk + tap];
                runs(g, tap / g.kw, tap % g.kw, 0, l, |t, n, at| {
                    if let Some(a) = at {
                        if g.sw == 1 {
                            axpy(&mut d[a..a + n], wv, gp, t, 1);
                        } else {
                            for i in 0..n {
                                d[a + i * g.sw] += wv * gp[t + i];
                            }
                        }
                    }
                });
            }
        }
    }
}

/// Weight and bias gradients for output channels `begin..end`, summed over `n` images:
/// `dw[co, tap] = Σ dY · (the tap's input run)`, `db[co] = Σ dY`; overwrites them.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_bwd_weight_f32(
    x: &[f32],
    dy: &[f32],
    mut dw: Option<&mut [f32]>,
    mut db: Option<&mut [f32]>,
    n: usize,
    cv: &Conv,
    begin: usize,
    end: usize,
) {
    let g = &cv.win;
    let (kk, l, plane) = (g.kh * g.kw, g.oh * g.ow, g.h * g.w);
    let co_total = cv.groups * cv.cog;
    for co in begin..end {
        if let Some(db) = db.as_deref_mut() {
            db[co] = (0..n)
                .map(|img| sum(&dy[(img * co_total + co) * l..][..l]))
                .sum();
        }
        let dw = match dw.as_deref_mut() {
            Some(dw) => &mut dw[co * kk..(co + 1) * kk],
            None => continue,
        };
        for (tap, d) in dw.iter_mut().enumerate() {
            let mut acc = 0.0f32;
            for img in 0..n {
                let src = &x[(img * cv.groups + co / cv.cog) * plane..][..plane];
                let gp = &dy[(img * co_total + co) * l..][..l];
                runs(g, tap / g.kw, tap % g.kw, 0, l, |t, len, at| {
                    if let Some(a) = at {
                        acc += dot(&gp[t..t + len], src, a, g.sw);
                    }
                });
            }
            *d = acc;
        }
    }
}
