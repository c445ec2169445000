//! Transcendental functions on f32 lanes, shared by every kernel family.
//!
//! Each function is one branch-free vector routine (`exp4`, `log4`, ...); the scalar form runs
//! the same routine on a splatted vector, so a kernel's scalar tail gives bit-identical results
//! to its SIMD body. Accuracy, measured against f64 by the tests below: a few ulp at most.

use crate::simd::F32x4;

const LOG2E: f32 = core::f32::consts::LOG2_E;
/// ln 2 split as `LN2_HI + LN2_LO`; `LN2_HI` has 9 significant bits so `n * LN2_HI` is exact.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Inputs to the exponential core are clamped here: beyond, the result is inf or 0 anyway.
const EXP_MAX: f32 = 89.0;
const EXP_MIN: f32 = -104.0;
const SIGN_BIT: u32 = 0x8000_0000;
/// `1.5 * 2^23 + 2 * 127`: adding it to `|v| < 2^22` rounds `v` to an integer (ties to even,
/// the constant being even) that the sum holds in its low mantissa bits, plus two exponent biases.
const EXP_MAGIC: f32 = 12_583_166.0;
/// Keeps the top 12 significant bits, so products of two such values are exact.
const HIGH_12: u32 = 0xffff_f000;

#[inline(always)]
fn k(v: f32) -> F32x4 {
    F32x4::splat(v)
}

#[inline(always)]
fn lane0(v: F32x4) -> f32 {
    v.to_array()[0]
}

/// Horner's rule with the highest-degree coefficient first.
#[inline(always)]
fn poly(x: F32x4, c: &[f32]) -> F32x4 {
    let mut acc = k(c[0]);
    for &ci in &c[1..] {
        acc = acc.mul(x).add(k(ci));
    }
    acc
}

/// `c[0] x^5 + ... + c[5]` by Estrin's scheme, given `x2 = x²`: its dependent chain is half
/// as long as Horner's, which matters because V8 runs these loops latency-bound.
#[inline(always)]
fn estrin6(x: F32x4, x2: F32x4, c: &[f32; 6]) -> F32x4 {
    let pair = |i: usize| k(c[i]).mul(x).add(k(c[i + 1]));
    pair(0).mul(x2.mul(x2)).add(pair(2).mul(x2).add(pair(4)))
}

/// `c[0] x^8 + ... + c[8]` by Estrin's scheme, given `x2 = x²`.
#[inline(always)]
fn estrin9(x: F32x4, x2: F32x4, c: &[f32; 9]) -> F32x4 {
    let pair = |i: usize| k(c[i]).mul(x).add(k(c[i + 1]));
    let hi = pair(0).mul(x2).add(pair(2));
    let lo = pair(4).mul(x2).add(pair(6));
    hi.mul(x2.mul(x2)).add(lo).mul(x).add(k(c[8]))
}

/// `v` with its sign flipped where `s` is negative: `v` with the sign of `s` when `v >= 0`.
#[inline(always)]
fn flip_sign(v: F32x4, s: F32x4) -> F32x4 {
    v.xor(s.and(F32x4::splat_bits(SIGN_BIT)))
}

/// Splits `v` into a 12-bit head and the exact remainder (Dekker products without FMA).
#[inline(always)]
fn split(v: F32x4) -> (F32x4, F32x4) {
    let h = v.and(F32x4::splat_bits(HIGH_12));
    (h, v.sub(h))
}

