//! Every function the WebAssembly module exports, and the only Rust file with raw pointers.
//!
//! Conventions, which `ts/wasm/abi.ts` mirrors one to one (a test parses this file and checks):
//! - Pointers are byte offsets into linear memory, lengths count elements (not bytes).
//! - TypeScript owns every buffer: it allocates outputs and scratch with `nb_alloc` before a call
//!   and has already checked shapes, dtypes and index ranges. Kernels never allocate and only
//!   `debug_assert!` their preconditions.
//! - Inputs and outputs never alias unless the function's name ends in `_inplace`.
//! - Strided calls take `ndim` and pointers to `i32` arrays (`shape`, strides in elements) that
//!   TypeScript writes into a scratch area; `ndim <= MAX_DIMS`, and 0-d is passed as `ndim = 1`
//!   with shape `[1]`.
//! - Op codes are the `pub const` items below; a code a kernel does not know is a bug upstream.

// Every export is `unsafe`: its safety contract is the module doc above (valid, non-aliased
// buffers of the stated lengths). Descriptor-heavy kernels take many scalar arguments by design.
#![allow(clippy::missing_safety_doc, clippy::too_many_arguments)]

use crate::kernels::{copy, elementwise, index, matmul, reduce, rng, rnn, softmax};
use core::slice::{from_raw_parts, from_raw_parts_mut};

/// Largest rank a strided kernel accepts (TypeScript merges contiguous dims first).
pub const MAX_DIMS: u32 = 8;

// Unary f32 op codes (`unary_f32`, `unary_bwd_f32`); `p0`, `p1` are the op's scalar parameters.
pub const UNARY_NEG: u32 = 0;
pub const UNARY_EXP: u32 = 1;
pub const UNARY_LOG: u32 = 2;
pub const UNARY_SQRT: u32 = 3;
pub const UNARY_RSQRT: u32 = 4;
pub const UNARY_ABS: u32 = 5;
pub const UNARY_RELU: u32 = 6;
pub const UNARY_SIGMOID: u32 = 7;
pub const UNARY_TANH: u32 = 8;
/// Exact GELU, `x * Φ(x)` with the error function (PyTorch's default).
pub const UNARY_GELU: u32 = 9;
/// GELU's tanh approximation (`approximate='tanh'`).
pub const UNARY_GELU_TANH: u32 = 10;
/// `p0` is the negative slope.
pub const UNARY_LEAKY_RELU: u32 = 11;
/// `x ** p0`.
pub const UNARY_POW_SCALAR: u32 = 12;
/// `min(max(x, p0), p1)`; TypeScript passes ±inf for a missing bound.
pub const UNARY_CLAMP: u32 = 13;
/// -1, 0 or 1 (0 for ±0 and NaN, as PyTorch).
pub const UNARY_SIGN: u32 = 14;
/// `x * p0 + p1`: scalar add/sub/mul/div without a broadcast.
pub const UNARY_AFFINE: u32 = 15;
/// `1 / x`.
pub const UNARY_RECIPROCAL: u32 = 16;
/// `x * x`.
pub const UNARY_SQUARE: u32 = 17;
/// `p0 ** x` (scalar base, tensor exponent).
pub const UNARY_RPOW_SCALAR: u32 = 18;
/// `x / p0`, correctly rounded (multiplying by `1 / p0` can be 1 ulp off).
pub const UNARY_DIV_SCALAR: u32 = 19;
pub const UNARY_SIN: u32 = 20;
pub const UNARY_COS: u32 = 21;
pub const UNARY_ERF: u32 = 22;
/// `ln(1 + x)`, accurate near 0.
pub const UNARY_LOG1P: u32 = 23;
/// `e^x - 1`, accurate near 0.
pub const UNARY_EXPM1: u32 = 24;
pub const UNARY_FLOOR: u32 = 25;
pub const UNARY_CEIL: u32 = 26;
/// Round half to even; with decimals, `p0 = 10^|decimals|` and `p1` = sign of decimals.
pub const UNARY_ROUND: u32 = 27;
/// `p0` = beta, `p1` = threshold (PyTorch's softplus).
pub const UNARY_SOFTPLUS: u32 = 28;
pub const UNARY_SILU: u32 = 29;
pub const UNARY_MISH: u32 = 30;
/// `p0` = alpha.
pub const UNARY_ELU: u32 = 31;
/// Clamp to `[p0, p1]` whose gradient is zero *at* the bounds too (PyTorch's hardtanh).
pub const UNARY_HARDTANH: u32 = 32;

// Binary op codes (`binary_f32`, `binary_i32`).
pub const BINARY_ADD: u32 = 0;
pub const BINARY_SUB: u32 = 1;
pub const BINARY_MUL: u32 = 2;
pub const BINARY_DIV: u32 = 3;
/// f32 only.
pub const BINARY_POW: u32 = 4;
/// IEEE maximum: NaN wins, like `torch.maximum`.
pub const BINARY_MAXIMUM: u32 = 5;
pub const BINARY_MINIMUM: u32 = 6;

// Comparison op codes (`compare_f32`, `compare_i32`); the result is int32 0 or 1.
pub const CMP_EQ: u32 = 0;
pub const CMP_NE: u32 = 1;
pub const CMP_LT: u32 = 2;
pub const CMP_LE: u32 = 3;
pub const CMP_GT: u32 = 4;
pub const CMP_GE: u32 = 5;

// Reduction op codes (`reduce_f32`, `reduce_i32`, `argreduce_f32`).
pub const REDUCE_SUM: u32 = 0;
/// `max`; NaN propagates as in PyTorch.
pub const REDUCE_MAX: u32 = 1;
pub const REDUCE_MIN: u32 = 2;
/// `log(sum(exp(x)))`, stable (shifted by the max); f32 only.
pub const REDUCE_LOGSUMEXP: u32 = 3;
/// The index of the first maximum (`argreduce_f32` only).
pub const ARG_MAX: u32 = 0;
/// The index of the first minimum.
pub const ARG_MIN: u32 = 1;

/// Reads an `i32` descriptor array of `ndim` entries written by TypeScript.
///
/// # Safety
/// `ptr` must point to `ndim` readable, aligned `i32` values.
unsafe fn dims<'a>(ptr: usize, ndim: u32) -> &'a [i32] {
    from_raw_parts(ptr as *const i32, ndim as usize)
}

/// Number of elements a strided operand spans: `1 + Σ (shape[d] - 1) * stride[d]`, or 0 when
/// the shape is empty.
fn extent(shape: &[i32], strides: &[i32]) -> usize {
    if shape.contains(&0) {
        return 0;
    }
    1 + shape
        .iter()
        .zip(strides)
        .map(|(&s, &st)| (s as usize - 1) * st as usize)
        .sum::<usize>()
}

/// `full` with its first dim cut to `end - begin` (a work range over dim 0; at most 2^31),
/// stored in the returned array's first `full.len()` entries.
fn cut_first_dim(full: &[i32], begin: usize, end: usize) -> [i32; MAX_DIMS as usize] {
    let mut sub = [0i32; MAX_DIMS as usize];
    sub[..full.len()].copy_from_slice(full);
    sub[0] = (end - begin) as i32;
    sub
}

/// The words a work range over dim 0 of `sub` (rows `begin..`) reads of an operand at `ptr`
/// with `strides` over the full shape: from `begin` rows in, `extent(sub, strides)` long.
unsafe fn rows_of<'a, T>(ptr: usize, strides: &[i32], begin: usize, sub: &[i32]) -> &'a [T] {
    let at = ptr + core::mem::size_of::<T>() * begin * strides[0] as usize;
    from_raw_parts(at as *const T, extent(sub, strides))
}

/// The rows `begin..` of a contiguous output over the full shape `full` that a work range
/// with the cut shape `sub` writes.
unsafe fn out_rows<'a, T>(out: usize, full: &[i32], begin: usize, sub: &[i32]) -> &'a mut [T] {
    let at = out + core::mem::size_of::<T>() * begin * numel(&full[1..]);
    from_raw_parts_mut(at as *mut T, numel(sub))
}

/// `rows_of` for the operand a range writes.
unsafe fn rows_of_mut<'a, T>(
    ptr: usize,
    strides: &[i32],
    begin: usize,
    sub: &[i32],
) -> &'a mut [T] {
    let at = ptr + core::mem::size_of::<T>() * begin * strides[0] as usize;
    from_raw_parts_mut(at as *mut T, extent(sub, strides))
}

fn numel(shape: &[i32]) -> usize {
    shape.iter().map(|&s| s as usize).product()
}

macro_rules! src {
    ($ty:ty, $ptr:expr, $len:expr) => {
        from_raw_parts($ptr as *const $ty, $len)
    };
}
macro_rules! dst {
    ($ty:ty, $ptr:expr, $len:expr) => {
        from_raw_parts_mut($ptr as *mut $ty, $len)
    };
}

// ---------------------------------------------------------------- memory

/// Allocates `bytes` bytes aligned to 16 and returns the offset, or 0 when memory cannot grow.
/// The only allocation entry point: TypeScript calls it for every tensor and scratch buffer.
#[no_mangle]
pub extern "C" fn nb_alloc(bytes: usize) -> usize {
    crate::heap::alloc(bytes)
}

/// Frees a block from `nb_alloc`; `bytes` must be the size it was allocated with.
#[no_mangle]
pub extern "C" fn nb_free(ptr: usize, bytes: usize) {
    crate::heap::free(ptr, bytes)
}

// ---------------------------------------------------------------- fill, cast, copy

/// `out[i] = v` for `i < n`, on 32-bit words (f32 or i32 bit patterns).
#[no_mangle]
pub unsafe extern "C" fn fill_u32(out: usize, n: usize, bits: u32) {
    elementwise::fill_u32(dst!(u32, out, n), bits)
}

/// `out[i] = start + i * step` as f32.
#[no_mangle]
pub unsafe extern "C" fn arange_f32(out: usize, n: usize, start: f64, step: f64) {
    elementwise::arange_f32(dst!(f32, out, n), start, step)
}

/// `out[i] = start + i * step` as i32.
#[no_mangle]
pub unsafe extern "C" fn arange_i32(out: usize, n: usize, start: i32, step: i32) {
    elementwise::arange_i32(dst!(i32, out, n), start, step)
}

/// f32 → i32, truncating toward zero (as PyTorch's `.int()`); NaN gives 0, ±inf saturate.
#[no_mangle]
pub unsafe extern "C" fn cast_f32_i32(x: usize, out: usize, n: usize) {
    elementwise::cast_f32_i32(src!(f32, x, n), dst!(i32, out, n))
}

/// i32 → f32.
#[no_mangle]
pub unsafe extern "C" fn cast_i32_f32(x: usize, out: usize, n: usize) {
    elementwise::cast_i32_f32(src!(i32, x, n), dst!(f32, out, n))
}

