//! Max and average pooling over 2-d planes, forward and backward, with ATen's window rules
//! (padding, dilation for max, windows of a ceil-mode last position clipped to the input).
//! Planes (batch × channel) are independent, so every kernel takes a work range over them.

use super::unfold::Window;
use crate::simd::F32x4;

/// Rows (or columns) `start, start + step, ...` of a window of `k` taps that fall inside
/// `0..size`, as (first, count): ATen skips the padding by stepping the start forward. The
/// usual window (all inside, or step 1) needs no division.
#[inline(always)]
fn inside(start: isize, k: usize, step: usize, size: usize) -> (usize, usize) {
    let span = ((k - 1) * step) as isize;
    if start >= 0 && start + span < size as isize {
        return (start as usize, k);
    }
    let mut s = start;
    let mut k = k as isize;
    while s < 0 && k > 0 {
        s += step as isize;
        k -= 1;
    }
    if k <= 0 || s >= size as isize {
        return (0, 0);
    }
    let room = size as isize - s;
    let last = if step == 1 {
        room
    } else {
        (room - 1) / step as isize + 1
    };
    (s as usize, k.min(last) as usize)
}

/// Max pooling of planes `begin..end`: `y` and `idx` are `[planes, oh, ow]`, each index the
/// flat `h · w + c` position of its window's maximum in the input plane. The first maximum
/// wins ties and a NaN wins over numbers (the last NaN, as ATen's `val > max || isnan(val)`).
/// A window entirely in the padding gives -inf at its first in-plane position.
pub fn max_pool2d_f32(
    x: &[f32],
    y: &mut [f32],
    idx: &mut [i32],
    g: &Window,
    begin: usize,
    end: usize,
) {
    let (plane, out) = (g.h * g.w, g.oh * g.ow);
    let pairs = g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.dh == 1 && g.dw == 1;
    let whole = pairs && g.ph == 0 && g.pw == 0 && 2 * g.oh <= g.h && 2 * g.ow <= g.w;
    for p in begin..end {
        let src = &x[p * plane..(p + 1) * plane];
        let ys = &mut y[p * out..(p + 1) * out];
        let is = &mut idx[p * out..(p + 1) * out];
        if whole {
            max_pool_2x2(src, ys, is, g);
            continue;
        }
        for oi in 0..g.oh {
            let (r0, rn) = inside((oi * g.sh) as isize - g.ph as isize, g.kh, g.dh, g.h);
            for oj in 0..g.ow {
                let (c0, cn) = inside((oj * g.sw) as isize - g.pw as isize, g.kw, g.dw, g.w);
                let mut best = f32::NEG_INFINITY;
                let mut at = r0 * g.w + c0;
                let mut r = r0;
                for _ in 0..rn {
                    let row = &src[r * g.w..(r + 1) * g.w];
                    let mut c = c0;
                    for _ in 0..cn {
                        let v = row[c];
                        if v > best || v.is_nan() {
                            best = v;
                            at = r * g.w + c;
                        }
                        c += g.dw;
                    }
                    r += g.dh;
                }
                ys[oi * g.ow + oj] = best;
                is[oi * g.ow + oj] = at as i32;
            }
        }
    }
}