/// `exp(hi + lo)` for a small correction `lo`; NaN in `hi` propagates.
///
/// Cephes `expf`: `n = round((hi + lo) / ln 2)`, `r = hi + lo - n ln 2` with ln 2 split so the
/// first subtraction is exact, a degree-6 polynomial for `exp(r)`, then `2^n` applied in two
/// halves so results down to the smallest subnormal and up to `f32::MAX` come out right.
///
/// Written for V8's x64 code, where this takes about half the instructions of the direct form:
/// the clamp compares bit patterns as integers (IEEE min/max cost seven instructions each), and
/// `n` is rounded by adding `1.5 * 2^23`, which leaves it as an integer in the low mantissa bits,
/// so the scale factors take integer ops instead of `nearest` and float-to-int conversions.
#[inline(always)]
fn exp_hl(hi: F32x4, lo: F32x4) -> F32x4 {
    let nan = hi.ne(hi);
    let hi = clamp_bits(hi, EXP_MIN, EXP_MAX);
    let t = hi.add(lo).mul(k(LOG2E)).add(k(EXP_MAGIC));
    let n = t.sub(k(EXP_MAGIC));
    let r = hi.sub(n.mul(k(LN2_HI))).add(lo).sub(n.mul(k(LN2_LO)));
    let c = [
        1.987_569_3e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_6e-1,
        0.5,
    ];
    let r2 = r.mul(r);
    let p = estrin6(r, r2, &c).mul(r2).add(r).add(k(1.0));
    // 2^n as 2^h * 2^(n - h) with h = floor(n / 2): both factors are normal for n in
    // [-150, 128] and `p * 2^h` is exact, so only the last product rounds. `t`'s bits are
    // `M + n + 254` with `M << 23 == 0` and `M` even, so halving and shifting them gives the
    // exponent fields `h + 127` and `n - h + 127` directly.
    let s0 = t.shr_i32(1);
    let s1 = t.sub_i32(s0).shl_i32(23);
    p.mul(s0.shl_i32(23)).mul(s1).max_u32(nan)
}

/// `x` clamped to `[lo, hi]` for `lo < 0 < hi`, by integer minima of the bit patterns; NaN
/// becomes one of the bounds (callers restore it with `max_u32` of a NaN mask).
#[inline(always)]
fn clamp_bits(x: F32x4, lo: f32, hi: f32) -> F32x4 {
    x.min_u32(F32x4::splat_bits(lo.to_bits()))
        .min_i32(F32x4::splat_bits(hi.to_bits()))
}

/// `-0.0` is the additive identity LLVM may fold away (`x + 0.0` turns -0 into +0, so it stays).
pub fn exp4(x: F32x4) -> F32x4 {
    exp_hl(x, k(-0.0))
}

pub fn exp(x: f32) -> f32 {
    lane0(exp4(k(x)))
}

/// Bits of the f32 just above `sqrt(1/2)`.
const SQRT_HALF_UP: u32 = 0x3f35_04f4;

/// Mantissa in `[sqrt(1/2), sqrt(2))` and exponent of positive finite lanes (subnormals too).
///
/// Subtracting `SQRT_HALF_UP` from the bits moves the binade boundary to `sqrt(2)`: the
/// difference's exponent field is `e`, and its mantissa field plus `SQRT_HALF_UP` is `m`, in four
/// integer ops (the float route needs a split, a compare and two selects).
#[inline(always)]
fn reduce_log(x: F32x4) -> (F32x4, F32x4) {
    let sub = x.lt(k(f32::MIN_POSITIVE));
    let x = x.mul(masked(sub, k(8_388_608.0)).max_u32(k(1.0)));
    let offset = F32x4::splat_bits(SQRT_HALF_UP);
    let ix = x.sub_i32(offset);
    let m = ix.and(F32x4::splat_bits(0x007f_ffff)).add_i32(offset);
    let e = ix.shr_i32(23).i32_to_f32().sub(masked(sub, k(23.0)));
    (m, e)
}

/// `mask ? v : +0` for a comparison mask, as one `min_u32` (LLVM 14 makes `and` with a mask a
/// three-instruction `bitselect`). `masked(m, v).max_u32(w)` is `m ? v : w` when `v`'s bits
/// are above `w`'s as u32, in two instructions.
#[inline(always)]
fn masked(mask: F32x4, v: F32x4) -> F32x4 {
    mask.min_u32(v)
}

/// Natural logarithm: Cephes `logf`, `ln(1 + f)` as `f - f²/2 + f³ P(f)` on the reduced
/// mantissa. `log(0) = -inf`, `log(x < 0) = NaN`, `log(inf) = inf`.
pub fn log4(x: F32x4) -> F32x4 {
    let (m, e) = reduce_log(x);
    let f = m.sub(k(1.0));
    let z = f.mul(f);
    let c = [
        7.037_683_6e-2,
        -1.151_461e-1,
        1.167_699_9e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_7e-1,
        2.000_071_4e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ];
    let y = estrin9(f, z, &c).mul(f).mul(z);
    let y = y.add(e.mul(k(LN2_LO))).sub(z.mul(k(0.5)));
    let r = f.add(y).add(e.mul(k(LN2_HI)));
    // At +inf the formula gives a positive finite r, below +inf as u32, and -inf's bits are
    // above every finite value's, so these u32 maxima set both special cases.
    let inf = k(f32::INFINITY);
    let r = r.max_u32(masked(x.eq(inf), inf));
    let r = r.max_u32(masked(x.eq(k(0.0)), k(f32::NEG_INFINITY)));
    F32x4::select(x.ge(k(0.0)), r, k(f32::NAN))
}

