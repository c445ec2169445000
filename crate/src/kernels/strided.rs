//! Walking an N-d index space over strided operands, shared by every broadcasting kernel.
//! The innermost dimension is handed to the caller as one row so it can run a tight
//! (often SIMD) loop; the outer dimensions advance like an odometer, without division.

/// The largest rank a strided kernel is given (`abi::MAX_DIMS`).
pub const MAX_DIMS: usize = 8;

/// Row-major strides of a contiguous array of `shape`.
pub fn contiguous_strides(shape: &[i32]) -> [i32; MAX_DIMS] {
    let mut s = [0i32; MAX_DIMS];
    let mut acc = 1i32;
    for d in (0..shape.len()).rev() {
        s[d] = acc;
        acc *= shape[d];
    }
    s
}

/// Calls `row(offsets, len, inner_strides)` once per innermost row of `shape`, where
/// `offsets[k]` is operand `k`'s element offset at the row start and `inner_strides[k]` its
/// stride along the row. Nothing is called for an empty shape.
pub fn for_each_row<const N: usize>(
    shape: &[i32],
    strides: [&[i32]; N],
    mut row: impl FnMut([usize; N], usize, [usize; N]),
) {
    let nd = shape.len();
    debug_assert!((1..=MAX_DIMS).contains(&nd));
    if shape.iter().any(|&s| s <= 0) {
        return;
    }
    let last = nd - 1;
    let len = shape[last] as usize;
    let mut inner = [0usize; N];
    for k in 0..N {
        debug_assert_eq!(strides[k].len(), nd);
        inner[k] = strides[k][last] as usize;
    }
    let mut idx = [0i32; MAX_DIMS];
    let mut off = [0usize; N];
    loop {
        row(off, len, inner);
        // Advance the odometer over dims [0, last).
        let mut d = last;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            for k in 0..N {
                off[k] += strides[k][d] as usize;
            }
            if idx[d] < shape[d] {
                break;
            }
            for k in 0..N {
                off[k] -= strides[k][d] as usize * shape[d] as usize;
            }
            idx[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_every_row_with_offsets() {
        let shape = [2, 3, 4];
        let a = contiguous_strides(&shape);
        let b = [0, 1, 0]; // broadcast over dims 0 and 2
        let mut seen = vec![];
        for_each_row(&shape, [&a[..3], &b], |off, len, inner| {
            seen.push((off, len, inner));
        });
        assert_eq!(seen.len(), 6);
        assert_eq!(seen[0], ([0, 0], 4, [1, 0]));
        assert_eq!(seen[1], ([4, 1], 4, [1, 0]));
        assert_eq!(seen[3], ([12, 0], 4, [1, 0]));
        assert_eq!(seen[5], ([20, 2], 4, [1, 0]));
    }

    #[test]
    fn empty_shape_visits_nothing() {
        let mut n = 0;
        for_each_row(&[3, 0], [&[0, 1]], |_, _, _| n += 1);
        assert_eq!(n, 0);
    }
}
