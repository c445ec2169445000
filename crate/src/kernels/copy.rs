//! Strided copy and strided accumulation of 32-bit words: the data movement behind permute,
//! expand, slice and cat, and the backward of broadcasting (0 destination strides sum dims away).

use super::reduce::{sum_f32, zip2};
use super::strided::for_each_row;
use crate::simd::F32x4;

/// `dst[Σ i_d * dst_strides[d]] = src[Σ i_d * src_strides[d]]` for every index `i` of `shape`.
pub fn copy_strided_u32(
    src: &[u32],
    dst: &mut [u32],
    shape: &[i32],
    src_strides: &[i32],
    dst_strides: &[i32],
) {
    debug_assert!(src_strides.len() == shape.len() && dst_strides.len() == shape.len());
    if let Some(n) = dense_len(shape, src_strides, dst_strides) {
        dst[..n].copy_from_slice(&src[..n]);
        return;
    }
    if crossed(src_strides, dst_strides) {
        copy_transposed(src, dst, shape, src_strides, dst_strides);
        return;
    }
    for_each_row(
        shape,
        [src_strides, dst_strides],
        |[so, d_o], len, [ss, ds]| copy_row(&src[so..], &mut dst[d_o..], len, ss, ds),
    );
}

/// `dst[..] += src[..]` over the same index space as `copy_strided_u32`, in f32. Several source
/// elements may land on one destination element (0 destination strides); they are summed.
pub fn accumulate_strided_f32(
    src: &[f32],
    dst: &mut [f32],
    shape: &[i32],
    src_strides: &[i32],
    dst_strides: &[i32],
) {
    debug_assert!(src_strides.len() == shape.len() && dst_strides.len() == shape.len());
    if let Some(n) = dense_len(shape, src_strides, dst_strides) {
        add_rows(&mut dst[..n], &src[..n]);
        return;
    }
    for_each_row(
        shape,
        [src_strides, dst_strides],
        |[so, d_o], len, [ss, ds]| accumulate_row(&src[so..], &mut dst[d_o..], len, ss, ds),
    );
}

/// `Some(element count)` when both operands are dense row-major over `shape`, so the whole
/// operation is one flat pass. Size-1 dims are skipped: their stride is never used.
fn dense_len(shape: &[i32], a: &[i32], b: &[i32]) -> Option<usize> {
    let mut expect = 1usize;
    for d in (0..shape.len()).rev() {
        let n = shape[d] as usize;
        if n == 0 {
            return Some(0);
        }
        if n != 1 && (a[d] as usize != expect || b[d] as usize != expect) {
            return None;
        }
        expect *= n;
    }
    Some(expect)
}

/// Whether one operand runs contiguously along the last dim and the other along the one
/// before it: a transpose of the two innermost dims, which row-by-row copying would do with a
/// cache miss per element on one side.
fn crossed(ss: &[i32], ds: &[i32]) -> bool {
    let n = ss.len();
    n >= 2
        && ((ss[n - 1] > 1 && ss[n - 2] == 1 && ds[n - 1] == 1)
            || (ds[n - 1] > 1 && ds[n - 2] == 1 && ss[n - 1] == 1))
}

/// Copies the two innermost dims in `BLOCK`×`BLOCK` tiles, so both sides stay in cache.
fn copy_transposed(src: &[u32], dst: &mut [u32], shape: &[i32], ss: &[i32], ds: &[i32]) {
    const BLOCK: usize = 8;
    let n = shape.len();
    let cols = shape[n - 1] as usize;
    let (sc, dc) = (ss[n - 1] as usize, ds[n - 1] as usize);
    let (outer, ss_o, ds_o) = (&shape[..n - 1], &ss[..n - 1], &ds[..n - 1]);
    for_each_row(outer, [ss_o, ds_o], |[so, d_o], rows, [sr, dr]| {
        for i0 in (0..rows).step_by(BLOCK) {
            for j0 in (0..cols).step_by(BLOCK) {
                for i in i0..rows.min(i0 + BLOCK) {
                    for j in j0..cols.min(j0 + BLOCK) {
                        dst[d_o + i * dr + j * dc] = src[so + i * sr + j * sc];
                    }
                }
            }
        }
    });
}

fn copy_row(src: &[u32], dst: &mut [u32], len: usize, ss: usize, ds: usize) {
    match (ss, ds) {
        (1, 1) => dst[..len].copy_from_slice(&src[..len]),
        (0, 1) => dst[..len].fill(src[0]),
        // `step_by` needs non-zero steps; it walks without per-element bounds checks.
        _ if ss > 0 && ds > 0 => {
            for (d, s) in dst
                .iter_mut()
                .step_by(ds)
                .zip(src.iter().step_by(ss))
                .take(len)
            {
                *d = *s;
            }
        }
        _ => {
            for i in 0..len {
                dst[i * ds] = src[i * ss];
            }
        }
    }
}