/// Copies a strided view of 32-bit words into a strided destination:
/// `dst[Σ i_d * dst_strides[d]] = src[Σ i_d * src_strides[d]]` for every index `i` in `shape`
/// with `begin <= i_0 < end` (the pool's work range, when rows of dim 0 write apart).
/// Serves permute, expand, slice, cat and their backward passes, for f32 and i32 alike.
#[no_mangle]
pub unsafe extern "C" fn copy_strided_u32(
    src: usize,
    dst: usize,
    ndim: u32,
    shape: usize,
    src_strides: usize,
    dst_strides: usize,
    begin: usize,
    end: usize,
) {
    let (full, ss, ds) = (
        dims(shape, ndim),
        dims(src_strides, ndim),
        dims(dst_strides, ndim),
    );
    let sub = cut_first_dim(full, begin, end);
    let sub = &sub[..full.len()];
    copy::copy_strided_u32(
        rows_of(src, ss, begin, sub),
        rows_of_mut(dst, ds, begin, sub),
        sub,
        ss,
        ds,
    )
}

/// Like `copy_strided_u32` but adds: `dst[..] += src[..]` in f32. Destination strides may be 0,
/// which sums broadcast dimensions away (the backward of broadcasting and of `expand`); a work
/// range short of all of dim 0 needs rows that add onto separate elements.
#[no_mangle]
pub unsafe extern "C" fn accumulate_strided_f32(
    src: usize,
    dst: usize,
    ndim: u32,
    shape: usize,
    src_strides: usize,
    dst_strides: usize,
    begin: usize,
    end: usize,
) {
    let (full, ss, ds) = (
        dims(shape, ndim),
        dims(src_strides, ndim),
        dims(dst_strides, ndim),
    );
    let sub = cut_first_dim(full, begin, end);
    let sub = &sub[..full.len()];
    copy::accumulate_strided_f32(
        rows_of(src, ss, begin, sub),
        rows_of_mut(dst, ds, begin, sub),
        sub,
        ss,
        ds,
    )
}

/// `dst[i] += src[i]` for `i < n` (gradient accumulation into an existing buffer).
#[no_mangle]
pub unsafe extern "C" fn add_inplace_f32(dst: usize, src: usize, n: usize) {
    elementwise::add_inplace_f32(dst!(f32, dst, n), src!(f32, src, n))
}

// ---------------------------------------------------------------- elementwise

/// `out[i] = op(x[i])` with the `UNARY_*` code `op` and its parameters `p0`, `p1`.
#[no_mangle]
pub unsafe extern "C" fn unary_f32(op: u32, x: usize, out: usize, n: usize, p0: f32, p1: f32) {
    elementwise::unary_f32(op, src!(f32, x, n), dst!(f32, out, n), p0, p1)
}

/// The backward pass of `unary_f32`: `out[i] = g[i] * op'(..)`. `saved` is the forward *output*
/// for EXP, SQRT, RSQRT, RELU, SIGMOID and TANH, and the forward *input* for every other op.
#[no_mangle]
pub unsafe extern "C" fn unary_bwd_f32(
    op: u32,
    saved: usize,
    g: usize,
    out: usize,
    n: usize,
    p0: f32,
    p1: f32,
) {
    elementwise::unary_bwd_f32(
        op,
        src!(f32, saved, n),
        src!(f32, g, n),
        dst!(f32, out, n),
        p0,
        p1,
    )
}

/// `out[i] = op(a[..], b[..])` with NumPy broadcasting: `out` is contiguous with `shape`, and
/// `a_strides`/`b_strides` are each operand's strides over that shape (0 where broadcast). Only
/// indices `begin..end` of the first dim are computed: each output row is computed alone, so the
/// pool splits there and any split gives the same bits.
#[no_mangle]
pub unsafe extern "C" fn binary_f32(
    op: u32,
    a: usize,
    b: usize,
    out: usize,
    ndim: u32,
    shape: usize,
    a_strides: usize,
    b_strides: usize,
    begin: usize,
    end: usize,
) {
    let (full, sa, sb) = (
        dims(shape, ndim),
        dims(a_strides, ndim),
        dims(b_strides, ndim),
    );
    let sub = cut_first_dim(full, begin, end);
    let sub = &sub[..full.len()];
    elementwise::binary_f32(
        op,
        rows_of(a, sa, begin, sub),
        rows_of(b, sb, begin, sub),
        out_rows::<f32>(out, full, begin, sub),
        sub,
        sa,
        sb,
    )
}

/// `binary_f32` over `n` contiguous elements of two equal-shape operands: a flat range, which
/// the pool splits at multiples of 4 (so the scalar tail is the same elements for any split).
#[no_mangle]
pub unsafe extern "C" fn binary_flat_f32(op: u32, a: usize, b: usize, out: usize, n: usize) {
    // n counts f32s inside wasm32's 4 GiB, so it fits an i32.
    let (shape, unit) = ([n as i32], [1i32]);
    elementwise::binary_f32(
        op,
        src!(f32, a, n),
        src!(f32, b, n),
        dst!(f32, out, n),
        &shape,
        &unit,
        &unit,
    )
}

/// `binary_f32` for int32 (ADD, SUB, MUL, MAXIMUM, MINIMUM; wrapping arithmetic), rows
/// `begin..end` of dim 0.
#[no_mangle]
pub unsafe extern "C" fn binary_i32(
    op: u32,
    a: usize,
    b: usize,
    out: usize,
    ndim: u32,
    shape: usize,
    a_strides: usize,
    b_strides: usize,
    begin: usize,
    end: usize,
) {
    let (full, sa, sb) = (
        dims(shape, ndim),
        dims(a_strides, ndim),
        dims(b_strides, ndim),
    );
    let sub = cut_first_dim(full, begin, end);
    let sub = &sub[..full.len()];
    elementwise::binary_i32(
        op,
        rows_of::<i32>(a, sa, begin, sub),
        rows_of::<i32>(b, sb, begin, sub),
        out_rows::<i32>(out, full, begin, sub),
        sub,
        sa,
        sb,
    )
}

/// Broadcast comparison of f32 operands (`CMP_*`); `out` is int32 0/1. Only indices
/// `begin..end` of the first dim, as `binary_f32` (exact, so any split gives the same bits).
#[no_mangle]
pub unsafe extern "C" fn compare_f32(
    op: u32,
    a: usize,
    b: usize,
    out: usize,
    ndim: u32,
    shape: usize,
    a_strides: usize,
    b_strides: usize,
    begin: usize,
    end: usize,
) {
    let (full, sa, sb) = (
        dims(shape, ndim),
        dims(a_strides, ndim),
        dims(b_strides, ndim),
    );
    let sub = cut_first_dim(full, begin, end);
    let sub = &sub[..full.len()];
    elementwise::compare_f32(
        op,
        rows_of::<f32>(a, sa, begin, sub),
        rows_of::<f32>(b, sb, begin, sub),
        out_rows::<i32>(out, full, begin, sub),
        sub,
        sa,
        sb,
    )
}

/// Broadcast comparison of int32 operands; `out` is int32 0/1; rows `begin..end` of dim 0.
#[no_mangle]
pub unsafe extern "C" fn compare_i32(
    op: u32,
    a: usize,
    b: usize,
    out: usize,
    ndim: u32,
    shape: usize,
    a_strides: usize,
    b_strides: usize,
    begin: usize,
    end: usize,
) {
    let (full, sa, sb) = (
        dims(shape, ndim),
        dims(a_strides, ndim),
        dims(b_strides, ndim),
    );
    let sub = cut_first_dim(full, begin, end);
    let sub = &sub[..full.len()];
    elementwise::compare_i32(
        op,
        rows_of::<i32>(a, sa, begin, sub),
        rows_of::<i32>(b, sb, begin, sub),
        out_rows::<i32>(out, full, begin, sub),
        sub,
        sa,
        sb,
    )
}

/// `out = cond != 0 ? a : b` on 32-bit words, all three operands broadcast to `shape`; rows
/// `begin..end` of dim 0.
#[no_mangle]
pub unsafe extern "C" fn where_u32(
    cond: usize,
    a: usize,
    b: usize,
    out: usize,
    ndim: u32,
    shape: usize,
    cond_strides: usize,
    a_strides: usize,
    b_strides: usize,
    begin: usize,
    end: usize,
) {
    let full = dims(shape, ndim);
    let (sc, sa, sb) = (
        dims(cond_strides, ndim),
        dims(a_strides, ndim),
        dims(b_strides, ndim),
    );
    let sub = cut_first_dim(full, begin, end);
    let sub = &sub[..full.len()];
    elementwise::where_u32(
        rows_of(cond, sc, begin, sub),
        rows_of(a, sa, begin, sub),
        rows_of(b, sb, begin, sub),
        out_rows::<u32>(out, full, begin, sub),
        sub,
        sc,
        sa,
        sb,
    )
}

// ---------------------------------------------------------------- scans and products

/// Cumulative sum along the middle axis of a contiguous `[outer, r, inner]` array, for the
/// outer rows `begin..end`; `reverse != 0` sums from the end (cumsum's backward). f32 sums
/// accumulate in f64.
#[no_mangle]
pub unsafe extern "C" fn cumsum_f32(
    x: usize,
    out: usize,
    outer: usize,
    r: usize,
    inner: usize,
    reverse: u32,
    begin: usize,
    end: usize,
) {
    let n = outer * r * inner;
    crate::kernels::scan::cumsum_f32(
        src!(f32, x, n),
        dst!(f32, out, n),
        r,
        inner,
        reverse != 0,
        begin,
        end,
    )
}

/// `cumsum_f32` for int32 (wrapping).
#[no_mangle]
pub unsafe extern "C" fn cumsum_i32(
    x: usize,
    out: usize,
    outer: usize,
    r: usize,
    inner: usize,
    reverse: u32,
    begin: usize,
    end: usize,
) {
    let n = outer * r * inner;
    crate::kernels::scan::cumsum_i32(
        src!(i32, x, n),
        dst!(i32, out, n),
        r,
        inner,
        reverse != 0,
        begin,
        end,
    )
}

/// Product over the middle axis of `[outer, r, inner]` into `[outer, inner]` for the outer
/// rows `begin..end`; `r` may be 0 (the product is 1).
#[no_mangle]
pub unsafe extern "C" fn prod_f32(
    x: usize,
    out: usize,
    outer: usize,
    r: usize,
    inner: usize,
    begin: usize,
    end: usize,
) {
    crate::kernels::scan::prod_f32(
        src!(f32, x, outer * r * inner),
        dst!(f32, out, outer * inner),
        r,
        inner,
        begin,
        end,
    )
}

