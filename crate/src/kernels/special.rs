//! Vector routines behind the math unary ops (sin, cos, log1p, expm1, rounding) and the
//! smooth activations (softplus, SiLU, Mish, ELU), forward and derivative side by side.
//! `elementwise::unary_f32`/`unary_bwd_f32` dispatch to them; each is branch-free on `F32x4`
//! except `sin4`/`cos4`, which send lanes beyond `TRIG_MAX` to f64 (rare in practice).
//!
//! Accuracy against f64, measured by `accuracy_against_f64` below over dense grids (max
//! error in units of f32 epsilon 2^-23 times |f64 result|; the tests' bounds leave a little room):
//! - sin, cos: 1.0 eps on |x| <= 10 and 1.06 eps on |x| <= 8192 counting an absolute floor of
//!   3e-8 next to their zeros (the three-part pi/2 reduction's residual); beyond 8192 f64 rounded;
//! - log1p 1.42, expm1 1.01, erf' 2.0, softplus 1.95, SiLU 1.79, ELU 0.74, Mish 0.96 eps (Mish
//!   with an absolute floor of 1e-7 near x = 0, where it crosses zero).

use crate::math::{exp4, log4, sigmoid4, tanh4};
use crate::simd::F32x4;

#[inline(always)]
fn k(v: f32) -> F32x4 {
    F32x4::splat(v)
}

const SIGN_BIT: u32 = 0x8000_0000;
/// `1.5 * 2^23`: adding it to `|v| < 2^22` rounds `v` to an integer (ties to even) held in
/// the sum's low mantissa bits, so the quadrant comes out with integer ops.
const ROUND_MAGIC: f32 = 12_582_912.0;
/// pi/2 as `P1 + P2 + P3`; `P1` and `P2` have few significant bits so `n * P1` and `n * P2`
/// are exact for the `n < 2^13` that `|x| <= TRIG_MAX` gives.
const P1: f32 = 1.570_312_5;
const P2: f32 = 4.837_513e-4;
const P3: f32 = 7.549_79e-8;
/// Past this |x| the vector reduction loses accuracy; such lanes use f64 `sin`/`cos`.
const TRIG_MAX: f32 = 8192.0;

/// `sin(r)` on |r| <= pi/4 (Cephes `sinf` minimax coefficients).
#[inline(always)]
fn sin_poly(r: F32x4, z: F32x4) -> F32x4 {
    let p = k(-1.951_529_6e-4)
        .mul(z)
        .add(k(8.332_161e-3))
        .mul(z)
        .add(k(-1.666_665_5e-1));
    r.add(r.mul(z).mul(p))
}

/// `cos(r)` on |r| <= pi/4 (Cephes `cosf` coefficients).
#[inline(always)]
fn cos_poly(z: F32x4) -> F32x4 {
    let p = k(2.443_315_7e-5)
        .mul(z)
        .add(k(-1.388_731_6e-3))
        .mul(z)
        .add(k(4.166_664_6e-2));
    k(1.0).sub(k(0.5).mul(z)).add(z.mul(z).mul(p))
}

/// `sin(x + shift * pi/2)` for `shift` 0 (sin) or 1 (cos): reduce by the nearest multiple `n`
/// of pi/2, then pick the sine or cosine polynomial and the sign from `n + shift` mod 4.
#[inline(always)]
fn sin_shifted(x: F32x4, shift: u32, f64_fn: fn(f64) -> f64) -> F32x4 {
    let t = x.mul(k(core::f32::consts::FRAC_2_PI)).add(k(ROUND_MAGIC));
    let n = t.sub(k(ROUND_MAGIC));
    let r = x.sub(n.mul(k(P1))).sub(n.mul(k(P2))).sub(n.mul(k(P3)));
    let z = r.mul(r);
    let q = t.add_i32(F32x4::splat_bits(shift));
    let odd = q.shl_i32(31).shr_i32(31);
    let v = F32x4::select(odd, cos_poly(z), sin_poly(r, z));
    let v = v.xor(q.shl_i32(30).and(F32x4::splat_bits(SIGN_BIT)));
    // `r + r z p` turns sin(-0) into +0.
    let v = if shift == 0 {
        F32x4::select(x.eq(k(0.0)), x, v)
    } else {
        v
    };
    let far = x.abs().gt(k(TRIG_MAX));
    if far.to_array().iter().all(|m| m.to_bits() == 0) {
        return v;
    }
    // Lane by lane, so each result depends only on its own input (tails match the body).
    let (xa, va, fa) = (x.to_array(), v.to_array(), far.to_array());
    let pick = |i: usize| {
        if fa[i].to_bits() != 0 {
            f64_fn(xa[i] as f64) as f32
        } else {
            va[i]
        }
    };
    F32x4::load(&[pick(0), pick(1), pick(2), pick(3)])
}