pub fn log(x: f32) -> f32 {
    lane0(log4(k(x)))
}

/// Hyperbolic tangent: Cephes' odd polynomial below 0.625, where `1 - 2/(e^2|x| + 1)` would
/// cancel, and that formula (saturating to ±1 through `exp` = inf) above.
pub fn tanh4(x: F32x4) -> F32x4 {
    let a = x.abs();
    let s = x.mul(x);
    let c = [
        -5.704_988_7e-3,
        2.063_909e-2,
        -5.373_971_5e-2,
        1.333_144_2e-1,
        -3.333_328e-1,
    ];
    let small = a.add(a.mul(s.mul(poly(s, &c))));
    let e = exp4(a.add(a));
    let large = k(1.0).sub(k(2.0).div(e.add(k(1.0))));
    flip_sign(F32x4::select(a.lt(k(0.625)), small, large), x)
}

pub fn tanh(x: f32) -> f32 {
    lane0(tanh4(k(x)))
}

/// Logistic function `1 / (1 + e^-x)`, computed from `e^-|x|` so neither tail overflows.
pub fn sigmoid4(x: F32x4) -> F32x4 {
    let e = exp4(x.abs().neg());
    let r = k(1.0).div(k(1.0).add(e));
    F32x4::select(x.lt(k(0.0)), e.mul(r), r)
}

pub fn sigmoid(x: f32) -> f32 {
    lane0(sigmoid4(k(x)))
}

/// Below this |x|, erf uses its Taylor-like odd polynomial; above, erfc's exponential form.
const ERF_SPLIT: f32 = 0.75;

/// `erf(x) / x - 1` as a polynomial in `x²`, minimax for relative error on `[0, 0.75]`.
#[inline(always)]
fn erf_small_q(x: F32x4) -> F32x4 {
    let c = [
        -6.761_252_3e-4,
        5.116_006e-3,
        -2.683_544_7e-2,
        1.128_339_3e-1,
        -3.761_262e-1,
        1.283_791_7e-1,
    ];
    let s = x.mul(x);
    estrin6(s, s.mul(s), &c)
}

/// `erfc(a + a_lo)` for `a >= 0.75` and a small correction `a_lo` (any `a` is safe: NaN
/// propagates, large `a` gives 0).
///
/// After N. Juffa: `(1 + 2a) e^(a²) erfc(a) - 1` is a smooth function of `q = (a - 2)/(a + 2)`,
/// fitted here by a degree-8 polynomial for relative error on `[0.75, 10.06]`. `e^(-a²)` takes
/// `a²` split exactly into head and tail, since its rounding error would be magnified by `a²`.
#[inline(always)]
fn erfc_tail(a: F32x4, a_lo: F32x4) -> F32x4 {
    let nan = a.ne(a);
    // `min_i32` orders non-negative floats in one instruction; NaN is restored at the end.
    let a = a.min_i32(k(10.1));
    let q = a.sub(k(2.0)).div(a.add(k(2.0)));
    let c = [
        -1.482_539_2e-3,
        1.075_926_7e-3,
        8.760_134e-3,
        -8.003_063_5e-3,
        -5.422_615_6e-2,
        1.640_493_4e-1,
        -1.660_301_1e-1,
        -9.276_379e-2,
        2.769_783_7e-1,
    ];
    let ratio = poly(q, &c).add(k(1.0)).div(a.add(a).add(k(1.0)));
    let (h, l) = split(a);
    let sq_lo = l.mul(a.add(h)).add(a.mul(a_lo).mul(k(2.0)));
    exp_hl(h.mul(h).neg(), sq_lo.neg()).mul(ratio).max_u32(nan)
}

