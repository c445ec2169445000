//! Fused optimizer updates and the gradient norm used for clipping.
//!
//! Each `*_step_f32` reads a parameter's gradient once and updates the parameter and its state
//! buffers in place, in one pass, following PyTorch 1.13's single-tensor update rules operation
//! by operation (`mul_` then `add_`, `addcmul_` as `s + (v * a) * b`, `addcdiv_` as
//! `s + (v * a) / b`) so results stay within float32 rounding of PyTorch's.
//! Hyperparameters arrive as f64 and scalar expressions (`1 - beta1`, `lr / bias_correction1`)
//! are formed in f64 before rounding to f32, as PyTorch forms them in Python.
//! The last partial chunk runs the same vector code on a zero-padded copy, so tail elements get
//! exactly the values the SIMD body would give (padding lanes are discarded).
//! State buffers a call does not use (no momentum, no amsgrad, ...) are empty slices.

// Update rules take their hyperparameters one by one, in PyTorch's order.
#![allow(clippy::too_many_arguments)]

use crate::abi::{
    OPTIM_AMSGRAD, OPTIM_CENTERED, OPTIM_DECOUPLED, OPTIM_FIRST, OPTIM_MAXIMIZE, OPTIM_NESTEROV,
};
use crate::simd::F32x4;

#[inline(always)]
fn k(v: f64) -> F32x4 {
    F32x4::splat(v as f32)
}

/// Lanes `i..i + 4` of `s`, zero past its end.
#[inline(always)]
fn ld(s: &[f32], i: usize) -> F32x4 {
    let r = &s[i..];
    if r.len() >= 4 {
        F32x4::load(r)
    } else {
        let mut t = [0.0f32; 4];
        t[..r.len()].copy_from_slice(r);
        F32x4::load(&t)
    }
}

/// Stores the lanes of `v` that fall inside `s` at `i..i + 4`.
#[inline(always)]
fn st(v: F32x4, s: &mut [f32], i: usize) {
    let r = &mut s[i..];
    if r.len() >= 4 {
        v.store(r)
    } else {
        let n = r.len();
        r.copy_from_slice(&v.to_array()[..n]);
    }
}

/// Calls `f(i)` for `i = 0, 4, 8, ...` below `n`.
#[inline(always)]
fn chunks(n: usize, mut f: impl FnMut(usize)) {
    let mut i = 0;
    while i < n {
        f(i);
        i += 4;
    }
}

/// The gradient as the update sees it: negated under `maximize`, plus `weight_decay * param`
/// (skipped at 0, as PyTorch skips it, so an infinite parameter does not turn into NaN).
#[inline(always)]
fn effective_grad(g: F32x4, p: F32x4, maximize: bool, wd: Option<F32x4>) -> F32x4 {
    let g = if maximize { g.neg() } else { g };
    match wd {
        Some(w) => g.add(p.mul(w)),
        None => g,
    }
}

fn decay(weight_decay: f64) -> Option<F32x4> {
    if weight_decay != 0.0 {
        Some(k(weight_decay))
    } else {
        None
    }
}

/// `torch.optim.SGD`. `buf` is the momentum buffer (empty when `momentum == 0`); with
/// `OPTIM_FIRST` it is initialised to the gradient rather than decayed (PyTorch's first step).
pub fn sgd_step_f32(
    param: &mut [f32],
    grad: &[f32],
    buf: &mut [f32],
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    flags: u32,
) {
    let n = param.len();
    debug_assert_eq!(grad.len(), n);
    let use_buf = momentum != 0.0;
    debug_assert_eq!(buf.len(), if use_buf { n } else { 0 });
    let maximize = flags & OPTIM_MAXIMIZE != 0;
    let nesterov = flags & OPTIM_NESTEROV != 0;
    let first = flags & OPTIM_FIRST != 0;
    let wd = decay(weight_decay);
    let (m, damp, neg_lr) = (k(momentum), k(1.0 - dampening), k(-lr));
    chunks(n, |i| {
        let p = ld(param, i);
        let mut d = effective_grad(ld(grad, i), p, maximize, wd);
        if use_buf {
            let b = if first {
                d
            } else {
                ld(buf, i).mul(m).add(damp.mul(d))
            };
            st(b, buf, i);
            d = if nesterov { d.add(m.mul(b)) } else { b };
        }
        st(p.add(neg_lr.mul(d)), param, i);
    });
}