pub fn sin4(x: F32x4) -> F32x4 {
    sin_shifted(x, 0, f64::sin)
}

pub fn cos4(x: F32x4) -> F32x4 {
    sin_shifted(x, 1, f64::cos)
}

/// `ln(1 + x)` by Goldberg's correction `x ln(u) / (u - 1)`, `u = 1 + x`, which cancels the
/// rounding of `u`. Exact `x` where `u == 1` (keeps -0); `inf` at `+inf`, `-inf` at -1.
pub fn log1p4(x: F32x4) -> F32x4 {
    let u = x.add(k(1.0));
    let corrected = x.mul(log4(u).div(u.sub(k(1.0))));
    let v = F32x4::select(u.eq(k(1.0)), x, corrected);
    F32x4::select(u.eq(k(f32::INFINITY)), u, v)
}

/// `e^x - 1`: a Taylor polynomial on |x| < 0.5, where `exp(x) - 1` would cancel, else that.
pub fn expm1_4(x: F32x4) -> F32x4 {
    let c = [
        2.755_732e-7,
        2.755_731_7e-6,
        2.480_158_7e-5,
        1.984_127e-4,
        1.388_888_9e-3,
        8.333_334e-3,
        4.166_666_8e-2,
        1.666_666_7e-1,
        0.5,
    ];
    let mut q = k(c[0]);
    for &ci in &c[1..] {
        q = q.mul(x).add(k(ci));
    }
    let small = x.add(x.mul(x).mul(q));
    // `x + x²q` turns -0 into +0; zeros pass through unchanged.
    let small = F32x4::select(x.eq(k(0.0)), x, small);
    let large = exp4(x).sub(k(1.0));
    F32x4::select(x.abs().lt(k(0.5)), small, large)
}

/// `2/sqrt(pi) e^(-x²)`, the derivative of erf, with `x²` split exactly into `hi + lo` (a
/// rounded `x²` would cost `x²` ulps).
pub fn erf_grad4(x: F32x4) -> F32x4 {
    // Past 10.5 the result is below the smallest subnormal; clamping keeps x² finite.
    let a = x.abs().min(k(10.5));
    let h = a.and(F32x4::splat_bits(0xffff_f000));
    let l = a.sub(h);
    let hi = h.mul(h);
    let lo = l.mul(a.add(h));
    let e = exp4(hi.neg()).mul(exp4(lo.neg()));
    let e = F32x4::select(a.ge(k(10.5)), k(0.0), e);
    F32x4::select(x.ne(x), x, e.mul(k(core::f32::consts::FRAC_2_SQRT_PI)))
}

/// A zero result takes the sign of `x` (ceil(-0.5) = -0, as C's `ceil`).
#[inline(always)]
fn zero_sign_of(v: F32x4, x: F32x4) -> F32x4 {
    F32x4::select(v.eq(k(0.0)), x.and(F32x4::splat_bits(SIGN_BIT)), v)
}

/// Floor, from round-to-nearest: one less where rounding went up. Keeps inf and NaN.
pub fn floor4(x: F32x4) -> F32x4 {
    let r = x.round();
    zero_sign_of(F32x4::select(r.gt(x), r.sub(k(1.0)), r), x)
}

pub fn ceil4(x: F32x4) -> F32x4 {
    let r = x.round();
    zero_sign_of(F32x4::select(r.lt(x), r.add(k(1.0)), r), x)
}

/// PyTorch's `round(x, decimals)`: `nearbyint(x * s) / s` for `decimals > 0` (`mode` 1),
/// `nearbyint(x / s) * s` for `decimals < 0` (`mode` -1), with `s = 10^|decimals|` in f32.
pub fn round_decimals4(x: F32x4, s: F32x4, mode: f32) -> F32x4 {
    let v = if mode > 0.0 {
        x.mul(s).round().div(s)
    } else if mode < 0.0 {
        x.div(s).round().mul(s)
    } else {
        x.round()
    };
    zero_sign_of(v, x)
}

/// `ln(1 + e^(beta x)) / beta`, or `x` itself where `beta x > threshold` (PyTorch's rule).
pub fn softplus4(x: F32x4, beta: F32x4, threshold: F32x4) -> F32x4 {
    let bx = x.mul(beta);
    let v = log1p4(exp4(bx)).div(beta);
    F32x4::select(bx.gt(threshold), x, v)
}

/// d softplus / dx = `sigmoid(beta x)`, 1 past the threshold.
pub fn softplus_grad4(x: F32x4, beta: F32x4, threshold: F32x4) -> F32x4 {
    let bx = x.mul(beta);
    F32x4::select(bx.gt(threshold), k(1.0), sigmoid4(bx))
}