/// `erfc(z + z_lo)` for any `z` and a small correction `z_lo`.
#[inline(always)]
fn erfc_hl(z: F32x4, z_lo: F32x4) -> F32x4 {
    let a = z.abs();
    // Near 0, first order in z_lo: erfc' = -2/sqrt(pi) e^(-z²) ~ -2/sqrt(pi) (1 - z²).
    let slope = k(1.0)
        .sub(z.mul(z))
        .mul(k(core::f32::consts::FRAC_2_SQRT_PI));
    let small = k(1.0)
        .sub(z)
        .sub(z.mul(erf_small_q(z)).add(z_lo.mul(slope)));
    let tail = erfc_tail(a, flip_sign(z_lo, z));
    let large = F32x4::select(z.lt(k(0.0)), k(2.0).sub(tail), tail);
    F32x4::select(a.lt(k(ERF_SPLIT)), small, large)
}

/// Error function; odd, and exactly ±1 beyond |x| ≈ 3.92.
pub fn erf4(x: F32x4) -> F32x4 {
    let a = x.abs();
    let small = x.add(x.mul(erf_small_q(x)));
    let large = flip_sign(k(1.0).sub(erfc_tail(a, k(0.0))), x);
    F32x4::select(a.lt(k(ERF_SPLIT)), small, large)
}

pub fn erf(x: f32) -> f32 {
    lane0(erf4(k(x)))
}

/// Complementary error function `1 - erf(x)`, accurate in relative terms for large positive
/// `x` too (down to the subnormal range), which `1 - erf(x)` is not.
pub fn erfc4(x: F32x4) -> F32x4 {
    erfc_hl(x, k(0.0))
}

pub fn erfc(x: f32) -> f32 {
    lane0(erfc4(k(x)))
}

/// `-1/sqrt(2)` as `hi + lo`.
const NEG_FRAC_1_SQRT_2_LO: f32 = -1.210_161_7e-8;

/// The standard normal CDF `Φ(x) = erfc(-x/sqrt(2)) / 2`, accurate in relative terms in the
/// left tail too (where `(1 + erf(x/sqrt(2)))/2` cancels). `-x/sqrt(2)` is carried in
/// double-f32: a rounded argument alone would cost `x²` ulps there.
pub fn normal_cdf4(x: F32x4) -> F32x4 {
    let (zh, zl) = mul_hl(
        x,
        k(-core::f32::consts::FRAC_1_SQRT_2),
        k(NEG_FRAC_1_SQRT_2_LO),
    );
    // Far out the correction may be inf - inf; the result is 0 or 1 there anyway.
    let zl = F32x4::select(zh.abs().lt(k(16.0)), zl, k(0.0));
    k(0.5).mul(erfc_hl(zh, zl))
}

pub fn normal_cdf(x: f32) -> f32 {
    lane0(normal_cdf4(k(x)))
}

/// The standard normal density `e^(-x²/2) / sqrt(2 pi)`, with `x²` split exactly.
pub fn normal_pdf4(x: F32x4) -> F32x4 {
    // Past 15 the density is 0 in f32; clamping keeps x² finite for the split.
    let nan = x.ne(x);
    let x = x.abs().min_i32(k(15.0));
    let (h, l) = split(x);
    let half = k(-0.5);
    let e = exp_hl(h.mul(h).mul(half), l.mul(x.add(h)).mul(half));
    e.mul(k(0.398_942_3)).max_u32(nan)
}

pub fn normal_pdf(x: f32) -> f32 {
    lane0(normal_pdf4(k(x)))
}

/// `ln(a)` as an unevaluated sum `hi + lo` good to about 2^-30 relative, for positive finite `a`.
///
/// `ln m = 2 atanh(s)`, `s = (m - 1)/(m + 1)`: the leading `2s` is formed in double-f32
/// (division with an exact residual), the rest `2s³/3 + ...` is small enough for plain f32.
#[inline(always)]
fn log_hl(a: F32x4) -> (F32x4, F32x4) {
    let (m, e) = reduce_log(a);
    let one = k(1.0);
    let f = m.sub(one);
    let d = m.add(one);
    let d_lo = m.sub(d.sub(one));
    let u = f.add(f);
    let inv = one.div(d);
    let q = u.mul(inv);
    let (qh, ql) = split(q);
    let (dh, dl) = split(d);
    let rho = u
        .sub(qh.mul(dh))
        .sub(qh.mul(dl))
        .sub(ql.mul(dh))
        .sub(ql.mul(dl));
    let corr = rho.sub(q.mul(d_lo)).mul(inv);
    let s = q.mul(k(0.5));
    let w = s.mul(s);
    let c = [2.0 / 11.0, 2.0 / 9.0, 2.0 / 7.0, 2.0 / 5.0, 2.0 / 3.0];
    let tail = poly(w, &c).mul(w).mul(s);
    // e*LN2_HI is exact; add q with an exact two-sum, then gather the small terms.
    let big = e.mul(k(LN2_HI));
    let hi = big.add(q);
    let bv = hi.sub(big);
    let err = big.sub(hi.sub(bv)).add(q.sub(bv));
    let lo = tail.add(corr).add(e.mul(k(LN2_LO))).add(err);
    let h2 = hi.add(lo);
    (h2, lo.sub(h2.sub(hi)))
}

