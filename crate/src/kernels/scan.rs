//! Scans and products along the middle axis of a contiguous `[outer, r, inner]` array:
//! `cumsum` (forward, and reversed for its backward) and `prod` with the zero-safe backward.
//! Each call takes a work range `begin..end` over `outer`, so a pool can split it later.
//!
//! cumsum accumulates f32 in f64 as PyTorch's CPU kernel does, so long sums agree with it;
//! columns are scanned one at a time, each with a scalar accumulator (no scratch).

/// `out[o, j, i] = sum_{j' <= j} x[o, j', i]` for `o` in `begin..end`; with `reverse` the
/// sum runs over `j' >= j` instead (the backward of cumsum).
pub fn cumsum_f32(
    x: &[f32],
    out: &mut [f32],
    r: usize,
    inner: usize,
    reverse: bool,
    begin: usize,
    end: usize,
) {
    debug_assert!(x.len() == out.len() && x.len() >= end * r * inner);
    for o in begin..end {
        let base = o * r * inner;
        for i in 0..inner {
            let mut acc = 0.0f64;
            let mut step = |j: usize| {
                let at = base + j * inner + i;
                acc += x[at] as f64;
                out[at] = acc as f32;
            };
            if reverse {
                (0..r).rev().for_each(&mut step);
            } else {
                (0..r).for_each(&mut step);
            }
        }
    }
}

/// `cumsum_f32` for int32 (wrapping, as two's-complement hardware).
pub fn cumsum_i32(
    x: &[i32],
    out: &mut [i32],
    r: usize,
    inner: usize,
    reverse: bool,
    begin: usize,
    end: usize,
) {
    debug_assert!(x.len() == out.len() && x.len() >= end * r * inner);
    for o in begin..end {
        let base = o * r * inner;
        for i in 0..inner {
            let mut acc = 0i32;
            let mut step = |j: usize| {
                let at = base + j * inner + i;
                acc = acc.wrapping_add(x[at]);
                out[at] = acc;
            };
            if reverse {
                (0..r).rev().for_each(&mut step);
            } else {
                (0..r).for_each(&mut step);
            }
        }
    }
}

/// `out[o, i] = prod_j x[o, j, i]` for `o` in `begin..end` (1 for `r == 0`). Rows multiply
/// into the output row in order, which LLVM vectorises across `i`.
pub fn prod_f32(x: &[f32], out: &mut [f32], r: usize, inner: usize, begin: usize, end: usize) {
    debug_assert!(x.len() >= end * r * inner && out.len() >= end * inner);
    for o in begin..end {
        let row = &mut out[o * inner..(o + 1) * inner];
        row.fill(1.0);
        for xs in x[o * r * inner..(o + 1) * r * inner].chunks_exact(inner.max(1)) {
            for (p, &v) in row.iter_mut().zip(xs) {
                *p *= v;
            }
        }
    }
}

/// `prod_f32` for int32 (wrapping).
pub fn prod_i32(x: &[i32], out: &mut [i32], r: usize, inner: usize, begin: usize, end: usize) {
    debug_assert!(x.len() >= end * r * inner && out.len() >= end * inner);
    for o in begin..end {
        let row = &mut out[o * inner..(o + 1) * inner];
        row.fill(1);
        for xs in x[o * r * inner..(o + 1) * r * inner].chunks_exact(inner.max(1)) {
            for (p, &v) in row.iter_mut().zip(xs) {
                *p = p.wrapping_mul(v);
            }
        }
    }
}

