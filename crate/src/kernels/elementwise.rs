//! Elementwise kernels: fills and casts, unary ops with their backward passes, and broadcast
//! binary ops, comparisons and `where`.
//!
//! f32 arithmetic runs on `F32x4`; a row's last partial chunk goes through the same vector code
//! on a zero-padded copy, so tail elements get exactly the values the SIMD body would give.
//! Integer, comparison and `where` loops are plain zipped iterators, which LLVM turns into
//! `v128` code by itself.
//! Every op is picked once per call (a closure per op), never per element.

use super::special;
use super::strided::{contiguous_strides, for_each_row};
use crate::abi::{
    BINARY_ADD, BINARY_DIV, BINARY_MAXIMUM, BINARY_MINIMUM, BINARY_MUL, BINARY_POW, BINARY_SUB,
    CMP_EQ, CMP_GE, CMP_GT, CMP_LE, CMP_LT, CMP_NE, UNARY_ABS, UNARY_AFFINE, UNARY_CLAMP,
    UNARY_DIV_SCALAR, UNARY_EXP, UNARY_GELU, UNARY_GELU_TANH, UNARY_LEAKY_RELU, UNARY_LOG,
    UNARY_NEG, UNARY_POW_SCALAR, UNARY_RECIPROCAL, UNARY_RELU, UNARY_RPOW_SCALAR, UNARY_RSQRT,
    UNARY_SIGMOID, UNARY_SIGN, UNARY_SQRT, UNARY_SQUARE, UNARY_TANH,
};
use crate::abi::{
    UNARY_CEIL, UNARY_COS, UNARY_ELU, UNARY_ERF, UNARY_EXPM1, UNARY_FLOOR, UNARY_HARDTANH,
    UNARY_LOG1P, UNARY_MISH, UNARY_ROUND, UNARY_SILU, UNARY_SIN, UNARY_SOFTPLUS,
};
use crate::math;
use crate::simd::F32x4;

/// `sqrt(2/pi)` and the cubic coefficient of GELU's tanh approximation.
const GELU_K: f32 = 0.797_884_6;
const GELU_C: f32 = 0.044_715;

#[inline(always)]
fn k(v: f32) -> F32x4 {
    F32x4::splat(v)
}

// ---------------------------------------------------------------- vector loops

/// The first `x.len() < 4` lanes loaded, the rest zero.
#[inline(always)]
fn load_part(x: &[f32]) -> F32x4 {
    let mut t = [0.0f32; 4];
    t[..x.len()].copy_from_slice(x);
    F32x4::load(&t)
}

#[inline(always)]
fn store_part(v: F32x4, out: &mut [f32]) {
    let n = out.len();
    out.copy_from_slice(&v.to_array()[..n]);
}

/// `out[i] = f(x[i])`; `x` may be longer than `out`. Four independent vectors per step: V8
/// runs long routines such as `exp4` latency-bound, and the chains overlap.
#[inline(always)]
fn map1(out: &mut [f32], x: &[f32], f: impl Fn(F32x4) -> F32x4) {
    let x = &x[..out.len()];
    let mut o16 = out.chunks_exact_mut(16);
    let mut x16 = x.chunks_exact(16);
    for (o, a) in (&mut o16).zip(&mut x16) {
        let v: [F32x4; 4] = core::array::from_fn(|i| f(F32x4::load(&a[4 * i..])));
        for (d, v) in o.chunks_exact_mut(4).zip(v) {
            v.store(d);
        }
    }
    let mut oc = o16.into_remainder().chunks_exact_mut(4);
    let mut xc = x16.remainder().chunks_exact(4);
    for (o, a) in (&mut oc).zip(&mut xc) {
        f(F32x4::load(a)).store(o);
    }
    let o = oc.into_remainder();
    if !o.is_empty() {
        store_part(f(load_part(xc.remainder())), o);
    }
}

/// `out[i] = f(a[i], b[i])`; `a` and `b` may be longer than `out`.
#[inline(always)]
fn map2(out: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(F32x4, F32x4) -> F32x4) {
    let (a, b) = (&a[..out.len()], &b[..out.len()]);
    let mut o16 = out.chunks_exact_mut(16);
    let mut a16 = a.chunks_exact(16);
    let mut b16 = b.chunks_exact(16);
    for ((o, x), y) in (&mut o16).zip(&mut a16).zip(&mut b16) {
        let v: [F32x4; 4] =
            core::array::from_fn(|i| f(F32x4::load(&x[4 * i..]), F32x4::load(&y[4 * i..])));
        for (d, v) in o.chunks_exact_mut(4).zip(v) {
            v.store(d);
        }
    }
    let mut oc = o16.into_remainder().chunks_exact_mut(4);
    let mut ac = a16.remainder().chunks_exact(4);
    let mut bc = b16.remainder().chunks_exact(4);
    for ((o, x), y) in (&mut oc).zip(&mut ac).zip(&mut bc) {
        f(F32x4::load(x), F32x4::load(y)).store(o);
    }
    let o = oc.into_remainder();
    if !o.is_empty() {
        store_part(f(load_part(ac.remainder()), load_part(bc.remainder())), o);
    }
}

/// `out[i] = f(a[i * ia], b[i * ib])` for arbitrary strides, gathered four at a time.
#[inline(always)]
fn map2_strided(
    out: &mut [f32],
    a: &[f32],
    ia: usize,
    b: &[f32],
    ib: usize,
    f: impl Fn(F32x4, F32x4) -> F32x4,
) {
    for (c, o) in out.chunks_mut(4).enumerate() {
        let (mut x, mut y) = ([0.0f32; 4], [0.0f32; 4]);
        for j in 0..o.len() {
            let i = c * 4 + j;
            x[j] = a[i * ia];
            y[j] = b[i * ib];
        }
        store_part(f(F32x4::load(&x), F32x4::load(&y)), o);
    }
}

/// One broadcast row of a binary f32 op, specialised on the operands' inner strides.
#[inline(always)]
fn row_f32(
    out: &mut [f32],
    a: &[f32],
    ia: usize,
    b: &[f32],
    ib: usize,
    f: impl Fn(F32x4, F32x4) -> F32x4,
) {
    match (ia, ib) {
        (1, 1) => map2(out, a, b, f),
        (1, 0) => {
            let y = k(b[0]);
            map1(out, a, |x| f(x, y))
        }
        (0, 1) => {
            let x = k(a[0]);
            map1(out, b, |y| f(x, y))
        }
        (0, 0) => out.fill(f(k(a[0]), k(b[0])).to_array()[0]),
        _ => map2_strided(out, a, ia, b, ib, f),
    }
}

/// One broadcast row of a scalar op (integers, comparisons), specialised like `row_f32`.
#[inline(always)]
fn row_scalar<A: Copy, B: Copy, O>(
    out: &mut [O],
    a: &[A],
    ia: usize,
    b: &[B],
    ib: usize,
    f: impl Fn(A, B) -> O,
) {
    match (ia, ib) {
        (1, 1) => {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = f(x, y);
            }
        }
        (1, 0) => {
            let y = b[0];
            for (o, &x) in out.iter_mut().zip(a) {
                *o = f(x, y);
            }
        }
        (0, 1) => {
            let x = a[0];
            for (o, &y) in out.iter_mut().zip(b) {
                *o = f(x, y);
            }
        }
        _ => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = f(a[i * ia], b[i * ib]);
            }
        }
    }
}

// ---------------------------------------------------------------- broadcasting

/// 1 when `s` lays `shape` out contiguously, 0 when it broadcasts one value everywhere, else
/// `None`. Size-1 dims are skipped: their stride never matters.
fn flat_stride(shape: &[i32], s: &[i32], contiguous: &[i32]) -> Option<usize> {
    let dims = || {
        shape
            .iter()
            .zip(s)
            .zip(contiguous)
            .filter(|((&n, _), _)| n != 1)
    };
    if dims().all(|((_, &st), &c)| st == c) {
        Some(1)
    } else if dims().all(|((_, &st), _)| st == 0) {
        Some(0)
    } else {
        None
    }
}

/// Hands `row(out, a, ia, b, ib)` every run of a broadcast binary op: the whole array at once
/// when both operands are flat (contiguous or one broadcast value), else each innermost row,
/// with `a`/`b` starting at the row's first element and `ia`/`ib` the strides along it.
fn drive2<A, B, O>(
    a: &[A],
    b: &[B],
    out: &mut [O],
    shape: &[i32],
    sa: &[i32],
    sb: &[i32],
    mut row: impl FnMut(&mut [O], &[A], usize, &[B], usize),
) {
    let nd = shape.len();
    debug_assert!(sa.len() == nd && sb.len() == nd);
    let cs = contiguous_strides(shape);
    let cs = &cs[..nd];
    if let (Some(ia), Some(ib)) = (flat_stride(shape, sa, cs), flat_stride(shape, sb, cs)) {
        if !out.is_empty() {
            row(out, a, ia, b, ib);
        }
        return;
    }
    for_each_row(shape, [sa, sb, cs], |off, len, st| {
        row(
            &mut out[off[2]..off[2] + len],
            &a[off[0]..],
            st[0],
            &b[off[1]..],
            st[1],
        )
    });
}

fn broadcast_f32(
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    shape: &[i32],
    sa: &[i32],
    sb: &[i32],
    f: impl Fn(F32x4, F32x4) -> F32x4 + Copy,
) {
    drive2(a, b, out, shape, sa, sb, |o, a, ia, b, ib| {
        row_f32(o, a, ia, b, ib, f)
    })
}

