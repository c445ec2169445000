//! Integer indexing: bounds checks, `index_select` and its backward `index_add`, `gather`,
//! `scatter_add` and `one_hot`. Indices arrive as i32 already validated by `index_check_i32`,
//! so the kernels only `debug_assert!` them.

use super::strided::{contiguous_strides, for_each_row, MAX_DIMS};
use crate::simd::F32x4;

/// The first position `i` with `idx[i]` outside `[0, limit)`, or -1 when every index is valid.
pub fn index_check_i32(idx: &[i32], limit: i32) -> i32 {
    // As u32 a negative index becomes >= 2^31, so one unsigned compare catches both ends; a
    // negative limit admits nothing and is clamped to 0 for the same effect.
    let limit = limit.max(0) as u32;
    const BLOCK: usize = 64;
    // A max over each block vectorises (no early exit); only a failing block is searched.
    for (b, block) in idx.chunks(BLOCK).enumerate() {
        if block.iter().fold(0, |m, &v| m.max(v as u32)) >= limit {
            let p = block.iter().position(|&v| v as u32 >= limit);
            return (b * BLOCK + p.unwrap_or(0)) as i32;
        }
    }
    -1
}

/// `out[o, j, i] = x[o, idx[j], i]` with `x` as `[outer, dim, inner]` and `out` as
/// `[outer, idx.len(), inner]`, for the positions `j` in `begin..end` only: each output row is
/// one copy, so the pool splits over `j` (an embedding lookup's tokens).
#[allow(clippy::too_many_arguments)]
pub fn index_select_u32(
    x: &[u32],
    idx: &[i32],
    out: &mut [u32],
    outer: usize,
    dim: usize,
    inner: usize,
    begin: usize,
    end: usize,
) {
    let n = idx.len();
    debug_assert_eq!(x.len(), outer * dim * inner);
    debug_assert_eq!(out.len(), outer * n * inner);
    debug_assert!(begin <= end && end <= n);
    debug_assert!(index_check_i32(idx, dim as i32) < 0);
    let ids = &idx[begin..end];
    if inner == 1 {
        // Selecting along the last axis: a per-element copy beats a memcpy call per word.
        for o in 0..outer {
            let (src, dst) = (&x[o * dim..][..dim], &mut out[o * n + begin..][..ids.len()]);
            for (d, &k) in dst.iter_mut().zip(ids) {
                *d = src[k as usize];
            }
        }
        return;
    }
    for o in 0..outer {
        for (j, &k) in ids.iter().enumerate() {
            let src = &x[(o * dim + k as usize) * inner..][..inner];
            out[(o * n + begin + j) * inner..][..inner].copy_from_slice(src);
        }
    }
}

/// `dst[o, idx[j], i] += g[o, j, i]`, the backward of `index_select_u32` and of an embedding
/// lookup; repeated indices accumulate, in the order of `j`. Only columns `i` in `c0..c1`:
/// each column adds alone (the same float additions whichever lanes hold it), so the pool
/// splits over columns and every thread count gives the same bits.
#[allow(clippy::too_many_arguments)]
pub fn index_add_f32(
    g: &[f32],
    idx: &[i32],
    dst: &mut [f32],
    outer: usize,
    dim: usize,
    inner: usize,
    c0: usize,
    c1: usize,
) {
    let n = idx.len();
    debug_assert_eq!(g.len(), outer * n * inner);
    debug_assert_eq!(dst.len(), outer * dim * inner);
    debug_assert!(c0 <= c1 && c1 <= inner);
    debug_assert!(index_check_i32(idx, dim as i32) < 0);
    let w = c1 - c0;
    for o in 0..outer {
        for (j, &k) in idx.iter().enumerate() {
            let src = &g[(o * n + j) * inner + c0..][..w];
            add_row(&mut dst[(o * dim + k as usize) * inner + c0..][..w], src);
        }
    }
}