/// The backward of `prod`: `out[o, j, i] = g[o, i] * prod_{j' != j} x[o, j', i]`, as the
/// product of the elements before `j` and those after it. No division, so zeros in `x` give
/// PyTorch's gradient (non-zero only where the other factors are all non-zero).
pub fn prod_bwd_f32(
    x: &[f32],
    g: &[f32],
    out: &mut [f32],
    r: usize,
    inner: usize,
    begin: usize,
    end: usize,
) {
    debug_assert!(x.len() == out.len() && g.len() >= end * inner);
    for o in begin..end {
        let base = o * r * inner;
        for i in 0..inner {
            // Exclusive prefix products, scaled by g, then the exclusive suffix products.
            let mut acc = g[o * inner + i];
            for j in 0..r {
                let at = base + j * inner + i;
                out[at] = acc;
                acc *= x[at];
            }
            let mut suffix = 1.0f32;
            for j in (0..r).rev() {
                let at = base + j * inner + i;
                out[at] *= suffix;
                suffix *= x[at];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random;

    const LENS: [usize; 9] = [0, 1, 3, 4, 5, 15, 16, 17, 257];

    /// `[outer, r, inner]` layouts, with each length of the scanned axis.
    fn layouts() -> Vec<(usize, usize, usize)> {
        let mut v = Vec::new();
        for &r in &LENS {
            v.push((1, r, 1));
            v.push((3, r, 1));
            v.push((2, r, 5));
        }
        for &inner in &LENS {
            v.push((2, 3, inner));
        }
        v
    }

    fn at(r: usize, inner: usize, o: usize, j: usize, i: usize) -> usize {
        (o * r + j) * inner + i
    }

    #[test]
    fn cumsum_matches_naive_both_directions() {
        for (seed, (outer, r, inner)) in layouts().into_iter().enumerate() {
            let n = outer * r * inner;
            let x = random(n, seed as u32, -2.0, 2.0);
            let xi: Vec<i32> = x.iter().map(|&v| (v * 100.0) as i32).collect();
            for &reverse in &[false, true] {
                let mut out = vec![f32::NAN; n];
                cumsum_f32(&x, &mut out, r, inner, reverse, 0, outer);
                let mut outi = vec![7; n];
                cumsum_i32(&xi, &mut outi, r, inner, reverse, 0, outer);
                for o in 0..outer {
                    for i in 0..inner {
                        for j in 0..r {
                            let js: Vec<usize> = if reverse {
                                (j..r).collect()
                            } else {
                                (0..=j).collect()
                            };
                            let want: f64 =
                                js.iter().map(|&q| x[at(r, inner, o, q, i)] as f64).sum();
                            let wanti: i32 = js.iter().map(|&q| xi[at(r, inner, o, q, i)]).sum();
                            let got = out[at(r, inner, o, j, i)];
                            assert!((got as f64 - want).abs() <= 1e-6 * want.abs().max(1.0));
                            assert_eq!(outi[at(r, inner, o, j, i)], wanti);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn prod_and_backward_match_naive() {
        for (seed, (outer, r, inner)) in layouts().into_iter().enumerate() {
            let n = outer * r * inner;
            // Factors near 1 keep long products finite; some exact zeros test the backward.
            let mut x = random(n, 100 + seed as u32, 0.9, 1.1);
            for (q, v) in x.iter_mut().enumerate() {
                if q % 7 == 3 || q % 11 == 5 {
                    *v = 0.0;
                }
            }
            let g = random(outer * inner, 200 + seed as u32, -1.0, 1.0);
            let mut p = vec![f32::NAN; outer * inner];
            prod_f32(&x, &mut p, r, inner, 0, outer);
            let mut dx = vec![f32::NAN; n];
            prod_bwd_f32(&x, &g, &mut dx, r, inner, 0, outer);
            let xi: Vec<i32> = (0..n).map(|q| (q % 5) as i32 - 1).collect();
            let mut pi = vec![9; outer * inner];
            prod_i32(&xi, &mut pi, r, inner, 0, outer);
            for o in 0..outer {
                for i in 0..inner {
                    let col = |skip: Option<usize>| -> f64 {
                        (0..r)
                            .filter(|&q| Some(q) != skip)
                            .map(|q| x[at(r, inner, o, q, i)] as f64)
                            .product()
                    };
                    let want = col(None);
                    let got = p[o * inner + i] as f64;
                    assert!(
                        (got - want).abs() <= 1e-5 * want.abs() + 1e-30,
                        "{got} vs {want}"
                    );
                    let wanti = (0..r).fold(1i32, |a, q| a.wrapping_mul(xi[at(r, inner, o, q, i)]));
                    assert_eq!(pi[o * inner + i], wanti);
                    for j in 0..r {
                        let want = g[o * inner + i] as f64 * col(Some(j));
                        let got = dx[at(r, inner, o, j, i)] as f64;
                        assert!(
                            (got - want).abs() <= 1e-5 * want.abs() + 1e-30,
                            "{got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn work_ranges_touch_only_their_rows() {
        let (outer, r, inner) = (4, 3, 2);
        let x = random(outer * r * inner, 5, -1.0, 1.0);
        let mut whole = vec![0.0; x.len()];
        cumsum_f32(&x, &mut whole, r, inner, false, 0, outer);
        let mut parts = vec![f32::NAN; x.len()];
        cumsum_f32(&x, &mut parts, r, inner, false, 2, 4);
        assert!(parts[..2 * r * inner].iter().all(|v| v.is_nan()));
        cumsum_f32(&x, &mut parts, r, inner, false, 0, 2);
        assert_eq!(parts, whole);
        let mut p = vec![f32::NAN; outer * inner];
        prod_f32(&x, &mut p, r, inner, 1, 3);
        assert!(p[0].is_nan() && p[7].is_nan() && !p[2].is_nan());
    }
}