/// `prod_f32` for int32 (wrapping).
#[no_mangle]
pub unsafe extern "C" fn prod_i32(
    x: usize,
    out: usize,
    outer: usize,
    r: usize,
    inner: usize,
    begin: usize,
    end: usize,
) {
    crate::kernels::scan::prod_i32(
        src!(i32, x, outer * r * inner),
        dst!(i32, out, outer * inner),
        r,
        inner,
        begin,
        end,
    )
}

/// Gradient of `prod_f32`: `out[o, j, i] = g[o, i] * prod_{j' != j} x[o, j', i]`, without
/// division (zeros in `x` are handled exactly). `out` is `[outer, r, inner]`.
#[no_mangle]
pub unsafe extern "C" fn prod_bwd_f32(
    x: usize,
    g: usize,
    out: usize,
    outer: usize,
    r: usize,
    inner: usize,
    begin: usize,
    end: usize,
) {
    let n = outer * r * inner;
    crate::kernels::scan::prod_bwd_f32(
        src!(f32, x, n),
        src!(f32, g, outer * inner),
        dst!(f32, out, n),
        r,
        inner,
        begin,
        end,
    )
}

// ---------------------------------------------------------------- reductions and softmax

/// Reduces the middle axis of a contiguous `[outer, r, inner]` array into `[outer, inner]` with
/// the `REDUCE_*` code `op`; `r >= 1` (TypeScript handles empty reductions). Columns
/// `begin..end` of every block only (multiples of 4, or `end == inner`; the pool's split when
/// there are few blocks): each column is reduced alone, so any split gives the same bits.
#[no_mangle]
pub unsafe extern "C" fn reduce_f32(
    op: u32,
    x: usize,
    out: usize,
    outer: usize,
    r: usize,
    inner: usize,
    begin: usize,
    end: usize,
) {
    reduce::reduce_cols_f32(
        op,
        src!(f32, x, outer * r * inner),
        dst!(f32, out, outer * inner),
        outer,
        r,
        inner,
        begin,
        end,
    )
}

/// A whole-tensor reduction's parts depth, at most 16, and the `2^depth` parts it makes.
fn parts_at(depth: u32) -> (u32, usize) {
    let depth = depth.min(16);
    (depth, 1usize << depth)
}

/// A whole-tensor reduction in parts: part `i` for `i` in `begin..end` reduces subtree `i` of
/// the `2^depth` at depth `depth` (at most 16) of `reduce_f32`'s pairwise tree over `n`
/// floats, into `out` (`2^depth` floats); `LOGSUMEXP` parts are sums of `exp(x - shift)`.
/// `combine_parts_f32` finishes the reduction, with `reduce_f32`'s bits.
#[no_mangle]
pub unsafe extern "C" fn reduce_parts_f32(
    op: u32,
    x: usize,
    n: usize,
    depth: u32,
    shift: f32,
    out: usize,
    begin: usize,
    end: usize,
) {
    let (depth, parts) = parts_at(depth);
    reduce::reduce_parts_f32(
        op,
        src!(f32, x, n),
        depth,
        shift,
        dst!(f32, out, parts),
        begin.min(parts),
        end.min(parts),
    )
}

/// `out[0]` = the whole reduction from the `2^depth` (at most 16) parts of `reduce_parts_f32`
/// (for `LOGSUMEXP`, made with `shift` the maximum).
#[no_mangle]
pub unsafe extern "C" fn combine_parts_f32(
    op: u32,
    parts: usize,
    depth: u32,
    shift: f32,
    out: usize,
) {
    let (_, count) = parts_at(depth);
    dst!(f32, out, 1)[0] = reduce::combine_parts_f32(op, src!(f32, parts, count), shift);
}

/// A whole-tensor argmax (`ARG_MAX`) or argmin (`ARG_MIN`) in parts: part `i` for `i` in
/// `begin..end` writes to `out[i]` (int32, `2^depth` of them, depth at most 16) the index of
/// the first extreme of `reduce_parts_f32`'s subtree `i` of `n` floats (-1 when it is empty).
#[no_mangle]
pub unsafe extern "C" fn arg_parts_f32(
    op: u32,
    x: usize,
    n: usize,
    depth: u32,
    out: usize,
    begin: usize,
    end: usize,
) {
    let (depth, parts) = parts_at(depth);
    reduce::arg_parts_f32(
        op,
        src!(f32, x, n),
        depth,
        dst!(i32, out, parts),
        begin.min(parts),
        end.min(parts),
    )
}

/// `out[0]` (int32) = the whole argmax/argmin of `n` floats from `arg_parts_f32`'s `2^depth`
/// parts: `argreduce_f32`'s index.
#[no_mangle]
pub unsafe extern "C" fn combine_arg_parts_f32(
    op: u32,
    x: usize,
    n: usize,
    parts: usize,
    depth: u32,
    out: usize,
) {
    let (_, count) = parts_at(depth);
    let x = src!(f32, x, n);
    dst!(i32, out, 1)[0] = reduce::combine_arg_parts_f32(op, x, src!(i32, parts, count));
}

/// `reduce_f32` for int32: SUM (wrapping), MAX, MIN.
#[no_mangle]
pub unsafe extern "C" fn reduce_i32(
    op: u32,
    x: usize,
    out: usize,
    outer: usize,
    r: usize,
    inner: usize,
) {
    reduce::reduce_i32(
        op,
        src!(i32, x, outer * r * inner),
        dst!(i32, out, outer * inner),
        outer,
        r,
        inner,
    )
}

/// Index of the first max (`ARG_MAX`) or min (`ARG_MIN`) along the middle axis of
/// `[outer, r, inner]`, written as int32 `[outer, inner]`. A NaN counts as the extreme.
#[no_mangle]
pub unsafe extern "C" fn argreduce_f32(
    op: u32,
    x: usize,
    out: usize,
    outer: usize,
    r: usize,
    inner: usize,
) {
    reduce::argreduce_f32(
        op,
        src!(f32, x, outer * r * inner),
        dst!(i32, out, outer * inner),
        outer,
        r,
        inner,
    )
}

/// Softmax (`log = 0`) or log-softmax (`log = 1`) along the middle axis of `[outer, r, inner]`.
#[no_mangle]
pub unsafe extern "C" fn softmax_f32(
    x: usize,
    out: usize,
    outer: usize,
    r: usize,
    inner: usize,
    log: u32,
) {
    let n = outer * r * inner;
    softmax::softmax_f32(
        src!(f32, x, n),
        dst!(f32, out, n),
        outer,
        r,
        inner,
        log != 0,
    )
}

/// Backward of `softmax_f32` from its output `y` and upstream gradient `g`:
/// softmax `y * (g - Σ g*y)`, log-softmax `g - exp(y) * Σ g`.
#[no_mangle]
pub unsafe extern "C" fn softmax_bwd_f32(
    y: usize,
    g: usize,
    out: usize,
    outer: usize,
    r: usize,
    inner: usize,
    log: u32,
) {
    let n = outer * r * inner;
    softmax::softmax_bwd_f32(
        src!(f32, y, n),
        src!(f32, g, n),
        dst!(f32, out, n),
        outer,
        r,
        inner,
        log != 0,
    )
}

// ---------------------------------------------------------------- indexing

/// Returns the position of the first `idx[i]` outside `[0, limit)`, or -1 when all are valid.
/// TypeScript calls it before every indexing kernel and turns a hit into an `IndexError`.
#[no_mangle]
pub unsafe extern "C" fn index_check_i32(idx: usize, n: usize, limit: i32) -> i32 {
    index::index_check_i32(src!(i32, idx, n), limit)
}

/// `out[o, j, i] = x[o, idx[j], i]` on 32-bit words; `x` is `[outer, dim, inner]`, `out` is
/// `[outer, n_idx, inner]`; only the positions `j` in `begin..end` (clamped to `n_idx`).
#[no_mangle]
pub unsafe extern "C" fn index_select_u32(
    x: usize,
    idx: usize,
    out: usize,
    outer: usize,
    dim: usize,
    inner: usize,
    n_idx: usize,
    begin: usize,
    end: usize,
) {
    let end = end.min(n_idx);
    index::index_select_u32(
        src!(u32, x, outer * dim * inner),
        src!(i32, idx, n_idx),
        dst!(u32, out, outer * n_idx * inner),
        outer,
        dim,
        inner,
        begin.min(end),
        end,
    )
}

/// The backward of `index_select_u32` (and of an embedding lookup): `dst[o, idx[j], i] += g[o, j, i]`,
/// for the columns `i` in `begin..end` only (clamped to `inner`).
#[no_mangle]
pub unsafe extern "C" fn index_add_f32(
    g: usize,
    idx: usize,
    dst: usize,
    outer: usize,
    dim: usize,
    inner: usize,
    n_idx: usize,
    begin: usize,
    end: usize,
) {
    let end = end.min(inner);
    index::index_add_f32(
        src!(f32, g, outer * n_idx * inner),
        src!(i32, idx, n_idx),
        dst!(f32, dst, outer * dim * inner),
        outer,
        dim,
        inner,
        begin.min(end),
        end,
    )
}

/// Where a work range over dim 0 of the index tensor starts in an operand of `len` words with
/// `strides`: `begin` rows in, unless `axis` is 0 (the index then picks the row itself). The
/// operand's slice runs from there to its end.
fn row_offset(strides: &[i32], axis: u32, begin: usize, len: usize) -> usize {
    if axis == 0 {
        0
    } else {
        (begin * strides[0] as usize).min(len)
    }
}

/// Rows `begin..end` of an index tensor's dim 0, clamped to it: the range's start, the shape
/// cut to it (as `cut_first_dim`) and the flat offset of its first position; None when 0-d.
fn index_rows(
    full: &[i32],
    begin: usize,
    end: usize,
) -> Option<(usize, [i32; MAX_DIMS as usize], usize)> {
    let rows = *full.first()? as usize;
    let end = end.min(rows);
    let begin = begin.min(end);
    Some((
        begin,
        cut_first_dim(full, begin, end),
        begin * numel(&full[1..]),
    ))
}

/// `torch.gather`: for every position `p` of the contiguous index tensor (shape `idx_shape`),
/// `out[p] = x[Σ_{d≠axis} p_d * x_strides[d] + idx[p] * x_strides[axis]]` on 32-bit words; only
/// the positions whose first coordinate is in `begin..end` (a range of rows that write apart).
#[no_mangle]
pub unsafe extern "C" fn gather_u32(
    x: usize,
    x_len: usize,
    idx: usize,
    out: usize,
    ndim: u32,
    idx_shape: usize,
    x_strides: usize,
    axis: u32,
    begin: usize,
    end: usize,
) {
    let (full, xs) = (dims(idx_shape, ndim), dims(x_strides, ndim));
    let (begin, cut, at) = match index_rows(full, begin, end) {
        Some(rows) => rows,
        None => return,
    };
    let sub = &cut[..full.len()];
    let n = numel(sub);
    let x0 = row_offset(xs, axis, begin, x_len);
    index::gather_u32(
        src!(u32, x + 4 * x0, x_len - x0),
        src!(i32, idx + 4 * at, n),
        dst!(u32, out + 4 * at, n),
        sub,
        xs,
        axis as usize,
    )
}