/// `dst[i] += src[i]` over equal-length rows, four lanes at a time.
fn add_row(dst: &mut [f32], src: &[f32]) {
    let mut d4 = dst.chunks_exact_mut(4);
    let mut s4 = src.chunks_exact(4);
    for (d, s) in (&mut d4).zip(&mut s4) {
        F32x4::load(d).add(F32x4::load(s)).store(d);
    }
    for (d, s) in d4.into_remainder().iter_mut().zip(s4.remainder()) {
        *d += s;
    }
}

/// `strides` with the entry for `axis` zeroed: the offset of a position's non-axis coordinates,
/// to which gather and scatter add `idx[p] * strides[axis]`.
fn without_axis(strides: &[i32], axis: usize) -> [i32; MAX_DIMS] {
    let mut s = [0i32; MAX_DIMS];
    s[..strides.len()].copy_from_slice(strides);
    s[axis] = 0;
    s
}

/// `torch.gather`: for every position `p` of the contiguous index tensor of shape `idx_shape`,
/// `out[p] = x[Σ_{d≠axis} p_d * x_strides[d] + idx[p] * x_strides[axis]]`.
pub fn gather_u32(
    x: &[u32],
    idx: &[i32],
    out: &mut [u32],
    idx_shape: &[i32],
    x_strides: &[i32],
    axis: usize,
) {
    let nd = idx_shape.len();
    debug_assert!(axis < nd && x_strides.len() == nd);
    debug_assert_eq!(idx.len(), out.len());
    let contiguous = contiguous_strides(idx_shape);
    let base = without_axis(x_strides, axis);
    let step = x_strides[axis] as usize;
    for_each_row(
        idx_shape,
        [&contiguous[..nd], &base[..nd]],
        |[p0, x0], len, [_, xs]| {
            let (ids, dst) = (&idx[p0..][..len], &mut out[p0..][..len]);
            for (t, (d, &k)) in dst.iter_mut().zip(ids).enumerate() {
                *d = x[x0 + t * xs + k as usize * step];
            }
        },
    );
}

/// `torch.Tensor.scatter_add_`: for every position `p` of the contiguous index tensor,
/// `dst[Σ_{d≠axis} p_d * dst_strides[d] + idx[p] * dst_strides[axis]] += src[Σ p_d * src_strides[d]]`.
pub fn scatter_add_f32(
    dst: &mut [f32],
    idx: &[i32],
    src: &[f32],
    idx_shape: &[i32],
    dst_strides: &[i32],
    src_strides: &[i32],
    axis: usize,
) {
    let nd = idx_shape.len();
    debug_assert!(axis < nd && dst_strides.len() == nd && src_strides.len() == nd);
    let contiguous = contiguous_strides(idx_shape);
    let base = without_axis(dst_strides, axis);
    let step = dst_strides[axis] as usize;
    let strides = [&contiguous[..nd], &base[..nd], src_strides];
    for_each_row(idx_shape, strides, |[p0, d0, s0], len, [_, ds, ss]| {
        for (t, &k) in idx[p0..][..len].iter().enumerate() {
            dst[d0 + t * ds + k as usize * step] += src[s0 + t * ss];
        }
    });
}