/// `y * (hi + lo)` as `zh + zl`, with `y * hi` exact through 12-bit splits.
#[inline(always)]
fn mul_hl(y: F32x4, hi: F32x4, lo: F32x4) -> (F32x4, F32x4) {
    let p = y.mul(hi);
    let (yh, yl) = split(y);
    let (hh, hl) = split(hi);
    let err = yh
        .mul(hh)
        .sub(p)
        .add(yh.mul(hl))
        .add(yl.mul(hh))
        .add(yl.mul(hl));
    (p, err.add(y.mul(lo)))
}

/// `x ** y` with C99/IEEE `pow` semantics (as `std::pow`, which PyTorch uses): a negative base
/// needs an integer exponent (odd ones keep the sign), `pow(x, 0) = pow(1, y) = 1` even for
/// NaN, `pow(-1, ±inf) = 1`, and zeros and infinities give the signed limits.
///
/// `exp(y ln|x|)` with `ln|x|` and the product carried in double-f32, so the result stays
/// within a few ulp even where `y ln|x|` is near ±100.
pub fn pow4(x: F32x4, y: F32x4) -> F32x4 {
    let zero = k(0.0);
    let inf = k(f32::INFINITY);
    let a = x.abs();
    let (lh, ll) = log_hl(a);
    let (zh, zl) = mul_hl(y, lh, ll);
    // Past |z| = 256 the result is 0 or inf and zl may be NaN (inf - inf): drop it.
    let zl = F32x4::select(zh.abs().lt(k(256.0)), zl, zero);
    let mag = exp_hl(zh, zl);
    let (y_neg, y_pos) = (y.lt(zero), y.gt(zero));
    let at_zero = F32x4::select(y_neg, inf, F32x4::select(y_pos, zero, y));
    let at_inf = F32x4::select(y_neg, zero, F32x4::select(y_pos, inf, y));
    let mag = F32x4::select(a.eq(zero), at_zero, mag);
    let mag = F32x4::select(a.eq(inf), at_inf, mag);
    let y_int = y.eq(y.round());
    let half = y.mul(k(0.5));
    let y_odd = y_int.and(half.round().ne(half));
    let r = mag.xor(x.and(y_odd).and(F32x4::splat_bits(SIGN_BIT)));
    let neg_finite = x.lt(zero).and(x.gt(k(f32::NEG_INFINITY)));
    let r = F32x4::select(neg_finite, F32x4::select(y_int, r, k(f32::NAN)), r);
    let r = F32x4::select(x.ne(x), x, r);
    let one = k(1.0);
    let is_one = x.eq(one).or(y.eq(zero)).or(a.eq(one).and(y.abs().eq(inf)));
    F32x4::select(is_one, one, r)
}

pub fn pow(x: f32, y: f32) -> f32 {
    lane0(pow4(k(x), k(y)))
}

/// f64 references for tests of this module and of the kernels built on it.
#[cfg(test)]
pub(crate) mod reference {
    /// erf in f64, good to about 1e-15: Maclaurin series below 2.5, continued fraction above.
    pub fn erf64(x: f64) -> f64 {
        if x < 0.0 {
            return -erf64(-x);
        }
        if x < 2.5 {
            // Maclaurin series: erf x = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
            let mut sum = 0.0f64;
            let mut term = x;
            let mut n = 0.0;
            while term.abs() > 1e-17 * sum.abs().max(1e-300) {
                sum += term / (2.0 * n + 1.0);
                n += 1.0;
                term *= -x * x / n;
            }
            sum * 2.0 / core::f64::consts::PI.sqrt()
        } else {
            1.0 - erfc64(x)
        }
    }

