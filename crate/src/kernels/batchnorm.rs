//! Batch normalisation over `x` viewed as `[n, c, s]` (channels in the middle, `s` the
//! spatial size), forward and backward, one channel at a time. Channels are independent, so
//! both take a work range over them. Statistics are summed per contiguous run in f32 vectors
//! and across runs in f64, so a channel of a large batch keeps its precision.

use super::conv::sum;
use crate::simd::F32x4;

/// Σ over the `n` runs of channel `ch` of `f(run)`, in f64.
#[inline(always)]
fn over_runs(n: usize, c: usize, s: usize, ch: usize, mut f: impl FnMut(usize) -> f32) -> f64 {
    (0..n).map(|i| f((i * c + ch) * s) as f64).sum()
}

/// Σ (a - m) · b over equal-length slices (a contiguous run, centred).
fn centred_dot(a: &[f32], m: f32, b: &[f32]) -> f32 {
    let mv = F32x4::splat(m);
    let mut acc = [F32x4::splat(0.0); 2];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(&x, &y)| (x - m) * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for (r, (xs, ys)) in acc.iter_mut().zip(x.chunks_exact(4).zip(y.chunks_exact(4))) {
            *r = r.add(F32x4::load(xs).sub(mv).mul(F32x4::load(ys)));
        }
    }
    let s = acc[0].add(acc[1]).to_array();
    (s[0] + s[1]) + (s[2] + s[3]) + tail
}

/// Σ (a - m)² over a contiguous run (the two-pass variance's second pass).
fn centred_sq(a: &[f32], m: f32) -> f32 {
    let mv = F32x4::splat(m);
    let mut acc = [F32x4::splat(0.0); 2];
    let a8 = a.chunks_exact(8);
    let tail: f32 = a8.remainder().iter().map(|&x| (x - m) * (x - m)).sum();
    for x in a8 {
        for (r, xs) in acc.iter_mut().zip(x.chunks_exact(4)) {
            let d = F32x4::load(xs).sub(mv);
            *r = r.add(d.mul(d));
        }
    }
    let s = acc[0].add(acc[1]).to_array();
    (s[0] + s[1]) + (s[2] + s[3]) + tail
}

/// Forward for channels `begin..end`. With `batch_stats`, writes each channel's mean and
/// biased variance into `mean` and `var`; otherwise reads them (the running statistics).
/// Writes `invstd = 1 / sqrt(var + eps)` and `y = (x - mean) · invstd · weight + bias`
/// (`weight`/`bias` empty for none), the composition's order of operations.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_f32(
    x: &[f32],
    y: &mut [f32],
    mean: &mut [f32],
    var: &mut [f32],
    invstd: &mut [f32],
    weight: &[f32],
    bias: &[f32],
    dims: [usize; 3],
    eps: f32,
    batch_stats: bool,
    begin: usize,
    end: usize,
) {
    let [n, c, s] = dims;
    for ch in begin..end {
        if batch_stats {
            let count = (n * s) as f64;
            let m = (over_runs(n, c, s, ch, |at| sum(&x[at..at + s])) / count) as f32;
            let v = over_runs(n, c, s, ch, |at| centred_sq(&x[at..at + s], m)) / count;
            mean[ch] = m;
            var[ch] = v as f32;
        }
        let is = 1.0 / (var[ch] + eps).sqrt();
        invstd[ch] = is;
        let m = mean[ch];
        let w = weight.get(ch).copied();
        let b = bias.get(ch).copied();
        let (mv, iv) = (F32x4::splat(m), F32x4::splat(is));
        let (wv, bv) = (
            F32x4::splat(w.unwrap_or(1.0)),
            F32x4::splat(b.unwrap_or(0.0)),
        );
        for i in 0..n {
            let at = (i * c + ch) * s;
            let (src, dst) = (&x[at..at + s], &mut y[at..at + s]);
            let mut d4 = dst.chunks_exact_mut(4);
            let mut s4 = src.chunks_exact(4);
            for (d, e) in (&mut d4).zip(&mut s4) {
                let mut v = F32x4::load(e).sub(mv).mul(iv);
                if w.is_some() {
                    v = v.mul(wv);
                }
                if b.is_some() {
                    v = v.add(bv);
                }
                v.store(d);
            }
            for (d, &e) in d4.into_remainder().iter_mut().zip(s4.remainder()) {
                let mut v = (e - m) * is;
                if let Some(w) = w {
                    v *= w;
                }
                if let Some(b) = b {
                    v += b;
                }
                *d = v;
            }
        }
    }
}