/// `torch.optim.Adam` and, with `OPTIM_DECOUPLED`, `AdamW` (the parameter is multiplied by
/// `1 - lr * weight_decay` instead of decay entering the gradient). `bias_correction1/2` are
/// `1 - beta ** step` for the step being taken. `max_exp_avg_sq` is empty without `OPTIM_AMSGRAD`.
pub fn adam_step_f32(
    param: &mut [f32],
    grad: &[f32],
    exp_avg: &mut [f32],
    exp_avg_sq: &mut [f32],
    max_exp_avg_sq: &mut [f32],
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    bias_correction1: f64,
    bias_correction2: f64,
    flags: u32,
) {
    let n = param.len();
    let amsgrad = flags & OPTIM_AMSGRAD != 0;
    debug_assert!(grad.len() == n && exp_avg.len() == n && exp_avg_sq.len() == n);
    debug_assert_eq!(max_exp_avg_sq.len(), if amsgrad { n } else { 0 });
    let maximize = flags & OPTIM_MAXIMIZE != 0;
    let decoupled = flags & OPTIM_DECOUPLED != 0;
    let (wd, shrink) = if decoupled {
        (
            None,
            decay(weight_decay).map(|_| k(1.0 - lr * weight_decay)),
        )
    } else {
        (decay(weight_decay), None)
    };
    let (b1, one_b1, b2, one_b2) = (k(beta1), k(1.0 - beta1), k(beta2), k(1.0 - beta2));
    let neg_step = k(-(lr / bias_correction1));
    let bc2_sqrt = k(bias_correction2.sqrt());
    let eps = k(eps);
    chunks(n, |i| {
        let mut p = ld(param, i);
        let g = effective_grad(ld(grad, i), p, maximize, wd);
        if let Some(s) = shrink {
            p = p.mul(s);
        }
        let m = ld(exp_avg, i).mul(b1).add(one_b1.mul(g));
        let mut v = ld(exp_avg_sq, i).mul(b2).add(one_b2.mul(g).mul(g));
        st(m, exp_avg, i);
        st(v, exp_avg_sq, i);
        if amsgrad {
            v = ld(max_exp_avg_sq, i).max(v);
            st(v, max_exp_avg_sq, i);
        }
        let denom = v.sqrt().div(bc2_sqrt).add(eps);
        st(p.add(neg_step.mul(m).div(denom)), param, i);
    });
}

/// `torch.optim.RMSprop`. `grad_avg` is empty unless `OPTIM_CENTERED`, `buf` (momentum) is
/// empty unless `momentum > 0`.
pub fn rmsprop_step_f32(
    param: &mut [f32],
    grad: &[f32],
    square_avg: &mut [f32],
    grad_avg: &mut [f32],
    buf: &mut [f32],
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    flags: u32,
) {
    let n = param.len();
    let centered = flags & OPTIM_CENTERED != 0;
    let use_buf = momentum > 0.0;
    debug_assert!(grad.len() == n && square_avg.len() == n);
    debug_assert_eq!(grad_avg.len(), if centered { n } else { 0 });
    debug_assert_eq!(buf.len(), if use_buf { n } else { 0 });
    let maximize = flags & OPTIM_MAXIMIZE != 0;
    let wd = decay(weight_decay);
    let (a, one_a, eps, mom, neg_lr) = (k(alpha), k(1.0 - alpha), k(eps), k(momentum), k(-lr));
    chunks(n, |i| {
        let p = ld(param, i);
        let g = effective_grad(ld(grad, i), p, maximize, wd);
        let sq = ld(square_avg, i).mul(a).add(one_a.mul(g).mul(g));
        st(sq, square_avg, i);
        let avg = if centered {
            let ga = ld(grad_avg, i).mul(a).add(one_a.mul(g));
            st(ga, grad_avg, i);
            sq.sub(ga.mul(ga)).sqrt()
        } else {
            sq.sqrt()
        };
        let avg = avg.add(eps);
        let p = if use_buf {
            let b = ld(buf, i).mul(mom).add(g.div(avg));
            st(b, buf, i);
            p.add(neg_lr.mul(b))
        } else {
            p.add(neg_lr.mul(g).div(avg))
        };
        st(p, param, i);
    });
}