/// `max_pool2d_f32` of one plane for the common 2×2 stride-2 window with every window inside
/// the plane: four outputs per step from two deinterleaved vector pairs per input row. The
/// candidates are taken in the generic loop's order with its test (`v > best || v != v`), so
/// values and indices (first maximum, last NaN) are the generic loop's bits.
fn max_pool_2x2(src: &[f32], ys: &mut [f32], is: &mut [i32], g: &Window) {
    let w = g.w;
    let step = F32x4::from_i32([8; 4]);
    let right = F32x4::from_i32([1; 4]);
    let below = F32x4::from_i32([w as i32; 4]);
    for oi in 0..g.oh {
        let (r0, r1) = (&src[2 * oi * w..][..w], &src[(2 * oi + 1) * w..][..w]);
        let (yr, ir) = (&mut ys[oi * g.ow..][..g.ow], &mut is[oi * g.ow..][..g.ow]);
        let base = (2 * oi * w) as i32;
        let mut at = F32x4::from_i32([base, base + 2, base + 4, base + 6]);
        let mut oj = 0;
        while oj + 4 <= g.ow {
            let c = 2 * oj;
            let (e0, o0) = F32x4::deinterleave(F32x4::load(&r0[c..]), F32x4::load(&r0[c + 4..]));
            let (e1, o1) = F32x4::deinterleave(F32x4::load(&r1[c..]), F32x4::load(&r1[c + 4..]));
            let (mut best, mut arg) = (e0, at);
            for (v, i) in [(o0, at.add_i32(right)), (e1, at.add_i32(below))] {
                let m = v.gt(best).or(v.ne(v));
                best = F32x4::select(m, v, best);
                arg = F32x4::select(m, i, arg);
            }
            let m = o1.gt(best).or(o1.ne(o1));
            best = F32x4::select(m, o1, best);
            arg = F32x4::select(m, at.add_i32(below).add_i32(right), arg);
            best.store(&mut yr[oj..]);
            arg.store_bits_i32(&mut ir[oj..]);
            at = at.add_i32(step);
            oj += 4;
        }
        for oj in oj..g.ow {
            let c = 2 * oj;
            let (mut best, mut arg) = (r0[c], c);
            for (v, i) in [(r0[c + 1], c + 1), (r1[c], w + c), (r1[c + 1], w + c + 1)] {
                if v > best || v.is_nan() {
                    best = v;
                    arg = i;
                }
            }
            yr[oj] = best;
            ir[oj] = base + arg as i32;
        }
    }
}

/// Backward of `max_pool2d_f32` for planes `begin..end`: zeroes each `[h, w]` plane of `dx`
/// and adds every output's gradient onto the position its index names.
pub fn max_pool2d_bwd_f32(
    dy: &[f32],
    idx: &[i32],
    dx: &mut [f32],
    plane: usize,
    out: usize,
    begin: usize,
    end: usize,
) {
    for p in begin..end {
        let d = &mut dx[p * plane..(p + 1) * plane];
        d.iter_mut().for_each(|v| *v = 0.0);
        let gs = &dy[p * out..(p + 1) * out];
        for (&i, &gv) in idx[p * out..(p + 1) * out].iter().zip(gs) {
            d[i as usize] += gv;
        }
    }
}

/// ATen's avg_pool2d window for output (`oi`, `oj`): the clipped rows and columns and the
/// divisor (`divisor` when non-zero, else the window's size with or without the padding).
#[inline(always)]
fn avg_window(g: &Window, oi: usize, oj: usize, include_pad: bool, divisor: f32) -> [usize; 5] {
    let span = |o: usize, s: usize, p: usize, k: usize, size: usize| {
        let start = (o * s) as isize - p as isize;
        let end = (start + k as isize).min((size + p) as isize);
        let padded = (end - start) as usize;
        let (a, b) = (
            start.max(0) as usize,
            end.min(size as isize).max(0) as usize,
        );
        (a, b.max(a), padded)
    };
    let (r0, r1, ph) = span(oi, g.sh, g.ph, g.kh, g.h);
    let (c0, c1, pw) = span(oj, g.sw, g.pw, g.kw, g.w);
    let count = if include_pad {
        ph * pw
    } else {
        (r1 - r0) * (c1 - c0)
    };
    let div = if divisor != 0.0 {
        divisor.to_bits() as usize
    } else {
        (count as f32).to_bits() as usize
    };
    [r0, r1, c0, c1, div]
}

/// Average pooling of planes `begin..end` (no dilation, as in PyTorch): each output is its
/// clipped window's sum divided by `divisor` when non-zero, else by the window's size counting
/// the zero padding (`include_pad`) or not. An empty window gives 0.
pub fn avg_pool2d_f32(
    x: &[f32],
    y: &mut [f32],
    g: &Window,
    include_pad: bool,
    divisor: f32,
    begin: usize,
    end: usize,
) {
    let (plane, out) = (g.h * g.w, g.oh * g.ow);
    for p in begin..end {
        let src = &x[p * plane..(p + 1) * plane];
        let ys = &mut y[p * out..(p + 1) * out];
        for oi in 0..g.oh {
            for oj in 0..g.ow {
                let [r0, r1, c0, c1, div] = avg_window(g, oi, oj, include_pad, divisor);
                let mut sum = 0.0f32;
                for r in r0..r1 {
                    sum += src[r * g.w + c0..r * g.w + c1].iter().sum::<f32>();
                }
                ys[oi * g.ow + oj] = if r1 > r0 && c1 > c0 {
                    sum / f32::from_bits(div as u32)
                } else {
                    0.0
                };
            }
        }
    }
}

