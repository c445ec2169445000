//! The one place that touches SIMD. `F32x4` is four f32 lanes: wasm `v128` when the crate is
//! built with `+simd128`, a plain array otherwise so `cargo test` runs the same kernels natively.
//! Kernels loop over `chunks_exact(4)` with this type and finish the tail with scalar code.
//! Methods are named after the wasm instructions (`add`, `mul`, ...) rather than operator
//! traits, so every SIMD operation stays visible at the call site.
#![allow(clippy::should_implement_trait)]

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod imp {
    use core::arch::wasm32::*;

    #[derive(Clone, Copy)]
    pub struct F32x4(pub v128);

    impl F32x4 {
        #[inline(always)]
        pub fn splat(v: f32) -> Self {
            F32x4(f32x4_splat(v))
        }
        #[inline(always)]
        pub fn load(s: &[f32]) -> Self {
            debug_assert!(s.len() >= 4);
            // SAFETY: the slice holds at least four f32; wasm loads need no alignment.
            F32x4(unsafe { v128_load(s.as_ptr() as *const v128) })
        }
        #[inline(always)]
        pub fn store(self, s: &mut [f32]) {
            debug_assert!(s.len() >= 4);
            // SAFETY: as in `load`.
            unsafe { v128_store(s.as_mut_ptr() as *mut v128, self.0) }
        }
        /// Stores the lanes truncated toward zero as i32, saturating, NaN as 0 (Rust's `as`).
        #[inline(always)]
        pub fn store_i32_trunc_sat(self, s: &mut [i32]) {
            debug_assert!(s.len() >= 4);
            // SAFETY: the slice holds at least four i32; wasm stores need no alignment.
            unsafe { v128_store(s.as_mut_ptr() as *mut v128, i32x4_trunc_sat_f32x4(self.0)) }
        }
        #[inline(always)]
        pub fn add(self, o: Self) -> Self {
            F32x4(f32x4_add(self.0, o.0))
        }
        #[inline(always)]
        pub fn sub(self, o: Self) -> Self {
            F32x4(f32x4_sub(self.0, o.0))
        }
        /// `self * b + c`. With relaxed SIMD the engine may fuse it into one FMA (one rounding);
        /// the plain build is a mul then an add, so the two builds differ in the last bits.
        #[inline(always)]
        pub fn mul_add(self, b: Self, c: Self) -> Self {
            #[cfg(target_feature = "relaxed-simd")]
            {
                F32x4(f32x4_relaxed_madd(self.0, b.0, c.0))
            }
            #[cfg(not(target_feature = "relaxed-simd"))]
            {
                F32x4(f32x4_add(f32x4_mul(self.0, b.0), c.0))
            }
        }
        #[inline(always)]
        pub fn mul(self, o: Self) -> Self {
            F32x4(f32x4_mul(self.0, o.0))
        }
        #[inline(always)]
        pub fn div(self, o: Self) -> Self {
            F32x4(f32x4_div(self.0, o.0))
        }
        /// Lane-wise maximum; NaN in either lane gives NaN (IEEE `maximum`, like PyTorch).
        #[inline(always)]
        pub fn max(self, o: Self) -> Self {
            F32x4(f32x4_max(self.0, o.0))
        }
        #[inline(always)]
        pub fn min(self, o: Self) -> Self {
            F32x4(f32x4_min(self.0, o.0))
        }
        #[inline(always)]
        pub fn sqrt(self) -> Self {
            F32x4(f32x4_sqrt(self.0))
        }
        /// Clears the sign bits. Written as `and` with a constant, which V8 hoists out of loops:
        /// its `f32x4.abs` rebuilds the mask on every use (three instructions instead of one).
        #[inline(always)]
        pub fn abs(self) -> Self {
            F32x4(v128_and(self.0, u32x4_splat(0x7fff_ffff)))
        }
        /// Flips the sign bits, as `xor` for the same reason as `abs`.
        #[inline(always)]
        pub fn neg(self) -> Self {
            F32x4(v128_xor(self.0, u32x4_splat(0x8000_0000)))
        }
        /// Round to nearest, ties to even.
        #[inline(always)]
        pub fn round(self) -> Self {
            F32x4(f32x4_nearest(self.0))
        }
        /// Lanes where `self > o` become all-ones masks.
        #[inline(always)]
        pub fn gt(self, o: Self) -> Self {
            F32x4(f32x4_gt(self.0, o.0))
        }
        #[inline(always)]
        pub fn lt(self, o: Self) -> Self {
            F32x4(f32x4_lt(self.0, o.0))
        }
        #[inline(always)]
        pub fn ge(self, o: Self) -> Self {
            F32x4(f32x4_ge(self.0, o.0))
        }
        #[inline(always)]
        pub fn le(self, o: Self) -> Self {
            F32x4(f32x4_le(self.0, o.0))
        }
        #[inline(always)]
        pub fn eq(self, o: Self) -> Self {
            F32x4(f32x4_eq(self.0, o.0))
        }
        #[inline(always)]
        pub fn ne(self, o: Self) -> Self {
            F32x4(f32x4_ne(self.0, o.0))
        }
        /// Four lanes holding the same raw bit pattern (masks, sign bits).
        #[inline(always)]
        pub fn splat_bits(bits: u32) -> Self {
            F32x4(u32x4_splat(bits))
        }
        /// Bitwise and of the lanes' bit patterns (combines masks, isolates sign bits).
        #[inline(always)]
        pub fn and(self, o: Self) -> Self {
            F32x4(v128_and(self.0, o.0))
        }
        #[inline(always)]
        pub fn or(self, o: Self) -> Self {
            F32x4(v128_or(self.0, o.0))
        }
        #[inline(always)]
        pub fn xor(self, o: Self) -> Self {
            F32x4(v128_xor(self.0, o.0))
        }
        /// `mask ? a : b` per lane, for masks made by the comparisons above.
        #[inline(always)]
        pub fn select(mask: Self, a: Self, b: Self) -> Self {
            F32x4(v128_bitselect(a.0, b.0, mask.0))
        }
        /// Lane-wise minimum of the bit patterns as i32. For floats it orders every
        /// non-negative value (and +NaN above +inf) correctly in one instruction, where IEEE
        /// `min` costs seven in V8 (and LLVM turns `pmin` by a constant back into `min`).
        #[inline(always)]
        pub fn min_i32(self, o: Self) -> Self {
            F32x4(i32x4_min(self.0, o.0))
        }
        /// Lane-wise minimum of the bit patterns as u32: for floats, every negative value
        /// (and -NaN) is above every non-negative one and orders by magnitude.
        #[inline(always)]
        pub fn min_u32(self, o: Self) -> Self {
            F32x4(u32x4_min(self.0, o.0))
        }
        /// Lane-wise maximum of the bit patterns as u32. With a comparison mask as `o` it sets
        /// the masked lanes to all-ones (a NaN) in one instruction, where LLVM turns `or` with
        /// a mask into a three-instruction `bitselect`.
        #[inline(always)]
        pub fn max_u32(self, o: Self) -> Self {
            F32x4(u32x4_max(self.0, o.0))
        }
        /// Wrapping i32 addition of the lanes' bit patterns (exponent arithmetic).
        #[inline(always)]
        pub fn add_i32(self, o: Self) -> Self {
            F32x4(i32x4_add(self.0, o.0))
        }
        #[inline(always)]
        pub fn sub_i32(self, o: Self) -> Self {
            F32x4(i32x4_sub(self.0, o.0))
        }
        /// The lanes' bit patterns shifted left by `n < 32`.
        #[inline(always)]
        pub fn shl_i32(self, n: u32) -> Self {
            F32x4(i32x4_shl(self.0, n))
        }
        /// The lanes' bit patterns shifted right by `n < 32` as i32 (sign-filling).
        #[inline(always)]
        pub fn shr_i32(self, n: u32) -> Self {
            F32x4(i32x4_shr(self.0, n))
        }
        /// Transposes a 4×4 block held as four rows (lane `j` of row `i` becomes lane `i` of
        /// row `j`) in eight shuffles, each one `unpck`/`movlhps`-style instruction in V8.
        #[inline(always)]
        pub fn transpose4(r: [Self; 4]) -> [Self; 4] {
            let t0 = i32x4_shuffle::<0, 4, 1, 5>(r[0].0, r[1].0);
            let t1 = i32x4_shuffle::<2, 6, 3, 7>(r[0].0, r[1].0);
            let t2 = i32x4_shuffle::<0, 4, 1, 5>(r[2].0, r[3].0);
            let t3 = i32x4_shuffle::<2, 6, 3, 7>(r[2].0, r[3].0);
            [
                F32x4(i64x2_shuffle::<0, 2>(t0, t2)),
                F32x4(i64x2_shuffle::<1, 3>(t0, t2)),
                F32x4(i64x2_shuffle::<0, 2>(t1, t3)),
                F32x4(i64x2_shuffle::<1, 3>(t1, t3)),
            ]
        }
        /// The even lanes of `a` then `b` (0, 2 of each) and the odd ones: a 2-wide stride
        /// undone in two shuffles (a 2×2 stride-2 window's columns).
        #[inline(always)]
        pub fn deinterleave(a: Self, b: Self) -> (Self, Self) {
            (
                F32x4(i32x4_shuffle::<0, 2, 4, 6>(a.0, b.0)),
                F32x4(i32x4_shuffle::<1, 3, 5, 7>(a.0, b.0)),
            )
        }
        /// Stores the lanes' bit patterns as i32 (integer lanes built with `add_i32`).
        #[inline(always)]
        pub fn store_bits_i32(self, s: &mut [i32]) {
            debug_assert!(s.len() >= 4);
            // SAFETY: the slice holds at least four i32; wasm stores need no alignment.
            unsafe { v128_store(s.as_mut_ptr() as *mut v128, self.0) }
        }
        /// Four i32 lanes as bit patterns (the counterpart of `store_bits_i32`).
        #[inline(always)]
        pub fn from_i32(v: [i32; 4]) -> Self {
            F32x4(i32x4(v[0], v[1], v[2], v[3]))
        }
        /// The lanes' bit patterns as i32, converted to f32 values.
        #[inline(always)]
        pub fn i32_to_f32(self) -> Self {
            F32x4(f32x4_convert_i32x4(self.0))
        }
        #[inline(always)]
        pub fn to_array(self) -> [f32; 4] {
            let mut out = [0.0f32; 4];
            self.store(&mut out);
            out
        }
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod imp {
    #[derive(Clone, Copy)]
    pub struct F32x4(pub [f32; 4]);

    #[inline(always)]
    fn map(a: [f32; 4], f: impl Fn(f32) -> f32) -> F32x4 {
        F32x4([f(a[0]), f(a[1]), f(a[2]), f(a[3])])
    }
    #[inline(always)]
    fn zip(a: [f32; 4], b: [f32; 4], f: impl Fn(f32, f32) -> f32) -> F32x4 {
        F32x4([f(a[0], b[0]), f(a[1], b[1]), f(a[2], b[2]), f(a[3], b[3])])
    }
    /// `f` on the lanes' bit patterns.
    #[inline(always)]
    fn bits2(a: [f32; 4], b: [f32; 4], f: impl Fn(u32, u32) -> u32) -> F32x4 {
        zip(a, b, |x, y| f32::from_bits(f(x.to_bits(), y.to_bits())))
    }
    #[inline(always)]
    fn mask(c: bool) -> f32 {
        f32::from_bits(if c { u32::MAX } else { 0 })
    }
    /// Like wasm's `f32x4.max`: NaN wins, and -0 < +0 (the sign bits are and-ed when equal).
    fn ieee_max(a: f32, b: f32) -> f32 {
        if a.is_nan() || b.is_nan() {
            f32::NAN
        } else if a == b {
            f32::from_bits(a.to_bits() & b.to_bits())
        } else {
            a.max(b)
        }
    }
    fn ieee_min(a: f32, b: f32) -> f32 {
        if a.is_nan() || b.is_nan() {
            f32::NAN
        } else if a == b {
            f32::from_bits(a.to_bits() | b.to_bits())
        } else {
            a.min(b)
        }
    }

    impl F32x4 {
        pub fn splat(v: f32) -> Self {
            F32x4([v; 4])
        }
        pub fn load(s: &[f32]) -> Self {
            F32x4([s[0], s[1], s[2], s[3]])
        }
        pub fn store(self, s: &mut [f32]) {
            s[..4].copy_from_slice(&self.0);
        }
        pub fn store_i32_trunc_sat(self, s: &mut [i32]) {
            for (o, &v) in s[..4].iter_mut().zip(&self.0) {
                *o = v as i32;
            }
        }
        pub fn add(self, o: Self) -> Self {
            zip(self.0, o.0, |a, b| a + b)
        }
        pub fn sub(self, o: Self) -> Self {
            zip(self.0, o.0, |a, b| a - b)
        }
        /// `self * b + c`, unfused, as the plain wasm build computes it.
        pub fn mul_add(self, b: Self, c: Self) -> Self {
            self.mul(b).add(c)
        }
        pub fn mul(self, o: Self) -> Self {
            zip(self.0, o.0, |a, b| a * b)
        }
        pub fn div(self, o: Self) -> Self {
            zip(self.0, o.0, |a, b| a / b)
        }
        pub fn max(self, o: Self) -> Self {
            zip(self.0, o.0, ieee_max)
        }
        pub fn min(self, o: Self) -> Self {
            zip(self.0, o.0, ieee_min)
        }
        pub fn sqrt(self) -> Self {
            map(self.0, f32::sqrt)
        }
        pub fn abs(self) -> Self {
            map(self.0, f32::abs)
        }
        pub fn neg(self) -> Self {
            map(self.0, |a| -a)
        }
        pub fn round(self) -> Self {
            map(self.0, |a| {
                let r = a.round();
                // ties to even, as wasm's f32x4.nearest
                if (a - a.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
                    r - a.signum()
                } else {
                    r
                }
            })
        }
        pub fn gt(self, o: Self) -> Self {
            zip(self.0, o.0, |a, b| mask(a > b))
        }
        pub fn lt(self, o: Self) -> Self {
            zip(self.0, o.0, |a, b| mask(a < b))
        }
        pub fn ge(self, o: Self) -> Self {
            zip(self.0, o.0, |a, b| mask(a >= b))
        }
        pub fn le(self, o: Self) -> Self {
            zip(self.0, o.0, |a, b| mask(a <= b))
        }
        pub fn eq(self, o: Self) -> Self {
            zip(self.0, o.0, |a, b| mask(a == b))
        }
        pub fn ne(self, o: Self) -> Self {
            zip(self.0, o.0, |a, b| mask(a != b))
        }
        pub fn splat_bits(bits: u32) -> Self {
            F32x4([f32::from_bits(bits); 4])
        }
        pub fn and(self, o: Self) -> Self {
            zip(self.0, o.0, |a, b| {
                f32::from_bits(a.to_bits() & b.to_bits())
            })
        }
        pub fn or(self, o: Self) -> Self {
            zip(self.0, o.0, |a, b| {
                f32::from_bits(a.to_bits() | b.to_bits())
            })
        }
        pub fn xor(self, o: Self) -> Self {
            zip(self.0, o.0, |a, b| {
                f32::from_bits(a.to_bits() ^ b.to_bits())
            })
        }
        pub fn select(m: Self, a: Self, b: Self) -> Self {
            let pick = |i: usize| {
                let mb = m.0[i].to_bits();
                f32::from_bits((a.0[i].to_bits() & mb) | (b.0[i].to_bits() & !mb))
            };
            F32x4([pick(0), pick(1), pick(2), pick(3)])
        }
        pub fn min_i32(self, o: Self) -> Self {
            bits2(self.0, o.0, |a, b| (a as i32).min(b as i32) as u32)
        }
        pub fn min_u32(self, o: Self) -> Self {
            bits2(self.0, o.0, u32::min)
        }
        pub fn max_u32(self, o: Self) -> Self {
            bits2(self.0, o.0, u32::max)
        }
        pub fn add_i32(self, o: Self) -> Self {
            bits2(self.0, o.0, u32::wrapping_add)
        }
        pub fn sub_i32(self, o: Self) -> Self {
            bits2(self.0, o.0, u32::wrapping_sub)
        }
        pub fn shl_i32(self, n: u32) -> Self {
            bits2(self.0, self.0, |a, _| a << n)
        }
        pub fn shr_i32(self, n: u32) -> Self {
            bits2(self.0, self.0, |a, _| ((a as i32) >> n) as u32)
        }
        pub fn i32_to_f32(self) -> Self {
            map(self.0, |v| v.to_bits() as i32 as f32)
        }
        pub fn deinterleave(a: Self, b: Self) -> (Self, Self) {
            let (x, y) = (a.0, b.0);
            (
                F32x4([x[0], x[2], y[0], y[2]]),
                F32x4([x[1], x[3], y[1], y[3]]),
            )
        }
        pub fn store_bits_i32(self, s: &mut [i32]) {
            for (o, &v) in s[..4].iter_mut().zip(&self.0) {
                *o = v.to_bits() as i32;
            }
        }
        pub fn from_i32(v: [i32; 4]) -> Self {
            F32x4(v.map(|x| f32::from_bits(x as u32)))
        }
        pub fn transpose4(r: [Self; 4]) -> [Self; 4] {
            core::array::from_fn(|j| F32x4(core::array::from_fn(|i| r[i].0[j])))
        }
        pub fn to_array(self) -> [f32; 4] {
            self.0
        }
    }
}

pub use imp::F32x4;