/// `torch.Tensor.scatter_add_` in f32: for every position `p` of the contiguous index tensor,
/// `dst[Σ_{d≠axis} p_d * dst_strides[d] + idx[p] * dst_strides[axis]] += src[Σ p_d * src_strides[d]]`;
/// only the positions whose first coordinate is in `begin..end`. Rows of dim 0 add onto
/// separate elements only when `axis` is not 0: only then may ranges run at once.
#[no_mangle]
pub unsafe extern "C" fn scatter_add_f32(
    dst: usize,
    dst_len: usize,
    idx: usize,
    src: usize,
    src_len: usize,
    ndim: u32,
    idx_shape: usize,
    dst_strides: usize,
    src_strides: usize,
    axis: u32,
    begin: usize,
    end: usize,
) {
    let (full, ds, ss) = (
        dims(idx_shape, ndim),
        dims(dst_strides, ndim),
        dims(src_strides, ndim),
    );
    let (begin, cut, at) = match index_rows(full, begin, end) {
        Some(rows) => rows,
        None => return,
    };
    let sub = &cut[..full.len()];
    let d0 = row_offset(ds, axis, begin, dst_len);
    // The source is read at its own strides, dim 0 included, whatever the axis.
    let s0 = (begin * ss[0] as usize).min(src_len);
    index::scatter_add_f32(
        dst!(f32, dst + 4 * d0, dst_len - d0),
        src!(i32, idx + 4 * at, numel(sub)),
        src!(f32, src + 4 * s0, src_len - s0),
        sub,
        ds,
        ss,
        axis as usize,
    )
}

/// `out[i, c] = (idx[i] == c) as i32` for `c < classes`; `out` is `[n, classes]` int32.
#[no_mangle]
pub unsafe extern "C" fn one_hot_i32(idx: usize, out: usize, n: usize, classes: usize) {
    index::one_hot_i32(src!(i32, idx, n), dst!(i32, out, n * classes), classes)
}

// ---------------------------------------------------------------- matmul

/// Floats of scratch `matmul_f32` needs; TypeScript allocates it once and reuses it.
#[no_mangle]
pub extern "C" fn matmul_scratch_len() -> usize {
    matmul::SCRATCH_LEN
}

/// `C = op(A) · op(B)` (or `C += ...` when `accumulate != 0`) for one `m×k` by `k×n` product.
/// A's element `(i, p)` is at `a[i * a_rs + p * a_cs]`, B's `(p, j)` at `b[p * b_rs + j * b_cs]`,
/// so transposed operands need no copy; C is row-major with row stride `ldc >= n` (`n` for a
/// whole C; a wider C's stride when a thread computes a range of its columns). `scratch` holds
/// `matmul_scratch_len()` floats for packed panels.
#[no_mangle]
pub unsafe extern "C" fn matmul_f32(
    a: usize,
    b: usize,
    c: usize,
    m: usize,
    k: usize,
    n: usize,
    ldc: usize,
    a_rs: usize,
    a_cs: usize,
    b_rs: usize,
    b_cs: usize,
    accumulate: u32,
    scratch: usize,
) {
    let a_len = if m == 0 || k == 0 {
        0
    } else {
        (m - 1) * a_rs + (k - 1) * a_cs + 1
    };
    let b_len = if k == 0 || n == 0 {
        0
    } else {
        (k - 1) * b_rs + (n - 1) * b_cs + 1
    };
    let ldc = ldc.max(n); // rows never overlap
    let c_len = if m == 0 || n == 0 {
        0
    } else {
        (m - 1) * ldc + n
    };
    matmul::matmul_prepacked_f32(
        src!(f32, a, a_len),
        src!(f32, b, b_len),
        &[],
        dst!(f32, c, c_len),
        m,
        k,
        n,
        ldc,
        [a_rs, a_cs],
        [b_rs, b_cs],
        accumulate != 0,
        dst!(f32, scratch, matmul::SCRATCH_LEN),
    )
}

// ---------------------------------------------------------------- random numbers

/// Fills `out[begin..end]` (of `n`) with uniform f32 in `[low, high)`. The stream is a pure
/// function of (`key_hi`, `key_lo`, element index), so TypeScript makes results reproducible
/// by advancing the key once per call, and any cut of `0..n` into ranges (the pool's split)
/// gives the same values. So for the three below.
#[no_mangle]
pub unsafe extern "C" fn rng_uniform_f32(
    out: usize,
    n: usize,
    key_hi: u32,
    key_lo: u32,
    low: f32,
    high: f32,
    begin: usize,
    end: usize,
) {
    let end = end.min(n);
    let begin = begin.min(end);
    let part = dst!(f32, out + 4 * begin, end - begin);
    rng::uniform_f32(part, rng::key(key_hi, key_lo), begin, low, high)
}

/// Fills `out[begin..end]` with normal f32 of mean `mean` and standard deviation `std` (Box–Muller).
#[no_mangle]
pub unsafe extern "C" fn rng_normal_f32(
    out: usize,
    n: usize,
    key_hi: u32,
    key_lo: u32,
    mean: f32,
    std: f32,
    begin: usize,
    end: usize,
) {
    let end = end.min(n);
    let begin = begin.min(end);
    let part = dst!(f32, out + 4 * begin, end - begin);
    rng::normal_f32(part, rng::key(key_hi, key_lo), begin, mean, std)
}

/// Fills `out[begin..end]` with integers uniform in `[low, high)` (`high > low`).
#[no_mangle]
pub unsafe extern "C" fn rng_randint_i32(
    out: usize,
    n: usize,
    key_hi: u32,
    key_lo: u32,
    low: i32,
    high: i32,
    begin: usize,
    end: usize,
) {
    let end = end.min(n);
    let begin = begin.min(end);
    let part = dst!(i32, out + 4 * begin, end - begin);
    rng::randint_i32(part, rng::key(key_hi, key_lo), begin, low, high)
}

/// Dropout mask: `out[i] = scale` with probability `keep`, else 0, for `i` in `begin..end`.
#[no_mangle]
pub unsafe extern "C" fn rng_bernoulli_f32(
    out: usize,
    n: usize,
    key_hi: u32,
    key_lo: u32,
    keep: f32,
    scale: f32,
    begin: usize,
    end: usize,
) {
    let end = end.min(n);
    let begin = begin.min(end);
    let part = dst!(f32, out + 4 * begin, end - begin);
    rng::bernoulli_f32(part, rng::key(key_hi, key_lo), begin, keep, scale)
}

// ---------------------------------------------------------------- optimizers

// Flags of the `*_step_f32` optimizer updates (or-ed together).
/// Ascend instead of descend: the gradient is negated first.
pub const OPTIM_MAXIMIZE: u32 = 1;
/// SGD: Nesterov momentum.
pub const OPTIM_NESTEROV: u32 = 2;
/// SGD: the first step with momentum; the buffer is set to the gradient instead of decayed.
pub const OPTIM_FIRST: u32 = 4;
/// Adam: decoupled weight decay (AdamW).
pub const OPTIM_DECOUPLED: u32 = 8;
/// Adam: AMSGrad (`max_exp_avg_sq` is used).
pub const OPTIM_AMSGRAD: u32 = 16;
/// RMSprop: centered (`grad_avg` is used).
pub const OPTIM_CENTERED: u32 = 32;

/// `n` floats at `ptr` when the call uses that buffer, else an empty slice (`ptr` may be 0).
unsafe fn optional_f32<'a>(ptr: usize, n: usize, used: bool) -> &'a mut [f32] {
    if used {
        dst!(f32, ptr, n)
    } else {
        &mut []
    }
}

/// One `torch.optim.SGD` update of `param` in place from `grad`; `momentum_buf` (used when
/// `momentum != 0`) is updated in place. Flags: `OPTIM_MAXIMIZE`, `OPTIM_NESTEROV`, `OPTIM_FIRST`.
#[no_mangle]
pub unsafe extern "C" fn sgd_step_f32(
    param: usize,
    grad: usize,
    momentum_buf: usize,
    n: usize,
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    flags: u32,
) {
    crate::kernels::optim::sgd_step_f32(
        dst!(f32, param, n),
        src!(f32, grad, n),
        optional_f32(momentum_buf, n, momentum != 0.0),
        lr,
        momentum,
        dampening,
        weight_decay,
        flags,
    )
}

/// One `torch.optim.Adam`/`AdamW` update in place; `bias_correction1/2` are `1 - beta ** step`.
/// `max_exp_avg_sq` is used with `OPTIM_AMSGRAD`. Flags: `OPTIM_MAXIMIZE`, `OPTIM_DECOUPLED`,
/// `OPTIM_AMSGRAD`.
#[no_mangle]
pub unsafe extern "C" fn adam_step_f32(
    param: usize,
    grad: usize,
    exp_avg: usize,
    exp_avg_sq: usize,
    max_exp_avg_sq: usize,
    n: usize,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    bias_correction1: f64,
    bias_correction2: f64,
    flags: u32,
) {
    crate::kernels::optim::adam_step_f32(
        dst!(f32, param, n),
        src!(f32, grad, n),
        dst!(f32, exp_avg, n),
        dst!(f32, exp_avg_sq, n),
        optional_f32(max_exp_avg_sq, n, flags & OPTIM_AMSGRAD != 0),
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        bias_correction1,
        bias_correction2,
        flags,
    )
}

/// One `torch.optim.RMSprop` update in place. `grad_avg` is used with `OPTIM_CENTERED`,
/// `momentum_buf` when `momentum > 0`. Flags: `OPTIM_MAXIMIZE`, `OPTIM_CENTERED`.
#[no_mangle]
pub unsafe extern "C" fn rmsprop_step_f32(
    param: usize,
    grad: usize,
    square_avg: usize,
    grad_avg: usize,
    momentum_buf: usize,
    n: usize,
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    flags: u32,
) {
    crate::kernels::optim::rmsprop_step_f32(
        dst!(f32, param, n),
        src!(f32, grad, n),
        dst!(f32, square_avg, n),
        optional_f32(grad_avg, n, flags & OPTIM_CENTERED != 0),
        optional_f32(momentum_buf, n, momentum > 0.0),
        lr,
        alpha,
        eps,
        weight_decay,
        momentum,
        flags,
    )
}

/// The `step`-th (1-based) `torch.optim.Adagrad` update in place. Flags: `OPTIM_MAXIMIZE`.
#[no_mangle]
pub unsafe extern "C" fn adagrad_step_f32(
    param: usize,
    grad: usize,
    state_sum: usize,
    n: usize,
    lr: f64,
    lr_decay: f64,
    weight_decay: f64,
    eps: f64,
    step: f64,
    flags: u32,
) {
    crate::kernels::optim::adagrad_step_f32(
        dst!(f32, param, n),
        src!(f32, grad, n),
        dst!(f32, state_sum, n),
        lr,
        lr_decay,
        weight_decay,
        eps,
        step,
        flags,
    )
}