/// Backward of `avg_pool2d_f32` for planes `begin..end`: zeroes each plane of `dx` and adds
/// every output's gradient over its divisor onto each position of its clipped window.
#[allow(clippy::too_many_arguments)]
pub fn avg_pool2d_bwd_f32(
    dy: &[f32],
    dx: &mut [f32],
    g: &Window,
    include_pad: bool,
    divisor: f32,
    begin: usize,
    end: usize,
) {
    let (plane, out) = (g.h * g.w, g.oh * g.ow);
    for p in begin..end {
        let d = &mut dx[p * plane..(p + 1) * plane];
        d.iter_mut().for_each(|v| *v = 0.0);
        let gs = &dy[p * out..(p + 1) * out];
        for oi in 0..g.oh {
            for oj in 0..g.ow {
                let [r0, r1, c0, c1, div] = avg_window(g, oi, oj, include_pad, divisor);
                let v = gs[oi * g.ow + oj] / f32::from_bits(div as u32);
                for r in r0..r1 {
                    d[r * g.w + c0..r * g.w + c1]
                        .iter_mut()
                        .for_each(|e| *e += v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random;

    #[allow(clippy::too_many_arguments)]
    fn win(h: usize, w: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> Window {
        let out = |n: usize| {
            let span = d * (k - 1) + 1;
            let mut o = (n + 2 * p - span + if ceil { s - 1 } else { 0 }) / s + 1;
            if ceil && (o - 1) * s >= n + p {
                o -= 1;
            }
            o
        };
        Window {
            h,
            w,
            kh: k,
            kw: k,
            dh: d,
            dw: d,
            ph: p,
            pw: p,
            sh: s,
            sw: s,
            oh: out(h),
            ow: out(w),
        }
    }

    fn geometries() -> Vec<Window> {
        let mut v = Vec::new();
        for &n in &[1usize, 3, 4, 5, 16, 17] {
            v.push(win(n, n + 1, 1, 1, 0, 1, false));
            v.push(win(n + 1, n + 2, 2, 2, 0, 1, false));
            v.push(win(n + 2, n + 2, 3, 2, 1, 1, true));
            v.push(win(n + 4, n + 3, 3, 1, 1, 2, false));
            v.push(win(n + 4, n + 5, 2, 3, 1, 1, true));
        }
        v
    }

    /// Max pooling by the definition: every in-plane tap of each window.
    #[test]
    fn max_matches_definition_and_backward_scatters() {
        for g in geometries() {
            let x = random(2 * g.h * g.w, (g.h * 7 + g.w) as u32, -1.0, 1.0);
            let out = g.oh * g.ow;
            let (mut y, mut idx) = (vec![f32::NAN; 2 * out], vec![-1; 2 * out]);
            max_pool2d_f32(&x, &mut y, &mut idx, &g, 0, 2);
            for p in 0..2 {
                for o in 0..out {
                    let (oi, oj) = (o / g.ow, o % g.ow);
                    let mut best = (f32::NEG_INFINITY, usize::MAX);
                    for ki in 0..g.kh {
                        for kj in 0..g.kw {
                            let r = (oi * g.sh + ki * g.dh) as isize - g.ph as isize;
                            let c = (oj * g.sw + kj * g.dw) as isize - g.pw as isize;
                            if r < 0 || c < 0 || r >= g.h as isize || c >= g.w as isize {
                                continue;
                            }
                            let at = r as usize * g.w + c as usize;
                            if x[p * g.h * g.w + at] > best.0 || best.1 == usize::MAX {
                                best = (x[p * g.h * g.w + at], at);
                            }
                        }
                    }
                    assert_eq!(y[p * out + o], best.0, "{g:?} y[{p}, {o}]");
                    assert_eq!(idx[p * out + o] as usize, best.1, "{g:?} idx[{p}, {o}]");
                }
            }
            let dy = random(2 * out, 3, -1.0, 1.0);
            let mut dx = vec![f32::NAN; x.len()];
            max_pool2d_bwd_f32(&dy, &idx, &mut dx, g.h * g.w, out, 0, 2);
            let mut want = vec![0.0f32; x.len()];
            for p in 0..2 {
                for o in 0..out {
                    want[p * g.h * g.w + idx[p * out + o] as usize] += dy[p * out + o];
                }
            }
            assert_eq!(dx, want, "{g:?}");
        }
    }

    /// The 2×2 stride-2 fast path against ATen's rule (`v > best || isnan(v)` in window order)
    /// on planes full of ties, infinities and NaNs, with widths that leave vector tails, and
    /// the ceil-mode and padded windows that must miss the path.
    #[test]
    fn max_2x2_fast_path_keeps_ties_and_nans() {
        let vals = [f32::NEG_INFINITY, -1.0, 0.0, 1.0, f32::NAN, 1.0];
        for &(h, w, ceil, p) in &[
            (2, 8, false, 0),
            (4, 9, false, 0),
            (5, 21, false, 0),
            (6, 34, false, 0),
            (5, 21, true, 0),
            (4, 10, false, 1),
        ] {
            let g = win(h, w, 2, 2, p, 1, ceil);
            let x: Vec<f32> = (0..3 * h * w).map(|i| vals[(i * 7 + i / 5) % 6]).collect();
            let out = g.oh * g.ow;
            let (mut y, mut idx) = (vec![0.0; 3 * out], vec![-1; 3 * out]);
            max_pool2d_f32(&x, &mut y, &mut idx, &g, 1, 3);
            for pl in 1..3 {
                for o in 0..out {
                    let (oi, oj) = (o / g.ow, o % g.ow);
                    let (mut best, mut at) = (f32::NEG_INFINITY, usize::MAX);
                    for ki in 0..2 {
                        for kj in 0..2 {
                            let r = (2 * oi + ki) as isize - p as isize;
                            let c = (2 * oj + kj) as isize - p as isize;
                            if r < 0 || c < 0 || r >= h as isize || c >= w as isize {
                                continue;
                            }
                            let a = r as usize * w + c as usize;
                            let v = x[pl * h * w + a];
                            if at == usize::MAX {
                                at = a;
                            }
                            if v > best || v.is_nan() {
                                (best, at) = (v, a);
                            }
                        }
                    }
                    let got = y[pl * out + o];
                    assert_eq!(got.to_bits(), best.to_bits(), "{g:?} y[{pl}, {o}]");
                    assert_eq!(idx[pl * out + o] as usize, at, "{g:?} idx[{pl}, {o}]");
                }
            }
            assert!(
                idx[..out].iter().all(|&i| i == -1),
                "plane 0 is outside the range"
            );
        }
    }

    /// The average's backward is its adjoint: <avg(x), dy> == <x, avg_bwd(dy)>.
    #[test]
    fn avg_backward_is_adjoint_and_divisors_follow_aten() {
        for g in geometries().into_iter().filter(|g| g.dh == 1) {
            for &(pad, div) in &[(true, 0.0f32), (false, 0.0), (true, 3.0)] {
                let x = random(g.h * g.w, 9, -1.0, 1.0);
                let dy = random(g.oh * g.ow, 10, -1.0, 1.0);
                let mut y = vec![f32::NAN; g.oh * g.ow];
                avg_pool2d_f32(&x, &mut y, &g, pad, div, 0, 1);
                let mut dx = vec![f32::NAN; x.len()];
                avg_pool2d_bwd_f32(&dy, &mut dx, &g, pad, div, 0, 1);
                let lhs: f64 = y.iter().zip(&dy).map(|(&a, &b)| a as f64 * b as f64).sum();
                let rhs: f64 = x.iter().zip(&dx).map(|(&a, &b)| a as f64 * b as f64).sum();
                assert!((lhs - rhs).abs() < 1e-4, "{g:?}: {lhs} vs {rhs}");
            }
        }
        // A 3×3 window at a corner with padding 1: 4 inputs inside, 9 with the padding.
        let g = win(4, 4, 3, 1, 1, 1, false);
        let x = vec![1.0f32; 16];
        let mut y = vec![0.0; 16];
        avg_pool2d_f32(&x, &mut y, &g, true, 0.0, 0, 1);
        assert_eq!(y[0], 4.0 / 9.0);
        avg_pool2d_f32(&x, &mut y, &g, false, 0.0, 0, 1);
        assert_eq!(y[0], 1.0);
    }
}
