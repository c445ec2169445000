//! im2col and col2im (`nn.functional.unfold` / `fold`) over 2-d planes. Each is the other's
//! backward: unfold copies every kernel-window element to its column, fold adds each column
//! element back onto its pixel. Planes (batch × channel) are independent, so both take a work
//! range over them.

use crate::simd::F32x4;

/// The geometry shared by both directions: a `h × w` plane, a `kh × kw` kernel with dilation,
/// zero padding and stride, and the `oh × ow` grid of window positions it produces.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub dh: usize,
    pub dw: usize,
    pub ph: usize,
    pub pw: usize,
    pub sh: usize,
    pub sw: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Window {
    /// Floats in one plane's block of columns: `kh * kw` rows of `oh * ow`.
    pub fn col_len(&self) -> usize {
        self.kh * self.kw * self.oh * self.ow
    }

    /// For kernel offset `kj` and output row `oi` of kernel row `ki`: the input row (None if
    /// it falls in the padding) and, along the output columns, the first and one-past-last
    /// `oj` whose input column is inside the plane.
    #[inline(always)]
    pub(crate) fn rows_cols(
        &self,
        ki: usize,
        kj: usize,
        oi: usize,
    ) -> (Option<usize>, usize, usize, isize) {
        let r = (oi * self.sh + ki * self.dh) as isize - self.ph as isize;
        let row = if r >= 0 && (r as usize) < self.h {
            Some(r as usize)
        } else {
            None
        };
        // Input column of oj: c0 + oj * sw, inside [0, w) for oj in [lo, hi).
        let c0 = (kj * self.dw) as isize - self.pw as isize;
        let sw = self.sw as isize;
        let lo = if c0 >= 0 {
            0
        } else {
            ((-c0 + sw - 1) / sw) as usize
        };
        let hi = if (self.w as isize) <= c0 {
            0
        } else {
            (((self.w as isize - c0 + sw - 1) / sw) as usize).min(self.ow)
        };
        (row, lo.min(hi), hi, c0)
    }
}

/// Walks row `ki * kw + kj` of one plane's column block over window positions `l0..l1` in
/// runs: `f(t, len, at)` covers positions `l0 + t .. l0 + t + len`, read from the plane at
/// `at, at + sw, ...` or, for `at == None`, from the zero padding. Fused kernels use it to read
/// (or add back) a slice of the im2col matrix without storing it.
#[inline(always)]
pub(crate) fn runs<F: FnMut(usize, usize, Option<usize>)>(
    g: &Window,
    ki: usize,
    kj: usize,
    l0: usize,
    l1: usize,
    mut f: F,
) {
    if l0 >= l1 {
        return;
    }
    // The columns inside the plane depend on kj only, so they are found once (divisions are
    // slow next to a short run), and the walk steps row by row from l0.
    let (_, lo, hi, c0) = g.rows_cols(ki, kj, 0);
    let (mut oi, mut oj0) = (l0 / g.ow, l0 % g.ow);
    let mut l = l0;
    while l < l1 {
        let oj1 = g.ow.min(oj0 + (l1 - l));
        let t = l - l0;
        let r = (oi * g.sh + ki * g.dh) as isize - g.ph as isize;
        if r < 0 || r >= g.h as isize {
            f(t, oj1 - oj0, None);
        } else {
            let a = lo.clamp(oj0, oj1);
            let b = hi.clamp(a, oj1);
            if a > oj0 {
                f(t, a - oj0, None);
            }
            if b > a {
                let at = r * g.w as isize + c0 + (a * g.sw) as isize;
                f(t + a - oj0, b - a, Some(at as usize));
            }
            if oj1 > b {
                f(t + b - oj0, oj1 - b, None);
            }
        }
        l += oj1 - oj0;
        oi += 1;
        oj0 = 0;
    }
}

/// Unfold of planes `begin..end`: `x` is `[planes, h, w]`, `cols` is `[planes, kh * kw, oh * ow]`
/// with `cols[p, ki * kw + kj, oi * ow + oj] = x[p, oi*sh - ph + ki*dh, oj*sw - pw + kj*dw]`, zero
/// in the padding.
pub fn unfold_f32(x: &[f32], cols: &mut [f32], g: &Window, begin: usize, end: usize) {
    let (plane, block) = (g.h * g.w, g.col_len());
    debug_assert!(x.len() >= end * plane && cols.len() >= end * block);
    for p in begin..end {
        let src = &x[p * plane..(p + 1) * plane];
        let dst = &mut cols[p * block..(p + 1) * block];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let base = (ki * g.kw + kj) * g.oh * g.ow;
                for oi in 0..g.oh {
                    let out = &mut dst[base + oi * g.ow..base + (oi + 1) * g.ow];
                    let (row, lo, hi, c0) = g.rows_cols(ki, kj, oi);
                    let row = match row {
                        Some(r) => r,
                        None => {
                            out.fill(0.0);
                            continue;
                        }
                    };
                    out[..lo].fill(0.0);
                    out[hi..].fill(0.0);
                    let start = (row * g.w) as isize + c0 + (lo * g.sw) as isize;
                    let start = start as usize;
                    if g.sw == 1 {
                        out[lo..hi].copy_from_slice(&src[start..start + (hi - lo)]);
                    } else {
                        for (t, o) in out[lo..hi].iter_mut().enumerate() {
                            *o = src[start + t * g.sw];
                        }
                    }
                }
            }
        }
    }
}