/// `torch.optim.Adagrad` for its `step`-th update (1-based): the learning rate is
/// `lr / (1 + (step - 1) * lr_decay)`.
pub fn adagrad_step_f32(
    param: &mut [f32],
    grad: &[f32],
    state_sum: &mut [f32],
    lr: f64,
    lr_decay: f64,
    weight_decay: f64,
    eps: f64,
    step: f64,
    flags: u32,
) {
    let n = param.len();
    debug_assert!(grad.len() == n && state_sum.len() == n);
    let maximize = flags & OPTIM_MAXIMIZE != 0;
    let wd = decay(weight_decay);
    let neg_clr = k(-(lr / (1.0 + (step - 1.0) * lr_decay)));
    let eps = k(eps);
    chunks(n, |i| {
        let p = ld(param, i);
        let g = effective_grad(ld(grad, i), p, maximize, wd);
        let s = ld(state_sum, i).add(g.mul(g));
        st(s, state_sum, i);
        let std = s.sqrt().add(eps);
        st(p.add(neg_clr.mul(g).div(std)), param, i);
    });
}

/// Sets each subnormal in `x` (nonzero, magnitude below 2^-126) to a zero of its sign, as x86's
/// flush-to-zero mode stores them; NaN and every other value keep their bits. Optimizer state
/// goes through it after each update under `nb.setFlushDenormal(true)`: a moment whose gradient
/// stays zero decays geometrically into subnormals, and every later update of it then costs the
/// CPU a microcode assist per operation (wasm has no flush-to-zero mode to set).
pub fn flush_subnormal_f32(x: &mut [f32]) {
    let flush = |v: F32x4| {
        // |v| below the smallest normal; a NaN compares false and is kept.
        let tiny = v.abs().lt(F32x4::splat(f32::MIN_POSITIVE));
        F32x4::select(tiny, v.and(F32x4::splat_bits(0x8000_0000)), v)
    };
    let mut body = x.chunks_exact_mut(4);
    for c in &mut body {
        flush(F32x4::load(c)).store(c);
    }
    for v in body.into_remainder() {
        if v.abs() < f32::MIN_POSITIVE {
            *v = if v.is_sign_negative() { -0.0 } else { 0.0 };
        }
    }
}