pub fn silu4(x: F32x4) -> F32x4 {
    x.mul(sigmoid4(x))
}

/// `s (1 + x s̄)` with `s = sigmoid(x)` and `s̄ = 1 - s = sigmoid(-x)`, both formed from
/// `e^-|x|` so that neither cancels.
pub fn silu_grad4(x: F32x4) -> F32x4 {
    let e = exp4(x.abs().neg());
    let r = k(1.0).div(k(1.0).add(e));
    let neg = x.lt(k(0.0));
    let s = F32x4::select(neg, e.mul(r), r);
    let s_bar = F32x4::select(neg, r, e.mul(r));
    s.mul(k(1.0).add(x.mul(s_bar)))
}

/// `x tanh(softplus(x))`, softplus without a threshold as in PyTorch's Mish.
pub fn mish4(x: F32x4) -> F32x4 {
    x.mul(tanh4(log1p4(exp4(x))))
}

/// `t + x sigmoid(x) (1 - t²)` with `t = tanh(softplus(x))`; `(1 - t)(1 + t)` avoids the
/// cancellation of `1 - t²` near |t| = 1.
pub fn mish_grad4(x: F32x4) -> F32x4 {
    let t = tanh4(log1p4(exp4(x)));
    let one = k(1.0);
    t.add(x.mul(sigmoid4(x)).mul(one.sub(t).mul(one.add(t))))
}

/// `x` for `x > 0`, `alpha (e^x - 1)` otherwise (NaN stays NaN).
pub fn elu4(x: F32x4, alpha: F32x4) -> F32x4 {
    F32x4::select(x.le(k(0.0)), alpha.mul(expm1_4(x)), x)
}