fn broadcast_scalar<A: Copy, B: Copy, O>(
    a: &[A],
    b: &[B],
    out: &mut [O],
    shape: &[i32],
    sa: &[i32],
    sb: &[i32],
    f: impl Fn(A, B) -> O + Copy,
) {
    drive2(a, b, out, shape, sa, sb, |o, a, ia, b, ib| {
        row_scalar(o, a, ia, b, ib, f)
    })
}

// ---------------------------------------------------------------- fill, arange, cast

pub fn fill_u32(out: &mut [u32], bits: u32) {
    out.fill(bits);
}

/// `start + i * step` is formed in f64 (as PyTorch does) so long ranges do not drift.
pub fn arange_f32(out: &mut [f32], start: f64, step: f64) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = (start + i as f64 * step) as f32;
    }
}

pub fn arange_i32(out: &mut [i32], start: i32, step: i32) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = start.wrapping_add((i as i32).wrapping_mul(step));
    }
}

/// Truncation toward zero, saturating, NaN to 0: `i32x4.trunc_sat_f32x4`, and Rust's `as` in
/// the tail, which is defined the same way.
pub fn cast_f32_i32(x: &[f32], out: &mut [i32]) {
    debug_assert_eq!(x.len(), out.len());
    let mut oc = out.chunks_exact_mut(4);
    let mut xc = x.chunks_exact(4);
    for (o, v) in (&mut oc).zip(&mut xc) {
        F32x4::load(v).store_i32_trunc_sat(o);
    }
    for (o, &v) in oc.into_remainder().iter_mut().zip(xc.remainder()) {
        *o = v as i32;
    }
}

pub fn cast_i32_f32(x: &[i32], out: &mut [f32]) {
    debug_assert_eq!(x.len(), out.len());
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v as f32;
    }
}

pub fn add_inplace_f32(dst: &mut [f32], src: &[f32]) {
    debug_assert_eq!(dst.len(), src.len());
    let mut dc = dst.chunks_exact_mut(4);
    let mut sc = src.chunks_exact(4);
    for (d, s) in (&mut dc).zip(&mut sc) {
        F32x4::load(d).add(F32x4::load(s)).store(d);
    }
    for (d, &s) in dc.into_remainder().iter_mut().zip(sc.remainder()) {
        *d += s;
    }
}

// ---------------------------------------------------------------- unary forward

/// `max(x, 0)` that keeps NaN (as `torch.relu`) and maps -0 to +0.
#[inline(always)]
fn relu(x: F32x4) -> F32x4 {
    F32x4::select(x.le(k(0.0)), k(0.0), x)
}

/// -1, +0 or 1, and 0 for NaN as `torch.sign`.
#[inline(always)]
fn sign(x: F32x4) -> F32x4 {
    let zero = k(0.0);
    let inner = F32x4::select(x.lt(zero), k(-1.0), zero);
    F32x4::select(x.gt(zero), k(1.0), inner)
}

#[inline(always)]
fn gelu(x: F32x4) -> F32x4 {
    x.mul(math::normal_cdf4(x))
}

/// `sqrt(2/pi) (x + 0.044715 x³)`, the tanh argument of GELU's approximation.
#[inline(always)]
fn gelu_tanh_arg(x: F32x4) -> F32x4 {
    x.add(x.mul(x).mul(x).mul(k(GELU_C))).mul(k(GELU_K))
}

/// `0.5 x (1 + tanh u)` written as `x sigmoid(2u)`: equal, but no cancellation for x < 0.
#[inline(always)]
fn gelu_tanh(x: F32x4) -> F32x4 {
    let u = gelu_tanh_arg(x);
    x.mul(math::sigmoid4(u.add(u)))
}

/// Calls `$body` with `$f` bound to the `x ** p` routine PyTorch uses for exponent `p`:
/// shortcuts for 0, 1, 2, 3, -2, 1/2, -1/2 and -1, `math::pow4` otherwise. Each case expands
/// `$body` separately, so the choice is made once per call.
macro_rules! with_pow {
    ($p:expr, |$f:ident| $body:expr) => {{
        let p: f32 = $p;
        if p == 0.0 {
            let $f = |_: F32x4| k(1.0);
            $body
        } else if p == 1.0 {
            let $f = |v: F32x4| v;
            $body
        } else if p == 2.0 {
            let $f = |v: F32x4| v.mul(v);
            $body
        } else if p == 3.0 {
            let $f = |v: F32x4| v.mul(v).mul(v);
            $body
        } else if p == -2.0 {
            let $f = |v: F32x4| k(1.0).div(v.mul(v));
            $body
        } else if p == 0.5 {
            let $f = |v: F32x4| v.sqrt();
            $body
        } else if p == -0.5 {
            let $f = |v: F32x4| k(1.0).div(v.sqrt());
            $body
        } else if p == -1.0 {
            let $f = |v: F32x4| k(1.0).div(v);
            $body
        } else {
            let pv = k(p);
            let $f = |v: F32x4| math::pow4(v, pv);
            $body
        }
    }};
}

/// `x * p0 + p1`, with a bare multiply or add when the other half is the identity so that
/// scalar `mul`/`add` round exactly as PyTorch's (and keep -0).
fn affine(out: &mut [f32], x: &[f32], p0: f32, p1: f32) {
    let (m, c) = (k(p0), k(p1));
    if p1 == 0.0 {
        map1(out, x, |v| v.mul(m))
    } else if p0 == 1.0 {
        map1(out, x, |v| v.add(c))
    } else {
        map1(out, x, |v| v.mul(m).add(c))
    }
}

/// `out[i] = op(x[i])` for a `UNARY_*` op with parameters `p0`, `p1` (see `abi`).
pub fn unary_f32(op: u32, x: &[f32], out: &mut [f32], p0: f32, p1: f32) {
    debug_assert_eq!(x.len(), out.len());
    let (a, b) = (k(p0), k(p1));
    match op {
        UNARY_NEG => map1(out, x, F32x4::neg),
        UNARY_EXP => map1(out, x, math::exp4),
        UNARY_LOG => map1(out, x, math::log4),
        UNARY_SQRT => map1(out, x, F32x4::sqrt),
        UNARY_RSQRT => map1(out, x, |v| k(1.0).div(v.sqrt())),
        UNARY_ABS => map1(out, x, F32x4::abs),
        UNARY_RELU => map1(out, x, relu),
        UNARY_SIGMOID => map1(out, x, math::sigmoid4),
        UNARY_TANH => map1(out, x, math::tanh4),
        UNARY_GELU => map1(out, x, gelu),
        UNARY_GELU_TANH => map1(out, x, gelu_tanh),
        UNARY_LEAKY_RELU => map1(out, x, |v| F32x4::select(v.gt(k(0.0)), v, v.mul(a))),
        UNARY_POW_SCALAR => with_pow!(p0, |f| map1(out, x, f)),
        UNARY_CLAMP => map1(out, x, |v| v.max(a).min(b)),
        UNARY_SIGN => map1(out, x, sign),
        UNARY_AFFINE => affine(out, x, p0, p1),
        UNARY_RECIPROCAL => map1(out, x, |v| k(1.0).div(v)),
        UNARY_SQUARE => map1(out, x, |v| v.mul(v)),
        UNARY_RPOW_SCALAR => map1(out, x, |v| math::pow4(a, v)),
        UNARY_DIV_SCALAR => map1(out, x, |v| v.div(a)),
        UNARY_SIN => map1(out, x, special::sin4),
        UNARY_COS => map1(out, x, special::cos4),
        UNARY_ERF => map1(out, x, math::erf4),
        UNARY_LOG1P => map1(out, x, special::log1p4),
        UNARY_EXPM1 => map1(out, x, special::expm1_4),
        UNARY_FLOOR => map1(out, x, special::floor4),
        UNARY_CEIL => map1(out, x, special::ceil4),
        UNARY_ROUND => map1(out, x, |v| special::round_decimals4(v, a, p1)),
        UNARY_SOFTPLUS => map1(out, x, |v| special::softplus4(v, a, b)),
        UNARY_SILU => map1(out, x, special::silu4),
        UNARY_MISH => map1(out, x, special::mish4),
        UNARY_ELU => map1(out, x, |v| special::elu4(v, a)),
        UNARY_HARDTANH => map1(out, x, |v| v.max(a).min(b)),
        _ => debug_assert!(false, "unknown unary op {op}"),
    }
}

// ---------------------------------------------------------------- unary backward

/// d/dx of exact GELU: `Φ(x) + x φ(x)`.
#[inline(always)]
fn gelu_grad(x: F32x4) -> F32x4 {
    math::normal_cdf4(x).add(x.mul(math::normal_pdf4(x)))
}

/// d/dx of `x s(2u)`: `s + 2x s(1-s) u'`, with `s` and `1 - s` both formed without cancellation.
#[inline(always)]
fn gelu_tanh_grad(x: F32x4) -> F32x4 {
    let u = gelu_tanh_arg(x);
    let e = math::exp4(u.add(u).abs().neg());
    let r = k(1.0).div(k(1.0).add(e));
    let neg = u.lt(k(0.0));
    let s = F32x4::select(neg, e.mul(r), r);
    let s_bar = F32x4::select(neg, r, e.mul(r));
    let du = k(GELU_K).mul(k(1.0).add(k(3.0 * GELU_C).mul(x).mul(x)));
    s.add(x.add(x).mul(s).mul(s_bar).mul(du))
}

