//! Sampling from uniforms the caller drew with `rng::uniform_f32`: categorical draws with
//! replacement (`multinomial`) and a Fisher–Yates shuffle (`randperm`). Keeping the random
//! bits outside makes these kernels deterministic functions of their inputs.

/// Multinomial draws with replacement for rows `begin..end`: `probs` is `[rows, cats]`
/// (non-negative, each row with a positive finite sum; TypeScript checks), `u` is `[rows,
/// samples]` uniforms in `[0, 1)`, `out` is `[rows, samples]` category indices. `cdf` is `cats`
/// f64 of scratch. Category `c` is drawn when `cdf[c-1] <= u * total < cdf[c]`, so a zero
/// probability is never drawn.
#[allow(clippy::too_many_arguments)]
pub fn multinomial_f32(
    probs: &[f32],
    u: &[f32],
    out: &mut [i32],
    cdf: &mut [f64],
    cats: usize,
    samples: usize,
    begin: usize,
    end: usize,
) {
    debug_assert!(cdf.len() >= cats && probs.len() >= end * cats && out.len() >= end * samples);
    let cdf = &mut cdf[..cats];
    for r in begin..end {
        let mut acc = 0.0f64;
        for (c, &p) in cdf.iter_mut().zip(&probs[r * cats..(r + 1) * cats]) {
            acc += p as f64;
            *c = acc;
        }
        for s in 0..samples {
            let target = u[r * samples + s] as f64 * acc;
            // First category whose cumulative sum exceeds the target.
            let k = cdf.partition_point(|&c| c <= target).min(cats - 1);
            out[r * samples + s] = k as i32;
        }
    }
}

/// A uniformly random permutation of `0..n` into `out`, by Fisher–Yates from the back: step
/// `i` swaps `out[i]` with `out[floor(u[i] * (i + 1))]`. `u` holds `n` uniforms in `[0, 1)`.
pub fn shuffle_i32(u: &[f32], out: &mut [i32]) {
    debug_assert!(u.len() >= out.len());
    for (i, o) in out.iter_mut().enumerate() {
        *o = i as i32;
    }
    for i in (1..out.len()).rev() {
        let j = ((u[i] as f64 * (i + 1) as f64) as usize).min(i);
        out.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random;

    #[test]
    fn multinomial_follows_the_cumulative_sums() {
        // Row 0: categories 0 and 2 impossible; u hits the boundaries of the cdf exactly.
        let probs = [0.0, 1.0, 0.0, 3.0, 2.0, 2.0, 0.0, 0.0];
        let u = [0.0, 0.24, 0.25, 0.999, 0.0, 0.49, 0.5, 0.75];
        let mut out = [0; 8];
        let mut cdf = [0.0; 4];
        multinomial_f32(&probs, &u, &mut out, &mut cdf, 4, 4, 0, 2);
        assert_eq!(out, [1, 1, 3, 3, 0, 0, 1, 1]);
    }

    #[test]
    fn multinomial_frequencies_match_probabilities() {
        for &cats in &[1usize, 3, 4, 5, 15, 16, 17, 257] {
            let probs = random(cats, cats as u32, 0.1, 1.0);
            let total: f64 = probs.iter().map(|&p| p as f64).sum();
            let n = 20_000;
            let u = random(n, 7, 0.0, 1.0);
            let mut out = vec![0; n];
            let mut cdf = vec![0.0; cats];
            multinomial_f32(&probs, &u, &mut out, &mut cdf, cats, n, 0, 1);
            let mut counts = vec![0usize; cats];
            out.iter().for_each(|&k| counts[k as usize] += 1);
            for (c, &p) in probs.iter().enumerate() {
                let want = n as f64 * p as f64 / total;
                let sd = want.sqrt();
                assert!(
                    (counts[c] as f64 - want).abs() < 5.0 * sd + 1.0,
                    "cats {cats} c {c}"
                );
            }
        }
    }

    #[test]
    fn shuffle_is_a_permutation() {
        for &n in &[0usize, 1, 3, 4, 5, 15, 16, 17, 257] {
            let u = random(n, n as u32 + 3, 0.0, 1.0);
            let mut out = vec![0; n];
            shuffle_i32(&u, &mut out);
            let mut sorted = out.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n as i32).collect::<Vec<_>>());
        }
    }
}