/// PyTorch's `elu_backward` on the input: `alpha e^x` for `x <= 0`, else 1.
pub fn elu_grad4(x: F32x4, alpha: F32x4) -> F32x4 {
    F32x4::select(x.le(k(0.0)), alpha.mul(exp4(x)), k(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::reference::erf64;

    fn lane(f: impl Fn(F32x4) -> F32x4, x: f32) -> f32 {
        f(k(x)).to_array()[0]
    }

    fn softplus64(x: f64) -> f64 {
        if x > 20.0 {
            x
        } else {
            x.exp().ln_1p()
        }
    }
    fn sigmoid64(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// The largest error of `f` against `want` over `xs`, in eps of |want| past `floor`.
    fn max_err(
        f: impl Fn(F32x4) -> F32x4,
        want: impl Fn(f64) -> f64,
        xs: &[f32],
        floor: f64,
    ) -> f64 {
        let eps = f32::EPSILON as f64;
        xs.iter()
            .map(|&x| {
                let w = want(x as f64);
                let got = lane(&f, x) as f64;
                (got - w).abs() / (eps * w.abs().max(floor))
            })
            .fold(0.0, f64::max)
    }

    fn grid(lo: f32, hi: f32, n: usize) -> Vec<f32> {
        (0..=n)
            .map(|i| lo + (hi - lo) * (i as f32 / n as f32))
            .collect()
    }

    /// Measured maxima are stated in the module doc; the bounds leave a little room.
    #[test]
    fn accuracy_against_f64() {
        let wide = grid(-8192.0, 8192.0, 400_000);
        let near = grid(-10.0, 10.0, 200_000);
        let small = grid(-1e-3, 1e-3, 20_000);
        // Next to a zero of sin or cos only an absolute bound holds: 3e-8 = 0.25 eps.
        assert!(max_err(sin4, f64::sin, &wide, 0.25) <= 1.5);
        assert!(max_err(cos4, f64::cos, &wide, 0.25) <= 1.5);
        assert!(max_err(sin4, f64::sin, &near, 0.0) <= 1.5);
        assert!(max_err(sin4, f64::sin, &small, 0.0) <= 1.0);
        assert!(max_err(cos4, f64::cos, &small, 0.0) <= 1.0);
        let pos = grid(-0.999, 100.0, 200_000);
        assert!(max_err(log1p4, f64::ln_1p, &pos, 0.0) <= 1.5);
        assert!(max_err(log1p4, f64::ln_1p, &small, 0.0) <= 1.5);
        assert!(max_err(expm1_4, f64::exp_m1, &near, 0.0) <= 1.5);
        assert!(max_err(expm1_4, f64::exp_m1, &small, 0.0) <= 1.5);
        let erf_d = |x: f64| 2.0 / core::f64::consts::PI.sqrt() * (-x * x).exp();
        let e = max_err(erf_grad4, erf_d, &grid(-9.0, 9.0, 200_000), 0.0);
        assert!(e <= 2.5, "erf' {e}");
        let one = k(1.0);
        let sp = |x| softplus4(x, one, k(20.0));
        assert!(max_err(sp, softplus64, &grid(-80.0, 30.0, 200_000), 0.0) <= 2.5);
        assert!(max_err(silu4, |x| x * sigmoid64(x), &near, 0.0) <= 2.5);
        let mish64 = |x: f64| x * x.exp().ln_1p().tanh();
        assert!(max_err(mish4, mish64, &near, 1e-7 / f32::EPSILON as f64) <= 1.5);
        let elu64 = |x: f64| if x > 0.0 { x } else { x.exp_m1() };
        assert!(max_err(|x| elu4(x, one), elu64, &near, 0.0) <= 1.0);
        // erf itself is `math::erf4`, already measured there; check the pairing with erf'.
        assert!((erf64(0.5) - crate::math::erf(0.5) as f64).abs() < 1e-7);
    }

    #[test]
    fn trig_beyond_the_vector_range_uses_f64() {
        for &x in &[8193.0f32, -1.0e5, 3.0e7, 1.0e30, -f32::MAX] {
            assert_eq!(lane(sin4, x), (x as f64).sin() as f32, "sin {x}");
            assert_eq!(lane(cos4, x), (x as f64).cos() as f32, "cos {x}");
        }
        assert!(lane(sin4, f32::INFINITY).is_nan());
        assert!(lane(cos4, f32::NEG_INFINITY).is_nan());
        assert!(lane(sin4, f32::NAN).is_nan());
        // A far lane next to near lanes leaves the near ones on the vector path.
        let v = sin4(F32x4::load(&[0.5, 1.0e6, -0.25, 2.0])).to_array();
        assert_eq!(v[0], lane(sin4, 0.5));
        assert_eq!(v[1], (1.0e6f64).sin() as f32);
        assert_eq!(v[2], lane(sin4, -0.25));
    }

    #[test]
    fn special_values() {
        let same = |a: f32, b: f32| (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits();
        let inf = f32::INFINITY;
        type Check = (&'static str, fn(F32x4) -> F32x4, f32, f32);
        let checks: &[Check] = &[
            ("sin -0", sin4, -0.0, -0.0),
            ("log1p -0", log1p4, -0.0, -0.0),
            ("log1p -1", log1p4, -1.0, -inf),
            ("log1p -2", log1p4, -2.0, f32::NAN),
            ("log1p inf", log1p4, inf, inf),
            ("log1p tiny", log1p4, 1e-30, 1e-30),
            ("expm1 -0", expm1_4, -0.0, -0.0),
            ("expm1 -inf", expm1_4, -inf, -1.0),
            ("expm1 inf", expm1_4, inf, inf),
            ("expm1 nan", expm1_4, f32::NAN, f32::NAN),
            ("floor -0.5", floor4, -0.5, -1.0),
            ("floor -0", floor4, -0.0, -0.0),
            ("floor 2.5", floor4, 2.5, 2.0),
            ("floor -inf", floor4, -inf, -inf),
            ("floor 1e10", floor4, 1e10, 1e10),
            ("ceil -0.5", ceil4, -0.5, -0.0),
            ("ceil 0.2", ceil4, 0.2, 1.0),
            ("ceil -2.5", ceil4, -2.5, -2.0),
            ("ceil nan", ceil4, f32::NAN, f32::NAN),
            ("erf' nan", erf_grad4, f32::NAN, f32::NAN),
            ("erf' inf", erf_grad4, inf, 0.0),
            ("silu -inf", silu4, -inf, f32::NAN),
            ("mish inf", mish4, inf, inf),
        ];
        for &(name, f, x, want) in checks {
            let got = lane(f, x);
            assert!(same(got, want), "{name}: {got} vs {want}");
        }
        // PyTorch's threshold: past it softplus is x itself, and the gradient exactly 1.
        let (b, t) = (k(2.0), k(20.0));
        assert_eq!(softplus4(k(10.5), b, t).to_array()[0], 10.5);
        assert_eq!(softplus_grad4(k(10.5), b, t).to_array()[0], 1.0);
        // Rounding with decimals runs in f32 as PyTorch's kernel does.
        let r = |x: f32, s: f32, m: f32| round_decimals4(k(x), k(s), m).to_array()[0];
        assert_eq!(r(1.2345, 100.0, 1.0), (1.2345f32 * 100.0).round() / 100.0);
        assert_eq!(r(1250.0, 100.0, -1.0), 1200.0);
        assert_eq!(r(0.125, 100.0, 1.0), 0.12);
        assert_eq!(r(2.5, 1.0, 0.0), 2.0);
        assert_eq!(r(-3.5, 1.0, 0.0), -4.0);
    }
}