/// `dst[t] += src[t]`, four lanes at a time.
pub(crate) fn add_into(dst: &mut [f32], src: &[f32]) {
    let mut dc = dst.chunks_exact_mut(4);
    let mut sc = src.chunks_exact(4);
    for (d, s) in (&mut dc).zip(&mut sc) {
        F32x4::load(d).add(F32x4::load(s)).store(d);
    }
    for (d, &s) in dc.into_remainder().iter_mut().zip(sc.remainder()) {
        *d += s;
    }
}

/// Fold of planes `begin..end`, the adjoint of `unfold_f32`: zeroes each `[h, w]` plane of `x`
/// and adds every column element onto the pixel unfold read it from (padding drops out).
pub fn fold_f32(cols: &[f32], x: &mut [f32], g: &Window, begin: usize, end: usize) {
    let (plane, block) = (g.h * g.w, g.col_len());
    debug_assert!(x.len() >= end * plane && cols.len() >= end * block);
    for p in begin..end {
        let src = &cols[p * block..(p + 1) * block];
        let dst = &mut x[p * plane..(p + 1) * plane];
        dst.fill(0.0);
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let base = (ki * g.kw + kj) * g.oh * g.ow;
                for oi in 0..g.oh {
                    let (row, lo, hi, c0) = g.rows_cols(ki, kj, oi);
                    let row = match row {
                        Some(r) => r,
                        None => continue,
                    };
                    let from = &src[base + oi * g.ow + lo..base + oi * g.ow + hi];
                    let start = ((row * g.w) as isize + c0 + (lo * g.sw) as isize) as usize;
                    if g.sw == 1 {
                        add_into(&mut dst[start..start + (hi - lo)], from);
                    } else {
                        for (t, &v) in from.iter().enumerate() {
                            dst[start + t * g.sw] += v;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random;

    fn window(h: usize, w: usize, k: (usize, usize), d: usize, p: usize, s: usize) -> Window {
        let out = |n: usize, k: usize| (n + 2 * p - d * (k - 1) - 1) / s + 1;
        Window {
            h,
            w,
            kh: k.0,
            kw: k.1,
            dh: d,
            dw: d,
            ph: p,
            pw: p,
            sh: s,
            sw: s,
            oh: out(h, k.0),
            ow: out(w, k.1),
        }
    }

    /// The definition, one element at a time.
    fn unfold_ref(x: &[f32], g: &Window, planes: usize) -> Vec<f32> {
        let mut out = vec![0.0; planes * g.col_len()];
        for p in 0..planes {
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    for oi in 0..g.oh {
                        for oj in 0..g.ow {
                            let r = (oi * g.sh + ki * g.dh) as isize - g.ph as isize;
                            let c = (oj * g.sw + kj * g.dw) as isize - g.pw as isize;
                            let inside =
                                r >= 0 && c >= 0 && (r as usize) < g.h && (c as usize) < g.w;
                            let o = p * g.col_len() + ((ki * g.kw + kj) * g.oh + oi) * g.ow + oj;
                            if inside {
                                out[o] = x[p * g.h * g.w + r as usize * g.w + c as usize];
                            }
                        }
                    }
                }
            }
        }
        out
    }

    fn geometries() -> Vec<Window> {
        let mut v = Vec::new();
        for &n in &[1usize, 3, 4, 5, 15, 16, 17] {
            v.push(window(n, n, (1, 1), 1, 0, 1));
            v.push(window(n, n + 2, (1, 3), 1, 1, 1));
            v.push(window(n + 2, n + 1, (3, 2), 1, 1, 2));
            v.push(window(n + 4, n + 4, (2, 3), 2, 2, 3));
        }
        v.push(window(1, 257, (1, 3), 1, 1, 1));
        v
    }

    #[test]
    fn unfold_matches_definition() {
        for g in geometries() {
            let x = random(2 * g.h * g.w, (g.h * 31 + g.w) as u32, -1.0, 1.0);
            let mut got = vec![f32::NAN; 2 * g.col_len()];
            unfold_f32(&x, &mut got, &g, 0, 2);
            assert_eq!(got, unfold_ref(&x, &g, 2), "{g:?}");
        }
    }

    /// fold is unfold's adjoint: <unfold(x), c> == <x, fold(c)> for random x and c.
    #[test]
    fn fold_is_adjoint_of_unfold() {
        for g in geometries() {
            let x = random(2 * g.h * g.w, 5, -1.0, 1.0);
            let c = random(2 * g.col_len(), 6, -1.0, 1.0);
            let ux = unfold_ref(&x, &g, 2);
            let mut fc = vec![f32::NAN; x.len()];
            fold_f32(&c, &mut fc, &g, 0, 2);
            let lhs: f64 = ux.iter().zip(&c).map(|(&a, &b)| a as f64 * b as f64).sum();
            let rhs: f64 = x.iter().zip(&fc).map(|(&a, &b)| a as f64 * b as f64).sum();
            assert!(
                (lhs - rhs).abs() < 1e-4 * (1.0 + lhs.abs()),
                "{g:?}: {lhs} vs {rhs}"
            );
        }
    }

    #[test]
    fn work_range_touches_only_its_planes() {
        let g = window(4, 5, (2, 2), 1, 1, 1);
        let x = random(3 * 20, 2, -1.0, 1.0);
        let mut cols = vec![9.0; 3 * g.col_len()];
        unfold_f32(&x, &mut cols, &g, 1, 2);
        assert!(cols[..g.col_len()].iter().all(|&v| v == 9.0));
        assert!(cols[2 * g.col_len()..].iter().all(|&v| v == 9.0));
        let mut back = vec![9.0; 60];
        fold_f32(&cols, &mut back, &g, 1, 2);
        assert!(back[..20].iter().chain(&back[40..]).all(|&v| v == 9.0));
    }
}