/// Sets each subnormal among `n` floats at `x` to a zero of its sign (`nb.setFlushDenormal`).
#[no_mangle]
pub unsafe extern "C" fn flush_subnormal_f32(x: usize, n: usize) {
    crate::kernels::optim::flush_subnormal_f32(dst!(f32, x, n))
}

/// `Σ |x[i]|^p` in f64 for finite `p > 0`, or `max |x[i]|` for `p = inf` (gradient clipping).
#[no_mangle]
pub unsafe extern "C" fn pow_sum_f32(x: usize, n: usize, p: f64) -> f64 {
    crate::kernels::optim::pow_sum_f32(src!(f32, x, n), p)
}

/// `pow_sum_f32` of chunks `begin..end` of `chunk` floats (of `n` at `x`) into `out`, one f64
/// per chunk (`ceil(n / chunk)`): a long gradient's norm split over threads.
#[no_mangle]
pub unsafe extern "C" fn pow_sum_chunks_f32(
    x: usize,
    n: usize,
    chunk: usize,
    p: f64,
    out: usize,
    begin: usize,
    end: usize,
) {
    let chunk = chunk.max(1);
    // `n / chunk` rounded up, written out (`div_ceil` is newer than Rust 1.63).
    let parts = n / chunk + usize::from(n / chunk * chunk < n);
    crate::kernels::optim::pow_sum_chunks_f32(
        src!(f32, x, n),
        chunk,
        p,
        dst!(f64, out, parts),
        begin.min(parts),
        end.min(parts),
    )
}

// ---------------------------------------------------------------- losses

/// `n` floats at `ptr`, or an empty slice when `ptr` is 0 (an absent optional buffer; `nb_alloc`
/// never returns 0 for a live block).
unsafe fn maybe_f32<'a>(ptr: usize, n: usize) -> &'a mut [f32] {
    if ptr == 0 {
        &mut []
    } else {
        dst!(f32, ptr, n)
    }
}

/// `n` writable floats at `ptr`, or `None` when `ptr` is 0 (an output the caller does not want).
unsafe fn maybe_out_f32<'a>(ptr: usize, n: usize) -> Option<&'a mut [f32]> {
    (ptr != 0).then(|| dst!(f32, ptr, n))
}

/// The class axis of the cross-entropy kernels: `weight` is 0 (unweighted) or `classes` floats.
unsafe fn loss_classes<'a>(
    classes: usize,
    weight: usize,
    smoothing: f32,
) -> crate::kernels::loss::Classes<'a> {
    crate::kernels::loss::Classes {
        n: classes,
        weight: maybe_f32(weight, classes),
        smoothing,
    }
}

/// Position of the first class-index `target` outside `[0, classes)` that is not
/// `ignore_index`, or -1. TypeScript calls it before the cross-entropy kernels and turns a hit
/// into an `IndexError`.
#[no_mangle]
pub unsafe extern "C" fn class_target_check_i32(
    target: usize,
    n: usize,
    classes: usize,
    ignore_index: i32,
) -> i32 {
    crate::kernels::loss::class_target_check_i32(src!(i32, target, n), classes, ignore_index)
}

/// `Σ weight[target]` over the `n` targets that are not `ignore_index`, in order (`weight` 0:
/// unweighted, a count): the divisor of the `'mean'` cross-entropy, apart from the rows'
/// losses so that those can be split over threads.
#[no_mangle]
pub unsafe extern "C" fn class_weight_total_i32(
    target: usize,
    weight: usize,
    n: usize,
    classes: usize,
    ignore_index: i32,
) -> f64 {
    crate::kernels::loss::class_weight_total(
        src!(i32, target, n),
        loss_classes(classes, weight, 0.0),
        ignore_index,
    )
}

/// Fused log-softmax + NLL of `rows` rows of `classes` logits against int32 class indices, with
/// class `weight` (0 for none), `ignore_index` and label `smoothing`. Writes each row's loss and
/// its logsumexp as the pair `lse[2r..2r + 2] = (max, log Σ exp(x - max))`. Rows are
/// independent: the pool splits them.
#[no_mangle]
pub unsafe extern "C" fn cross_entropy_f32(
    x: usize,
    target: usize,
    weight: usize,
    loss: usize,
    lse: usize,
    rows: usize,
    classes: usize,
    ignore_index: i32,
    smoothing: f32,
) {
    crate::kernels::loss::cross_entropy_f32(
        src!(f32, x, rows * classes),
        src!(i32, target, rows),
        loss_classes(classes, weight, smoothing),
        ignore_index,
        dst!(f32, loss, rows),
        dst!(f32, lse, 2 * rows),
    )
}

/// Backward of `cross_entropy_f32`: `dx` (`[rows, classes]`) from the saved `lse` pairs and the
/// upstream gradient `g` of each row's loss.
#[no_mangle]
pub unsafe extern "C" fn cross_entropy_bwd_f32(
    x: usize,
    target: usize,
    weight: usize,
    lse: usize,
    g: usize,
    dx: usize,
    rows: usize,
    classes: usize,
    ignore_index: i32,
    smoothing: f32,
) {
    crate::kernels::loss::cross_entropy_bwd_f32(
        src!(f32, x, rows * classes),
        src!(i32, target, rows),
        loss_classes(classes, weight, smoothing),
        ignore_index,
        src!(f32, lse, 2 * rows),
        src!(f32, g, rows),
        dst!(f32, dx, rows * classes),
    )
}

/// Fused cross-entropy against class probabilities `target` (`[rows, classes]`), with class
/// `weight` (0 for none) and label `smoothing`: writes each row's loss and `lse` pair.
#[no_mangle]
pub unsafe extern "C" fn cross_entropy_prob_f32(
    x: usize,
    target: usize,
    weight: usize,
    loss: usize,
    lse: usize,
    rows: usize,
    classes: usize,
    smoothing: f32,
) {
    let n = rows * classes;
    crate::kernels::loss::cross_entropy_prob_f32(
        src!(f32, x, n),
        src!(f32, target, n),
        loss_classes(classes, weight, smoothing),
        dst!(f32, loss, rows),
        dst!(f32, lse, 2 * rows),
    )
}

/// Backward of `cross_entropy_prob_f32` into `dx` and `dt` (the logits' and the targets'
/// gradients, `[rows, classes]` each); either is 0 when that gradient is not needed.
#[no_mangle]
pub unsafe extern "C" fn cross_entropy_prob_bwd_f32(
    x: usize,
    target: usize,
    weight: usize,
    lse: usize,
    g: usize,
    dx: usize,
    dt: usize,
    rows: usize,
    classes: usize,
    smoothing: f32,
) {
    let n = rows * classes;
    crate::kernels::loss::cross_entropy_prob_bwd_f32(
        src!(f32, x, n),
        src!(f32, target, n),
        loss_classes(classes, weight, smoothing),
        src!(f32, lse, 2 * rows),
        src!(f32, g, rows),
        maybe_f32(dx, n),
        maybe_f32(dt, n),
    )
}

// ---------------------------------------------------------------- layer norm

/// LayerNorm forward over `rows` rows of `d` floats: `y = (x - mean) * rstd * weight + bias`
/// with the biased variance and `rstd = 1 / sqrt(var + eps)`. Saves each row's mean as the pair
/// `mean[2r..2r + 2]` (the f32 mean and the residual it rounded off) and `rstd[r]`. `weight` and
/// `bias` are `d` floats, or 0 for none.
#[no_mangle]
pub unsafe extern "C" fn layer_norm_f32(
    x: usize,
    y: usize,
    mean: usize,
    rstd: usize,
    weight: usize,
    bias: usize,
    rows: usize,
    d: usize,
    eps: f32,
) {
    crate::kernels::layernorm::layer_norm_f32(
        src!(f32, x, rows * d),
        dst!(f32, y, rows * d),
        dst!(f32, mean, 2 * rows),
        dst!(f32, rstd, rows),
        maybe_f32(weight, d),
        maybe_f32(bias, d),
        d,
        eps,
    )
}

/// Backward of `layer_norm_f32` from the upstream gradient `g`, the input `x` and the saved
/// `mean` pairs and `rstd`: writes `dx` and adds `Σ_rows g * x̂` into `dweight` and `Σ_rows g`
/// into `dbias` (caller-zeroed). `weight` is 0 when the forward had none; `dx`, `dweight` and
/// `dbias` are 0 when that gradient is not needed.
#[no_mangle]
pub unsafe extern "C" fn layer_norm_bwd_f32(
    g: usize,
    x: usize,
    mean: usize,
    rstd: usize,
    weight: usize,
    dx: usize,
    dweight: usize,
    dbias: usize,
    rows: usize,
    d: usize,
) {
    let n = rows * d;
    crate::kernels::layernorm::layer_norm_bwd_f32(
        src!(f32, g, n),
        src!(f32, x, n),
        src!(f32, mean, 2 * rows),
        src!(f32, rstd, rows),
        maybe_f32(weight, d),
        maybe_f32(dx, n),
        maybe_f32(dweight, d),
        maybe_f32(dbias, d),
        d,
    )
}

/// `layer_norm_bwd_f32` over chunks `begin..end` of the `rows` rows cut into `chunks` fixed
/// chunks: writes those chunks' rows of `dx` and overwrites rows `begin..end` of
/// `dweight_parts`/`dbias_parts` (`[chunks, d]`) with each chunk's own sums, which the caller
/// adds in chunk order. Pointers that are 0 skip that output (`weight`: no affine weight).
#[no_mangle]
pub unsafe extern "C" fn layer_norm_bwd_chunks_f32(
    g: usize,
    x: usize,
    mean: usize,
    rstd: usize,
    weight: usize,
    dx: usize,
    dweight_parts: usize,
    dbias_parts: usize,
    rows: usize,
    d: usize,
    chunks: usize,
    begin: usize,
    end: usize,
) {
    use crate::kernels::layernorm::chunk_start;
    let (r0, r1) = (
        chunk_start(rows, chunks, begin),
        chunk_start(rows, chunks, end),
    );
    let (at, n, parts) = (r0 * d * 4, (r1 - r0) * d, (end - begin) * d);
    let offset = |ptr: usize, bytes: usize| if ptr == 0 { 0 } else { ptr + bytes };
    crate::kernels::layernorm::layer_norm_bwd_chunks_f32(
        src!(f32, g + at, n),
        src!(f32, x + at, n),
        src!(f32, mean + 8 * r0, 2 * (r1 - r0)),
        src!(f32, rstd + 4 * r0, r1 - r0),
        maybe_f32(weight, d),
        maybe_f32(offset(dx, at), n),
        maybe_f32(offset(dweight_parts, begin * d * 4), parts),
        maybe_f32(offset(dbias_parts, begin * d * 4), parts),
        (rows, d),
        (chunks, begin, end),
    )
}