/// `out[i, c] = (idx[i] == c) as i32` with `out` as `[idx.len(), classes]`.
pub fn one_hot_i32(idx: &[i32], out: &mut [i32], classes: usize) {
    debug_assert_eq!(out.len(), idx.len() * classes);
    debug_assert!(index_check_i32(idx, classes as i32) < 0);
    if classes == 0 {
        // `out` is empty, and `chunks_exact_mut(0)` would panic.
        return;
    }
    for (row, &c) in out.chunks_exact_mut(classes).zip(idx) {
        row.fill(0);
        row[c as usize] = 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small LCG so the tests need no crate and no dependency on `rng`.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n
        }
        fn indices(&mut self, len: usize, n: usize) -> Vec<i32> {
            (0..len).map(|_| self.below(n) as i32).collect()
        }
        fn floats(&mut self, len: usize) -> Vec<f32> {
            (0..len)
                .map(|_| self.below(2001) as f32 / 100.0 - 10.0)
                .collect()
        }
    }

    const LENGTHS: [usize; 9] = [0, 1, 3, 4, 5, 15, 16, 17, 257];

    /// Unravels a flat position of a contiguous `shape` into coordinates, by division, so the
    /// references share no code with the odometer in `for_each_row`.
    fn coords(mut flat: usize, shape: &[i32]) -> Vec<usize> {
        let mut c = vec![0; shape.len()];
        for d in (0..shape.len()).rev() {
            c[d] = flat % shape[d] as usize;
            flat /= shape[d] as usize;
        }
        c
    }

    fn dot(c: &[usize], strides: &[i32]) -> usize {
        c.iter().zip(strides).map(|(&a, &s)| a * s as usize).sum()
    }

    fn numel(shape: &[i32]) -> usize {
        shape.iter().map(|&s| s as usize).product()
    }

    fn contiguous(shape: &[i32]) -> Vec<i32> {
        contiguous_strides(shape)[..shape.len()].to_vec()
    }

    #[test]
    fn index_check_finds_first_bad_position() {
        assert_eq!(index_check_i32(&[], 3), -1);
        assert_eq!(index_check_i32(&[0, 1, 2], 3), -1);
        assert_eq!(index_check_i32(&[0, 3, 1], 3), 1);
        assert_eq!(index_check_i32(&[0, 1, -1, 5], 3), 2);
        assert_eq!(index_check_i32(&[i32::MIN], 3), 0);
        assert_eq!(index_check_i32(&[2, 2, 2, 2, 2, i32::MAX], 3), 5);
        assert_eq!(index_check_i32(&[0], 0), 0);
        assert_eq!(index_check_i32(&[0, -5], -1), 0);
        assert_eq!(index_check_i32(&[i32::MAX - 1], i32::MAX), -1);
        // A bad index deep in a later block, after a block of valid ones.
        let mut long = vec![1; 300];
        long[200] = -1;
        long[250] = 3;
        assert_eq!(index_check_i32(&long, 3), 200);
        assert_eq!(index_check_i32(&long[201..], 3), 49);
        assert_eq!(index_check_i32(&long[..200], 3), -1);
    }

    #[test]
    fn index_check_matches_naive_scan() {
        let mut r = Lcg(1);
        for n in LENGTHS.iter().copied().chain([64, 65, 130, 1000]) {
            for limit in [1, 4, 9, 11] {
                let idx: Vec<i32> = (0..n).map(|_| r.below(12) as i32 - 1).collect();
                let naive = idx
                    .iter()
                    .position(|&v| v < 0 || v >= limit)
                    .map_or(-1, |p| p as i32);
                assert_eq!(index_check_i32(&idx, limit), naive, "n={n} limit={limit}");
            }
        }
    }

    fn select_reference(
        x: &[u32],
        idx: &[i32],
        outer: usize,
        dim: usize,
        inner: usize,
    ) -> Vec<u32> {
        let mut out = Vec::new();
        for o in 0..outer {
            for &k in idx {
                for i in 0..inner {
                    out.push(x[(o * dim + k as usize) * inner + i]);
                }
            }
        }
        out
    }

    #[test]
    fn index_select_matches_reference() {
        let mut r = Lcg(2);
        for &(outer, dim, inner) in &[
            (1, 5, 1),
            (4, 3, 1),
            (1, 7, 5),
            (3, 4, 17),
            (2, 1, 4),
            (2, 6, 0),
        ] {
            for &n in &LENGTHS {
                let x: Vec<u32> = (0..outer * dim * inner).map(|v| v as u32 * 7 + 1).collect();
                let idx = r.indices(n, dim);
                let mut out = vec![u32::MAX; outer * n * inner];
                index_select_u32(&x, &idx, &mut out, outer, dim, inner, 0, n);
                assert_eq!(
                    out,
                    select_reference(&x, &idx, outer, dim, inner),
                    "{outer}x{dim}x{inner} n={n}"
                );
            }
        }
    }

    fn add_reference(
        g: &[f32],
        idx: &[i32],
        dst: &mut [f32],
        outer: usize,
        dim: usize,
        inner: usize,
    ) {
        let n = idx.len();
        for o in 0..outer {
            for (j, &k) in idx.iter().enumerate() {
                for i in 0..inner {
                    dst[(o * dim + k as usize) * inner + i] += g[(o * n + j) * inner + i];
                }
            }
        }
    }

    #[test]
    fn index_add_matches_reference() {
        let mut r = Lcg(3);
        for &(outer, dim, inner) in &[
            (1, 5, 1),
            (3, 4, 1),
            (1, 6, 4),
            (2, 3, 5),
            (2, 5, 17),
            (1, 9, 16),
        ] {
            for &n in &LENGTHS {
                let g = r.floats(outer * n * inner);
                let idx = r.indices(n, dim);
                let start = r.floats(outer * dim * inner);
                let (mut got, mut want) = (start.clone(), start);
                index_add_f32(&g, &idx, &mut got, outer, dim, inner, 0, inner);
                add_reference(&g, &idx, &mut want, outer, dim, inner);
                // Values are multiples of 1/100 summed in the same order: exact equality holds.
                assert_eq!(got, want, "{outer}x{dim}x{inner} n={n}");
            }
        }
    }

    #[test]
    fn index_add_accumulates_repeated_indices() {
        // An embedding table of 3 rows of width 5 receiving the same token four times.
        let g: Vec<f32> = (0..20).map(|v| v as f32).collect();
        let mut dst = vec![0.0f32; 15];
        index_add_f32(&g, &[1, 1, 2, 1], &mut dst, 1, 3, 5, 0, 5);
        let row1: Vec<f32> = (0..5).map(|i| (i + (5 + i) + (15 + i)) as f32).collect();
        assert_eq!(&dst[..5], &[0.0; 5]);
        assert_eq!(&dst[5..10], &row1[..]);
        assert_eq!(&dst[10..], &[10.0, 11.0, 12.0, 13.0, 14.0]);
    }

    /// Any cut of the positions (select) or of the columns (add) into ranges gives the whole
    /// call's result, and a range writes only its own part: the pool's splits.
    #[test]
    fn ranges_give_the_whole_result() {
        let mut r = Lcg(4);
        for &(outer, dim, inner) in &[(1, 9, 1), (3, 4, 1), (1, 50, 13), (2, 7, 130)] {
            let n = 37;
            let x: Vec<u32> = (0..outer * dim * inner).map(|v| v as u32 * 3 + 1).collect();
            let idx = r.indices(n, dim);
            let g = r.floats(outer * n * inner);
            let mut whole = vec![u32::MAX; outer * n * inner];
            index_select_u32(&x, &idx, &mut whole, outer, dim, inner, 0, n);
            let mut whole_add = vec![0.5f32; outer * dim * inner];
            index_add_f32(&g, &idx, &mut whole_add, outer, dim, inner, 0, inner);
            for cut in [1, 5, 17, 36] {
                let mut parts = vec![u32::MAX; outer * n * inner];
                index_select_u32(&x, &idx, &mut parts, outer, dim, inner, 0, cut);
                let mut first = parts.clone();
                index_select_u32(&x, &idx, &mut parts, outer, dim, inner, cut, n);
                assert_eq!(parts, whole, "{outer}x{dim}x{inner} cut {cut}");
                // The first range left every later position unwritten.
                first
                    .iter_mut()
                    .zip(&whole)
                    .enumerate()
                    .for_each(|(p, (v, w))| {
                        if (p / inner) % n < cut {
                            assert_eq!(v, w);
                        }
                        *v = u32::MAX;
                    });
                let c = cut.min(inner);
                let mut added = vec![0.5f32; outer * dim * inner];
                index_add_f32(&g, &idx, &mut added, outer, dim, inner, 0, c);
                let once = added.clone();
                index_add_f32(&g, &idx, &mut added, outer, dim, inner, c, inner);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&added),
                    bits(&whole_add),
                    "{outer}x{dim}x{inner} cut {c}"
                );
                for (p, &v) in once.iter().enumerate() {
                    if p % inner >= c {
                        assert_eq!(v, 0.5, "column {} written outside its range", p % inner);
                    }
                }
            }
        }
    }

    fn gather_reference(
        x: &[u32],
        idx: &[i32],
        shape: &[i32],
        xs: &[i32],
        axis: usize,
    ) -> Vec<u32> {
        (0..idx.len())
            .map(|p| {
                let mut c = coords(p, shape);
                c[axis] = idx[p] as usize;
                x[dot(&c, xs)]
            })
            .collect()
    }

    /// Gathers along every axis of `x_shape` with an index tensor no larger than `x` off the
    /// axis and of length `along` on it, for `x` laid out with `x_strides`.
    fn check_gather(x_shape: &[i32], x_strides: &[i32], idx_shape: &[i32], r: &mut Lcg) {
        let x_len = 1 + x_shape
            .iter()
            .zip(x_strides)
            .map(|(&s, &st)| (s as usize - 1) * st as usize)
            .sum::<usize>();
        let x: Vec<u32> = (0..x_len).map(|v| v as u32 * 3 + 2).collect();
        for axis in 0..x_shape.len() {
            for along in [1, 2, 5] {
                let mut shape = idx_shape.to_vec();
                shape[axis] = along;
                let idx = r.indices(numel(&shape), x_shape[axis] as usize);
                let mut out = vec![u32::MAX; idx.len()];
                gather_u32(&x, &idx, &mut out, &shape, x_strides, axis);
                let want = gather_reference(&x, &idx, &shape, x_strides, axis);
                assert_eq!(out, want, "x {x_shape:?} idx {shape:?} axis {axis}");
            }
        }
    }

    #[test]
    fn gather_matches_reference_every_axis() {
        let mut r = Lcg(4);
        check_gather(&[5], &[1], &[5], &mut r);
        check_gather(&[4, 6], &[6, 1], &[4, 6], &mut r);
        check_gather(&[4, 6], &[6, 1], &[2, 3], &mut r);
        check_gather(&[3, 4, 5], &[20, 5, 1], &[3, 4, 5], &mut r);
        check_gather(&[3, 4, 5], &[20, 5, 1], &[2, 1, 3], &mut r);
        check_gather(&[2, 3, 17], &[51, 17, 1], &[2, 2, 16], &mut r);
    }

    #[test]
    fn gather_reads_strided_and_broadcast_x() {
        let mut r = Lcg(5);
        // x is the transpose of a contiguous [5, 4] array, then a [3, 4, 5] permuted view.
        check_gather(&[4, 5], &[1, 4], &[4, 5], &mut r);
        check_gather(&[3, 4, 5], &[1, 15, 3], &[2, 3, 4], &mut r);
        // A broadcast (stride 0) leading dim.
        check_gather(&[3, 4], &[0, 1], &[3, 4], &mut r);
    }

    #[test]
    fn gather_empty_index_writes_nothing() {
        let mut out: [u32; 0] = [];
        gather_u32(&[1, 2, 3], &[], &mut out, &[0, 3], &[3, 1], 1);
        gather_u32(&[1, 2, 3], &[], &mut out, &[1, 0], &[3, 1], 0);
    }

    fn scatter_reference(
        dst: &mut [f32],
        idx: &[i32],
        src: &[f32],
        shape: &[i32],
        ds: &[i32],
        ss: &[i32],
        axis: usize,
    ) {
        for (p, &k) in idx.iter().enumerate() {
            let c = coords(p, shape);
            let mut t = c.clone();
            t[axis] = k as usize;
            dst[dot(&t, ds)] += src[dot(&c, ss)];
        }
    }

    /// Scatters along every axis into a contiguous `dst_shape` from a contiguous `src_shape`
    /// (at least as large as the index tensor in every dim, as torch allows).
    fn check_scatter(dst_shape: &[i32], src_shape: &[i32], idx_shape: &[i32], r: &mut Lcg) {
        let (ds, ss) = (contiguous(dst_shape), contiguous(src_shape));
        let src = r.floats(numel(src_shape));
        for axis in 0..dst_shape.len() {
            let mut shape = idx_shape.to_vec();
            shape[axis] = shape[axis].min(src_shape[axis]);
            let idx = r.indices(numel(&shape), dst_shape[axis] as usize);
            let start = r.floats(numel(dst_shape));
            let (mut got, mut want) = (start.clone(), start);
            scatter_add_f32(&mut got, &idx, &src, &shape, &ds, &ss, axis);
            scatter_reference(&mut want, &idx, &src, &shape, &ds, &ss, axis);
            assert_eq!(got, want, "dst {dst_shape:?} idx {shape:?} axis {axis}");
        }
    }

    #[test]
    fn scatter_add_matches_reference_every_axis() {
        let mut r = Lcg(6);
        check_scatter(&[7], &[16], &[16], &mut r);
        check_scatter(&[4, 5], &[4, 5], &[4, 5], &mut r);
        check_scatter(&[4, 5], &[6, 7], &[3, 5], &mut r);
        check_scatter(&[3, 4, 5], &[3, 4, 5], &[3, 4, 5], &mut r);
        check_scatter(&[3, 4, 5], &[4, 5, 6], &[2, 3, 4], &mut r);
        check_scatter(&[2, 3, 17], &[2, 3, 17], &[2, 3, 17], &mut r);
    }

    #[test]
    fn scatter_add_accumulates_repeated_indices() {
        // dst [2, 3], all of src [2, 4] scattered into column 1 along axis 1.
        let src: Vec<f32> = (1..=8).map(|v| v as f32).collect();
        let mut dst = vec![0.0f32; 6];
        scatter_add_f32(&mut dst, &[1; 8], &src, &[2, 4], &[3, 1], &[4, 1], 1);
        assert_eq!(dst, [0.0, 10.0, 0.0, 0.0, 26.0, 0.0]);
        // Along axis 0 with a transposed (strided) source: dst[idx[i, j], j] += src^T[i, j].
        let mut dst = vec![0.0f32; 6];
        scatter_add_f32(
            &mut dst,
            &[0, 0, 0, 1, 1, 1],
            &src[..6],
            &[2, 3],
            &[3, 1],
            &[1, 2],
            0,
        );
        assert_eq!(dst, [1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
    }

    #[test]
    fn one_hot_sets_one_per_row() {
        let mut r = Lcg(7);
        for &n in &LENGTHS {
            for classes in [1, 3, 4, 10] {
                let idx = r.indices(n, classes);
                let mut out = vec![7; n * classes];
                one_hot_i32(&idx, &mut out, classes);
                for (i, &k) in idx.iter().enumerate() {
                    for c in 0..classes {
                        assert_eq!(
                            out[i * classes + c],
                            (c == k as usize) as i32,
                            "n={n} classes={classes}"
                        );
                    }
                }
            }
        }
        one_hot_i32(&[], &mut [], 0);
        let mut out = [9; 6];
        one_hot_i32(&[2, 0], &mut out, 3);
        assert_eq!(out, [0, 0, 1, 1, 0, 0]);
    }
}