    /// erfc for x >= 0: the Laplace continued fraction (evaluated bottom-up) above 2.5.
    pub fn erfc64(x: f64) -> f64 {
        if x < 2.5 {
            return 1.0 - erf64(x);
        }
        let mut f = 0.0;
        for n in (1..200).rev() {
            f = (n as f64 * 0.5) / (x + f);
        }
        (-x * x).exp() / core::f64::consts::PI.sqrt() / (x + f)
    }

    pub fn erfc64_signed(x: f64) -> f64 {
        if x < 0.0 {
            2.0 - erfc64(-x)
        } else {
            erfc64(x)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reference::{erf64, erfc64, erfc64_signed};
    use super::*;

    /// Relative error of `got` against the f64 reference, with an absolute floor `abs` (for
    /// zero crossings and subnormal results). Special values must match exactly.
    fn err(got: f32, want: f64, abs: f64) -> f64 {
        if want.is_nan() {
            return if got.is_nan() { 0.0 } else { f64::INFINITY };
        }
        let w32 = want as f32;
        if w32.is_infinite() || want == 0.0 {
            return if got == w32 { 0.0 } else { f64::INFINITY };
        }
        let d = (got as f64 - want).abs();
        if d <= abs {
            0.0
        } else {
            d / want.abs()
        }
    }

    /// Worst error of `f` over `xs`, checking the scalar and vector forms agree bit for bit.
    fn worst(
        xs: &[f32],
        f4: fn(F32x4) -> F32x4,
        f: fn(f32) -> f32,
        r: fn(f64) -> f64,
        abs: f64,
    ) -> (f64, f32) {
        let mut w = (0.0, 0.0);
        let mut sum = (0.0, 0usize);
        for c in xs.chunks(4) {
            let mut v = [c[0]; 4];
            v[..c.len()].copy_from_slice(c);
            let out = f4(F32x4::load(&v)).to_array();
            for (i, &x) in c.iter().enumerate() {
                let s = f(x);
                assert!(
                    s.to_bits() == out[i].to_bits() || (s.is_nan() && out[i].is_nan()),
                    "scalar {s} != lane {} at {x}",
                    out[i]
                );
                let e = err(s, r(x as f64), abs);
                if e.is_finite() {
                    sum = (sum.0 + e, sum.1 + 1);
                }
                if e > w.0 {
                    w = (e, x);
                }
            }
        }
        eprintln!(
            "max rel err {:.3e} at {}, mean {:.3e}",
            w.0,
            w.1,
            sum.0 / sum.1 as f64
        );
        w
    }

    /// Dense grid over `[lo, hi]` plus every special value.
    fn grid(lo: f32, hi: f32, n: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..=n)
            .map(|i| lo + (hi - lo) * (i as f32 / n as f32))
            .collect();
        v.extend_from_slice(&[
            0.0,
            -0.0,
            1e-30,
            -1e-30,
            1e-45,
            -1e-45,
            1e-38,
            f32::MIN_POSITIVE,
        ]);
        v.extend_from_slice(&[
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ]);
        v
    }

    /// Positive values spread log-uniformly over every binade, subnormals included.
    fn binades() -> Vec<f32> {
        let mut v = vec![];
        let mut b = 1u32;
        while b < 0x7f80_0000 {
            v.push(f32::from_bits(b));
            b = b + 1 + b / 97;
        }
        v
    }

    const TOL: f64 = 3.0e-7;

    #[test]
    fn reference_erf_is_sound() {
        assert!((erf64(0.5) - 0.520_499_877_813_046_5).abs() < 1e-15);
        assert!((erf64(2.0) - 0.995_322_265_018_952_7).abs() < 1e-15);
        assert!((erfc64(3.0) / 2.209_049_699_858_544e-5 - 1.0).abs() < 1e-13);
        assert!((erfc64(10.0) / 2.088_487_583_762_545e-45 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn exp_accuracy_and_specials() {
        let mut xs = grid(-104.0, 89.0, 200_000);
        xs.extend(grid(-1.0, 1.0, 20_000));
        let (e, at) = worst(&xs, exp4, exp, f64::exp, 1e-45);
        assert!(e < TOL, "exp rel err {e} at {at}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(88.8), f32::INFINITY);
        assert_eq!(exp(-104.0), 0.0);
        assert!(exp(88.72).is_finite() && exp(-103.0) > 0.0);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn log_accuracy_and_specials() {
        let mut xs = binades();
        xs.extend(grid(0.5, 2.0, 100_000));
        xs.extend(grid(-3.0, 3.0, 1000));
        let (e, at) = worst(&xs, log4, log, f64::ln, 0.0);
        assert!(e < TOL, "log rel err {e} at {at}");
        assert_eq!(log(1.0), 0.0);
        assert_eq!(log(0.0), f32::NEG_INFINITY);
        assert_eq!(log(-0.0), f32::NEG_INFINITY);
        assert_eq!(log(f32::INFINITY), f32::INFINITY);
        assert!(log(-1.0).is_nan() && log(f32::NEG_INFINITY).is_nan() && log(f32::NAN).is_nan());
        assert!((log(1e-45) as f64 - (1e-45f32 as f64).ln()).abs() < 1e-5);
    }

    #[test]
    fn tanh_accuracy_and_specials() {
        let mut xs = grid(-12.0, 12.0, 200_000);
        xs.extend(grid(-1.0, 1.0, 50_000));
        let (e, at) = worst(&xs, tanh4, tanh, f64::tanh, 0.0);
        assert!(e < TOL, "tanh rel err {e} at {at}");
        assert_eq!(tanh(1e-30), 1e-30);
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
        assert!(tanh(f32::NAN).is_nan());
    }

    #[test]
    fn sigmoid_accuracy_and_specials() {
        let xs = grid(-110.0, 110.0, 200_000);
        let (e, at) = worst(&xs, sigmoid4, sigmoid, |x| 1.0 / (1.0 + (-x).exp()), 1e-45);
        assert!(e < TOL, "sigmoid rel err {e} at {at}");
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert_eq!(sigmoid(f32::NEG_INFINITY), 0.0);
        assert!(sigmoid(-100.0) > 0.0 && sigmoid(f32::NAN).is_nan());
    }

    #[test]
    fn erf_accuracy_and_specials() {
        let mut xs = grid(-6.0, 6.0, 200_000);
        xs.extend(grid(-1.0, 1.0, 50_000));
        let (e, at) = worst(&xs, erf4, erf, erf64, 1e-44);
        assert!(e < TOL, "erf rel err {e} at {at}");
        assert_eq!(erf(1e-30), 1e-30 * core::f32::consts::FRAC_2_SQRT_PI);
        assert_eq!(erf(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(erf(4.0), 1.0);
        assert_eq!(erf(f32::NEG_INFINITY), -1.0);
        assert!(erf(f32::NAN).is_nan());
    }

    #[test]
    fn erfc_accuracy_and_specials() {
        let mut xs = grid(-6.0, 10.0, 200_000);
        xs.extend(grid(-1.0, 1.0, 50_000));
        // Results in the subnormal range carry an absolute error of a few subnormal steps.
        let (e, at) = worst(&xs, erfc4, erfc, erfc64_signed, 1e-44);
        assert!(e < TOL, "erfc rel err {e} at {at}");
        assert_eq!(erfc(0.0), 1.0);
        assert_eq!(erfc(f32::INFINITY), 0.0);
        assert_eq!(erfc(11.0), 0.0);
        assert_eq!(erfc(f32::NEG_INFINITY), 2.0);
        assert!(erfc(f32::NAN).is_nan());
    }

    #[test]
    fn normal_cdf_and_pdf_accuracy() {
        let mut xs = grid(-14.0, 8.0, 200_000);
        xs.extend(grid(-1.5, 1.5, 50_000));
        let cdf = |x: f64| 0.5 * erfc64_signed(-x * core::f64::consts::FRAC_1_SQRT_2);
        let (e, at) = worst(&xs, normal_cdf4, normal_cdf, cdf, 1e-44);
        assert!(e < TOL, "normal_cdf rel err {e} at {at}");
        let pdf = |x: f64| (-0.5 * x * x).exp() / (2.0 * core::f64::consts::PI).sqrt();
        let (e, at) = worst(&xs, normal_pdf4, normal_pdf, pdf, 1e-44);
        assert!(e < TOL, "normal_pdf rel err {e} at {at}");
        assert_eq!(normal_cdf(f32::NEG_INFINITY), 0.0);
        assert_eq!(normal_cdf(f32::INFINITY), 1.0);
        assert_eq!(normal_pdf(f32::INFINITY), 0.0);
        assert!(normal_cdf(f32::NAN).is_nan() && normal_pdf(f32::NAN).is_nan());
    }

    fn pow_at(x: f32, y: f32) -> f32 {
        let out = pow4(F32x4::splat(x), F32x4::splat(y)).to_array()[0];
        assert!(out.to_bits() == pow(x, y).to_bits() || out.is_nan());
        out
    }

    #[test]
    fn pow_accuracy() {
        let bases = grid(0.0, 20.0, 2000);
        let exps = [
            -30.5, -7.0, -3.0, -2.5, -1.0, -0.5, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 7.0, 11.3,
        ];
        let mut worst_e = 0.0f64;
        for &y in &exps {
            for &x in &bases {
                let want = (x as f64).powf(y as f64);
                let e = err(pow_at(x, y), want, 1e-44);
                assert!(e < 5e-7, "pow({x}, {y}) = {} want {want}", pow_at(x, y));
                worst_e = worst_e.max(e);
            }
        }
        // Near the overflow edge and near x = 1 with big exponents: y ln x is large.
        for &(x, y) in &[
            (1.000_001f32, 8.0e7f32),
            (0.999_99, 9.0e6),
            (10.0, 38.4),
            (3.0, -94.0),
            (1.5, 218.0),
        ] {
            let e = err(pow_at(x, y), (x as f64).powf(y as f64), 1e-44);
            assert!(e < 5e-7, "pow({x}, {y}) rel err {e}");
        }
        assert_eq!(pow_at(2.0, 10.0), 1024.0);
        assert_eq!(pow_at(2.0, -3.0), 0.125);
        assert_eq!(pow_at(-2.0, 3.0), -8.0);
        assert_eq!(pow_at(4.0, 0.5), 2.0);
    }

    #[test]
    fn pow_random_pairs() {
        // x log-uniform over [1e-6, 1e6] with either sign, y uniform over [-40, 40] (half of
        // them integers so negative bases give real results).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut worst_e = (0.0f64, 0.0f32, 0.0f32);
        for i in 0..200_000 {
            let mag = 10f64.powf(next() * 12.0 - 6.0) as f32;
            let x = if i % 3 == 0 { -mag } else { mag };
            let yr = next() * 80.0 - 40.0;
            let y = if i % 2 == 0 {
                yr.round() as f32
            } else {
                yr as f32
            };
            let e = err(pow_at(x, y), (x as f64).powf(y as f64), 1e-44);
            if e > worst_e.0 {
                worst_e = (e, x, y);
            }
        }
        eprintln!(
            "pow max rel err {:.3e} at ({}, {})",
            worst_e.0, worst_e.1, worst_e.2
        );
        assert!(worst_e.0 < 5e-7, "pow rel err {:?}", worst_e);
    }

    #[test]
    fn pow_special_values() {
        let (inf, nan) = (f32::INFINITY, f32::NAN);
        let cases: &[(f32, f32, f32)] = &[
            (nan, 0.0, 1.0),
            (1.0, nan, 1.0),
            (-1.0, inf, 1.0),
            (-1.0, -inf, 1.0),
            (-8.0, 1.0 / 3.0, nan),
            (-2.0, 2.0, 4.0),
            (-2.0, -1.0, -0.5),
            (0.0, -1.0, inf),
            (-0.0, -1.0, -inf),
            (-0.0, -2.0, inf),
            (-0.0, 3.0, -0.0),
            (0.0, 2.5, 0.0),
            (0.0, nan, nan),
            (inf, -2.0, 0.0),
            (-inf, 3.0, -inf),
            (-inf, -3.0, -0.0),
            (-inf, 0.5, inf),
            (0.5, inf, 0.0),
            (0.5, -inf, inf),
            (2.0, inf, inf),
            (-2.0, -inf, 0.0),
            (2.0, nan, nan),
            (nan, 2.0, nan),
            (2.0, 128.0, inf),
            (2.0, -150.0, 0.0),
            (2.0, -149.0, 1e-45),
            (3.0, 1e30, inf),
            (-3.0, 1e30, inf),
            (0.3, -1e30, inf),
        ];
        for &(x, y, want) in cases {
            let got = pow_at(x, y);
            let ok = (want.is_nan() && got.is_nan()) || got.to_bits() == want.to_bits();
            assert!(ok, "pow({x}, {y}) = {got}, want {want}");
        }
    }
}