// ---------------------------------------------------------------- sort, unfold, scatter, sampling

/// Sorts rows `begin..end` of `x` (`[rows, n]` f32) stably (NaN largest) and writes each row's
/// first `k` values to `vals` and their row positions to `idx` (`[rows, k]`, f32 and i32);
/// descending when `desc != 0`. `scratch` is `2 * n` words.
#[no_mangle]
pub unsafe extern "C" fn sort_rows_f32(
    x: usize,
    vals: usize,
    idx: usize,
    scratch: usize,
    n: usize,
    k: usize,
    desc: u32,
    begin: usize,
    end: usize,
) {
    crate::kernels::sort::sort_rows_f32(
        src!(f32, x, end * n),
        dst!(f32, vals, end * k),
        dst!(i32, idx, end * k),
        dst!(u32, scratch, 2 * n),
        n,
        k,
        desc != 0,
        begin,
        end,
    )
}

/// The window geometry of `unfold_f32` / `fold_f32` from their scalar arguments.
fn window(
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    dh: usize,
    dw: usize,
    ph: usize,
    pw: usize,
    sh: usize,
    sw: usize,
    oh: usize,
    ow: usize,
) -> crate::kernels::unfold::Window {
    crate::kernels::unfold::Window {
        h,
        w,
        kh,
        kw,
        dh,
        dw,
        ph,
        pw,
        sh,
        sw,
        oh,
        ow,
    }
}

/// im2col for planes `begin..end`: `x` is `[planes, h, w]`, `cols` is `[planes, kh * kw, oh * ow]`
/// (kernel `kh × kw`, dilation `dh, dw`, zero padding `ph, pw`, stride `sh, sw`; TypeScript
/// computed `oh, ow >= 1`).
#[no_mangle]
pub unsafe extern "C" fn unfold_f32(
    x: usize,
    cols: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    dh: usize,
    dw: usize,
    ph: usize,
    pw: usize,
    sh: usize,
    sw: usize,
    oh: usize,
    ow: usize,
    begin: usize,
    end: usize,
) {
    let g = window(h, w, kh, kw, dh, dw, ph, pw, sh, sw, oh, ow);
    crate::kernels::unfold::unfold_f32(
        src!(f32, x, end * h * w),
        dst!(f32, cols, end * g.col_len()),
        &g,
        begin,
        end,
    )
}

/// col2im, the adjoint of `unfold_f32` with the same geometry: overwrites planes `begin..end`
/// of `x` with the sum of the column entries read from each pixel.
#[no_mangle]
pub unsafe extern "C" fn fold_f32(
    cols: usize,
    x: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    dh: usize,
    dw: usize,
    ph: usize,
    pw: usize,
    sh: usize,
    sw: usize,
    oh: usize,
    ow: usize,
    begin: usize,
    end: usize,
) {
    let g = window(h, w, kh, kw, dh, dw, ph, pw, sh, sw, oh, ow);
    crate::kernels::unfold::fold_f32(
        src!(f32, cols, end * g.col_len()),
        dst!(f32, x, end * h * w),
        &g,
        begin,
        end,
    )
}

// ---------------------------------------------------------------- convolution

/// Reads a convolution geometry: 16 `i32` at `geom`, `[h, w, kh, kw, dh, dw, ph, pw, sh, sw,
/// oh, ow, groups, cig, cog, winograd]` (one input plane `h × w`; kernel, dilation, zero
/// padding, stride; the output plane; groups and channels per group in and out; 1 when 3×3
/// convolutions may run by Winograd). TypeScript checked every value and that `oh, ow >= 1`.
unsafe fn conv_geom(geom: usize) -> crate::kernels::conv::Conv {
    let g = from_raw_parts(geom as *const i32, 16);
    let u = |i: usize| g[i] as usize;
    crate::kernels::conv::Conv {
        win: window(
            u(0),
            u(1),
            u(2),
            u(3),
            u(4),
            u(5),
            u(6),
            u(7),
            u(8),
            u(9),
            u(10),
            u(11),
        ),
        groups: u(12),
        cig: u(13),
        cog: u(14),
        winograd: g[15] != 0,
    }
}

/// Floats of `cols` scratch the conv backward kernels need for geometry `geom`.
#[no_mangle]
pub unsafe extern "C" fn conv2d_cols_len(geom: usize) -> usize {
    crate::kernels::conv::cols_len(&conv_geom(geom))
}

/// Convolution forward for images `begin..end` through the packed GEMM, no im2col buffer:
/// `x` `[N, groups · cig, h, w]`, `weight` `[groups · cog, cig, kh, kw]`, `bias` the output
/// channels' floats or 0, `y` `[N, groups · cog, oh, ow]` (overwritten). `cols` holds
/// `conv2d_cols_len(geom)` floats, `scratch` `matmul_scratch_len()`.
#[no_mangle]
pub unsafe extern "C" fn conv2d_f32(
    x: usize,
    weight: usize,
    bias: usize,
    y: usize,
    geom: usize,
    begin: usize,
    end: usize,
    cols: usize,
    scratch: usize,
) {
    let cv = conv_geom(geom);
    let (ci, co) = (cv.groups * cv.cig, cv.groups * cv.cog);
    let b = maybe_f32(bias, co);
    crate::kernels::conv::conv2d_f32(
        src!(f32, x, end * ci * cv.win.h * cv.win.w),
        src!(f32, weight, co * cv.depth()),
        if bias == 0 { None } else { Some(b) },
        dst!(f32, y, end * co * cv.positions()),
        &cv,
        begin,
        end,
        dst!(f32, cols, crate::kernels::conv::cols_len(&cv)),
        dst!(f32, scratch, matmul::SCRATCH_LEN),
    )
}

/// Input gradient of `conv2d_f32` for images `begin..end`: overwrites `dx` (shaped as `x`)
/// from `dy` (shaped as `y`) and `weight`. `cols` holds `conv2d_cols_len(geom)` floats,
/// `scratch` `matmul_scratch_len()`.
#[no_mangle]
pub unsafe extern "C" fn conv2d_bwd_input_f32(
    dy: usize,
    weight: usize,
    dx: usize,
    geom: usize,
    begin: usize,
    end: usize,
    cols: usize,
    scratch: usize,
) {
    let cv = conv_geom(geom);
    let (ci, co) = (cv.groups * cv.cig, cv.groups * cv.cog);
    crate::kernels::conv::conv2d_bwd_input_f32(
        src!(f32, dy, end * co * cv.positions()),
        src!(f32, weight, co * cv.depth()),
        dst!(f32, dx, end * ci * cv.win.h * cv.win.w),
        &cv,
        begin,
        end,
        dst!(f32, cols, crate::kernels::conv::cols_len(&cv)),
        dst!(f32, scratch, matmul::SCRATCH_LEN),
    )
}

/// Weight and bias gradients of `conv2d_f32` for output channels `begin..end`, summed over
/// all `n` images of `x` and `dy`: overwrites those rows of `dweight` (shaped as the weight)
/// and entries of `dbias`; either pointer may be 0 when that gradient is not needed. `cols`
/// holds `conv2d_cols_len(geom)` floats, `scratch` `matmul_scratch_len()`.
#[no_mangle]
pub unsafe extern "C" fn conv2d_bwd_weight_f32(
    x: usize,
    dy: usize,
    dweight: usize,
    dbias: usize,
    n: usize,
    geom: usize,
    begin: usize,
    end: usize,
    cols: usize,
    scratch: usize,
) {
    let cv = conv_geom(geom);
    let (ci, co) = (cv.groups * cv.cig, cv.groups * cv.cog);
    crate::kernels::conv::conv2d_bwd_weight_f32(
        src!(f32, x, n * ci * cv.win.h * cv.win.w),
        src!(f32, dy, n * co * cv.positions()),
        maybe_out_f32(dweight, co * cv.depth()),
        maybe_out_f32(dbias, co),
        n,
        &cv,
        begin,
        end,
        dst!(f32, cols, crate::kernels::conv::cols_len(&cv)),
        dst!(f32, scratch, matmul::SCRATCH_LEN),
    )
}

/// `conv2d_bwd_weight_f32` by image chunks (kernels/conv.rs): for chunks `begin..end` of
/// `chunks` (images `c·n/chunks .. (c+1)·n/chunks`), overwrites partial sums `dweight[c]`
/// (`[chunks, Co, Ci/g, kh, kw]`) and `dbias[c]` (`[chunks, Co]`); either pointer may be 0.
/// The caller sums the chunks in order. `cols` and `scratch` as for `conv2d_bwd_weight_f32`.
#[no_mangle]
pub unsafe extern "C" fn conv2d_bwd_weight_chunks_f32(
    x: usize,
    dy: usize,
    dweight: usize,
    dbias: usize,
    n: usize,
    chunks: usize,
    geom: usize,
    begin: usize,
    end: usize,
    cols: usize,
    scratch: usize,
) {
    let cv = conv_geom(geom);
    let (ci, co) = (cv.groups * cv.cig, cv.groups * cv.cog);
    crate::kernels::conv::conv2d_bwd_weight_chunks_f32(
        src!(f32, x, n * ci * cv.win.h * cv.win.w),
        src!(f32, dy, n * co * cv.positions()),
        maybe_out_f32(dweight, chunks * co * cv.depth()),
        maybe_out_f32(dbias, chunks * co),
        n,
        chunks,
        &cv,
        begin,
        end,
        dst!(f32, cols, crate::kernels::conv::cols_len(&cv)),
        dst!(f32, scratch, matmul::SCRATCH_LEN),
    )
}

// ---------------------------------------------------------------- pooling, batch norm

/// Reads a pooling window: 12 `i32` at `geom`, `[h, w, kh, kw, dh, dw, ph, pw, sh, sw, oh, ow]`,
/// checked by TypeScript (ATen's output sizes, padding at most half the kernel).
unsafe fn pool_geom(geom: usize) -> crate::kernels::unfold::Window {
    let g = from_raw_parts(geom as *const i32, 12);
    let u = |i: usize| g[i] as usize;
    window(
        u(0),
        u(1),
        u(2),
        u(3),
        u(4),
        u(5),
        u(6),
        u(7),
        u(8),
        u(9),
        u(10),
        u(11),
    )
}

/// Max pooling of planes `begin..end`: `x` `[planes, h, w]`, `y` and `idx` (i32, flat
/// `h · w + c` input positions of the maxima) `[planes, oh, ow]`; ATen's first-max and NaN
/// rules.
#[no_mangle]
pub unsafe extern "C" fn max_pool2d_f32(
    x: usize,
    y: usize,
    idx: usize,
    geom: usize,
    begin: usize,
    end: usize,
) {
    let g = pool_geom(geom);
    let out = end * g.oh * g.ow;
    crate::kernels::pool::max_pool2d_f32(
        src!(f32, x, end * g.h * g.w),
        dst!(f32, y, out),
        dst!(i32, idx, out),
        &g,
        begin,
        end,
    )
}