/// `g * p * x^(p - 1)` (0 when `p == 0`), with `x^(p - 1)` taken as the forward would.
fn pow_scalar_bwd(saved: &[f32], g: &[f32], out: &mut [f32], p: f32) {
    if p == 0.0 {
        return map2(out, saved, g, |_, g| g.mul(k(0.0)));
    }
    let pv = k(p);
    with_pow!((p as f64 - 1.0) as f32, |f| {
        map2(out, saved, g, |x, g| g.mul(pv.mul(f(x))))
    })
}

/// `g * ln(p) * p^x`; for `p == 0` the gradient is 0 where `x >= 0` (PyTorch's rule).
fn rpow_scalar_bwd(saved: &[f32], g: &[f32], out: &mut [f32], p: f32) {
    let (base, ln_p) = (k(p), k((p as f64).ln() as f32));
    let zero = k(0.0);
    if p == 0.0 {
        map2(out, saved, g, |x, g| {
            let d = math::pow4(base, x).mul(ln_p);
            g.mul(F32x4::select(x.ge(zero), zero, d))
        })
    } else {
        map2(out, saved, g, |x, g| g.mul(math::pow4(base, x).mul(ln_p)))
    }
}

/// `out[i] = g[i] * op'(..)`; `saved` is the forward output for EXP, SQRT, RSQRT, RELU,
/// SIGMOID and TANH, the forward input otherwise. Formulas follow PyTorch's autograd.
pub fn unary_bwd_f32(op: u32, saved: &[f32], g: &[f32], out: &mut [f32], p0: f32, p1: f32) {
    debug_assert!(saved.len() == out.len() && g.len() == out.len());
    let (a, b) = (k(p0), k(p1));
    let (zero, one) = (k(0.0), k(1.0));
    match op {
        UNARY_NEG => map2(out, saved, g, |_, g| g.neg()),
        UNARY_EXP => map2(out, saved, g, |y, g| g.mul(y)),
        UNARY_LOG => map2(out, saved, g, |x, g| g.div(x)),
        UNARY_SQRT => map2(out, saved, g, |y, g| g.div(y.add(y))),
        UNARY_RSQRT => map2(out, saved, g, |y, g| k(-0.5).mul(g).mul(y.mul(y).mul(y))),
        UNARY_ABS => map2(out, saved, g, |x, g| g.mul(sign(x))),
        // threshold_backward: zero where y <= 0, so a NaN output passes the gradient.
        UNARY_RELU => map2(out, saved, g, |y, g| F32x4::select(y.le(zero), zero, g)),
        UNARY_SIGMOID => map2(out, saved, g, |y, g| g.mul(one.sub(y)).mul(y)),
        // (1 - y)(1 + y) rather than 1 - y²: exact first factor, no cancellation near |y| = 1.
        UNARY_TANH => map2(out, saved, g, |y, g| g.mul(one.sub(y).mul(one.add(y)))),
        UNARY_GELU => map2(out, saved, g, |x, g| g.mul(gelu_grad(x))),
        UNARY_GELU_TANH => map2(out, saved, g, |x, g| g.mul(gelu_tanh_grad(x))),
        UNARY_LEAKY_RELU => map2(out, saved, g, |x, g| F32x4::select(x.gt(zero), g, g.mul(a))),
        UNARY_POW_SCALAR => pow_scalar_bwd(saved, g, out, p0),
        UNARY_CLAMP => map2(out, saved, g, |x, g| {
            F32x4::select(x.ge(a).and(x.le(b)), g, zero)
        }),
        UNARY_SIGN => out.fill(0.0),
        UNARY_AFFINE => map2(out, saved, g, |_, g| g.mul(a)),
        UNARY_RECIPROCAL => map2(out, saved, g, |x, g| {
            let r = one.div(x);
            g.neg().mul(r.mul(r))
        }),
        UNARY_SQUARE => map2(out, saved, g, |x, g| g.mul(x.add(x))),
        UNARY_RPOW_SCALAR => rpow_scalar_bwd(saved, g, out, p0),
        UNARY_DIV_SCALAR => map2(out, saved, g, |_, g| g.div(a)),
        UNARY_SIN => map2(out, saved, g, |x, g| g.mul(special::cos4(x))),
        UNARY_COS => map2(out, saved, g, |x, g| g.mul(special::sin4(x)).neg()),
        UNARY_ERF => map2(out, saved, g, |x, g| g.mul(special::erf_grad4(x))),
        UNARY_LOG1P => map2(out, saved, g, |x, g| g.div(x.add(one))),
        UNARY_EXPM1 => map2(out, saved, g, |x, g| g.mul(math::exp4(x))),
        UNARY_FLOOR | UNARY_CEIL | UNARY_ROUND => out.fill(0.0),
        UNARY_SOFTPLUS => map2(out, saved, g, |x, g| {
            g.mul(special::softplus_grad4(x, a, b))
        }),
        UNARY_SILU => map2(out, saved, g, |x, g| g.mul(special::silu_grad4(x))),
        UNARY_MISH => map2(out, saved, g, |x, g| g.mul(special::mish_grad4(x))),
        UNARY_ELU => map2(out, saved, g, |x, g| g.mul(special::elu_grad4(x, a))),
        // hardtanh_backward: zero at and beyond the bounds; a NaN input passes the gradient.
        UNARY_HARDTANH => map2(out, saved, g, |x, g| {
            F32x4::select(x.le(a).or(x.ge(b)), zero, g)
        }),
        _ => debug_assert!(false, "unknown unary op {op}"),
    }
}

// ---------------------------------------------------------------- binary, compare, where

/// `out = op(a, b)` broadcast over `shape` (`BINARY_*`; MAXIMUM/MINIMUM propagate NaN).
pub fn binary_f32(
    op: u32,
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    shape: &[i32],
    sa: &[i32],
    sb: &[i32],
) {
    match op {
        BINARY_ADD => broadcast_f32(a, b, out, shape, sa, sb, F32x4::add),
        BINARY_SUB => broadcast_f32(a, b, out, shape, sa, sb, F32x4::sub),
        BINARY_MUL => broadcast_f32(a, b, out, shape, sa, sb, F32x4::mul),
        BINARY_DIV => broadcast_f32(a, b, out, shape, sa, sb, F32x4::div),
        BINARY_POW => broadcast_f32(a, b, out, shape, sa, sb, math::pow4),
        BINARY_MAXIMUM => broadcast_f32(a, b, out, shape, sa, sb, F32x4::max),
        BINARY_MINIMUM => broadcast_f32(a, b, out, shape, sa, sb, F32x4::min),
        _ => debug_assert!(false, "unknown binary op {op}"),
    }
}

/// `binary_f32` for int32: wrapping ADD, SUB, MUL and MAXIMUM, MINIMUM.
pub fn binary_i32(
    op: u32,
    a: &[i32],
    b: &[i32],
    out: &mut [i32],
    shape: &[i32],
    sa: &[i32],
    sb: &[i32],
) {
    match op {
        BINARY_ADD => broadcast_scalar(a, b, out, shape, sa, sb, i32::wrapping_add),
        BINARY_SUB => broadcast_scalar(a, b, out, shape, sa, sb, i32::wrapping_sub),
        BINARY_MUL => broadcast_scalar(a, b, out, shape, sa, sb, i32::wrapping_mul),
        BINARY_MAXIMUM => broadcast_scalar(a, b, out, shape, sa, sb, i32::max),
        BINARY_MINIMUM => broadcast_scalar(a, b, out, shape, sa, sb, i32::min),
        _ => debug_assert!(false, "unknown int32 binary op {op}"),
    }
}

/// Broadcast comparison (`CMP_*`) writing 1 or 0; any comparison with NaN is false but `NE`.
pub fn compare_f32(
    op: u32,
    a: &[f32],
    b: &[f32],
    out: &mut [i32],
    shape: &[i32],
    sa: &[i32],
    sb: &[i32],
) {
    compare(op, a, b, out, shape, sa, sb)
}

pub fn compare_i32(
    op: u32,
    a: &[i32],
    b: &[i32],
    out: &mut [i32],
    shape: &[i32],
    sa: &[i32],
    sb: &[i32],
) {
    compare(op, a, b, out, shape, sa, sb)
}

fn compare<T: Copy + PartialOrd>(
    op: u32,
    a: &[T],
    b: &[T],
    out: &mut [i32],
    shape: &[i32],
    sa: &[i32],
    sb: &[i32],
) {
    let (a, b, o) = (a, b, out);
    match op {
        CMP_EQ => broadcast_scalar(a, b, o, shape, sa, sb, |x: T, y: T| (x == y) as i32),
        CMP_NE => broadcast_scalar(a, b, o, shape, sa, sb, |x: T, y: T| (x != y) as i32),
        CMP_LT => broadcast_scalar(a, b, o, shape, sa, sb, |x: T, y: T| (x < y) as i32),
        CMP_LE => broadcast_scalar(a, b, o, shape, sa, sb, |x: T, y: T| (x <= y) as i32),
        CMP_GT => broadcast_scalar(a, b, o, shape, sa, sb, |x: T, y: T| (x > y) as i32),
        CMP_GE => broadcast_scalar(a, b, o, shape, sa, sb, |x: T, y: T| (x >= y) as i32),
        _ => debug_assert!(false, "unknown comparison {op}"),
    }
}