/// `Σ |x|^p` in f64 for finite `p > 0`, or `max |x|` for `p = inf` (NaN if any element is NaN):
/// the per-tensor part of a gradient norm, accumulated without float32 rounding.
pub fn pow_sum_f32(x: &[f32], p: f64) -> f64 {
    if p == f64::INFINITY {
        let mut m = 0.0f64;
        for &v in x {
            let a = (v as f64).abs();
            if a > m || a.is_nan() {
                m = a;
                if a.is_nan() {
                    break;
                }
            }
        }
        return m;
    }
    // four partial sums: shorter dependency chains, and less error growth on long inputs
    let mut acc = [0.0f64; 4];
    let term = |v: f32| -> f64 {
        let a = (v as f64).abs();
        if p == 2.0 {
            a * a
        } else if p == 1.0 {
            a
        } else {
            a.powf(p)
        }
    };
    let mut c = x.chunks_exact(4);
    for q in &mut c {
        for j in 0..4 {
            acc[j] += term(q[j]);
        }
    }
    for (j, &v) in c.remainder().iter().enumerate() {
        acc[j] += term(v);
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// `pow_sum_f32` of chunks `begin..end` of `chunk` floats each (the last may be shorter) into
/// `out[begin..end]`: a long gradient's norm, cut at points fixed by its length alone so that
/// every thread count adds the same partial sums in the same order.
pub fn pow_sum_chunks_f32(
    x: &[f32],
    chunk: usize,
    p: f64,
    out: &mut [f64],
    begin: usize,
    end: usize,
) {
    for (c, o) in out.iter_mut().enumerate().take(end).skip(begin) {
        let hi = c.saturating_add(1).saturating_mul(chunk).min(x.len());
        let lo = (c * chunk).min(hi);
        *o = pow_sum_f32(&x[lo..hi], p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks cover the input once, in order, and each is `pow_sum_f32` of its slice.
    #[test]
    fn pow_sum_chunks_are_the_chunks_sums() {
        let x = Rng(7).vec(1000, -2.0, 2.0);
        for &p in &[1.0, 2.0, 3.5, f64::INFINITY] {
            let mut out = vec![f64::NAN; 4];
            pow_sum_chunks_f32(&x, 300, p, &mut out, 0, 1);
            pow_sum_chunks_f32(&x, 300, p, &mut out, 1, 4);
            for (c, &o) in out.iter().enumerate() {
                let part = &x[c * 300..(c * 300 + 300).min(1000)];
                assert_eq!(
                    o.to_bits(),
                    pow_sum_f32(part, p).to_bits(),
                    "p={} chunk {}",
                    p,
                    c
                );
            }
            let total: f64 = out.iter().sum();
            let whole = pow_sum_f32(&x, p);
            if p.is_finite() {
                assert!((total - whole).abs() <= 1e-12 * whole, "p={}", p);
            } else {
                assert_eq!(out.iter().cloned().fold(0.0, f64::max), whole);
            }
        }
    }

    /// Lengths that exercise empty input, the padded tail alone, and SIMD body plus tails.
    const LENS: [usize; 9] = [0, 1, 3, 4, 5, 15, 16, 17, 257];
    const STEPS: usize = 4;

    /// xorshift64: reproducible inputs without a dependency.
    struct Rng(u64);
    impl Rng {
        fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
            (0..n)
                .map(|_| {
                    self.0 ^= self.0 << 13;
                    self.0 ^= self.0 >> 7;
                    self.0 ^= self.0 << 17;
                    let u = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
                    (lo + (hi - lo) * u) as f32
                })
                .collect()
        }
    }

    fn f64s(v: &[f32]) -> Vec<f64> {
        v.iter().map(|&x| x as f64).collect()
    }

    /// float32 state against the f64 reference: within `rtol * |want| + atol` everywhere.
    fn assert_close(name: &str, got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{name}: length");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let tol = 2e-5 * w.abs() + 1e-6;
            assert!(
                (g as f64 - w).abs() <= tol,
                "{name}[{i}] of {}: got {g}, want {w}",
                got.len()
            );
        }
    }

    /// `(param, grad, state buffers, 1-based step)` for the float32 kernel and its f64 reference.
    type Kernel<'a> = dyn Fn(&mut [f32], &[f32], &mut [Vec<f32>], usize) + 'a;
    type Reference<'a> = dyn Fn(&mut [f64], &[f64], &mut [Vec<f64>], usize) + 'a;

    /// Runs `steps` updates of a kernel and of its f64 reference from the same float32 start,
    /// feeding each a fresh gradient, and compares every state buffer after each step.
    /// `bufs` is how many state buffers (besides the parameter) the case uses.
    fn check(name: &str, bufs: usize, init: f64, kernel: &Kernel<'_>, reference: &Reference) {
        for (s, &n) in LENS.iter().enumerate() {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((s as u64 + 1) * 0x1234_5678));
            let mut p = rng.vec(n, -1.0, 1.0);
            let mut p64 = f64s(&p);
            let mut st: Vec<Vec<f32>> = (0..bufs).map(|_| vec![init as f32; n]).collect();
            let mut st64: Vec<Vec<f64>> = (0..bufs).map(|_| vec![init; n]).collect();
            for step in 1..=STEPS {
                let g = rng.vec(n, -2.0, 2.0);
                kernel(&mut p, &g, &mut st, step);
                reference(&mut p64, &f64s(&g), &mut st64, step);
                assert_close(&format!("{name} n={n} step {step} param"), &p, &p64);
                for (b, (x, y)) in st.iter().zip(&st64).enumerate() {
                    assert_close(&format!("{name} n={n} step {step} state {b}"), x, y);
                }
            }
        }
    }

    /// Splits the state vector into the three buffers a kernel may take (unused ones empty).
    fn three(st: &mut [Vec<f32>]) -> (&mut [f32], &mut [f32], &mut [f32]) {
        let mut it = st.iter_mut();
        let mut next = || it.next().map(|v| v.as_mut_slice()).unwrap_or(&mut []);
        let a = next();
        let b = next();
        let c = next();
        (a, b, c)
    }

    /// Subnormals of either sign (in the SIMD body and the tail) become zeros of their sign;
    /// zeros, the smallest normals, NaN and infinities keep their bits.
    #[test]
    fn flush_subnormal_zeroes_only_subnormals() {
        let tiny = f32::MIN_POSITIVE;
        let sub = f32::from_bits(1);
        let x = [
            tiny / 2.0,
            -tiny / 3.0,
            tiny,
            -tiny,
            sub,
            -sub,
            0.0,
            -0.0,
            f32::NAN,
        ];
        let want = [0.0, -0.0, tiny, -tiny, 0.0, -0.0, 0.0, -0.0, f32::NAN];
        for len in [x.len(), 5, 3] {
            for shift in 0..x.len() {
                let mut got: Vec<f32> = x.iter().cycle().skip(shift).take(len).copied().collect();
                let expect: Vec<f32> = want.iter().cycle().skip(shift).take(len).copied().collect();
                flush_subnormal_f32(&mut got);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&expect), "len {len} shift {shift}");
            }
        }
        let mut inf = [f32::INFINITY, f32::NEG_INFINITY, 1e-30, -3.5];
        flush_subnormal_f32(&mut inf);
        assert_eq!(inf, [f32::INFINITY, f32::NEG_INFINITY, 1e-30, -3.5]);
    }

    #[test]
    fn sgd_matches_reference() {
        // (momentum, dampening, weight decay, nesterov, maximize)
        let cases = [
            (0.0, 0.0, 0.0, false, false),
            (0.0, 0.0, 0.1, false, true),
            (0.9, 0.0, 0.0, false, false),
            (0.9, 0.3, 0.05, false, false),
            (0.8, 0.0, 0.01, true, false),
            (0.7, 0.1, 0.02, false, true),
        ];
        for &(mom, damp, wd, nesterov, maximize) in &cases {
            let lr = 0.05;
            let flags = (nesterov as u32 * OPTIM_NESTEROV) | (maximize as u32 * OPTIM_MAXIMIZE);
            let bufs = if mom != 0.0 { 1 } else { 0 };
            check(
                &format!("sgd {mom} {damp} {wd} {nesterov} {maximize}"),
                bufs,
                0.0,
                &|p, g, st, step| {
                    let first = if step == 1 { OPTIM_FIRST } else { 0 };
                    let (b, _, _) = three(st);
                    sgd_step_f32(p, g, b, lr, mom, damp, wd, flags | first)
                },
                &|p, g, st, step| {
                    for i in 0..p.len() {
                        let mut d = if maximize { -g[i] } else { g[i] };
                        d += wd * p[i];
                        if mom != 0.0 {
                            let b = &mut st[0][i];
                            *b = if step == 1 {
                                d
                            } else {
                                *b * mom + (1.0 - damp) * d
                            };
                            d = if nesterov { d + mom * *b } else { *b };
                        }
                        p[i] -= lr * d;
                    }
                },
            );
        }
    }

    #[test]
    fn adam_matches_reference() {
        // (weight decay, decoupled, amsgrad, maximize)
        let cases = [
            (0.0, false, false, false),
            (0.1, false, false, false),
            (0.0, false, true, true),
            (0.05, false, true, false),
            (0.01, true, false, false),
            (0.1, true, true, true),
        ];
        let (lr, b1, b2, eps): (f64, f64, f64, f64) = (0.01, 0.9, 0.99, 1e-6);
        for &(wd, decoupled, amsgrad, maximize) in &cases {
            let flags = (decoupled as u32 * OPTIM_DECOUPLED)
                | (amsgrad as u32 * OPTIM_AMSGRAD)
                | (maximize as u32 * OPTIM_MAXIMIZE);
            check(
                &format!("adam {wd} {decoupled} {amsgrad} {maximize}"),
                2 + amsgrad as usize,
                0.0,
                &|p, g, st, step| {
                    let (bc1, bc2) = (1.0 - b1.powi(step as i32), 1.0 - b2.powi(step as i32));
                    let (m, v, vmax) = three(st);
                    adam_step_f32(p, g, m, v, vmax, lr, b1, b2, eps, wd, bc1, bc2, flags)
                },
                &|p, g, st, step| {
                    let (bc1, bc2) = (1.0 - b1.powi(step as i32), 1.0 - b2.powi(step as i32));
                    for i in 0..p.len() {
                        let mut gi = if maximize { -g[i] } else { g[i] };
                        if decoupled {
                            p[i] *= 1.0 - lr * wd;
                        } else {
                            gi += wd * p[i];
                        }
                        st[0][i] = b1 * st[0][i] + (1.0 - b1) * gi;
                        st[1][i] = b2 * st[1][i] + (1.0 - b2) * gi * gi;
                        let mut v = st[1][i];
                        if amsgrad {
                            st[2][i] = st[2][i].max(v);
                            v = st[2][i];
                        }
                        let denom = v.sqrt() / bc2.sqrt() + eps;
                        p[i] -= lr / bc1 * st[0][i] / denom;
                    }
                },
            );
        }
    }

    #[test]
    fn rmsprop_matches_reference() {
        // (weight decay, momentum, centered, maximize)
        let cases = [
            (0.0, 0.0, false, false),
            (0.1, 0.0, false, true),
            (0.0, 0.9, false, false),
            (0.0, 0.0, true, false),
            (0.05, 0.8, true, false),
            (0.0, 0.5, true, true),
        ];
        let (lr, alpha, eps) = (0.01, 0.9, 1e-8);
        for &(wd, mom, centered, maximize) in &cases {
            let flags = (centered as u32 * OPTIM_CENTERED) | (maximize as u32 * OPTIM_MAXIMIZE);
            let bufs = 1 + centered as usize + (mom > 0.0) as usize;
            check(
                &format!("rmsprop {wd} {mom} {centered} {maximize}"),
                bufs,
                0.0,
                &|p, g, st, _| {
                    let (sq, x, y) = three(st);
                    // grad_avg comes before the momentum buffer when both exist
                    let (ga, b): (&mut [f32], &mut [f32]) = match (centered, mom > 0.0) {
                        (true, _) => (x, y),
                        (false, _) => (&mut [], x),
                    };
                    rmsprop_step_f32(p, g, sq, ga, b, lr, alpha, eps, wd, mom, flags)
                },
                &|p, g, st, _| {
                    for i in 0..p.len() {
                        let mut gi = if maximize { -g[i] } else { g[i] };
                        gi += wd * p[i];
                        st[0][i] = alpha * st[0][i] + (1.0 - alpha) * gi * gi;
                        let mut avg = st[0][i];
                        let mut next = 1;
                        if centered {
                            st[1][i] = alpha * st[1][i] + (1.0 - alpha) * gi;
                            avg -= st[1][i] * st[1][i];
                            next = 2;
                        }
                        let avg = avg.sqrt() + eps;
                        if mom > 0.0 {
                            st[next][i] = mom * st[next][i] + gi / avg;
                            p[i] -= lr * st[next][i];
                        } else {
                            p[i] -= lr * gi / avg;
                        }
                    }
                },
            );
        }
    }

    #[test]
    fn adagrad_matches_reference() {
        // (lr decay, weight decay, initial accumulator, maximize)
        let cases = [
            (0.0, 0.0, 0.0, false),
            (0.1, 0.0, 0.0, false),
            (0.05, 0.1, 0.5, true),
        ];
        let (lr, eps) = (0.1, 1e-10);
        for &(decay_rate, wd, init, maximize) in &cases {
            let flags = maximize as u32 * OPTIM_MAXIMIZE;
            check(
                &format!("adagrad {decay_rate} {wd} {init} {maximize}"),
                1,
                init,
                &|p, g, st, step| {
                    adagrad_step_f32(
                        p,
                        g,
                        &mut st[0],
                        lr,
                        decay_rate,
                        wd,
                        eps,
                        step as f64,
                        flags,
                    )
                },
                &|p, g, st, step| {
                    let clr = lr / (1.0 + (step as f64 - 1.0) * decay_rate);
                    for i in 0..p.len() {
                        let mut gi = if maximize { -g[i] } else { g[i] };
                        gi += wd * p[i];
                        st[0][i] += gi * gi;
                        p[i] -= clr * gi / (st[0][i].sqrt() + eps);
                    }
                },
            );
        }
    }

    #[test]
    fn weight_decay_zero_keeps_infinite_params() {
        // PyTorch skips `grad + 0 * param`, so an inf parameter stays inf instead of NaN.
        let mut p = [f32::INFINITY, 1.0, 2.0, 3.0, 4.0];
        sgd_step_f32(&mut p, &[1.0; 5], &mut [], 0.1, 0.0, 0.0, 0.0, 0);
        assert_eq!(p[0], f32::INFINITY);
        assert_eq!(p[4], 3.9);
    }

    #[test]
    fn pow_sum_matches_reference() {
        let mut rng = Rng(42);
        for &n in &LENS {
            let x = rng.vec(n, -3.0, 3.0);
            let x64 = f64s(&x);
            for &p in &[1.0, 2.0, 3.0, 0.5] {
                let want: f64 = x64.iter().map(|v| v.abs().powf(p)).sum();
                let got = pow_sum_f32(&x, p);
                assert!((got - want).abs() <= 1e-12 * want.max(1.0), "n={n} p={p}");
            }
            let want = x64.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert_eq!(pow_sum_f32(&x, f64::INFINITY), want, "n={n} inf");
        }
        assert!(pow_sum_f32(&[1.0, f32::NAN, 5.0], f64::INFINITY).is_nan());
        assert!(pow_sum_f32(&[1.0, f32::NAN], 2.0).is_nan());
    }
}