/// Backward of `max_pool2d_f32` for planes `begin..end`: overwrites `dx` (`plane` floats per
/// plane) with each output gradient of `dy` (`out` per plane) added at its index.
#[no_mangle]
pub unsafe extern "C" fn max_pool2d_bwd_f32(
    dy: usize,
    idx: usize,
    dx: usize,
    plane: usize,
    out: usize,
    begin: usize,
    end: usize,
) {
    crate::kernels::pool::max_pool2d_bwd_f32(
        src!(f32, dy, end * out),
        src!(i32, idx, end * out),
        dst!(f32, dx, end * plane),
        plane,
        out,
        begin,
        end,
    )
}

/// Average pooling of planes `begin..end` (geometry as for max pooling, dilation 1): each
/// window's clipped sum over `divisor` when non-zero, else over its size with the zero padding
/// (`include_pad != 0`) or without.
#[no_mangle]
pub unsafe extern "C" fn avg_pool2d_f32(
    x: usize,
    y: usize,
    geom: usize,
    include_pad: u32,
    divisor: f32,
    begin: usize,
    end: usize,
) {
    let g = pool_geom(geom);
    crate::kernels::pool::avg_pool2d_f32(
        src!(f32, x, end * g.h * g.w),
        dst!(f32, y, end * g.oh * g.ow),
        &g,
        include_pad != 0,
        divisor,
        begin,
        end,
    )
}

/// Backward of `avg_pool2d_f32` for planes `begin..end`: overwrites `dx`.
#[no_mangle]
pub unsafe extern "C" fn avg_pool2d_bwd_f32(
    dy: usize,
    dx: usize,
    geom: usize,
    include_pad: u32,
    divisor: f32,
    begin: usize,
    end: usize,
) {
    let g = pool_geom(geom);
    crate::kernels::pool::avg_pool2d_bwd_f32(
        src!(f32, dy, end * g.oh * g.ow),
        dst!(f32, dx, end * g.h * g.w),
        &g,
        include_pad != 0,
        divisor,
        begin,
        end,
    )
}

/// Batch norm forward for channels `begin..end` of `x` `[n, c, s]` into `y`. With
/// `batch_stats != 0` writes the batch mean and biased variance into `mean` and `var` (`c`
/// floats each), else reads them (running statistics); always writes `invstd` =
/// `1 / sqrt(var + eps)`. `weight`, `bias` are `c` floats or 0.
#[no_mangle]
pub unsafe extern "C" fn batch_norm_f32(
    x: usize,
    y: usize,
    mean: usize,
    var: usize,
    invstd: usize,
    weight: usize,
    bias: usize,
    n: usize,
    c: usize,
    s: usize,
    eps: f32,
    batch_stats: u32,
    begin: usize,
    end: usize,
) {
    let len = n * c * s;
    crate::kernels::batchnorm::batch_norm_f32(
        src!(f32, x, len),
        dst!(f32, y, len),
        dst!(f32, mean, c),
        dst!(f32, var, c),
        dst!(f32, invstd, c),
        maybe_f32(weight, c),
        maybe_f32(bias, c),
        [n, c, s],
        eps,
        batch_stats != 0,
        begin,
        end,
    )
}

/// Batch norm backward for channels `begin..end`: from `dy`, `x`, the forward's `mean` and
/// `invstd` and `weight` (0 for none) writes `dx`, `dweight` (Σ dy · x̂) and `dbias` (Σ dy),
/// each 0 when not needed. `batch_stats` as in the forward (the statistics' own gradient).
#[no_mangle]
pub unsafe extern "C" fn batch_norm_bwd_f32(
    dy: usize,
    x: usize,
    mean: usize,
    invstd: usize,
    weight: usize,
    dx: usize,
    dweight: usize,
    dbias: usize,
    n: usize,
    c: usize,
    s: usize,
    batch_stats: u32,
    begin: usize,
    end: usize,
) {
    let len = n * c * s;
    crate::kernels::batchnorm::batch_norm_bwd_f32(
        src!(f32, dy, len),
        src!(f32, x, len),
        src!(f32, mean, c),
        src!(f32, invstd, c),
        maybe_f32(weight, c),
        maybe_f32(dx, len),
        maybe_f32(dweight, c),
        maybe_f32(dbias, c),
        [n, c, s],
        batch_stats != 0,
        begin,
        end,
    )
}

/// `torch.Tensor.scatter_` on 32-bit words (overwrite; the later of two equal positions wins):
/// for every position `p` of the contiguous index tensor,
/// `dst[Σ_{d≠axis} p_d * dst_strides[d] + idx[p] * dst_strides[axis]] = src[Σ p_d * src_strides[d]]`.
#[no_mangle]
pub unsafe extern "C" fn scatter_u32(
    dst: usize,
    dst_len: usize,
    idx: usize,
    src: usize,
    src_len: usize,
    ndim: u32,
    idx_shape: usize,
    dst_strides: usize,
    src_strides: usize,
    axis: u32,
) {
    let shape = dims(idx_shape, ndim);
    crate::kernels::select::scatter_u32(
        dst!(u32, dst, dst_len),
        src!(i32, idx, numel(shape)),
        src!(u32, src, src_len),
        shape,
        dims(dst_strides, ndim),
        dims(src_strides, ndim),
        axis as usize,
    )
}

/// How many of the `n` i32 values at `x` are non-zero.
#[no_mangle]
pub unsafe extern "C" fn count_nonzero_i32(x: usize, n: usize) -> usize {
    crate::kernels::select::count_nonzero_i32(src!(i32, x, n))
}

/// Coordinates of the non-zero elements of the contiguous i32 tensor `x` (shape `shape`, `ndim`
/// dims), row-major, as the rows of `out` (`[count_nonzero_i32(x), ndim]` i32).
#[no_mangle]
pub unsafe extern "C" fn nonzero_i32(x: usize, n: usize, ndim: u32, shape: usize, out: usize) {
    let x = src!(i32, x, n);
    let count = crate::kernels::select::count_nonzero_i32(x);
    crate::kernels::select::nonzero_i32(x, dims(shape, ndim), dst!(i32, out, count * ndim as usize))
}

/// Multinomial draws with replacement for rows `begin..end`: `probs` `[rows, cats]` f32 (checked
/// non-negative with a positive finite row sum), uniforms `u` `[rows, samples]`, category
/// indices into `out` `[rows, samples]` i32; `cdf` is `cats` f64 of scratch.
#[no_mangle]
pub unsafe extern "C" fn multinomial_f32(
    probs: usize,
    u: usize,
    out: usize,
    cdf: usize,
    cats: usize,
    samples: usize,
    begin: usize,
    end: usize,
) {
    crate::kernels::sample::multinomial_f32(
        src!(f32, probs, end * cats),
        src!(f32, u, end * samples),
        dst!(i32, out, end * samples),
        dst!(f64, cdf, cats),
        cats,
        samples,
        begin,
        end,
    )
}

/// A random permutation of `0..n` into `out` (i32) from `n` uniforms at `u` (Fisher–Yates).
#[no_mangle]
pub unsafe extern "C" fn shuffle_i32(u: usize, out: usize, n: usize) {
    crate::kernels::sample::shuffle_i32(src!(f32, u, n), dst!(i32, out, n))
}

// ---------------------------------------------------------------- recurrent cells
//
// Every cell kernel takes `w_hh_packed`: W_hh's GEMM panels from `rnn_pack_w_hh_f32` (the
// forward layout for the forward kernels, the backward layout for the `_bwd` ones), or 0 to
// pack per call. A layer packs once per pass; the results are the same bits either way.

/// Floats `rnn_pack_w_hh_f32` writes for a `[gates * hidden, hidden]` W_hh, in the forward
/// layout (`backward == 0`) or the backward's.
#[no_mangle]
pub extern "C" fn rnn_w_hh_packed_len(gates: usize, hidden: usize, backward: u32) -> usize {
    rnn::w_hh_packed_len(gates * hidden, hidden, backward != 0)
}

/// Packs W_hh (`[gates * hidden, hidden]`) into `packed` (`rnn_w_hh_packed_len` floats) in the
/// layout the cell kernels' `w_hh_packed` reads: the forward's (`backward == 0`) or the
/// backward's.
#[no_mangle]
pub unsafe extern "C" fn rnn_pack_w_hh_f32(
    w_hh: usize,
    gates: usize,
    hidden: usize,
    backward: u32,
    packed: usize,
) {
    let (g, bwd) = (gates * hidden, backward != 0);
    rnn::pack_w_hh_f32(
        src!(f32, w_hh, g * hidden),
        g,
        hidden,
        bwd,
        dst!(f32, packed, rnn::w_hh_packed_len(g, hidden, bwd)),
    )
}

/// One LSTM step for batch rows `begin..end` (kernels/rnn.rs): `gx` `[batch, 4H]` (input
/// projection with `b_ih` added), `h_prev`, `c_prev` `[batch, H]`, `w_hh` `[4H, H]`, `b_hh` `4H`
/// floats or 0 for none; writes `h`, `c` `[batch, H]` and the activated gates `act`
/// `[batch, 4H]`. `pre` is `[batch, 4H]` scratch, `scratch` `matmul_scratch_len()` floats.
#[no_mangle]
pub unsafe extern "C" fn lstm_cell_f32(
    gx: usize,
    h_prev: usize,
    c_prev: usize,
    w_hh: usize,
    w_hh_packed: usize,
    b_hh: usize,
    h: usize,
    c: usize,
    act: usize,
    pre: usize,
    batch: usize,
    hidden: usize,
    begin: usize,
    end: usize,
    scratch: usize,
) {
    let (bh, g) = (batch * hidden, 4 * hidden);
    rnn::lstm_cell_f32(
        src!(f32, gx, batch * g),
        src!(f32, h_prev, bh),
        src!(f32, c_prev, bh),
        src!(f32, w_hh, g * hidden),
        maybe_f32(w_hh_packed, rnn::w_hh_packed_len(g, hidden, false)),
        maybe_f32(b_hh, g),
        dst!(f32, h, bh),
        dst!(f32, c, bh),
        dst!(f32, act, batch * g),
        dst!(f32, pre, batch * g),
        hidden,
        begin,
        end,
        dst!(f32, scratch, matmul::SCRATCH_LEN),
    )
}