/// One broadcast row of `where`: the contiguous case as a zipped loop LLVM vectorises.
#[inline(always)]
fn where_row(out: &mut [u32], c: &[i32], ic: usize, a: &[u32], ia: usize, b: &[u32], ib: usize) {
    if out.is_empty() {
        return;
    }
    // Unit and zero strides (a run, or one value repeated: a mask over rows, a scalar fill)
    // get compile-time strides, which LLVM turns into SIMD selects; a general stride is a loop
    // of bounds-checked loads, several times slower.
    match (ic, ia, ib) {
        (1, 1, 1) => where_fixed::<1, 1, 1>(out, c, a, b),
        (1, 1, 0) => where_fixed::<1, 1, 0>(out, c, a, b),
        (1, 0, 1) => where_fixed::<1, 0, 1>(out, c, a, b),
        (1, 0, 0) => where_fixed::<1, 0, 0>(out, c, a, b),
        (0, _, _) => {
            // One condition for the whole row: a copy of one operand.
            let (src, is) = if c[0] != 0 { (a, ia) } else { (b, ib) };
            match is {
                1 => out.copy_from_slice(&src[..out.len()]),
                0 => out.fill(src[0]),
                _ => out
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, o)| *o = src[i * is]),
            }
        }
        _ => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = if c[i * ic] != 0 { a[i * ia] } else { b[i * ib] };
            }
        }
    }
}

/// `where_row` with strides known at compile time (each 0 or 1). The operands are cut to the
/// row's extent first, so the loop needs no bounds checks.
fn where_fixed<const IC: usize, const IA: usize, const IB: usize>(
    out: &mut [u32],
    c: &[i32],
    a: &[u32],
    b: &[u32],
) {
    let last = out.len() - 1;
    let (c, a, b) = (&c[..=last * IC], &a[..=last * IA], &b[..=last * IB]);
    for (i, o) in out.iter_mut().enumerate() {
        *o = if c[i * IC] != 0 { a[i * IA] } else { b[i * IB] };
    }
}