fn accumulate_row(src: &[f32], dst: &mut [f32], len: usize, ss: usize, ds: usize) {
    match (ss, ds) {
        (1, 1) => add_rows(&mut dst[..len], &src[..len]),
        (0, 1) => add_scalar(&mut dst[..len], src[0]),
        (1, 0) => dst[0] += sum_f32(&src[..len]),
        // A broadcast source summed into one element: a product rounds once, a loop `len` times.
        (0, 0) => dst[0] += src[0] * len as f32,
        (_, 0) => dst[0] += src.iter().step_by(ss).take(len).sum::<f32>(),
        _ => {
            for i in 0..len {
                dst[i * ds] += src[i * ss];
            }
        }
    }
}

/// `dst[i] += src[i]`, four lanes at a time.
fn add_rows(dst: &mut [f32], src: &[f32]) {
    zip2(dst, src, F32x4::add, |d, s| d + s);
}

/// `dst[i] += v`.
fn add_scalar(dst: &mut [f32], v: f32) {
    let vv = F32x4::splat(v);
    let mut d4 = dst.chunks_exact_mut(4);
    for d in &mut d4 {
        F32x4::load(d).add(vv).store(d);
    }
    for d in d4.into_remainder() {
        *d += v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LENS: [usize; 10] = [0, 1, 3, 4, 5, 15, 16, 17, 67, 257];

    fn contiguous(shape: &[usize]) -> Vec<i32> {
        let mut s = vec![0i32; shape.len()];
        let mut acc = 1;
        for d in (0..shape.len()).rev() {
            s[d] = acc as i32;
            acc *= shape[d];
        }
        s
    }

    /// `(src offset, dst offset)` of every index of `shape`, by division (unlike the kernel).
    fn offsets(shape: &[usize], ss: &[i32], ds: &[i32]) -> Vec<(usize, usize)> {
        let n: usize = shape.iter().product();
        (0..n)
            .map(|flat| {
                let (mut rem, mut so, mut d_o) = (flat, 0, 0);
                for d in (0..shape.len()).rev() {
                    let i = rem % shape[d];
                    rem /= shape[d];
                    so += i * ss[d] as usize;
                    d_o += i * ds[d] as usize;
                }
                (so, d_o)
            })
            .collect()
    }

    fn dims(shape: &[usize]) -> Vec<i32> {
        shape.iter().map(|&s| s as i32).collect()
    }

    /// Runs `copy_strided_u32` into a sentinel-filled `dst` and checks every word of it.
    fn check_copy(src: &[u32], dst_len: usize, shape: &[usize], ss: &[i32], ds: &[i32]) {
        let mut want = vec![u32::MAX; dst_len];
        for (so, d_o) in offsets(shape, ss, ds) {
            want[d_o] = src[so];
        }
        let mut got = vec![u32::MAX; dst_len];
        copy_strided_u32(src, &mut got, &dims(shape), ss, ds);
        assert_eq!(got, want, "shape {:?} src {:?} dst {:?}", shape, ss, ds);
    }

    /// Runs `accumulate_strided_f32` onto a non-zero `dst` and compares with an f64 sum.
    fn check_accumulate(src: &[f32], dst_len: usize, shape: &[usize], ss: &[i32], ds: &[i32]) {
        let base: Vec<f32> = (0..dst_len).map(|i| 0.25 * i as f32 - 3.0).collect();
        let mut want: Vec<f64> = base.iter().map(|&v| v as f64).collect();
        let mut mass = vec![0.0f64; dst_len];
        for (so, d_o) in offsets(shape, ss, ds) {
            want[d_o] += src[so] as f64;
            mass[d_o] += (src[so] as f64).abs();
        }
        let mut got = base;
        accumulate_strided_f32(src, &mut got, &dims(shape), ss, ds);
        for i in 0..dst_len {
            let tol = 1e-6 * (mass[i] + want[i].abs()) + 1e-6;
            assert!(
                (got[i] as f64 - want[i]).abs() <= tol,
                "shape {:?} src {:?} dst {:?} at {}: {} vs {}",
                shape,
                ss,
                ds,
                i,
                got[i],
                want[i]
            );
        }
    }

    fn words(n: usize) -> Vec<u32> {
        (0..n as u32)
            .map(|i| i.wrapping_mul(2_654_435_761))
            .collect()
    }

    fn floats(n: usize) -> Vec<f32> {
        let mut s = 0x1234_5678u32;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    }

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        let total = n.pow(n as u32);
        let mut out = vec![];
        for code in 0..total {
            let p: Vec<usize> = (0..n).map(|d| code / n.pow(d as u32) % n).collect();
            if (0..n).all(|v| p.contains(&v)) {
                out.push(p);
            }
        }
        out
    }

    /// A contiguous array of `shape` read through a permutation of its axes.
    fn permuted(shape: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<i32>) {
        let strides = contiguous(shape);
        (
            perm.iter().map(|&p| shape[p]).collect(),
            perm.iter().map(|&p| strides[p]).collect(),
        )
    }

    #[test]
    fn copy_contiguous_lengths() {
        for &n in &LENS {
            check_copy(&words(n), n, &[n], &[1], &[1]);
            check_copy(
                &words(3 * n),
                3 * n,
                &[3, n],
                &[n as i32, 1],
                &[n as i32, 1],
            );
        }
        check_copy(&[], 0, &[3, 0, 2], &[0, 2, 1], &[0, 2, 1]);
    }

    #[test]
    fn copy_permutes_3d_and_4d() {
        for shape in [
            vec![2, 3, 5],
            vec![4, 1, 17],
            vec![2, 3, 1, 5],
            vec![3, 4, 2, 6],
        ] {
            let n: usize = shape.iter().product();
            let src = words(n);
            for perm in permutations(shape.len()) {
                let (out_shape, ss) = permuted(&shape, &perm);
                check_copy(&src, n, &out_shape, &ss, &contiguous(&out_shape));
                // and the inverse direction: contiguous source into a permuted destination
                check_copy(&src, n, &out_shape, &contiguous(&out_shape), &ss);
            }
        }
    }

    #[test]
    fn copy_expands_zero_strides() {
        for &n in &LENS {
            let src = words(n.max(1));
            check_copy(&src, 4 * n, &[4, n], &[0, 1], &[n as i32, 1]);
            check_copy(&src, 5 * n, &[n, 5], &[1, 0], &[5, 1]);
            check_copy(
                &src[..1],
                3 * n * 2,
                &[3, n, 2],
                &[0, 0, 0],
                &contiguous(&[3, n, 2]),
            );
        }
    }

    #[test]
    fn copy_slices_with_offsets_into_a_cat() {
        // x[1:5, 2:7:2] of a 6x9 array, written at column 3 of an 4x8 destination.
        let src = words(54);
        let (so, d_o) = (9 + 2, 3);
        let shape = [4, 3];
        let mut want = vec![u32::MAX; 32];
        for i in 0..4 {
            for j in 0..3 {
                want[d_o + i * 8 + j] = src[so + i * 9 + 2 * j];
            }
        }
        let mut got = vec![u32::MAX; 32];
        copy_strided_u32(&src[so..], &mut got[d_o..], &shape, &[9, 2], &[8, 1]);
        assert_eq!(got, want);
        // a strided destination too (every other column of a 4x8 buffer, from a transpose)
        check_copy(&src[so..], 32, &[4, 3], &[1, 9], &[8, 2]);
        check_copy(&src, 54, &[6, 9], &[9, 1], &[1, 6]);
    }

    #[test]
    fn accumulate_dense_and_row_cases() {
        for &n in &LENS {
            for outer in [1, 3] {
                let src = floats(outer * n);
                let shape = [outer, n];
                let c = contiguous(&shape);
                check_accumulate(&src, outer * n, &shape, &c, &c);
                check_accumulate(&src, n, &shape, &c, &[0, 1]);
                check_accumulate(&src, outer, &shape, &c, &[1, 0]);
                check_accumulate(&src, 1, &shape, &c, &[0, 0]);
                // broadcast source rows and scalars
                check_accumulate(&src, outer * n, &shape, &[0, 1], &c);
                check_accumulate(&src, outer * n, &shape, &[1, 0], &c);
                check_accumulate(&src, outer, &shape, &[1, 0], &[1, 0]);
                check_accumulate(&src, 1, &shape, &[0, 0], &[0, 0]);
            }
        }
    }

    #[test]
    fn accumulate_bias_gradient_shapes() {
        let src = floats(64 * 128);
        check_accumulate(&src, 128, &[64, 128], &[128, 1], &[0, 1]);
        check_accumulate(&src, 64, &[64, 128], &[128, 1], &[1, 0]);
    }

    #[test]
    fn accumulate_zero_strides_in_every_position() {
        for shape in [vec![4, 5, 6], vec![3, 1, 17], vec![2, 3, 4, 5]] {
            let nd = shape.len();
            let n: usize = shape.iter().product();
            let src = floats(n);
            for perm in permutations(nd) {
                let (sh, ss) = permuted(&shape, &perm);
                for mask in 0..1usize << nd {
                    // dst keeps the dims whose bit is clear, dense in their order
                    let kept: Vec<usize> = (0..nd)
                        .map(|d| if mask >> d & 1 == 1 { 1 } else { sh[d] })
                        .collect();
                    let mut ds = contiguous(&kept);
                    for (d, s) in ds.iter_mut().enumerate() {
                        if mask >> d & 1 == 1 {
                            *s = 0;
                        }
                    }
                    check_accumulate(&src, kept.iter().product(), &sh, &ss, &ds);
                }
            }
        }
    }

    #[test]
    fn accumulate_general_strides() {
        let src = floats(200);
        check_accumulate(&src, 40, &[4, 5], &[3, 7], &[10, 2]);
        check_accumulate(&src, 4, &[4, 17], &[1, 5], &[1, 0]);
        check_accumulate(&src, 0, &[4, 0], &[1, 5], &[1, 0]);
    }
}
