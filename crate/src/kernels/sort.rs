//! Sorting rows: `sort`, `argsort` and `topk` are one stable merge sort of each row's indices,
//! of which the first `k` are written out. Order is PyTorch's: NaN counts as larger than every
//! number (last when ascending, first when descending) and equal keys keep their input order.

/// `a` strictly before `b` in ascending order, with NaN above +inf.
#[inline(always)]
fn less(a: f32, b: f32) -> bool {
    !a.is_nan() && (b.is_nan() || a < b)
}

/// Merges the sorted runs `src[lo..mid]` and `src[mid..hi]` into `dst[lo..hi]`, taking from the
/// left run on ties (what makes the sort stable).
fn merge(key: &[f32], src: &[u32], dst: &mut [u32], lo: usize, mid: usize, hi: usize, desc: bool) {
    let (mut i, mut j) = (lo, mid);
    for slot in dst[lo..hi].iter_mut() {
        let take_right = j < hi && {
            if i >= mid {
                true
            } else {
                let (l, r) = (key[src[i] as usize], key[src[j] as usize]);
                if desc {
                    less(l, r)
                } else {
                    less(r, l)
                }
            }
        };
        if take_right {
            *slot = src[j];
            j += 1;
        } else {
            *slot = src[i];
            i += 1;
        }
    }
}

/// Sorts the rows `begin..end` of `x` (rows of `n` floats) and writes each row's first `k`
/// sorted values to `vals` and their positions in the row to `idx` (both rows of `k`).
/// `scratch` holds `2 * n` words; rows are independent, so a pool can split `begin..end`.
#[allow(clippy::too_many_arguments)]
pub fn sort_rows_f32(
    x: &[f32],
    vals: &mut [f32],
    idx: &mut [i32],
    scratch: &mut [u32],
    n: usize,
    k: usize,
    desc: bool,
    begin: usize,
    end: usize,
) {
    debug_assert!(k <= n && scratch.len() >= 2 * n);
    debug_assert!(x.len() >= end * n && vals.len() >= end * k && idx.len() >= end * k);
    let (a, b) = scratch[..2 * n].split_at_mut(n);
    for r in begin..end {
        let key = &x[r * n..(r + 1) * n];
        for (t, v) in a.iter_mut().enumerate() {
            *v = t as u32;
        }
        // Bottom-up: runs of `width` in one buffer merge into runs of `2 * width` in the other.
        let mut in_a = true;
        let mut width = 1;
        while width < n {
            let (src, dst) = if in_a { (&*a, &mut *b) } else { (&*b, &mut *a) };
            let mut lo = 0;
            while lo < n {
                let mid = (lo + width).min(n);
                let hi = (lo + 2 * width).min(n);
                merge(key, src, dst, lo, mid, hi, desc);
                lo = hi;
            }
            in_a = !in_a;
            width *= 2;
        }
        let order = if in_a { &*a } else { &*b };
        for t in 0..k {
            let p = order[t] as usize;
            vals[r * k + t] = key[p];
            idx[r * k + t] = p as i32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random;

    /// The reference: std's stable sort on (key, position) with the same NaN rule.
    fn reference(row: &[f32], desc: bool) -> Vec<usize> {
        let mut p: Vec<usize> = (0..row.len()).collect();
        p.sort_by(|&i, &j| {
            let (a, b) = if desc {
                (row[j], row[i])
            } else {
                (row[i], row[j])
            };
            if less(a, b) {
                core::cmp::Ordering::Less
            } else if less(b, a) {
                core::cmp::Ordering::Greater
            } else {
                core::cmp::Ordering::Equal
            }
        });
        p
    }

    fn check(x: &[f32], rows: usize, n: usize, k: usize, desc: bool) {
        let mut vals = vec![0.0; rows * k];
        let mut idx = vec![0; rows * k];
        let mut scratch = vec![0; 2 * n];
        sort_rows_f32(x, &mut vals, &mut idx, &mut scratch, n, k, desc, 0, rows);
        for r in 0..rows {
            let row = &x[r * n..(r + 1) * n];
            let want = reference(row, desc);
            for t in 0..k {
                assert_eq!(
                    idx[r * k + t] as usize,
                    want[t],
                    "n {n} k {k} desc {desc} row {r}"
                );
                assert_eq!(vals[r * k + t].to_bits(), row[want[t]].to_bits());
            }
        }
    }

    #[test]
    fn matches_stable_reference_at_simd_lengths() {
        for &n in &[0usize, 1, 3, 4, 5, 15, 16, 17, 257] {
            let x = random(3 * n, n as u32 + 1, -2.0, 2.0);
            for desc in [false, true] {
                check(&x, 3, n, n, desc);
                check(&x, 3, n, n / 2, desc);
            }
        }
    }

    #[test]
    fn ties_keep_input_order_and_nan_is_largest() {
        // Many ties: values from {-1, 0, 1, NaN, inf}.
        let pool = [-1.0, 0.0, 1.0, f32::NAN, f32::INFINITY, -0.0];
        let x: Vec<f32> = random(2 * 37, 9, 0.0, 6.0)
            .iter()
            .map(|&v| pool[v as usize])
            .collect();
        for desc in [false, true] {
            check(&x, 2, 37, 37, desc);
        }
        let mut vals = [0.0; 4];
        let mut idx = [0; 4];
        let mut s = [0; 8];
        sort_rows_f32(
            &[2.0, f32::NAN, -1.0, 2.0],
            &mut vals,
            &mut idx,
            &mut s,
            4,
            4,
            false,
            0,
            1,
        );
        assert_eq!(idx, [2, 0, 3, 1]);
        sort_rows_f32(
            &[2.0, f32::NAN, -1.0, 2.0],
            &mut vals,
            &mut idx,
            &mut s,
            4,
            4,
            true,
            0,
            1,
        );
        assert_eq!(idx, [1, 0, 3, 2]);
    }

    #[test]
    fn work_range_touches_only_its_rows() {
        let x = random(4 * 5, 3, -1.0, 1.0);
        let mut whole = (vec![0.0; 20], vec![0; 20]);
        let mut parts = (vec![7.0; 20], vec![-1; 20]);
        let mut s = vec![0; 10];
        sort_rows_f32(&x, &mut whole.0, &mut whole.1, &mut s, 5, 5, false, 0, 4);
        sort_rows_f32(&x, &mut parts.0, &mut parts.1, &mut s, 5, 5, false, 1, 3);
        assert_eq!(parts.1[..5], [-1; 5]);
        assert_eq!(parts.1[15..], [-1; 5]);
        sort_rows_f32(&x, &mut parts.0, &mut parts.1, &mut s, 5, 5, false, 0, 1);
        sort_rows_f32(&x, &mut parts.0, &mut parts.1, &mut s, 5, 5, false, 3, 4);
        assert_eq!(parts, whole);
    }
}
