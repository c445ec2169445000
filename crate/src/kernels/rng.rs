//! Counter-based random numbers. Element `i` of a call's output is a pure function of the key
//! and `i` (SplitMix64 read at position `i`), so a stream never depends on buffer length or on
//! how the buffer is processed, and TypeScript reproduces it by replaying the key it advanced.

use crate::math;

/// Packs the key pair TypeScript passes (two u32 because wasm exports have no u64 it can
/// easily build) into one 64-bit key.
pub fn key(hi: u32, lo: u32) -> u64 {
    (hi as u64) << 32 | lo as u64
}

/// SplitMix64's increment, 2^64 / φ: consecutive counters land far apart before mixing.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's finaliser (Stafford's Mix13), a bijection with full avalanche.
#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One key's stream. The key is mixed once so that nearby keys (TypeScript advancing by 1, or
/// by GOLDEN) give unrelated streams instead of the same one shifted by a few positions.
#[derive(Clone, Copy)]
struct Stream(u64);

impl Stream {
    fn new(key: u64) -> Self {
        Stream(mix(key))
    }

    /// The 64 random bits of element `i`: the whole element → bits mapping of this module.
    #[inline(always)]
    fn at(self, i: usize) -> u64 {
        mix(self
            .0
            .wrapping_add((i as u64).wrapping_add(1).wrapping_mul(GOLDEN)))
    }
}

/// 2^-24: f32 uniforms use the top 24 bits, exactly representable in [0, 1).
const UNIT: f32 = 1.0 / (1u32 << 24) as f32;

/// The top 24 bits, the integer `m` behind the uniform `m * 2^-24`.
#[inline(always)]
fn top24(bits: u64) -> u32 {
    (bits >> 40) as u32
}

/// `out[t] = f(bits of element first + t)`; `first` lets tests check that filling a buffer in
/// pieces gives the same values as filling it at once.
#[inline(always)]
fn fill<T>(out: &mut [T], s: Stream, first: usize, f: impl Fn(u64) -> T) {
    for (t, o) in out.iter_mut().enumerate() {
        *o = f(s.at(first + t));
    }
}

/// The largest f32 below `x` (finite `x`), stable Rust lacking `f32::next_down` at 1.63.
fn next_down(x: f32) -> f32 {
    let b = x.to_bits();
    if x == 0.0 {
        -f32::from_bits(1)
    } else if x > 0.0 {
        f32::from_bits(b - 1)
    } else {
        f32::from_bits(b + 1)
    }
}

/// Uniform f32 in `[low, high)`; `low == high` gives `low`.
pub fn uniform_f32(out: &mut [f32], key: u64, first: usize, low: f32, high: f32) {
    uniform_from(out, Stream::new(key), first, low, high)
}

fn uniform_from(out: &mut [f32], s: Stream, first: usize, low: f32, high: f32) {
    debug_assert!(low <= high);
    // f64 keeps `high - low` finite for any finite bounds and rounds once, so the result stays
    // in [low, high]; rounding up onto `high` is then pulled to the float just below it.
    let (lo, span) = (low as f64, high as f64 - low as f64);
    let top = next_down(high).max(low);
    fill(out, s, first, |b| {
        let v = (lo + span * (top24(b) as f64 * UNIT as f64)) as f32;
        v.min(top)
    });
}

/// Normal f32 with mean `mean` and standard deviation `std`.
pub fn normal_f32(out: &mut [f32], key: u64, first: usize, mean: f32, std: f32) {
    normal_from(out, Stream::new(key), first, mean, std)
}

/// Box–Muller on the draws of counters `2j` and `2j + 1`, giving elements `2j` (cosine) and
/// `2j + 1` (sine), so an element's value depends only on its own pair.
#[inline(always)]
fn normal_pair(s: Stream, j: usize) -> (f32, f32) {
    box_muller(s.at(2 * j), s.at(2 * j + 1))
}

/// Two standard normals from two draws' top 24 bits.
#[inline(always)]
fn box_muller(b1: u64, b2: u64) -> (f32, f32) {
    // u1 in (0, 1] keeps log away from 0; max(0) guards an approximate log(1) above 0.
    let u1 = (top24(b1) + 1) as f32 * UNIT;
    let u2 = top24(b2) as f32 * UNIT;
    let r = (-2.0 * math::log(u1)).max(0.0).sqrt();
    let (sin, cos) = (core::f32::consts::TAU * u2).sin_cos();
    (r * cos, r * sin)
}

