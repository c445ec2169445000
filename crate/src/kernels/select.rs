//! Writing to and finding positions: `scatter` (overwrite, not add) and `nonzero`. Indices
//! arrive already range-checked by `index::index_check_i32`, so the kernels only assert.

use super::strided::{contiguous_strides, for_each_row, MAX_DIMS};

/// `torch.Tensor.scatter_` on 32-bit words: for every position `p` of the contiguous index
/// tensor (shape `idx_shape`), `dst[Σ_{d≠axis} p_d * dst_strides[d] + idx[p] * dst_strides[axis]]
/// = src[Σ p_d * src_strides[d]]`. Positions are visited in row-major order, so when two name
/// the same element the later one wins (what PyTorch's CPU kernel does; torch leaves it
/// unspecified). A `src_strides` of all zeros scatters one scalar.
pub fn scatter_u32(
    dst: &mut [u32],
    idx: &[i32],
    src: &[u32],
    idx_shape: &[i32],
    dst_strides: &[i32],
    src_strides: &[i32],
    axis: usize,
) {
    let nd = idx_shape.len();
    debug_assert!(axis < nd && dst_strides.len() == nd && src_strides.len() == nd);
    let contiguous = contiguous_strides(idx_shape);
    let mut base = [0i32; MAX_DIMS];
    base[..nd].copy_from_slice(dst_strides);
    base[axis] = 0;
    let step = dst_strides[axis] as usize;
    let strides = [&contiguous[..nd], &base[..nd], src_strides];
    for_each_row(idx_shape, strides, |[p0, d0, s0], len, [_, ds, ss]| {
        for (t, &k) in idx[p0..][..len].iter().enumerate() {
            dst[d0 + t * ds + k as usize * step] = src[s0 + t * ss];
        }
    });
}

/// How many words of `x` are non-zero (as i32: 0 is the only false).
pub fn count_nonzero_i32(x: &[i32]) -> usize {
    x.iter().filter(|&&v| v != 0).count()
}

/// `torch.nonzero`: for the `count` non-zero elements of `x` (contiguous, shape `shape`), in
/// row-major order, writes their coordinates as the rows of `out` (`[count, shape.len()]`).
pub fn nonzero_i32(x: &[i32], shape: &[i32], out: &mut [i32]) {
    let nd = shape.len();
    debug_assert_eq!(out.len(), count_nonzero_i32(x) * nd);
    let mut coord = [0i32; MAX_DIMS];
    let mut row = 0;
    for &v in x {
        if v != 0 {
            out[row * nd..(row + 1) * nd].copy_from_slice(&coord[..nd]);
            row += 1;
        }
        // Odometer over the shape (the last dim fastest).
        for d in (0..nd).rev() {
            coord[d] += 1;
            if coord[d] < shape[d] {
                break;
            }
            coord[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random;

    fn coords(mut p: usize, shape: &[i32]) -> Vec<usize> {
        let mut c = vec![0; shape.len()];
        for d in (0..shape.len()).rev() {
            c[d] = p % shape[d] as usize;
            p /= shape[d] as usize;
        }
        c
    }

    fn dot(c: &[usize], s: &[i32]) -> usize {
        c.iter().zip(s).map(|(&a, &b)| a * b as usize).sum()
    }

    #[test]
    fn scatter_matches_reference_every_axis_and_last_write_wins() {
        let cases: [(&[i32], &[i32], &[i32]); 4] = [
            (&[7], &[16], &[16]),
            (&[4, 5], &[6, 7], &[3, 5]),
            (&[3, 4, 5], &[4, 5, 6], &[2, 3, 4]),
            (&[2, 3, 17], &[2, 3, 17], &[2, 3, 17]),
        ];
        for (k, (dshape, sshape, ishape)) in cases.iter().enumerate() {
            let ds = contiguous_strides(dshape);
            let ss = contiguous_strides(sshape);
            let nd = dshape.len();
            let src: Vec<u32> = (0..sshape.iter().product::<i32>() as u32)
                .map(|v| v + 100)
                .collect();
            for axis in 0..nd {
                let mut ishape = ishape.to_vec();
                ishape[axis] = ishape[axis].min(sshape[axis]);
                let n: i32 = ishape.iter().product();
                let idx: Vec<i32> =
                    random(n as usize, (k * 8 + axis) as u32, 0.0, dshape[axis] as f32)
                        .iter()
                        .map(|&v| v as i32)
                        .collect();
                let start: Vec<u32> = (0..dshape.iter().product::<i32>() as u32).collect();
                let (mut got, mut want) = (start.clone(), start);
                scatter_u32(&mut got, &idx, &src, &ishape, &ds[..nd], &ss[..nd], axis);
                for (p, &i) in idx.iter().enumerate() {
                    let c = coords(p, &ishape);
                    let mut t = c.clone();
                    t[axis] = i as usize;
                    want[dot(&t, &ds[..nd])] = src[dot(&c, &ss[..nd])];
                }
                assert_eq!(got, want, "dst {dshape:?} idx {ishape:?} axis {axis}");
            }
        }
    }

    #[test]
    fn nonzero_lists_coordinates_in_row_major_order() {
        for &n in &[0usize, 1, 3, 4, 5, 15, 16, 17, 257] {
            let x: Vec<i32> = random(n * 3, n as u32, -1.0, 2.0)
                .iter()
                .map(|&v| v as i32)
                .collect();
            let shape = [3, n as i32];
            let count = count_nonzero_i32(&x);
            let mut out = vec![-1; count * 2];
            nonzero_i32(&x, &shape, &mut out);
            let want: Vec<i32> = (0..x.len())
                .filter(|&p| x[p] != 0)
                .flat_map(|p| [(p / n) as i32, (p % n) as i32])
                .collect();
            assert_eq!(out, want, "n {n}");
        }
    }
}