/// Backward of `lstm_cell_f32` for rows `begin..end` from `dh`, `dc` (`[batch, H]`, or 0 for
/// zero), the saved `act` and `c` and `c_prev`: writes the pre-activation gate gradients
/// `dgates` `[batch, 4H]`, `dh_prev` (added to its contents when `accumulate != 0`) and
/// `dc_prev` `[batch, H]`.
#[no_mangle]
pub unsafe extern "C" fn lstm_cell_bwd_f32(
    dh: usize,
    dc: usize,
    act: usize,
    c_prev: usize,
    c: usize,
    w_hh: usize,
    w_hh_packed: usize,
    dgates: usize,
    dh_prev: usize,
    dc_prev: usize,
    batch: usize,
    hidden: usize,
    begin: usize,
    end: usize,
    accumulate: u32,
    scratch: usize,
) {
    let (bh, g) = (batch * hidden, 4 * hidden);
    rnn::lstm_cell_bwd_f32(
        maybe_f32(dh, bh),
        maybe_f32(dc, bh),
        src!(f32, act, batch * g),
        src!(f32, c_prev, bh),
        src!(f32, c, bh),
        src!(f32, w_hh, g * hidden),
        maybe_f32(w_hh_packed, rnn::w_hh_packed_len(g, hidden, true)),
        dst!(f32, dgates, batch * g),
        dst!(f32, dh_prev, bh),
        dst!(f32, dc_prev, bh),
        hidden,
        begin,
        end,
        accumulate != 0,
        dst!(f32, scratch, matmul::SCRATCH_LEN),
    )
}

/// One GRU step for rows `begin..end`: `gx` `[batch, 3H]` (with `b_ih`), `h_prev` `[batch, H]`,
/// `w_hh` `[3H, H]`, `b_hh` `3H` floats or 0; writes `h` and `act` `[batch, 4H]` (r, z, n and
/// the recurrent part of n). `pre` is `[batch, 3H]` scratch.
#[no_mangle]
pub unsafe extern "C" fn gru_cell_f32(
    gx: usize,
    h_prev: usize,
    w_hh: usize,
    w_hh_packed: usize,
    b_hh: usize,
    h: usize,
    act: usize,
    pre: usize,
    batch: usize,
    hidden: usize,
    begin: usize,
    end: usize,
    scratch: usize,
) {
    let (bh, g) = (batch * hidden, 3 * hidden);
    rnn::gru_cell_f32(
        src!(f32, gx, batch * g),
        src!(f32, h_prev, bh),
        src!(f32, w_hh, g * hidden),
        maybe_f32(w_hh_packed, rnn::w_hh_packed_len(g, hidden, false)),
        maybe_f32(b_hh, g),
        dst!(f32, h, bh),
        dst!(f32, act, 4 * bh),
        dst!(f32, pre, batch * g),
        hidden,
        begin,
        end,
        dst!(f32, scratch, matmul::SCRATCH_LEN),
    )
}

/// Backward of `gru_cell_f32` for rows `begin..end` from `dh`, the saved `act` and `h_prev`:
/// writes `dgx` and `dgh` `[batch, 3H]` (gradients of the input and recurrent projections) and
/// `dh_prev` `[batch, H]`.
#[no_mangle]
pub unsafe extern "C" fn gru_cell_bwd_f32(
    dh: usize,
    act: usize,
    h_prev: usize,
    w_hh: usize,
    w_hh_packed: usize,
    dgx: usize,
    dgh: usize,
    dh_prev: usize,
    batch: usize,
    hidden: usize,
    begin: usize,
    end: usize,
    scratch: usize,
) {
    let (bh, g) = (batch * hidden, 3 * hidden);
    rnn::gru_cell_bwd_f32(
        src!(f32, dh, bh),
        src!(f32, act, 4 * bh),
        src!(f32, h_prev, bh),
        src!(f32, w_hh, g * hidden),
        maybe_f32(w_hh_packed, rnn::w_hh_packed_len(g, hidden, true)),
        dst!(f32, dgx, batch * g),
        dst!(f32, dgh, batch * g),
        dst!(f32, dh_prev, bh),
        hidden,
        begin,
        end,
        dst!(f32, scratch, matmul::SCRATCH_LEN),
    )
}

/// One Elman step for rows `begin..end`: `h = tanh` (or relu when `relu != 0`) of
/// `gx + b_hh + h_prev · W_hhᵀ`; `gx`, `h_prev`, `h` and the scratch `pre` are `[batch, H]`,
/// `w_hh` `[H, H]`, `b_hh` `H` floats or 0.
#[no_mangle]
pub unsafe extern "C" fn rnn_cell_f32(
    gx: usize,
    h_prev: usize,
    w_hh: usize,
    w_hh_packed: usize,
    b_hh: usize,
    h: usize,
    pre: usize,
    relu: u32,
    batch: usize,
    hidden: usize,
    begin: usize,
    end: usize,
    scratch: usize,
) {
    let bh = batch * hidden;
    rnn::rnn_cell_f32(
        src!(f32, gx, bh),
        src!(f32, h_prev, bh),
        src!(f32, w_hh, hidden * hidden),
        maybe_f32(w_hh_packed, rnn::w_hh_packed_len(hidden, hidden, false)),
        maybe_f32(b_hh, hidden),
        dst!(f32, h, bh),
        dst!(f32, pre, bh),
        relu != 0,
        hidden,
        begin,
        end,
        dst!(f32, scratch, matmul::SCRATCH_LEN),
    )
}

/// Backward of `rnn_cell_f32` for rows `begin..end` from `dh` and the saved `h`: writes the
/// pre-activation gradient `dpre` and `dh_prev` (`[batch, H]` each).
#[no_mangle]
pub unsafe extern "C" fn rnn_cell_bwd_f32(
    dh: usize,
    h: usize,
    w_hh: usize,
    w_hh_packed: usize,
    dpre: usize,
    dh_prev: usize,
    relu: u32,
    batch: usize,
    hidden: usize,
    begin: usize,
    end: usize,
    scratch: usize,
) {
    let bh = batch * hidden;
    rnn::rnn_cell_bwd_f32(
        src!(f32, dh, bh),
        src!(f32, h, bh),
        src!(f32, w_hh, hidden * hidden),
        maybe_f32(w_hh_packed, rnn::w_hh_packed_len(hidden, hidden, true)),
        dst!(f32, dpre, bh),
        dst!(f32, dh_prev, bh),
        relu != 0,
        hidden,
        begin,
        end,
        dst!(f32, scratch, matmul::SCRATCH_LEN),
    )
}

// ---------------------------------------------------------------- attention

/// Scratch floats `sdpa_fwd_f32` and `sdpa_bwd_f32` need for `t` query rows.
#[no_mangle]
pub extern "C" fn sdpa_scratch_len(t: usize) -> usize {
    crate::kernels::attention::FWD_SCRATCH.max(crate::kernels::attention::bwd_scratch(t))
}

/// Work items of `sdpa_fwd_f32` per (batch, head): the query blocks of `t` rows.
#[no_mangle]
pub extern "C" fn sdpa_query_blocks(t: usize) -> usize {
    crate::kernels::attention::query_blocks(t)
}

fn sdpa_dims(
    heads: usize,
    t: usize,
    s: usize,
    d: usize,
    dv: usize,
    scale: f32,
    causal: u32,
) -> crate::kernels::attention::Dims {
    crate::kernels::attention::Dims {
        heads,
        t,
        s,
        d,
        dv,
        scale,
        causal: causal != 0,
    }
}

unsafe fn sdpa_mask<'a>(
    mask: usize,
    mask_len: usize,
    mb: usize,
    mh: usize,
    mt: usize,
    ms: usize,
) -> crate::kernels::attention::Mask<'a> {
    crate::kernels::attention::Mask {
        data: if mask == 0 {
            &[]
        } else {
            src!(f32, mask, mask_len)
        },
        strides: [mb, mh, mt, ms],
    }
}

/// Fused attention forward over work items `begin..end` of `bh * sdpa_query_blocks(t)`:
/// `q [bh, t, d]`, `k [bh, s, d]`, `v [bh, s, dv]` f32 → `out [bh, t, dv]` and the per-row
/// log-sum-exp `lse [bh, t]`. `mask` is 0 or `mask_len` f32 added to the scores, read at
/// `(bh / heads) * mb + (bh % heads) * mh + i * mt + j * ms`; `causal != 0` hides `j > i`.
/// `scratch` holds `sdpa_scratch_len(t)` floats.
#[no_mangle]
pub unsafe extern "C" fn sdpa_fwd_f32(
    q: usize,
    k: usize,
    v: usize,
    mask: usize,
    mask_len: usize,
    out: usize,
    lse: usize,
    scratch: usize,
    bh: usize,
    heads: usize,
    t: usize,
    s: usize,
    d: usize,
    dv: usize,
    scale: f32,
    causal: u32,
    mb: usize,
    mh: usize,
    mt: usize,
    ms: usize,
    begin: usize,
    end: usize,
) {
    crate::kernels::attention::sdpa_fwd_f32(
        src!(f32, q, bh * t * d),
        src!(f32, k, bh * s * d),
        src!(f32, v, bh * s * dv),
        sdpa_mask(mask, mask_len, mb, mh, mt, ms),
        dst!(f32, out, bh * t * dv),
        dst!(f32, lse, bh * t),
        dst!(f32, scratch, sdpa_scratch_len(t)),
        sdpa_dims(heads, t, s, d, dv, scale, causal),
        begin,
        end,
    )
}

/// Backward of `sdpa_fwd_f32` over heads `begin..end` of `bh`: from the upstream gradient
/// `g [bh, t, dv]`, the forward's `out` and `lse`, writes (overwrites) `gq`, `gk` and `gv`,
/// shaped like `q`, `k` and `v`. Other arguments as in the forward.
#[no_mangle]
pub unsafe extern "C" fn sdpa_bwd_f32(
    q: usize,
    k: usize,
    v: usize,
    mask: usize,
    mask_len: usize,
    out: usize,
    lse: usize,
    g: usize,
    gq: usize,
    gk: usize,
    gv: usize,
    scratch: usize,
    bh: usize,
    heads: usize,
    t: usize,
    s: usize,
    d: usize,
    dv: usize,
    scale: f32,
    causal: u32,
    mb: usize,
    mh: usize,
    mt: usize,
    ms: usize,
    begin: usize,
    end: usize,
) {
    crate::kernels::attention::sdpa_bwd_f32(
        src!(f32, q, bh * t * d),
        src!(f32, k, bh * s * d),
        src!(f32, v, bh * s * dv),
        sdpa_mask(mask, mask_len, mb, mh, mt, ms),
        src!(f32, out, bh * t * dv),
        src!(f32, lse, bh * t),
        src!(f32, g, bh * t * dv),
        dst!(f32, gq, bh * t * d),
        dst!(f32, gk, bh * s * d),
        dst!(f32, gv, bh * s * dv),
        dst!(f32, scratch, sdpa_scratch_len(t)),
        sdpa_dims(heads, t, s, d, dv, scale, causal),
        begin,
        end,
    )
}