/// Backward for channels `begin..end` from `dy`, `x` and the forward's `mean` and `invstd`:
/// `dbias = Σ dy`, `dweight = Σ dy · x̂` (x̂ = (x - mean) · invstd), and `dx` (empty slices
/// for gradients not needed). With `batch_stats` the statistics depend on x:
/// `dx = invstd · w · (dy - Σdy / M - x̂ · Σ(dy · x̂) / M)`, `M = n · s`; otherwise
/// `dx = dy · invstd · w`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_bwd_f32(
    dy: &[f32],
    x: &[f32],
    mean: &[f32],
    invstd: &[f32],
    weight: &[f32],
    dx: &mut [f32],
    dweight: &mut [f32],
    dbias: &mut [f32],
    dims: [usize; 3],
    batch_stats: bool,
    begin: usize,
    end: usize,
) {
    let [n, c, s] = dims;
    for ch in begin..end {
        let (m, is) = (mean[ch], invstd[ch]);
        let sum_dy = over_runs(n, c, s, ch, |at| sum(&dy[at..at + s]));
        let dot = over_runs(n, c, s, ch, |at| {
            centred_dot(&x[at..at + s], m, &dy[at..at + s])
        }) * is as f64;
        if let Some(d) = dbias.get_mut(ch) {
            *d = sum_dy as f32;
        }
        if let Some(d) = dweight.get_mut(ch) {
            *d = dot as f32;
        }
        if dx.is_empty() {
            continue;
        }
        let k = is * weight.get(ch).copied().unwrap_or(1.0);
        let count = (n * s) as f64;
        // dx = k · dy - k · mean(dy) - (x - m) · (k · is · mean(dy · x̂)).
        let (a, b) = if batch_stats {
            ((sum_dy / count) as f32 * k, (dot / count) as f32 * k * is)
        } else {
            (0.0, 0.0)
        };
        let (kv, av, bv, mv) = (
            F32x4::splat(k),
            F32x4::splat(a),
            F32x4::splat(b),
            F32x4::splat(m),
        );
        for i in 0..n {
            let at = (i * c + ch) * s;
            let (g, xs, d) = (&dy[at..at + s], &x[at..at + s], &mut dx[at..at + s]);
            let mut d4 = d.chunks_exact_mut(4);
            let (mut g4, mut x4) = (g.chunks_exact(4), xs.chunks_exact(4));
            for ((o, gv), xv) in (&mut d4).zip(&mut g4).zip(&mut x4) {
                let centred = F32x4::load(xv).sub(mv);
                let v = F32x4::load(gv).mul(kv).sub(av).sub(centred.mul(bv));
                v.store(o);
            }
            let rest = d4.into_remainder().iter_mut();
            for ((o, &gv), &xv) in rest.zip(g4.remainder()).zip(x4.remainder()) {
                *o = gv * k - a - (xv - m) * b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random;

    /// Forward statistics and both directions against f64 definitions, at spatial sizes that
    /// exercise the vector tails.
    #[test]
    fn matches_definition() {
        for &(n, c, s) in &[
            (2usize, 3usize, 1usize),
            (3, 2, 5),
            (2, 4, 16),
            (4, 1, 17),
            (2, 2, 257),
        ] {
            let len = n * c * s;
            let x = random(len, (n + 7 * c + 13 * s) as u32, -2.0, 3.0);
            let dy = random(len, 5, -1.0, 1.0);
            let w = random(c, 6, 0.5, 1.5);
            let b = random(c, 7, -1.0, 1.0);
            for &batch in &[true, false] {
                let (mut mean, mut var) = (random(c, 8, -0.5, 0.5), random(c, 9, 0.5, 2.0));
                let (m0, v0) = (mean.clone(), var.clone());
                let mut invstd = vec![0.0; c];
                let mut y = vec![f32::NAN; len];
                let dims = [n, c, s];
                batch_norm_f32(
                    &x,
                    &mut y,
                    &mut mean,
                    &mut var,
                    &mut invstd,
                    &w,
                    &b,
                    dims,
                    1e-5,
                    batch,
                    0,
                    c,
                );
                let (mut dx, mut dw, mut db) = (vec![f32::NAN; len], vec![0.0; c], vec![0.0; c]);
                batch_norm_bwd_f32(
                    &dy, &x, &mean, &invstd, &w, &mut dx, &mut dw, &mut db, dims, batch, 0, c,
                );
                for ch in 0..c {
                    let at = |i: usize, j: usize| (i * c + ch) * s + j;
                    let vals: Vec<f64> = (0..n)
                        .flat_map(|i| (0..s).map(move |j| (i, j)))
                        .map(|(i, j)| x[at(i, j)] as f64)
                        .collect();
                    let cnt = vals.len() as f64;
                    let (rm, rv) = if batch {
                        let mu = vals.iter().sum::<f64>() / cnt;
                        (
                            mu,
                            vals.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / cnt,
                        )
                    } else {
                        (m0[ch] as f64, v0[ch] as f64)
                    };
                    assert!(
                        (mean[ch] as f64 - rm).abs() < 1e-5 && (var[ch] as f64 - rv).abs() < 1e-5
                    );
                    let is = 1.0 / (rv + 1e-5).sqrt();
                    let (mut sdy, mut sdx) = (0.0, 0.0);
                    for i in 0..n {
                        for j in 0..s {
                            let xh = (x[at(i, j)] as f64 - rm) * is;
                            let want = xh * w[ch] as f64 + b[ch] as f64;
                            assert!((y[at(i, j)] as f64 - want).abs() < 1e-5, "y");
                            sdy += dy[at(i, j)] as f64;
                            sdx += dy[at(i, j)] as f64 * xh;
                        }
                    }
                    assert!(
                        (db[ch] as f64 - sdy).abs() < 1e-4 && (dw[ch] as f64 - sdx).abs() < 1e-4
                    );
                    for i in 0..n {
                        for j in 0..s {
                            let xh = (x[at(i, j)] as f64 - rm) * is;
                            let g = dy[at(i, j)] as f64;
                            let want = if batch {
                                w[ch] as f64 * is * (g - sdy / cnt - xh * sdx / cnt)
                            } else {
                                w[ch] as f64 * is * g
                            };
                            assert!(
                                (dx[at(i, j)] as f64 - want).abs() < 1e-4,
                                "dx {n} {c} {s} {batch}"
                            );
                        }
                    }
                }
            }
        }
    }
}