fn normal_from(out: &mut [f32], s: Stream, first: usize, mean: f32, std: f32) {
    // An odd `first` starts on the sine half of a pair that began before `out`.
    let head = (first % 2).min(out.len());
    let (head_out, rest) = out.split_at_mut(head);
    if let Some(v) = head_out.first_mut() {
        *v = mean + std * normal_pair(s, first / 2).1;
    }
    let j0 = (first + head) / 2;
    for (j, pair) in rest.chunks_mut(2).enumerate() {
        let (z0, z1) = normal_pair(s, j0 + j);
        pair[0] = mean + std * z0;
        if let Some(v) = pair.get_mut(1) {
            *v = mean + std * z1;
        }
    }
}

/// Uniform integers in `[low, high)`, `high > low`.
pub fn randint_i32(out: &mut [i32], key: u64, first: usize, low: i32, high: i32) {
    randint_from(out, Stream::new(key), first, low, high)
}

/// `floor(bits * span / 2^64)` for `span < 2^32` (Lemire's multiply-shift on all 64 bits,
/// bias at most span / 2^64), from two 32×32 products so wasm needs no 128-bit multiply.
#[inline(always)]
fn scale_to(bits: u64, span: u64) -> u64 {
    let hi = (bits >> 32) * span;
    let lo = (bits & 0xffff_ffff) * span;
    (hi + (lo >> 32)) >> 32
}

fn randint_from(out: &mut [i32], s: Stream, first: usize, low: i32, high: i32) {
    debug_assert!(low < high);
    let span = (high as i64 - low as i64) as u64;
    fill(out, s, first, |b| {
        (low as i64 + scale_to(b, span) as i64) as i32
    });
}

/// Dropout mask: `out[i] = scale` with probability `keep`, else 0.
pub fn bernoulli_f32(out: &mut [f32], key: u64, first: usize, keep: f32, scale: f32) {
    bernoulli_from(out, Stream::new(key), first, keep, scale)
}

fn bernoulli_from(out: &mut [f32], s: Stream, first: usize, keep: f32, scale: f32) {
    let threshold = keep_threshold(keep);
    fill(out, s, first, |b| {
        if top24(b) < threshold {
            scale
        } else {
            0.0
        }
    });
}