/// `out = cond != 0 ? a : b` on 32-bit words, all three broadcast over `shape`.
#[allow(clippy::too_many_arguments)]
pub fn where_u32(
    cond: &[i32],
    a: &[u32],
    b: &[u32],
    out: &mut [u32],
    shape: &[i32],
    sc: &[i32],
    sa: &[i32],
    sb: &[i32],
) {
    let nd = shape.len();
    debug_assert!(sc.len() == nd && sa.len() == nd && sb.len() == nd);
    let cs = contiguous_strides(shape);
    let cs = &cs[..nd];
    let flat = (
        flat_stride(shape, sc, cs),
        flat_stride(shape, sa, cs),
        flat_stride(shape, sb, cs),
    );
    if let (Some(ic), Some(ia), Some(ib)) = flat {
        if !out.is_empty() {
            where_row(out, cond, ic, a, ia, b, ib);
        }
        return;
    }
    for_each_row(shape, [sc, sa, sb, cs], |off, len, st| {
        let o = &mut out[off[3]..off[3] + len];
        where_row(
            o,
            &cond[off[0]..],
            st[0],
            &a[off[1]..],
            st[1],
            &b[off[2]..],
            st[2],
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::reference::{erf64, erfc64_signed};
    use core::f64::consts::PI;

    /// Lengths that exercise empty input, the scalar-only tail and SIMD body plus tails.
    const LENS: [usize; 9] = [0, 1, 3, 4, 5, 15, 16, 17, 257];

    /// xorshift64: reproducible inputs without a dependency.
    struct Rng(u64);
    impl Rng {
        fn unit(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
        fn range(&mut self, lo: f64, hi: f64) -> f32 {
            (lo + (hi - lo) * self.unit()) as f32
        }
        fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
            (0..n).map(|_| self.range(lo, hi)).collect()
        }
    }

    /// Matches an f64 reference within `rtol * |want| + atol`; infinities, zeros and NaN must
    /// agree exactly with the reference rounded to f32.
    fn close(got: f32, want: f64, rtol: f64, atol: f64) -> bool {
        if want.is_nan() {
            return got.is_nan();
        }
        if (want as f32).is_infinite() {
            return got == want as f32;
        }
        (got as f64 - want).abs() <= rtol * want.abs() + atol
    }

    // ------------------------------------------------------------ unary references

    /// One unary op under test: its parameters, input range, f64 forward, and the f64
    /// derivative as a function of what the backward is given (`saved`).
    struct Case {
        name: &'static str,
        op: u32,
        p: (f32, f32),
        range: (f64, f64),
        fwd: fn(f64, f64, f64) -> f64,
        /// d op / dx from the saved value (the output when `saves_output`, else the input).
        grad: fn(f64, f64, f64) -> f64,
        saves_output: bool,
        /// `[rtol, atol]` of the forward, then of the backward, against the references.
        tol: [f64; 4],
        /// Points where the op has a kink (no finite difference check near them).
        kinks: &'static [f64],
    }

    fn sigmoid64(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }
    fn phi64(x: f64) -> f64 {
        (-0.5 * x * x).exp() / (2.0 * PI).sqrt()
    }
    /// `Φ(x)` through erfc: `(1 + erf(x/√2))/2` cancels in f64 too for x < -5.
    fn cdf64(x: f64) -> f64 {
        0.5 * erfc64_signed(-x / 2f64.sqrt())
    }
    fn gelu_tanh_u(x: f64) -> f64 {
        (2.0 / PI).sqrt() * (x + 0.044715 * x * x * x)
    }
    /// `0.5 x (1 + tanh u)` as `x sigmoid(2u)`, exact in f64 where `1 + tanh u` is not.
    fn gelu_tanh64(x: f64, _: f64, _: f64) -> f64 {
        x * sigmoid64(2.0 * gelu_tanh_u(x))
    }
    /// `0.5 (1 + t) + 0.5 x (1 - t²) u'` with `1 + t = 2s`, `1 - t² = 4 s (1 - s)`.
    fn gelu_tanh_grad64(x: f64, _: f64, _: f64) -> f64 {
        let u = gelu_tanh_u(x);
        let (s, s_bar) = (sigmoid64(2.0 * u), sigmoid64(-2.0 * u));
        let du = (2.0 / PI).sqrt() * (1.0 + 3.0 * 0.044715 * x * x);
        s + 2.0 * x * s * s_bar * du
    }
    fn sign64(x: f64) -> f64 {
        if x > 0.0 {
            1.0
        } else if x < 0.0 {
            -1.0
        } else {
            0.0
        }
    }
    fn pow64(x: f64, p: f64, _: f64) -> f64 {
        x.powf(p)
    }
    fn pow_grad64(x: f64, p: f64, _: f64) -> f64 {
        if p == 0.0 {
            0.0
        } else {
            p * x.powf(p - 1.0)
        }
    }
    fn leaky64(x: f64, p: f64, _: f64) -> f64 {
        if x > 0.0 {
            x
        } else {
            p * x
        }
    }
    fn leaky_grad64(x: f64, p: f64, _: f64) -> f64 {
        if x > 0.0 {
            1.0
        } else {
            p
        }
    }
    fn clamp64(x: f64, lo: f64, hi: f64) -> f64 {
        x.max(lo).min(hi)
    }
    fn clamp_grad64(x: f64, lo: f64, hi: f64) -> f64 {
        (lo <= x && x <= hi) as i32 as f64
    }
    fn affine64(x: f64, a: f64, b: f64) -> f64 {
        x * a + b
    }
    fn affine_grad64(_: f64, a: f64, _: f64) -> f64 {
        a
    }

    /// One rounding at most, in the forward and in the backward: half an ulp.
    const EXACT: [f64; 4] = [6.0e-8, 0.0, 6.0e-8, 0.0];
    /// Transcendental or multi-step ops: a few ulp.
    const FEW_ULP: [f64; 4] = [3e-7, 0.0, 3e-7, 0.0];
    /// GELU's derivative crosses zero near x = -0.75, where only an absolute bound holds.
    const GELU: [f64; 4] = [5e-7, 0.0, 5e-7, 1e-7];
    /// For x < 0 tanh-GELU is about `x e^t` with `t = 2 sqrt(2/pi) (x + 0.044715 x³)`: the few
    /// ulp of rounding in `t` (and in its f32 constants, as in PyTorch) become that many ulp of
    /// `|t|` in the result, so its `rtol` is scaled by `1 + |t|` (see `rtol_scale`). PyTorch's
    /// `1 + tanh` form loses far more there.
    const GELU_TANH: [f64; 4] = [3e-7, 0.0, 3e-7, 1e-7];
    /// `x p0 + p1` rounds twice and cancels near `x = -p1/p0`: bounded by an ulp of `x p0`.
    const AFFINE: [f64; 4] = [6e-8, 1e-6, 6e-8, 0.0];
    /// The backward squares a rounded reciprocal: about two ulp.
    const RECIP: [f64; 4] = [6e-8, 0.0, 3e-7, 0.0];
    const POW: [f64; 4] = [5e-7, 1e-30, 5e-7, 1e-30];

    /// sin/cos: a few ulp, and an absolute bound next to their zeros (see `special`).
    const TRIG: [f64; 4] = [3e-7, 6e-8, 3e-7, 1.2e-7];
    /// Smooth activations: a few ulp; SiLU's and Mish's derivatives cross zero.
    const ACT: [f64; 4] = [4e-7, 1e-10, 5e-7, 1e-7];

    fn round_even64(x: f64) -> f64 {
        if (x - x.trunc()).abs() == 0.5 {
            2.0 * (x / 2.0).round()
        } else {
            x.round()
        }
    }
    fn softplus64(x: f64, beta: f64, threshold: f64) -> f64 {
        if x * beta > threshold {
            x
        } else {
            (x * beta).exp().ln_1p() / beta
        }
    }
    fn softplus_grad64(x: f64, beta: f64, threshold: f64) -> f64 {
        if x * beta > threshold {
            1.0
        } else {
            sigmoid64(x * beta)
        }
    }
    fn mish64(x: f64, _: f64, _: f64) -> f64 {
        x * x.exp().ln_1p().tanh()
    }
    fn mish_grad64(x: f64, _: f64, _: f64) -> f64 {
        let t = x.exp().ln_1p().tanh();
        t + x * sigmoid64(x) * (1.0 - t * t)
    }
    fn elu64(x: f64, a: f64, _: f64) -> f64 {
        if x > 0.0 {
            x
        } else {
            a * x.exp_m1()
        }
    }
    fn elu_grad64(x: f64, a: f64, _: f64) -> f64 {
        if x > 0.0 {
            1.0
        } else {
            a * x.exp()
        }
    }
    fn hardtanh_grad64(x: f64, lo: f64, hi: f64) -> f64 {
        (lo < x && x < hi) as i32 as f64
    }

    /// Error growth with the input, for the ops where it is inherent (see `GELU_TANH`).
    fn rtol_scale(op: u32, x: f64) -> f64 {
        if op == UNARY_GELU_TANH {
            1.0 + 2.0 * gelu_tanh_u(x).abs()
        } else {
            1.0
        }
    }

    #[rustfmt::skip]
    fn cases() -> Vec<Case> {
        let c = |name, op, p, range, fwd, grad, saves_output, tol, kinks| Case {
            name, op, p, range, fwd, grad, saves_output, tol, kinks,
        };
        let none = (0.0, 0.0);
        let mut v = vec![
            c("neg", UNARY_NEG, none, (-8.0, 8.0), |x, _, _| -x, |_, _, _| -1.0, false, EXACT, &[]),
            c("exp", UNARY_EXP, none, (-20.0, 20.0), |x, _, _| x.exp(), |y, _, _| y, true, FEW_ULP, &[]),
            c("log", UNARY_LOG, none, (1e-3, 50.0), |x, _, _| x.ln(), |x, _, _| 1.0 / x, false, FEW_ULP, &[]),
            c("sqrt", UNARY_SQRT, none, (1e-3, 50.0), |x, _, _| x.sqrt(), |y, _, _| 0.5 / y, true, EXACT, &[]),
            c("rsqrt", UNARY_RSQRT, none, (1e-3, 50.0), |x, _, _| 1.0 / x.sqrt(), |y, _, _| -0.5 * y * y * y, true, FEW_ULP, &[]),
            c("abs", UNARY_ABS, none, (-8.0, 8.0), |x, _, _| x.abs(), |x, _, _| sign64(x), false, EXACT, &[0.0]),
            c("relu", UNARY_RELU, none, (-8.0, 8.0), |x, _, _| x.max(0.0), |y, _, _| (y > 0.0) as i32 as f64, true, EXACT, &[0.0]),
            c("sigmoid", UNARY_SIGMOID, none, (-30.0, 30.0), |x, _, _| sigmoid64(x), |y, _, _| y * (1.0 - y), true, FEW_ULP, &[]),
            c("tanh", UNARY_TANH, none, (-8.0, 8.0), |x, _, _| x.tanh(), |y, _, _| 1.0 - y * y, true, FEW_ULP, &[]),
            c("gelu", UNARY_GELU, none, (-8.0, 8.0), |x, _, _| x * cdf64(x), |x, _, _| cdf64(x) + x * phi64(x), false, GELU, &[]),
            c("gelu_tanh", UNARY_GELU_TANH, none, (-10.0, 8.0), gelu_tanh64, gelu_tanh_grad64, false, GELU_TANH, &[]),
            c("leaky_relu", UNARY_LEAKY_RELU, (0.01, 0.0), (-8.0, 8.0), leaky64, leaky_grad64, false, EXACT, &[0.0]),
            c("leaky_relu", UNARY_LEAKY_RELU, (0.2, 0.0), (-8.0, 8.0), leaky64, leaky_grad64, false, EXACT, &[0.0]),
            c("clamp", UNARY_CLAMP, (-1.0, 2.5), (-8.0, 8.0), clamp64, clamp_grad64, false, EXACT, &[-1.0, 2.5]),
            c("clamp", UNARY_CLAMP, (f32::NEG_INFINITY, 0.5), (-8.0, 8.0), clamp64, clamp_grad64, false, EXACT, &[0.5]),
            c("sign", UNARY_SIGN, none, (-8.0, 8.0), |x, _, _| sign64(x), |_, _, _| 0.0, false, EXACT, &[0.0]),
            c("affine", UNARY_AFFINE, (2.5, -1.0), (-8.0, 8.0), affine64, affine_grad64, false, AFFINE, &[]),
            c("affine", UNARY_AFFINE, (1.0, 3.0), (-8.0, 8.0), affine64, affine_grad64, false, EXACT, &[]),
            c("affine", UNARY_AFFINE, (-3.0, 0.0), (-8.0, 8.0), affine64, affine_grad64, false, EXACT, &[]),
            c("reciprocal", UNARY_RECIPROCAL, none, (0.05, 8.0), |x, _, _| 1.0 / x, |x, _, _| -1.0 / (x * x), false, RECIP, &[]),
            c("reciprocal", UNARY_RECIPROCAL, none, (-8.0, -0.05), |x, _, _| 1.0 / x, |x, _, _| -1.0 / (x * x), false, RECIP, &[]),
            c("div_scalar", UNARY_DIV_SCALAR, (255.0, 0.0), (-8.0, 8.0), |x, a, _| x / a, |_, a, _| 1.0 / a, false, EXACT, &[]),
            c("div_scalar", UNARY_DIV_SCALAR, (-0.3, 0.0), (-8.0, 8.0), |x, a, _| x / a, |_, a, _| 1.0 / a, false, EXACT, &[]),
            c("square", UNARY_SQUARE, none, (-8.0, 8.0), |x, _, _| x * x, |x, _, _| 2.0 * x, false, EXACT, &[]),
            c("sin", UNARY_SIN, none, (-20.0, 20.0), |x, _, _| x.sin(), |x, _, _| x.cos(), false, TRIG, &[]),
            c("cos", UNARY_COS, none, (-20.0, 20.0), |x, _, _| x.cos(), |x, _, _| -x.sin(), false, TRIG, &[]),
            c("erf", UNARY_ERF, none, (-5.0, 5.0), |x, _, _| erf64(x), |x, _, _| 2.0 / PI.sqrt() * (-x * x).exp(), false, FEW_ULP, &[]),
            c("log1p", UNARY_LOG1P, none, (-0.9, 20.0), |x, _, _| x.ln_1p(), |x, _, _| 1.0 / (1.0 + x), false, FEW_ULP, &[]),
            c("log1p", UNARY_LOG1P, none, (-1e-3, 1e-3), |x, _, _| x.ln_1p(), |x, _, _| 1.0 / (1.0 + x), false, FEW_ULP, &[]),
            c("expm1", UNARY_EXPM1, none, (-10.0, 10.0), |x, _, _| x.exp_m1(), |x, _, _| x.exp(), false, FEW_ULP, &[]),
            c("expm1", UNARY_EXPM1, none, (-1e-3, 1e-3), |x, _, _| x.exp_m1(), |x, _, _| x.exp(), false, FEW_ULP, &[]),
            c("floor", UNARY_FLOOR, none, (-8.0, 8.0), |x, _, _| x.floor(), |_, _, _| 0.0, false, EXACT, &[]),
            c("ceil", UNARY_CEIL, none, (-8.0, 8.0), |x, _, _| x.ceil(), |_, _, _| 0.0, false, EXACT, &[]),
            c("round", UNARY_ROUND, none, (-8.0, 8.0), |x, _, _| round_even64(x), |_, _, _| 0.0, false, EXACT, &[]),
            c("softplus", UNARY_SOFTPLUS, (1.0, 20.0), (-30.0, 30.0), softplus64, softplus_grad64, false, ACT, &[20.0]),
            c("softplus", UNARY_SOFTPLUS, (2.0, 5.0), (-10.0, 10.0), softplus64, softplus_grad64, false, ACT, &[2.5]),
            c("silu", UNARY_SILU, none, (-20.0, 20.0), |x, _, _| x * sigmoid64(x), |x, _, _| { let s = sigmoid64(x); s * (1.0 + x * (1.0 - s)) }, false, ACT, &[]),
            c("mish", UNARY_MISH, none, (-20.0, 20.0), mish64, mish_grad64, false, ACT, &[]),
            c("elu", UNARY_ELU, (1.0, 0.0), (-8.0, 8.0), elu64, elu_grad64, false, FEW_ULP, &[0.0]),
            c("elu", UNARY_ELU, (0.5, 0.0), (-8.0, 8.0), elu64, elu_grad64, false, FEW_ULP, &[0.0]),
            c("hardtanh", UNARY_HARDTANH, (-1.0, 2.0), (-8.0, 8.0), clamp64, hardtanh_grad64, false, EXACT, &[-1.0, 2.0]),
        ];
        // Every shortcut exponent and a few general ones; negative bases only where real.
        let pows = [(0.0, -8.0), (1.0, -8.0), (2.0, -8.0), (3.0, -8.0), (-2.0, 0.1), (0.5, 0.01), (-0.5, 0.01), (-1.0, 0.1), (2.5, 0.0), (-1.7, 0.1), (4.0, -4.0)];
        for &(p, lo) in &pows {
            v.push(c("pow_scalar", UNARY_POW_SCALAR, (p, 0.0), (lo, 8.0), pow64, pow_grad64, false, POW, &[]));
        }
        for &p in &[2.0, 0.5, 10.0, core::f32::consts::E, 1.0] {
            v.push(c("rpow_scalar", UNARY_RPOW_SCALAR, (p, 0.0), (-10.0, 10.0), |x, p, _| p.powf(x), |x, p, _| p.ln() * p.powf(x), false, POW, &[]));
        }
        v
    }

    fn run_unary(op: u32, x: &[f32], p: (f32, f32)) -> Vec<f32> {
        let mut out = vec![f32::NAN; x.len()];
        unary_f32(op, x, &mut out, p.0, p.1);
        out
    }

    fn run_bwd(op: u32, saved: &[f32], g: &[f32], p: (f32, f32)) -> Vec<f32> {
        let mut out = vec![f32::NAN; g.len()];
        unary_bwd_f32(op, saved, g, &mut out, p.0, p.1);
        out
    }

    #[test]
    fn unary_forward_matches_f64_at_every_length() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for c in cases() {
            for &n in LENS.iter().chain(&[20_000]) {
                let x = rng.vec(n, c.range.0, c.range.1);
                let out = run_unary(c.op, &x, c.p);
                for (i, (&xi, &o)) in x.iter().zip(&out).enumerate() {
                    let want = (c.fwd)(xi as f64, c.p.0 as f64, c.p.1 as f64);
                    assert!(
                        close(o, want, c.tol[0] * rtol_scale(c.op, xi as f64), c.tol[1]),
                        "{} p={:?} n={n} [{i}] x={xi}: {o} vs {want}",
                        c.name,
                        c.p
                    );
                }
            }
        }
    }

    #[test]
    fn unary_backward_matches_analytic_derivative() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for c in cases() {
            for &n in LENS.iter().chain(&[20_000]) {
                let x = rng.vec(n, c.range.0, c.range.1);
                let g = rng.vec(n, -2.0, 2.0);
                let saved = if c.saves_output {
                    run_unary(c.op, &x, c.p)
                } else {
                    x.clone()
                };
                let out = run_bwd(c.op, &saved, &g, c.p);
                for i in 0..n {
                    let d = (c.grad)(saved[i] as f64, c.p.0 as f64, c.p.1 as f64);
                    let want = g[i] as f64 * d;
                    // Two roundings more than the forward: the product with g and one inside.
                    let ok = close(
                        out[i],
                        want,
                        c.tol[2] * rtol_scale(c.op, x[i] as f64),
                        c.tol[3],
                    );
                    assert!(
                        ok,
                        "{} p={:?} n={n} [{i}] x={} g={}: {} vs {want}",
                        c.name, c.p, x[i], g[i], out[i]
                    );
                }
            }
        }
    }

    /// The f64 derivative references agree with central differences of the f64 forwards, so the
    /// backward test above checks the right thing.
    #[test]
    fn analytic_derivatives_match_finite_differences() {
        let mut rng = Rng(0x5851_f42d_4c95_7f2d);
        for c in cases() {
            let (p0, p1) = (c.p.0 as f64, c.p.1 as f64);
            for _ in 0..200 {
                let x = rng.range(c.range.0, c.range.1) as f64;
                let h = 1e-5 * x.abs().max(1.0);
                if c.kinks.iter().any(|&k| (x - k).abs() < 2.0 * h)
                    || (c.op == UNARY_POW_SCALAR && x.abs() < 2.0 * h)
                {
                    continue;
                }
                let fd = ((c.fwd)(x + h, p0, p1) - (c.fwd)(x - h, p0, p1)) / (2.0 * h);
                let saved = if c.saves_output {
                    (c.fwd)(x, p0, p1)
                } else {
                    x
                };
                let d = (c.grad)(saved, p0, p1);
                assert!(
                    (fd - d).abs() <= 1e-6 * d.abs().max(1.0),
                    "{} p={:?} x={x}: fd {fd} vs {d}",
                    c.name,
                    c.p
                );
            }
        }
    }

    /// SIMD lanes and the padded tail run the same code: a value gives the same bits anywhere.
    #[test]
    fn tail_matches_simd_body() {
        let values = [
            -7.5,
            -1.0,
            -0.3,
            -0.0,
            0.0,
            1e-20,
            0.2,
            0.7,
            1.5,
            3.0,
            40.0,
            f32::NAN,
            f32::INFINITY,
        ];
        for c in cases() {
            for &v in &values {
                let x = [v; 7];
                let out = run_unary(c.op, &x, c.p);
                let g = [1.5f32; 7];
                let back = run_bwd(c.op, &x, &g, c.p);
                for i in 1..7 {
                    assert_eq!(
                        out[i].to_bits(),
                        out[0].to_bits(),
                        "{} forward lane {i} at {v}",
                        c.name
                    );
                    assert_eq!(
                        back[i].to_bits(),
                        back[0].to_bits(),
                        "{} backward lane {i} at {v}",
                        c.name
                    );
                }
            }
        }
    }

    fn unary1(op: u32, x: f32, p0: f32, p1: f32) -> f32 {
        run_unary(op, &[x], (p0, p1))[0]
    }

    fn same(got: f32, want: f32) -> bool {
        (got.is_nan() && want.is_nan()) || got.to_bits() == want.to_bits()
    }

    #[test]
    fn unary_special_values() {
        let (inf, nan) = (f32::INFINITY, f32::NAN);
        let checks: &[(u32, f32, f32, f32, f32)] = &[
            (UNARY_RELU, nan, 0.0, 0.0, nan),
            (UNARY_RELU, -0.0, 0.0, 0.0, 0.0),
            (UNARY_RELU, -inf, 0.0, 0.0, 0.0),
            (UNARY_RELU, inf, 0.0, 0.0, inf),
            (UNARY_SIGN, nan, 0.0, 0.0, 0.0),
            (UNARY_SIGN, -0.0, 0.0, 0.0, 0.0),
            (UNARY_SIGN, -inf, 0.0, 0.0, -1.0),
            (UNARY_SIGN, 1e-40, 0.0, 0.0, 1.0),
            (UNARY_CLAMP, nan, -1.0, 1.0, nan),
            (UNARY_CLAMP, -inf, -1.0, 1.0, -1.0),
            (UNARY_CLAMP, 5.0, 2.0, 1.0, 1.0),
            (UNARY_LEAKY_RELU, nan, 0.1, 0.0, nan),
            (UNARY_LEAKY_RELU, -inf, 0.1, 0.0, -inf),
            (UNARY_ABS, -0.0, 0.0, 0.0, 0.0),
            (UNARY_NEG, 0.0, 0.0, 0.0, -0.0),
            (UNARY_EXP, -inf, 0.0, 0.0, 0.0),
            (UNARY_LOG, 0.0, 0.0, 0.0, -inf),
            (UNARY_LOG, -1.0, 0.0, 0.0, nan),
            (UNARY_SQRT, -1.0, 0.0, 0.0, nan),
            (UNARY_RSQRT, 0.0, 0.0, 0.0, inf),
            (UNARY_RSQRT, -0.0, 0.0, 0.0, -inf),
            (UNARY_SIGMOID, -inf, 0.0, 0.0, 0.0),
            (UNARY_SIGMOID, inf, 0.0, 0.0, 1.0),
            (UNARY_TANH, -inf, 0.0, 0.0, -1.0),
            (UNARY_GELU, inf, 0.0, 0.0, inf),
            (UNARY_GELU, -0.0, 0.0, 0.0, -0.0),
            (UNARY_GELU, -40.0, 0.0, 0.0, -0.0),
            (UNARY_GELU_TANH, inf, 0.0, 0.0, inf),
            (UNARY_GELU_TANH, -1e13, 0.0, 0.0, -0.0),
            (UNARY_RECIPROCAL, -0.0, 0.0, 0.0, -inf),
            (UNARY_SQUARE, nan, 0.0, 0.0, nan),
            (UNARY_AFFINE, -0.0, -2.0, 0.0, 0.0),
            (UNARY_AFFINE, -0.0, 1.0, 0.0, -0.0),
            (UNARY_POW_SCALAR, nan, 0.0, 0.0, 1.0),
            (UNARY_POW_SCALAR, nan, 1.0, 0.0, nan),
            (UNARY_POW_SCALAR, -3.0, 2.0, 0.0, 9.0),
            (UNARY_POW_SCALAR, -2.0, 3.0, 0.0, -8.0),
            (UNARY_POW_SCALAR, -2.0, 5.0, 0.0, -32.0),
            (UNARY_POW_SCALAR, -2.0, -3.0, 0.0, -0.125),
            (UNARY_POW_SCALAR, -1.0, 0.5, 0.0, nan),
            (UNARY_POW_SCALAR, -1.0, 2.5, 0.0, nan),
            (UNARY_POW_SCALAR, 0.0, -1.0, 0.0, inf),
            (UNARY_POW_SCALAR, 0.0, -2.0, 0.0, inf),
            (UNARY_POW_SCALAR, 0.0, -0.5, 0.0, inf),
            (UNARY_POW_SCALAR, 0.0, -1.5, 0.0, inf),
            (UNARY_POW_SCALAR, inf, -1.5, 0.0, 0.0),
            (UNARY_RPOW_SCALAR, nan, 2.0, 0.0, nan),
            (UNARY_RPOW_SCALAR, nan, 1.0, 0.0, 1.0),
            (UNARY_RPOW_SCALAR, 0.5, -2.0, 0.0, nan),
            (UNARY_RPOW_SCALAR, 3.0, -2.0, 0.0, -8.0),
            (UNARY_RPOW_SCALAR, 10.0, 2.0, 0.0, 1024.0),
            (UNARY_RPOW_SCALAR, -inf, 2.0, 0.0, 0.0),
            (UNARY_RPOW_SCALAR, 200.0, 2.0, 0.0, inf),
        ];
        for &(op, x, p0, p1, want) in checks {
            let got = unary1(op, x, p0, p1);
            assert!(
                same(got, want),
                "op {op} ({x}; {p0}, {p1}) = {got}, want {want}"
            );
        }
    }

    fn bwd1(op: u32, saved: f32, g: f32, p0: f32, p1: f32) -> f32 {
        run_bwd(op, &[saved], &[g], (p0, p1))[0]
    }

    #[test]
    fn unary_backward_special_rules() {
        let nan = f32::NAN;
        let checks: &[(u32, f32, f32, f32, f32, f32)] = &[
            // clamp passes the gradient at both (inclusive) bounds, not outside or at NaN
            (UNARY_CLAMP, -1.0, 3.0, -1.0, 2.0, 3.0),
            (UNARY_CLAMP, 2.0, 3.0, -1.0, 2.0, 3.0),
            (UNARY_CLAMP, 2.5, 3.0, -1.0, 2.0, 0.0),
            (UNARY_CLAMP, nan, 3.0, -1.0, 2.0, 0.0),
            (UNARY_RELU, 0.0, 3.0, 0.0, 0.0, 0.0),
            (UNARY_ABS, 0.0, 3.0, 0.0, 0.0, 0.0),
            (UNARY_ABS, -0.5, 3.0, 0.0, 0.0, -3.0),
            (UNARY_LEAKY_RELU, 0.0, 3.0, 0.25, 0.0, 0.75),
            (UNARY_SIGN, 2.0, nan, 0.0, 0.0, 0.0),
            (UNARY_POW_SCALAR, 0.0, 3.0, 0.0, 0.0, 0.0),
            (UNARY_POW_SCALAR, nan, 3.0, 0.0, 0.0, 0.0),
            (UNARY_POW_SCALAR, nan, 3.0, 1.0, 0.0, 3.0),
            (UNARY_POW_SCALAR, 0.0, 3.0, 2.0, 0.0, 0.0),
            (UNARY_POW_SCALAR, -2.0, 1.0, 3.0, 0.0, 12.0),
            (UNARY_POW_SCALAR, 4.0, 1.0, 0.5, 0.0, 0.25),
            (UNARY_RPOW_SCALAR, 1.0, 2.0, 0.0, 0.0, 0.0),
            (UNARY_RPOW_SCALAR, 0.0, 2.0, 0.0, 0.0, 0.0),
            (UNARY_RPOW_SCALAR, -1.0, 2.0, 0.0, 0.0, f32::NEG_INFINITY),
            (UNARY_SQRT, 0.0, 1.0, 0.0, 0.0, f32::INFINITY),
            // hardtanh, unlike clamp, passes no gradient at the bounds; NaN passes it
            (UNARY_HARDTANH, -1.0, 3.0, -1.0, 2.0, 0.0),
            (UNARY_HARDTANH, 2.0, 3.0, -1.0, 2.0, 0.0),
            (UNARY_HARDTANH, 0.5, 3.0, -1.0, 2.0, 3.0),
            (UNARY_HARDTANH, nan, 3.0, -1.0, 2.0, 3.0),
            // elu_backward takes the x <= 0 branch at 0: alpha
            (UNARY_ELU, 0.0, 3.0, 0.5, 0.0, 1.5),
            (UNARY_ABS, nan, 3.0, 0.0, 0.0, 0.0),
            (UNARY_ROUND, 0.5, 3.0, 1.0, 0.0, 0.0),
        ];
        for &(op, s, g, p0, p1, want) in checks {
            let got = bwd1(op, s, g, p0, p1);
            assert!(
                same(got, want),
                "bwd op {op} (saved {s}, g {g}; {p0}, {p1}) = {got}, want {want}"
            );
        }
    }

    // ------------------------------------------------------------ fills and casts

    #[test]
    fn fill_arange_and_casts() {
        for &n in &LENS {
            let mut w = vec![0u32; n];
            fill_u32(&mut w, 0x7fc0_0001);
            assert!(w.iter().all(|&v| v == 0x7fc0_0001));

            let mut f = vec![0.0f32; n];
            arange_f32(&mut f, 1.0e7, 0.1);
            for (i, &v) in f.iter().enumerate() {
                assert_eq!(v, (1.0e7 + i as f64 * 0.1) as f32);
            }
            arange_f32(&mut f, -3.5, -0.25);
            for (i, &v) in f.iter().enumerate() {
                assert_eq!(v, -3.5 - 0.25 * i as f32);
            }

            let mut a = vec![0i32; n];
            arange_i32(&mut a, i32::MAX - 2, 1);
            for (i, &v) in a.iter().enumerate() {
                assert_eq!(v, (i32::MAX - 2).wrapping_add(i as i32));
            }
            arange_i32(&mut a, 5, -3);
            for (i, &v) in a.iter().enumerate() {
                assert_eq!(v, 5 - 3 * i as i32);
            }

            let pool = [
                2.9,
                -2.9,
                -0.5,
                f32::NAN,
                f32::INFINITY,
                f32::NEG_INFINITY,
                3e9,
                -3e9,
                2147483520.0,
                -2147483648.0,
                7.0,
            ];
            let want = [
                2,
                -2,
                0,
                0,
                i32::MAX,
                i32::MIN,
                i32::MAX,
                i32::MIN,
                2147483520,
                i32::MIN,
                7,
            ];
            let x: Vec<f32> = (0..n).map(|i| pool[i % pool.len()]).collect();
            let mut out = vec![1i32; n];
            cast_f32_i32(&x, &mut out);
            for (i, &v) in out.iter().enumerate() {
                assert_eq!(v, want[i % pool.len()], "cast {}", x[i]);
            }

            let ints = [
                16_777_217,
                -16_777_219,
                i32::MAX,
                i32::MIN,
                0,
                -1,
                123_456_789,
            ];
            let want = [
                16_777_216.0,
                -16_777_220.0,
                2147483648.0,
                -2147483648.0,
                0.0,
                -1.0,
                123_456_792.0,
            ];
            let x: Vec<i32> = (0..n).map(|i| ints[i % ints.len()]).collect();
            let mut out = vec![0.5f32; n];
            cast_i32_f32(&x, &mut out);
            for (i, &v) in out.iter().enumerate() {
                assert_eq!(v, want[i % ints.len()] as f32);
            }

            let mut rng = Rng(n as u64 + 1);
            let mut dst = rng.vec(n, -1e3, 1e3);
            let src = rng.vec(n, -1e3, 1e3);
            let want: Vec<f32> = dst.iter().zip(&src).map(|(a, b)| a + b).collect();
            add_inplace_f32(&mut dst, &src);
            assert_eq!(dst, want);
        }
    }

    // ------------------------------------------------------------ broadcasting

    /// Row-major strides of `dims`, with 0 where the operand has size 1 but `out` does not.
    fn bstrides(dims: &[i32], out: &[i32]) -> Vec<i32> {
        let mut s = vec![0; dims.len()];
        let mut acc = 1;
        for d in (0..dims.len()).rev() {
            s[d] = if dims[d] == 1 && out[d] != 1 { 0 } else { acc };
            acc *= dims[d];
        }
        s
    }

    /// Offsets of every output element into an operand with strides `s`, in output order.
    fn offsets(shape: &[i32], s: &[i32]) -> Vec<usize> {
        let n: i32 = shape.iter().product();
        (0..n)
            .map(|flat| {
                let (mut rem, mut off) = (flat, 0);
                for d in (0..shape.len()).rev() {
                    off += (rem % shape[d]) * s[d];
                    rem /= shape[d];
                }
                off as usize
            })
            .collect()
    }

    /// A broadcast layout: output shape, operand strides and operand buffer lengths.
    struct Layout {
        name: &'static str,
        shape: Vec<i32>,
        sa: Vec<i32>,
        sb: Vec<i32>,
        na: usize,
        nb: usize,
    }

    fn layout(name: &'static str, shape: &[i32], a: &[i32], b: &[i32]) -> Layout {
        Layout {
            name,
            shape: shape.to_vec(),
            sa: bstrides(a, shape),
            sb: bstrides(b, shape),
            na: a.iter().product::<i32>() as usize,
            nb: b.iter().product::<i32>() as usize,
        }
    }

    fn layouts() -> Vec<Layout> {
        let mut v = vec![];
        for &n in &LENS {
            let n = n as i32;
            v.push(layout("same shape 1-d", &[n], &[n], &[n]));
            v.push(layout("scalar op tensor", &[n], &[1], &[n]));
            v.push(layout("tensor op scalar", &[n], &[n], &[1]));
        }
        v.push(layout("same shape 3-d", &[2, 3, 5], &[2, 3, 5], &[2, 3, 5]));
        v.push(layout("column op row", &[3, 4], &[3, 1], &[1, 4]));
        v.push(layout("row op column", &[5, 17], &[1, 17], &[5, 1]));
        v.push(layout(
            "both broadcast along rows",
            &[3, 4],
            &[3, 1],
            &[3, 1],
        ));
        v.push(layout("middle dim", &[2, 3, 5], &[2, 1, 5], &[2, 3, 5]));
        v.push(layout(
            "middle dim other side",
            &[2, 3, 6],
            &[2, 3, 6],
            &[2, 1, 6],
        ));
        v.push(layout("4-d", &[2, 4, 3, 5], &[2, 1, 3, 1], &[1, 4, 1, 5]));
        v.push(layout(
            "4-d scalar",
            &[2, 4, 3, 5],
            &[1, 1, 1, 1],
            &[2, 4, 3, 5],
        ));
        v.push(layout("empty dim", &[3, 0, 2], &[3, 0, 2], &[1, 1, 2]));
        // A transposed operand: buffer [5, 6] read as [6, 5] (inner stride 6, gathered).
        v.push(Layout {
            name: "transposed",
            shape: vec![6, 5],
            sa: vec![1, 6],
            sb: vec![5, 1],
            na: 30,
            nb: 30,
        });
        v
    }

    fn special_f32(rng: &mut Rng, n: usize) -> Vec<f32> {
        let specials = [
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1e-40,
            -3.0,
            2.0,
        ];
        (0..n)
            .map(|i| {
                if i % 5 == 3 {
                    specials[(i / 5) % specials.len()]
                } else {
                    rng.range(-10.0, 10.0)
                }
            })
            .collect()
    }

    fn ieee_max(a: f64, b: f64) -> f64 {
        if a.is_nan() || b.is_nan() {
            f64::NAN
        } else {
            a.max(b)
        }
    }

    fn ieee_min(a: f64, b: f64) -> f64 {
        if a.is_nan() || b.is_nan() {
            f64::NAN
        } else {
            a.min(b)
        }
    }

    type F64Op = fn(f64, f64) -> f64;
    type F64Cmp = fn(f64, f64) -> bool;
    type I32Op = fn(i32, i32) -> i32;

    #[test]
    fn binary_f32_broadcasts_every_op() {
        let ops: [(u32, F64Op, f64); 7] = [
            (BINARY_ADD, |a, b| a + b, 0.0),
            (BINARY_SUB, |a, b| a - b, 0.0),
            (BINARY_MUL, |a, b| a * b, 0.0),
            (BINARY_DIV, |a, b| a / b, 0.0),
            (BINARY_POW, f64::powf, 5e-7),
            (BINARY_MAXIMUM, ieee_max, 0.0),
            (BINARY_MINIMUM, ieee_min, 0.0),
        ];
        let mut rng = Rng(77);
        for l in layouts() {
            let a = special_f32(&mut rng, l.na);
            let b = special_f32(&mut rng, l.nb);
            let (oa, ob) = (offsets(&l.shape, &l.sa), offsets(&l.shape, &l.sb));
            for &(op, f, rtol) in &ops {
                let mut out = vec![f32::NAN; oa.len()];
                binary_f32(op, &a, &b, &mut out, &l.shape, &l.sa, &l.sb);
                for i in 0..out.len() {
                    let (x, y) = (a[oa[i]], b[ob[i]]);
                    let want = f(x as f64, y as f64);
                    let ok = if rtol == 0.0 {
                        same(out[i], want as f32) || out[i] == want as f32
                    } else {
                        close(out[i], want, rtol, 1e-44)
                    };
                    assert!(
                        ok,
                        "{} op {op} [{i}] {x}, {y}: {} vs {want}",
                        l.name, out[i]
                    );
                }
            }
        }
    }

    #[test]
    fn binary_i32_broadcasts_every_op() {
        let ops: [(u32, I32Op); 5] = [
            (BINARY_ADD, i32::wrapping_add),
            (BINARY_SUB, i32::wrapping_sub),
            (BINARY_MUL, i32::wrapping_mul),
            (BINARY_MAXIMUM, i32::max),
            (BINARY_MINIMUM, i32::min),
        ];
        let mut rng = Rng(78);
        let ints = |rng: &mut Rng, n: usize| -> Vec<i32> {
            (0..n)
                .map(|i| {
                    if i % 7 == 2 {
                        [i32::MAX, i32::MIN, 0][i % 3]
                    } else {
                        rng.range(-1e5, 1e5) as i32
                    }
                })
                .collect()
        };
        for l in layouts() {
            let (a, b) = (ints(&mut rng, l.na), ints(&mut rng, l.nb));
            let (oa, ob) = (offsets(&l.shape, &l.sa), offsets(&l.shape, &l.sb));
            for &(op, f) in &ops {
                let mut out = vec![-7; oa.len()];
                binary_i32(op, &a, &b, &mut out, &l.shape, &l.sa, &l.sb);
                for i in 0..out.len() {
                    assert_eq!(out[i], f(a[oa[i]], b[ob[i]]), "{} op {op} [{i}]", l.name);
                }
            }
        }
    }

    #[test]
    fn comparisons_broadcast_with_nan_rules() {
        let ops: [(u32, F64Cmp); 6] = [
            (CMP_EQ, |a, b| a == b),
            (CMP_NE, |a, b| a != b),
            (CMP_LT, |a, b| a < b),
            (CMP_LE, |a, b| a <= b),
            (CMP_GT, |a, b| a > b),
            (CMP_GE, |a, b| a >= b),
        ];
        let mut rng = Rng(79);
        for l in layouts() {
            // Few distinct values so equality is common; NaN and ±0 included.
            let pool = [0.0, -0.0, 1.0, -1.0, f32::NAN, f32::INFINITY, 2.5];
            let pick = |rng: &mut Rng, n: usize| -> Vec<f32> {
                (0..n).map(|_| pool[(rng.unit() * 7.0) as usize]).collect()
            };
            let (a, b) = (pick(&mut rng, l.na), pick(&mut rng, l.nb));
            let ai: Vec<i32> = a
                .iter()
                .map(|&v| if v.is_nan() { 9 } else { v as i32 })
                .collect();
            let bi: Vec<i32> = b
                .iter()
                .map(|&v| if v.is_nan() { 9 } else { v as i32 })
                .collect();
            let (oa, ob) = (offsets(&l.shape, &l.sa), offsets(&l.shape, &l.sb));
            for &(op, f) in &ops {
                let mut out = vec![-1; oa.len()];
                compare_f32(op, &a, &b, &mut out, &l.shape, &l.sa, &l.sb);
                let mut out_i = vec![-1; oa.len()];
                compare_i32(op, &ai, &bi, &mut out_i, &l.shape, &l.sa, &l.sb);
                for i in 0..out.len() {
                    let (x, y) = (a[oa[i]], b[ob[i]]);
                    assert_eq!(
                        out[i],
                        f(x as f64, y as f64) as i32,
                        "{} cmp {op} {x} {y}",
                        l.name
                    );
                    let (xi, yi) = (ai[oa[i]], bi[ob[i]]);
                    assert_eq!(
                        out_i[i],
                        f(xi as f64, yi as f64) as i32,
                        "{} cmp_i32 {op} {xi} {yi}",
                        l.name
                    );
                }
            }
        }
    }

    /// Every row kernel of `where`, for each operand's stride 0, 1 or 2 and rows of 1 to 9.
    #[test]
    fn where_rows_match_the_definition_for_every_stride() {
        let mut rng = Rng(81);
        for len in 1..10usize {
            for ic in 0..3 {
                for ia in 0..3 {
                    for ib in 0..3 {
                        let span = |s: usize| (len - 1) * s + 1;
                        let c: Vec<i32> = (0..span(ic))
                            .map(|_| [0, 1, -5][(rng.unit() * 3.0) as usize])
                            .collect();
                        let a: Vec<u32> = (0..span(ia) as u32).map(|i| 100 + i).collect();
                        let b: Vec<u32> = (0..span(ib) as u32).map(|i| 900 + i).collect();
                        let mut out = vec![0u32; len];
                        where_row(&mut out, &c, ic, &a, ia, &b, ib);
                        for (i, &o) in out.iter().enumerate() {
                            let want = if c[i * ic] != 0 { a[i * ia] } else { b[i * ib] };
                            assert_eq!(o, want, "len {len} strides {ic} {ia} {ib} [{i}]");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn where_broadcasts_three_operands() {
        let mut rng = Rng(80);
        // cond takes each layout's `a` side, `a` its `b` side, and `b` alternates between a
        // broadcast scalar and a contiguous operand. Payloads are NaN bit patterns: moved as is.
        for (idx, l) in layouts().into_iter().enumerate() {
            let nd = l.shape.len();
            let n = l.shape.iter().product::<i32>() as usize;
            let cond: Vec<i32> = (0..l.na)
                .map(|_| [0, 1, -5][(rng.unit() * 3.0) as usize])
                .collect();
            let a: Vec<u32> = (0..l.nb).map(|i| 0x7fc0_0000 + i as u32).collect();
            let (sb, nb) = if idx & 1 == 0 {
                (vec![0; nd], 1)
            } else {
                (contiguous_strides(&l.shape)[..nd].to_vec(), n)
            };
            let b: Vec<u32> = (0..nb).map(|i| 0xffc0_0000 + i as u32).collect();
            let mut out = vec![1u32; n];
            where_u32(&cond, &a, &b, &mut out, &l.shape, &l.sa, &l.sb, &sb);
            let oc = offsets(&l.shape, &l.sa);
            let (oa, ob) = (offsets(&l.shape, &l.sb), offsets(&l.shape, &sb));
            for i in 0..n {
                let want = if cond[oc[i]] != 0 { a[oa[i]] } else { b[ob[i]] };
                assert_eq!(out[i], want, "{} [{i}]", l.name);
            }
        }
    }
}