/// `ceil(keep * 2^24)` in `[0, 2^24]`: for integer m, `m * 2^-24 < keep` ⇔ `m < threshold`, so
/// one integer compare per element keeps exactly where `uniform_f32(.., 0, 1)` is below `keep`.
fn keep_threshold(keep: f32) -> u32 {
    let full = (1u32 << 24) as f64;
    (keep as f64 * full).ceil().max(0.0).min(full) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const LENGTHS: [usize; 9] = [0, 1, 3, 4, 5, 15, 16, 17, 257];
    const N: usize = 100_000;

    fn uniform(n: usize, k: u64, low: f32, high: f32) -> Vec<f32> {
        let mut v = vec![f32::NAN; n];
        uniform_f32(&mut v, k, 0, low, high);
        v
    }
    fn normal(n: usize, k: u64, mean: f32, std: f32) -> Vec<f32> {
        let mut v = vec![f32::NAN; n];
        normal_f32(&mut v, k, 0, mean, std);
        v
    }
    fn randint(n: usize, k: u64, low: i32, high: i32) -> Vec<i32> {
        let mut v = vec![i32::MIN; n];
        randint_i32(&mut v, k, 0, low, high);
        v
    }
    fn bernoulli(n: usize, k: u64, keep: f32, scale: f32) -> Vec<f32> {
        let mut v = vec![f32::NAN; n];
        bernoulli_f32(&mut v, k, 0, keep, scale);
        v
    }

    /// Bit patterns of all four generators for one key and length, so one comparison covers them.
    fn all_streams(n: usize, k: u64) -> Vec<Vec<u32>> {
        let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
        vec![
            bits(uniform(n, k, -1.0, 2.0)),
            bits(normal(n, k, 0.5, 2.0)),
            randint(n, k, -5, 1000)
                .into_iter()
                .map(|v| v as u32)
                .collect(),
            bits(bernoulli(n, k, 0.4, 2.5)),
        ]
    }

    fn mean_var(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        (m, v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n)
    }

    fn as_f64(v: &[f32]) -> Vec<f64> {
        v.iter().map(|&x| x as f64).collect()
    }

    /// Pearson's statistic of observed counts against equal expected counts.
    fn chi_square(counts: &[usize]) -> f64 {
        let e = counts.iter().sum::<usize>() as f64 / counts.len() as f64;
        counts
            .iter()
            .map(|&c| (c as f64 - e) * (c as f64 - e) / e)
            .sum()
    }

    #[test]
    fn key_packs_hi_and_lo() {
        assert_eq!(key(0, 0), 0);
        assert_eq!(key(1, 2), (1 << 32) | 2);
        assert_eq!(key(u32::MAX, 0), 0xffff_ffff_0000_0000);
    }

    #[test]
    fn same_key_same_values() {
        for &n in &LENGTHS {
            assert_eq!(
                all_streams(n, key(7, 9)),
                all_streams(n, key(7, 9)),
                "n={n}"
            );
        }
    }

    #[test]
    fn different_keys_differ() {
        let keys = [
            key(0, 0),
            key(0, 1),
            key(1, 0),
            key(0, 2),
            GOLDEN,
            GOLDEN.wrapping_mul(2),
            u64::MAX,
        ];
        let streams: Vec<Vec<f32>> = keys.iter().map(|&k| uniform(257, k, 0.0, 1.0)).collect();
        for a in 0..keys.len() {
            for b in a + 1..keys.len() {
                let same = streams[a]
                    .iter()
                    .zip(&streams[b])
                    .filter(|(x, y)| x == y)
                    .count();
                assert!(
                    same <= 2,
                    "keys {:#x} {:#x}: {same} equal of 257",
                    keys[a],
                    keys[b]
                );
                // Not a shifted copy either (keys GOLDEN apart would be, without mixing the key).
                let shifted = streams[a][1..]
                    .iter()
                    .zip(&streams[b])
                    .filter(|(x, y)| x == y)
                    .count();
                let back = streams[b][1..]
                    .iter()
                    .zip(&streams[a])
                    .filter(|(x, y)| x == y)
                    .count();
                assert!(
                    shifted <= 2 && back <= 2,
                    "keys {:#x} {:#x} shifted",
                    keys[a],
                    keys[b]
                );
            }
        }
    }

    #[test]
    fn values_do_not_depend_on_length() {
        let long = all_streams(257, key(3, 4));
        for &n in &LENGTHS {
            let short = all_streams(n, key(3, 4));
            for (s, l) in short.iter().zip(&long) {
                assert_eq!(&s[..], &l[..n], "n={n}");
            }
        }
    }

    #[test]
    fn values_do_not_depend_on_splitting() {
        let s = Stream::new(key(5, 6));
        let (mut u, mut z, mut r, mut b) =
            (vec![0.0; 257], vec![0.0; 257], vec![0; 257], vec![0.0; 257]);
        uniform_from(&mut u, s, 0, -3.0, 3.0);
        normal_from(&mut z, s, 0, 1.0, 3.0);
        randint_from(&mut r, s, 0, 0, 77);
        bernoulli_from(&mut b, s, 0, 0.7, 1.5);
        for &cut in &LENGTHS {
            let (mut u2, mut z2, mut r2, mut b2) =
                (vec![0.0; 257], vec![0.0; 257], vec![0; 257], vec![0.0; 257]);
            for (lo, hi) in [(0, cut), (cut, 257)] {
                uniform_from(&mut u2[lo..hi], s, lo, -3.0, 3.0);
                normal_from(&mut z2[lo..hi], s, lo, 1.0, 3.0);
                randint_from(&mut r2[lo..hi], s, lo, 0, 77);
                bernoulli_from(&mut b2[lo..hi], s, lo, 0.7, 1.5);
            }
            assert_eq!((&u2, &z2, &r2, &b2), (&u, &z, &r, &b), "cut at {cut}");
        }
    }

    #[test]
    fn uniform_range_mean_variance_and_histogram() {
        let (low, high) = (-2.0f32, 3.0f32);
        let v = uniform(N, key(11, 12), low, high);
        assert!(v.iter().all(|&x| (low..high).contains(&x)));
        let (m, var) = mean_var(&as_f64(&v));
        // Standard errors: mean 5/sqrt(12 N) ≈ 0.0046, variance ≈ 0.0059; allow ~5σ.
        assert!((m - 0.5).abs() < 0.023, "mean {m}");
        assert!((var - 25.0 / 12.0).abs() < 0.03, "variance {var}");
        let mut counts = [0usize; 32];
        for &x in &v {
            counts[((x - low) / (high - low) * 32.0) as usize] += 1;
        }
        // 31 degrees of freedom: P(χ² > 70) ≈ 1e-4.
        assert!(
            chi_square(&counts) < 70.0,
            "chi-square {}",
            chi_square(&counts)
        );
    }

    #[test]
    fn uniform_never_returns_high() {
        assert_eq!(next_down(1.0), 1.0 - f32::EPSILON / 2.0);
        assert_eq!(next_down(0.0), -f32::from_bits(1));
        assert_eq!(next_down(-1.0), -1.0 - f32::EPSILON);
        // A one-ulp range: every draw above half a ulp would round onto `high`.
        for (low, high) in [
            (1.0f32, 1.0 + f32::EPSILON),
            (-1.0 - f32::EPSILON, -1.0),
            (-f32::from_bits(1), 0.0),
        ] {
            let v = uniform(4096, key(1, 1), low, high);
            assert!(v.iter().all(|&x| x == low), "[{low}, {high})");
        }
        // A range whose width overflows f32.
        let v = uniform(4096, key(1, 2), -f32::MAX, f32::MAX);
        assert!(v.iter().all(|&x| x.is_finite() && x < f32::MAX));
        assert!(v.iter().any(|&x| x < -1e38) && v.iter().any(|&x| x > 1e38));
        assert!(uniform(17, key(1, 3), 2.5, 2.5).iter().all(|&x| x == 2.5));
    }

    #[test]
    fn uniform_hits_both_ends_of_unit_interval() {
        let v = uniform(N, key(2, 2), 0.0, 1.0);
        let (min, max) = v
            .iter()
            .fold((1.0f32, 0.0f32), |(a, b), &x| (a.min(x), b.max(x)));
        assert!(
            (0.0..1e-3).contains(&min) && (0.999..1.0).contains(&max),
            "min {min} max {max}"
        );
        // Every value is a multiple of 2^-24.
        assert!(v.iter().all(|&x| (x * (1 << 24) as f32).fract() == 0.0));
    }

    #[test]
    fn normal_moments_and_tails() {
        let v = as_f64(&normal(N, key(21, 22), 0.0, 1.0));
        assert!(v.iter().all(|x| x.is_finite()));
        let (m, var) = mean_var(&v);
        let skew = v.iter().map(|x| (x - m).powi(3)).sum::<f64>() / N as f64 / var.powf(1.5);
        let kurt = v.iter().map(|x| (x - m).powi(4)).sum::<f64>() / N as f64 / (var * var);
        // Standard errors: mean 0.0032, std 0.0022, skewness 0.0077, kurtosis 0.0155.
        assert!(m.abs() < 0.016, "mean {m}");
        assert!((var.sqrt() - 1.0).abs() < 0.012, "std {}", var.sqrt());
        assert!(skew.abs() < 0.04, "skewness {skew}");
        assert!((kurt - 3.0).abs() < 0.08, "kurtosis {kurt}");
        // P(|z| > 2) = 0.0455 (se 0.00066), P(|z| > 3) = 0.0027 (se 0.00016).
        let tail = |t: f64| v.iter().filter(|x| x.abs() > t).count() as f64 / N as f64;
        assert!((tail(2.0) - 0.0455).abs() < 0.0035, "tail 2: {}", tail(2.0));
        assert!((tail(3.0) - 0.0027).abs() < 0.0009, "tail 3: {}", tail(3.0));
        assert!(
            tail(6.0) == 0.0,
            "24-bit Box–Muller cannot exceed sqrt(2 ln 2^24) ≈ 5.77"
        );
        // The two halves of each Box–Muller pair are uncorrelated.
        let corr = v.chunks_exact(2).map(|p| p[0] * p[1]).sum::<f64>() / (N / 2) as f64;
        assert!(corr.abs() < 0.025, "pair correlation {corr}");
    }

    #[test]
    fn normal_mean_and_std_are_applied() {
        let z = normal(N, key(23, 24), 0.0, 1.0);
        let v = normal(N, key(23, 24), 5.0, 2.0);
        assert!(z
            .iter()
            .zip(&v)
            .all(|(&a, &b)| (5.0 + 2.0 * a - b).abs() < 1e-5));
        let (m, var) = mean_var(&as_f64(&v));
        assert!(
            (m - 5.0).abs() < 0.03 && (var.sqrt() - 2.0).abs() < 0.025,
            "mean {m} var {var}"
        );
    }

    #[test]
    fn randint_covers_range_evenly() {
        let (low, high) = (-3, 7);
        let v = randint(N, key(31, 32), low, high);
        let mut counts = [0usize; 10];
        for &x in &v {
            assert!((low..high).contains(&x), "{x}");
            counts[(x - low) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 0));
        // 9 degrees of freedom: P(χ² > 33) ≈ 1e-4.
        assert!(chi_square(&counts) < 33.0, "counts {counts:?}");
    }

    #[test]
    fn randint_extreme_ranges() {
        assert!(randint(257, key(1, 5), 4, 5).iter().all(|&x| x == 4));
        let v = randint(N, key(1, 6), i32::MIN, i32::MAX);
        assert!(v.iter().all(|&x| x < i32::MAX));
        let below_zero = v.iter().filter(|&&x| x < 0).count() as f64 / N as f64;
        assert!((below_zero - 0.5).abs() < 0.008, "{below_zero}");
        let v = randint(1000, key(1, 7), -1, 1);
        assert!(v.contains(&-1) && v.contains(&0) && v.iter().all(|&x| x == -1 || x == 0));
    }

    #[test]
    fn randint_large_span_is_unbiased() {
        // span = 3·2^30: a 32-bit draw times span would give residue 0 mod 3 half the draws.
        let (low, high) = (i32::MIN, 1 << 30);
        let v = randint(N, key(1, 8), low, high);
        let mut counts = [0usize; 3];
        for &x in &v {
            counts[((x as i64 - low as i64) % 3) as usize] += 1;
        }
        assert!(chi_square(&counts) < 20.0, "residues {counts:?}");
    }

    #[test]
    fn scale_to_is_exact_multiply_shift() {
        for &(b, s) in &[
            (u64::MAX, u32::MAX as u64),
            (0, 5),
            (1 << 63, 10),
            (0x1234_5678_9abc_def0, 1000),
            (u64::MAX, 1),
        ] {
            assert_eq!(
                scale_to(b, s),
                ((b as u128 * s as u128) >> 64) as u64,
                "{b:#x} {s}"
            );
        }
    }

    #[test]
    fn bernoulli_keep_fraction_and_values() {
        for &keep in &[0.1f32, 0.3, 0.5, 0.9] {
            let scale = 1.0 / keep;
            let v = bernoulli(N, key(41, 42), keep, scale);
            assert!(v.iter().all(|&x| x == 0.0 || x == scale));
            let kept = v.iter().filter(|&&x| x == scale).count() as f64 / N as f64;
            let se = (keep as f64 * (1.0 - keep as f64) / N as f64).sqrt();
            assert!((kept - keep as f64).abs() < 5.0 * se, "keep {keep}: {kept}");
        }
        assert!(bernoulli(257, key(1, 1), 0.0, 2.0)
            .iter()
            .all(|&x| x == 0.0));
        assert!(bernoulli(257, key(1, 1), 1.0, 2.0)
            .iter()
            .all(|&x| x == 2.0));
    }

    #[test]
    fn box_muller_extreme_draws_stay_finite() {
        // The smallest u1 (top bits 0) would be log(0) without the +1; the largest gives r = 0.
        let (a, b) = box_muller(0, 0);
        let r_max = (2.0 * 24.0 * core::f64::consts::LN_2).sqrt() as f32;
        assert!((a - r_max).abs() < 1e-3 && b.abs() < 1e-3, "{a} {b}");
        assert_eq!(box_muller(u64::MAX, 1 << 40), (0.0, 0.0));
        // u2 = 1/4 turns the pair a quarter circle: all the radius goes to the sine half.
        let (c, s) = box_muller(0, 1 << 62);
        assert!(c.abs() < 1e-3 && (s - r_max).abs() < 1e-3, "{c} {s}");
    }

    #[test]
    fn keep_threshold_splits_at_keep() {
        for &keep in &[
            0.0f32,
            1e-9,
            0.1,
            0.25,
            1.0 / 3.0,
            0.5,
            0.9,
            1.0 - 1e-7,
            1.0,
        ] {
            let t = keep_threshold(keep);
            // m = t - 1 is kept, m = t is dropped (when they exist in [0, 2^24)).
            assert!(
                t == 0 || ((t - 1) as f32 * UNIT) < keep,
                "keep {keep}: t {t}"
            );
            assert!(
                t == 1 << 24 || (t as f32 * UNIT) >= keep,
                "keep {keep}: t {t}"
            );
        }
        assert_eq!(keep_threshold(-0.5), 0);
        assert_eq!(keep_threshold(2.0), 1 << 24);
    }

    #[test]
    fn bernoulli_agrees_with_uniform() {
        let u = uniform(4096, key(9, 9), 0.0, 1.0);
        for &keep in &[0.25f32, 1.0 / 3.0, 0.7] {
            let b = bernoulli(4096, key(9, 9), keep, 1.0);
            assert!(
                u.iter().zip(&b).all(|(&x, &m)| (x < keep) == (m == 1.0)),
                "keep {keep}"
            );
        }
    }
}
