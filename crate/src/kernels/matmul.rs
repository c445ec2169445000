//! Strided f32 matrix multiply, `C (+)= op(A) · op(B)`, in the Goto/BLIS structure: the
//! operands are cut into cache blocks, each block is packed into `scratch` in the order the
//! micro-kernel reads it (this absorbs any strides, so transposed operands run at full speed),
//! and an `MR×NR` register tile of f32x4 accumulators does the arithmetic.
//!
//! Loop nest (outer to inner): `NC` columns of B → `KC` deep slice (pack B) → `MC` rows of A
//! (pack A) → `NR` columns of the packed B panel → `MR` rows of the packed A block → micro-kernel.
//! When A is a single block (at most `MC` rows), the depth slice goes outside: A is packed once
//! and B 16 KiB at a time, multiplied while it is still in L1. Either order gives every element
//! the same operations.
//!
//! Vector-matrix and matrix-vector shapes (a handful of rows, or one column) skip packing, which
//! would cost as much as the product, and stream the operands in place instead.
//!
//! A B operand reused by many products (a recurrent layer's `W_hh`, one product per timestep)
//! can be packed once with `pack_b_f32` into the caller's buffer and passed to
//! `matmul_prepacked_f32`: the panels are the bytes `blocked` would pack, read in the same
//! order, so the result is bitwise the same as `matmul_f32`'s.

use crate::simd::F32x4;

/// Rows of the register tile. 4 rows × 2 vectors is 8 accumulators plus 2 B vectors and one
/// broadcast A value, 11 of x64's 16 xmm registers. Measured in V8, this beat 6×8, 5×8, 8×8,
/// 4×12 and 3×16 (bigger tiles spill) and unrolling the depth loop (no gain, more pressure).
const MR: usize = 4;
/// Columns of the register tile, in floats (two f32x4 vectors).
const NR: usize = 8;
/// Vectors per tile row.
const NV: usize = NR / 4;
/// Depth of a packed slice: one `KC×NR` B micro-panel is 8 KiB and stays in L1 while a whole
/// packed A block streams past it.
const KC: usize = 256;
/// Rows of A per packed block: `MC×KC` floats = 128 KiB, comfortably inside L2.
const MC: usize = 128;
/// Columns of B per packed block: `KC×NC` floats = 2 MiB, an L3-resident block reused by every
/// A block. 128..2048 wide layers thus pack B once per depth slice.
const NC: usize = 2048;

// Packed blocks are whole micro-panels, so a full block fits its scratch region exactly.
const _: () = assert!(round_up(MC, MR) == MC && round_up(NC, NR) == NC && round_up(NR, 4) == NR);

/// Floats of B packed at a time when A is a single block: 16 KiB, half of L1.
const L1_B_FLOATS: usize = 4096;

/// Floats of scratch `matmul_f32` needs: one packed B block followed by one packed A block.
pub const SCRATCH_LEN: usize = KC * NC + MC * KC;

/// `C = op(A) · op(B)`, or `C += op(A) · op(B)` when `accumulate`. A's element `(i, p)` is
/// `a[i * a_strides[0] + p * a_strides[1]]`, B's `(p, j)` is `b[p * b_strides[0] + j *
/// b_strides[1]]`; C is `m×n` row-major. `scratch` holds at least `SCRATCH_LEN` floats.
#[allow(clippy::too_many_arguments)]
pub fn matmul_f32(
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    a_strides: [usize; 2],
    b_strides: [usize; 2],
    accumulate: bool,
    scratch: &mut [f32],
) {
    matmul_prepacked_f32(
        a,
        b,
        &[],
        c,
        m,
        k,
        n,
        n,
        a_strides,
        b_strides,
        accumulate,
        scratch,
    );
}

/// Floats `pack_b_f32` writes for a `k×n` B: whole `NR`-wide micro-panels, `k` deep.
pub const fn packed_b_len(k: usize, n: usize) -> usize {
    round_up(n, NR) * k
}

/// Packs all of B (`k×n`, strides as in `matmul_f32`) into `dst` (`packed_b_len(k, n)`
/// floats) in the order the blocked product reads it: `NC`-column blocks, each cut into
/// `KC`-deep slices of micro-panels. Block `jc`'s slice `pc` starts at
/// `jc * k + round_up(nc, NR) * pc` (`nc` the block's width).
pub fn pack_b_f32(b: &[f32], k: usize, n: usize, b_strides: [usize; 2], dst: &mut [f32]) {
    debug_assert!(dst.len() >= packed_b_len(k, n));
    if k == 0 || n == 0 {
        return;
    }
    debug_assert!(b.len() > (k - 1) * b_strides[0] + (n - 1) * b_strides[1]);
    let b = View {
        data: b,
        rs: b_strides[0],
        cs: b_strides[1],
    };
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            pack_b(&b, pc, kc, jc, nc, &mut dst[packed_at(k, jc, nc, pc)..]);
        }
    }
}

/// Where block `jc` (of width `nc`), depth slice `pc` of a whole packed B starts.
fn packed_at(k: usize, jc: usize, nc: usize, pc: usize) -> usize {
    jc * k + round_up(nc, NR) * pc
}

/// `matmul_f32` with B's panels taken from `packed_b` (`pack_b_f32` of this same `b`) instead
/// of packed per call; bitwise the same result. An empty `packed_b` packs per call. `b` is
/// still read by the shapes that skip packing (fewer than `MR` rows, one column).
///
/// C is the top-left `m×n` of a matrix with row stride `ldc >= n` (C's element `(i, j)` is
/// `c[i * ldc + j]`; `n` for a whole C), so a thread can own a range of a wider C's columns.
/// For `m >= MR` and a range starting on a multiple of `PANEL` columns, each element gets the
/// same operations as in the whole product: the ranges of a split give the whole product's bits.
#[allow(clippy::too_many_arguments)]
pub fn matmul_prepacked_f32(
    a: &[f32],
    b: &[f32],
    packed_b: &[f32],
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    ldc: usize,
    a_strides: [usize; 2],
    b_strides: [usize; 2],
    accumulate: bool,
    scratch: &mut [f32],
) {
    debug_assert!(scratch.len() >= SCRATCH_LEN && ldc >= n);
    if m == 0 || n == 0 {
        return;
    }
    debug_assert!(c.len() >= (m - 1) * ldc + n);
    let c = &mut c[..(m - 1) * ldc + n];
    if k == 0 {
        if !accumulate {
            c.chunks_mut(ldc).for_each(|row| row[..n].fill(0.0));
        }
        return;
    }
    debug_assert!(a.len() > (m - 1) * a_strides[0] + (k - 1) * a_strides[1]);
    debug_assert!(b.len() > (k - 1) * b_strides[0] + (n - 1) * b_strides[1]);
    let a = View {
        data: a,
        rs: a_strides[0],
        cs: a_strides[1],
    };
    let b = View {
        data: b,
        rs: b_strides[0],
        cs: b_strides[1],
    };
    if !streamed(&a, &b, k, c, [m, n, ldc], accumulate) {
        debug_assert!(packed_b.is_empty() || packed_b.len() >= packed_b_len(k, n));
        blocked(&a, &b, packed_b, k, c, [m, n, ldc], accumulate, scratch);
    }
}

/// Vector-matrix and matrix-vector products (fewer than `MR` rows, or one column of a
/// contiguous C) with a unit stride to run along: packing would cost as much as the product
/// itself, so the operands are read in place, each once. Returns false, doing nothing, for
/// every other shape.
fn streamed(
    a: &View,
    b: &View,
    k: usize,
    c: &mut [f32],
    [m, n, ldc]: [usize; 3],
    add: bool,
) -> bool {
    if m < MR && (b.cs == 1 || (b.rs == 1 && a.cs == 1)) {
        for (i, row) in c.chunks_mut(ldc).enumerate() {
            let row = &mut row[..n];
            let x = &a.data[i * a.rs..];
            if b.cs == 1 {
                vec_mat(x, a.cs, k, b.data, b.rs, row, add);
            } else {
                dot_rows(&x[..k], b.data, b.cs, row, add);
            }
        }
        return true;
    }
    // One column: Cᵀ = Bᵀ·Aᵀ is the same pair of products with the operands' roles swapped.
    if n == 1 && ldc == 1 && a.rs == 1 {
        vec_mat(b.data, b.rs, k, a.data, a.cs, c, add);
        return true;
    }
    if n == 1 && ldc == 1 && a.cs == 1 && b.rs == 1 {
        dot_rows(&b.data[..k], a.data, a.rs, c, add);
        return true;
    }
    false
}

/// The cache-blocked, packed product for every shape `streamed` declines; B's panels come from
/// `packed_b` when it is not empty.
#[allow(clippy::too_many_arguments)]
fn blocked(
    a: &View,
    b: &View,
    packed_b: &[f32],
    k: usize,
    c: &mut [f32],
    [m, n, ldc]: [usize; 3],
    acc: bool,
    scratch: &mut [f32],
) {
    let (b_scratch, rest) = scratch.split_at_mut(KC * NC);
    let a_pack = &mut rest[..MC * KC];
    if m <= MC && packed_b.is_empty() {
        // One A block per depth slice: packed once, then B packed a few panels at a time, each
        // multiplied while still in L1 rather than a 2 MiB B block going out to L2 and back
        // (16×150×6400: 27.7 against 26.1 GFLOP/s; 128 rows and more: the same).
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            pack_a(a, 0, m, pc, kc, a_pack);
            let cols = (L1_B_FLOATS / kc / NR).max(1) * NR;
            for jc in (0..n).step_by(cols) {
                let nc = cols.min(n - jc);
                pack_b(b, pc, kc, jc, nc, b_scratch);
                let tile = Block {
                    row: 0,
                    col: jc,
                    rows: m,
                    cols: nc,
                    depth: kc,
                    add: acc || pc > 0,
                };
                macro_kernel(a_pack, b_scratch, c, ldc, &tile);
            }
        }
        return;
    }
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let b_pack: &[f32] = if packed_b.is_empty() {
                pack_b(b, pc, kc, jc, nc, b_scratch);
                b_scratch
            } else {
                &packed_b[packed_at(k, jc, nc, pc)..]
            };
            // The first depth slice overwrites C unless the caller asked to accumulate.
            let add = acc || pc > 0;
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                pack_a(a, ic, mc, pc, kc, a_pack);
                let tile = Block {
                    row: ic,
                    col: jc,
                    rows: mc,
                    cols: nc,
                    depth: kc,
                    add,
                };
                macro_kernel(a_pack, b_pack, c, ldc, &tile);
            }
        }
    }
}

/// Width of a packed B micro-panel, for packers outside this file.
pub const PANEL: usize = NR;

/// `C = A · B`, or `C += A · B` when `accumulate`, for a B that is never stored: `pack(pc, kc,
/// jc, nc, dst)` writes rows `pc..pc+kc`, columns `jc..jc+nc` of B into `dst` as `pack_b` would
/// (`PANEL`-wide micro-panels `kc` deep, the last one zero-padded). A convolution multiplies by
/// its im2col matrix this way, packing straight from the image. Same blocking and scratch
/// (`SCRATCH_LEN`) as `matmul_f32`; A's strides as there, C is `m×n` row-major.
#[allow(clippy::too_many_arguments)]
pub fn matmul_packing_b_f32<F: FnMut(usize, usize, usize, usize, &mut [f32])>(
    a: &[f32],
    a_strides: [usize; 2],
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
    scratch: &mut [f32],
    mut pack: F,
) {
    debug_assert!(c.len() >= m * n && scratch.len() >= SCRATCH_LEN);
    if m == 0 || n == 0 {
        return;
    }
    let c = &mut c[..m * n];
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    let a = View {
        data: a,
        rs: a_strides[0],
        cs: a_strides[1],
    };
    let (b_pack, rest) = scratch.split_at_mut(KC * NC);
    let a_pack = &mut rest[..MC * KC];
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            pack(pc, kc, jc, nc, &mut b_pack[..round_up(nc, NR) * kc]);
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                pack_a(&a, ic, mc, pc, kc, a_pack);
                let tile = Block {
                    row: ic,
                    col: jc,
                    rows: mc,
                    cols: nc,
                    depth: kc,
                    add: accumulate || pc > 0,
                };
                macro_kernel(a_pack, b_pack, c, n, &tile);
            }
        }
    }
}

/// `x` rounded up to a multiple of `r` (the zero-padded extent of a packed block).
pub const fn round_up(x: usize, r: usize) -> usize {
    x + (r - x % r) % r
}

/// `out[j] (+)= Σ_{p<k} x[p * xs] * mat[p * ms + j]`: a strided row vector times a matrix whose
/// rows are contiguous, reading the matrix once. Columns go in blocks of eight vectors, the most
/// accumulators that stay in registers beside the broadcast and one load.
fn vec_mat(x: &[f32], xs: usize, k: usize, mat: &[f32], ms: usize, out: &mut [f32], add: bool) {
    let mut j = 0;
    for chunk in out.chunks_exact_mut(32) {
        vec_mat_block::<8>(x, xs, k, &mat[j..], ms, chunk, add);
        j += 32;
    }
    let tail = &mut out[j..];
    for chunk in tail.chunks_exact_mut(4) {
        vec_mat_block::<1>(x, xs, k, &mat[j..], ms, chunk, add);
        j += 4;
    }
    for (jj, o) in out.iter_mut().enumerate().skip(j) {
        let dot: f32 = (0..k).map(|p| x[p * xs] * mat[p * ms + jj]).sum();
        *o = if add { *o + dot } else { dot };
    }
}

/// One `4V`-column block of `vec_mat`, accumulated in registers.
#[inline(always)]
fn vec_mat_block<const V: usize>(
    x: &[f32],
    xs: usize,
    k: usize,
    mat: &[f32],
    ms: usize,
    out: &mut [f32],
    add: bool,
) {
    let mut acc = [F32x4::splat(0.0); V];
    for p in 0..k {
        let xv = F32x4::splat(x[p * xs]);
        let row = &mat[p * ms..p * ms + 4 * V];
        for (r, s) in acc.iter_mut().zip(row.chunks_exact(4)) {
            *r = xv.mul_add(F32x4::load(s), *r);
        }
    }
    for (r, d) in acc.iter().zip(out.chunks_exact_mut(4)) {
        let y = if add { r.add(F32x4::load(d)) } else { *r };
        y.store(d);
    }
}

/// `out[j] (+)= Σ_p x[p] * mat[j * ms + p]`: a contiguous row vector dotted with matrix rows
/// that are contiguous along the depth.
fn dot_rows(x: &[f32], mat: &[f32], ms: usize, out: &mut [f32], add: bool) {
    let k = x.len();
    for (j, o) in out.iter_mut().enumerate() {
        let d = dot(x, &mat[j * ms..j * ms + k]);
        *o = if add { *o + d } else { d };
    }
}

/// Dot product of two equal-length slices with four independent vector accumulators, so the
/// adds pipeline instead of waiting on each other.
fn dot(x: &[f32], y: &[f32]) -> f32 {
    let (xc, yc) = (x.chunks_exact(16), y.chunks_exact(16));
    let tail: f32 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(a, b)| a * b)
        .sum();
    let mut acc = [F32x4::splat(0.0); 4];
    for (xs, ys) in xc.zip(yc) {
        for (r, (xv, yv)) in acc
            .iter_mut()
            .zip(xs.chunks_exact(4).zip(ys.chunks_exact(4)))
        {
            *r = F32x4::load(xv).mul_add(F32x4::load(yv), *r);
        }
    }
    let s = acc[0].add(acc[1]).add(acc[2].add(acc[3])).to_array();
    (s[0] + s[1]) + (s[2] + s[3]) + tail
}

/// A strided 2-D view: element `(r, q)` is `data[r * rs + q * cs]`.
struct View<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

/// One packed `rows×cols` block of C at (`row`, `col`) with `depth` packed k.
struct Block {
    row: usize,
    col: usize,
    rows: usize,
    cols: usize,
    depth: usize,
    add: bool,
}

/// Packs rows `p0..p0+kc`, columns `j0..j0+nc` of B into `NR`-wide micro-panels, each `kc`
/// rows of `NR` contiguous floats, the last one zero-padded.
fn pack_b(b: &View, p0: usize, kc: usize, j0: usize, nc: usize, dst: &mut [f32]) {
    let panels = dst[..round_up(nc, NR) * kc].chunks_exact_mut(NR * kc);
    for (panel, jr) in panels.zip((0..nc).step_by(NR)) {
        let lanes = Lanes {
            base: p0 * b.rs + (j0 + jr) * b.cs,
            used: NR.min(nc - jr),
        };
        pack_panel::<NR>(b.data, &lanes, kc, b.rs, b.cs, panel);
    }
}

/// Packs rows `i0..i0+mc`, columns `p0..p0+kc` of A into `MR`-tall micro-panels, each `kc`
/// columns of `MR` contiguous floats, the last one zero-padded.
fn pack_a(a: &View, i0: usize, mc: usize, p0: usize, kc: usize, dst: &mut [f32]) {
    let panels = dst[..round_up(mc, MR) * kc].chunks_exact_mut(MR * kc);
    for (panel, ir) in panels.zip((0..mc).step_by(MR)) {
        let lanes = Lanes {
            base: (i0 + ir) * a.rs + p0 * a.cs,
            used: MR.min(mc - ir),
        };
        pack_panel::<MR>(a.data, &lanes, kc, a.cs, a.rs, panel);
    }
}

/// Where a micro-panel starts in its source, and how many of its `W` lanes are real data.
struct Lanes {
    base: usize,
    used: usize,
}

/// Fills `panel[p * W + w]` for `p < depth` with `src[base + p * p_stride + w * w_stride]`
/// (zero for lanes `w >= used`). The loop order follows the unit stride so reads stay sequential.
fn pack_panel<const W: usize>(
    src: &[f32],
    lanes: &Lanes,
    depth: usize,
    p_stride: usize,
    w_stride: usize,
    panel: &mut [f32],
) {
    let data = &src[lanes.base..];
    if lanes.used == W && w_stride == 1 {
        // The common row-major case: each packed row is W contiguous source floats.
        for (p, row) in panel.chunks_exact_mut(W).take(depth).enumerate() {
            let line = &data[p * p_stride..p * p_stride + W];
            for (d, s) in row.chunks_exact_mut(4).zip(line.chunks_exact(4)) {
                F32x4::load(s).store(d);
            }
        }
        return;
    }
    if lanes.used < W {
        panel.fill(0.0);
    }
    if p_stride == 1 && lanes.used == W {
        // Transposed source (a row-major A, a transposed B): each lane is a contiguous run of
        // `depth` floats. Four runs at a time, 4×4 blocks are loaded as vectors and transposed
        // in registers rather than gathered float by float; the last `depth % 4` packed rows
        // are gathered.
        let lines: [&[f32]; W] =
            core::array::from_fn(|w| &data[w * w_stride..w * w_stride + depth]);
        let d4 = depth / 4 * 4;
        for (w0, quad) in lines.chunks_exact(4).enumerate() {
            for (p, rows) in panel[..d4 * W].chunks_exact_mut(4 * W).enumerate() {
                let block: [F32x4; 4] =
                    core::array::from_fn(|i| F32x4::load(&quad[i][4 * p..4 * p + 4]));
                for (row, v) in rows.chunks_exact_mut(W).zip(F32x4::transpose4(block)) {
                    v.store(&mut row[4 * w0..4 * w0 + 4]);
                }
            }
        }
        for (p, row) in panel.chunks_exact_mut(W).take(depth).enumerate().skip(d4) {
            for (x, line) in row.iter_mut().zip(&lines) {
                *x = line[p];
            }
        }
    } else if p_stride == 1 {
        for w in 0..lanes.used {
            let line = &data[w * w_stride..w * w_stride + depth];
            for (row, &x) in panel.chunks_exact_mut(W).zip(line) {
                row[w] = x;
            }
        }
    } else {
        for (p, row) in panel.chunks_exact_mut(W).take(depth).enumerate() {
            for (w, x) in row[..lanes.used].iter_mut().enumerate() {
                *x = data[p * p_stride + w * w_stride];
            }
        }
    }
}

/// Multiplies one packed A block by one packed B block into C. B micro-panels are the outer
/// loop so each (8 KiB) stays in L1 while the A block streams from L2.
fn macro_kernel(a_pack: &[f32], b_pack: &[f32], c: &mut [f32], ldc: usize, t: &Block) {
    for jr in (0..t.cols).step_by(NR) {
        let cols = NR.min(t.cols - jr);
        let b_panel = &b_pack[jr * t.depth..(jr + NR) * t.depth];
        // Edge tiles run a kernel cut to the vectors (and below, rows) they use, so a skinny
        // operand (n = 10 is one full and one 2-wide panel) does not pay for the padding.
        if cols > NR / 2 {
            column_of_tiles::<NV>(a_pack, b_panel, c, ldc, t, jr);
        } else {
            column_of_tiles::<{ NV / 2 }>(a_pack, b_panel, c, ldc, t, jr);
        }
    }
}

/// The tiles of one B micro-panel (`V` vectors of it used) against every A micro-panel.
#[inline(always)]
fn column_of_tiles<const V: usize>(
    a_pack: &[f32],
    b_panel: &[f32],
    c: &mut [f32],
    ldc: usize,
    t: &Block,
    jr: usize,
) {
    let a_panels = &a_pack[..round_up(t.rows, MR) * t.depth];
    for (a_panel, ir) in a_panels
        .chunks_exact(MR * t.depth)
        .zip((0..t.rows).step_by(MR))
    {
        let dst = Dst {
            c: &mut c[(t.row + ir) * ldc + t.col + jr..],
            ldc,
            rows: MR.min(t.rows - ir),
            cols: NR.min(t.cols - jr),
            add: t.add,
        };
        if dst.rows > MR / 2 {
            tile::<MR, V>(a_panel, b_panel, dst);
        } else {
            tile::<{ MR / 2 }, V>(a_panel, b_panel, dst);
        }
    }
}

/// Where a tile's results go: the top-left `rows×cols` of a `C` with row stride `ldc`.
struct Dst<'a> {
    c: &'a mut [f32],
    ldc: usize,
    rows: usize,
    cols: usize,
    add: bool,
}

/// One `R×4V` register tile (`R <= MR`, `V <= NV`) of a packed A and B micro-panel pair.
#[inline(always)]
fn tile<const R: usize, const V: usize>(a: &[f32], b: &[f32], d: Dst) {
    let acc = micro_kernel::<R, V>(a, b);
    if d.rows == R && d.cols == 4 * V {
        store_full(&acc, d.c, d.ldc, d.add);
    } else {
        store_partial(&acc, d.c, d.ldc, d.rows, d.cols, d.add);
    }
}

/// The register tile: `acc[i][v] += a[p][i] * b[p][4v..4v+4]` over the packed depth, for the
/// first `R` rows of each `MR`-float A step and the first `V` vectors of each `NR`-float B step.
/// Each step is `mul_add`: a mul and an add, or one fused multiply-add in the relaxed-SIMD
/// build; `a` is broadcast one value per row.
#[inline(always)]
fn micro_kernel<const R: usize, const V: usize>(a: &[f32], b: &[f32]) -> [[F32x4; V]; R] {
    let mut acc = [[F32x4::splat(0.0); V]; R];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        let mut bv = [F32x4::splat(0.0); V];
        for (v, x) in bv.iter_mut().enumerate() {
            *x = F32x4::load(&bp[4 * v..4 * v + 4]);
        }
        for (row, &ai) in acc.iter_mut().zip(ap) {
            let av = F32x4::splat(ai);
            for (r, &bx) in row.iter_mut().zip(&bv) {
                *r = av.mul_add(bx, *r);
            }
        }
    }
    acc
}

/// Writes a whole tile: `C = acc` or `C += acc`.
#[inline(always)]
fn store_full<const R: usize, const V: usize>(
    acc: &[[F32x4; V]; R],
    c: &mut [f32],
    ldc: usize,
    add: bool,
) {
    for (i, row) in acc.iter().enumerate() {
        let dst = &mut c[i * ldc..i * ldc + 4 * V];
        for (v, &x) in row.iter().enumerate() {
            let lane = &mut dst[4 * v..4 * v + 4];
            let y = if add { x.add(F32x4::load(lane)) } else { x };
            y.store(lane);
        }
    }
}

/// Writes the top-left `rows×cols` corner of an edge tile (the rest is zero padding).
fn store_partial<const R: usize, const V: usize>(
    acc: &[[F32x4; V]; R],
    c: &mut [f32],
    ldc: usize,
    rows: usize,
    cols: usize,
    add: bool,
) {
    let mut tmp = [0.0f32; NR];
    for (i, row) in acc.iter().enumerate().take(rows) {
        for (v, &x) in row.iter().enumerate() {
            x.store(&mut tmp[4 * v..4 * v + 4]);
        }
        let dst = &mut c[i * ldc..i * ldc + cols];
        for (d, &x) in dst.iter_mut().zip(&tmp) {
            *d = if add { *d + x } else { x };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1) from a 32-bit LCG.
    fn fill(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// A `rows×cols` operand stored row-major (`trans == false`) or column-major, with `pad`
    /// unused floats after each stored line so strides differ from the logical width.
    /// Returns the storage and the logical strides `[row, col]`.
    fn operand(
        rows: usize,
        cols: usize,
        trans: bool,
        pad: usize,
        seed: u32,
    ) -> (Vec<f32>, [usize; 2]) {
        let (lines, width) = if trans { (cols, rows) } else { (rows, cols) };
        let ld = width + pad;
        let strides = if trans { [1, ld] } else { [ld, 1] };
        let len = if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * strides[0] + (cols - 1) * strides[1] + 1
        };
        let mut data = fill(lines * ld, seed);
        data.truncate(len);
        (data, strides)
    }

    /// Runs one case and checks every element against an f64 reference, within 1e-5 of
    /// `|C0| + Σ|a||b|` (the scale of the rounding error a correct f32 sum can make).
    fn check(m: usize, k: usize, n: usize, ta: bool, tb: bool, accumulate: bool, pad: usize) {
        let seed = (m * 31 + k * 17 + n * 7) as u32;
        let (a, sa) = operand(m, k, ta, pad, seed);
        let (b, sb) = operand(k, n, tb, pad, seed + 1);
        let c0 = fill(m * n, seed + 2);
        let mut c = c0.clone();
        let mut scratch = vec![f32::NAN; SCRATCH_LEN];
        matmul_f32(&a, &b, &mut c, m, k, n, sa, sb, accumulate, &mut scratch);
        for i in 0..m {
            for j in 0..n {
                let (mut sum, mut mag) = (0.0f64, 0.0f64);
                for p in 0..k {
                    let x = a[i * sa[0] + p * sa[1]] as f64 * b[p * sb[0] + j * sb[1]] as f64;
                    sum += x;
                    mag += x.abs();
                }
                let base = if accumulate {
                    c0[i * n + j] as f64
                } else {
                    0.0
                };
                let want = base + sum;
                let got = c[i * n + j] as f64;
                let tol = 1e-5 * (base.abs() + mag) + 1e-30;
                assert!(
                    (got - want).abs() <= tol,
                    "{m}x{k}x{n} ta={ta} tb={tb} acc={accumulate} pad={pad}: C[{i},{j}] = {got}, want {want}"
                );
            }
        }
    }

    fn check_all_forms(m: usize, k: usize, n: usize, pad: usize) {
        for &(ta, tb) in &[(false, false), (true, false), (false, true), (true, true)] {
            for &acc in &[false, true] {
                check(m, k, n, ta, tb, acc, pad);
            }
        }
    }

    #[test]
    fn empty_and_tiny() {
        for &(m, k, n) in &[
            (0, 3, 4),
            (3, 0, 4),
            (3, 4, 0),
            (0, 0, 0),
            (1, 1, 1),
            (1, 2, 1),
            (2, 1, 3),
        ] {
            check_all_forms(m, k, n, 0);
        }
    }

    #[test]
    fn k_zero_zeroes_or_keeps_c() {
        let mut scratch = vec![0.0; SCRATCH_LEN];
        let mut c = vec![5.0; 6];
        matmul_f32(
            &[],
            &[],
            &mut c,
            2,
            0,
            3,
            [0, 1],
            [3, 1],
            true,
            &mut scratch,
        );
        assert_eq!(c, vec![5.0; 6]);
        matmul_f32(
            &[],
            &[],
            &mut c,
            2,
            0,
            3,
            [0, 1],
            [3, 1],
            false,
            &mut scratch,
        );
        assert_eq!(c, vec![0.0; 6]);
    }

    #[test]
    fn odd_sizes_all_forms() {
        let sizes = [1, 3, 5, 7, 17, 33];
        for (x, &m) in sizes.iter().enumerate() {
            for (y, &k) in sizes.iter().enumerate() {
                let n = sizes[(x + 2 * y) % sizes.len()];
                check_all_forms(m, k, n, (x + y) % 3);
            }
        }
    }

    #[test]
    fn skinny_shapes() {
        for &(m, k, n) in &[
            (128, 128, 10),
            (1, 65, 129),
            (65, 129, 1),
            (1, 300, 1),
            (10, 128, 128),
        ] {
            check_all_forms(m, k, n, 0);
        }
    }

    #[test]
    fn one_deep_with_overlapping_row_strides() {
        // A 1-D operand promoted to one row: TypeScript passes row stride 1 (or 0) with k = 1.
        let (a, b) = (fill(6, 1), fill(4, 2));
        for &b_rs in &[0, 1] {
            let mut c = vec![f32::NAN; 24];
            let mut scratch = vec![f32::NAN; SCRATCH_LEN];
            matmul_f32(
                &a,
                &b,
                &mut c,
                6,
                1,
                4,
                [1, 1],
                [b_rs, 1],
                false,
                &mut scratch,
            );
            for (i, row) in c.chunks(4).enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    assert_eq!(v, a[i] * b[j], "C[{i},{j}] with b_rs = {b_rs}");
                }
            }
        }
    }

    #[test]
    fn crosses_kc_and_mc_blocks() {
        for &(m, k, n) in &[(129, 257, 65), (257, 65, 33), (65, 513, 17), (130, 300, 9)] {
            check_all_forms(m, k, n, 1);
        }
    }

    #[test]
    fn crosses_nc_block() {
        for &(m, k, n) in &[(5, 7, NC + 9), (3, KC + 1, 2 * NC + 1)] {
            check_all_forms(m, k, n, 2);
        }
    }

    /// Column ranges computed in place through C's row stride (a thread's share of a column
    /// split, cut at multiples of `PANEL`) give the whole product's bits, in every form, with
    /// and without accumulation, for edge tiles in both directions and across NC.
    #[test]
    fn column_ranges_are_bitwise_the_whole_product() {
        for &(m, k, n, cuts) in &[
            (4, 9, 16, &[8][..]),
            (22, 200, 603, &[200, 400]),
            (37, 300, 517, &[168, 344]),
            (6, KC + 3, NC + 21, &[1024, NC]),
        ] {
            for &(ta, tb) in &[(false, false), (true, false), (false, true), (true, true)] {
                for &acc in &[false, true] {
                    let (a, sa) = operand(m, k, ta, 1, 5);
                    let (b, sb) = operand(k, n, tb, 1, 6);
                    let c0 = fill(m * n, 7);
                    let mut scratch = vec![f32::NAN; SCRATCH_LEN];
                    let mut whole = c0.clone();
                    matmul_f32(&a, &b, &mut whole, m, k, n, sa, sb, acc, &mut scratch);
                    let mut parts = c0.clone();
                    let bounds: Vec<usize> =
                        [0].iter().chain(cuts).chain([n].iter()).copied().collect();
                    for w in bounds.windows(2) {
                        let (j0, j1) = (w[0], w[1]);
                        assert_eq!(j0 % PANEL, 0);
                        matmul_prepacked_f32(
                            &a,
                            &b[j0 * sb[1]..],
                            &[],
                            &mut parts[j0..],
                            m,
                            k,
                            j1 - j0,
                            n,
                            sa,
                            sb,
                            acc,
                            &mut scratch,
                        );
                    }
                    let same = whole
                        .iter()
                        .zip(&parts)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{m}x{k}x{n} ta={ta} tb={tb} acc={acc} cuts={cuts:?}");
                }
            }
        }
    }

    /// `matmul_prepacked_f32` with a B packed once by `pack_b_f32` gives the same bits as
    /// `matmul_f32`, in every form, for shapes whose k and n are not multiples of the panel
    /// sizes, that cross the KC and NC blocks, and that take the unpacked (streamed) path.
    #[test]
    fn prepacked_b_is_bitwise_the_unpacked_product() {
        let shapes = [
            (4, 1, 1),
            (1, 5, 9),
            (3, 17, 33),
            (5, 3, 7),
            (7, 9, 17),
            (32, 40, 264),
            (33, 257, 9),
            (130, 300, 41),
            (9, 7, NC + 9),
            (4, KC + 1, NC + 3),
        ];
        for (case, &(m, k, n)) in shapes.iter().enumerate() {
            for &(ta, tb) in &[(false, false), (true, false), (false, true), (true, true)] {
                let pad = case % 3;
                let seed = (m * 31 + k * 17 + n * 7) as u32;
                let (a, sa) = operand(m, k, ta, pad, seed);
                let (b, sb) = operand(k, n, tb, pad, seed + 1);
                // The packed buffer has a sentinel tail: packing fills exactly packed_b_len.
                let len = packed_b_len(k, n);
                let mut packed = vec![f32::NAN; len + 5];
                pack_b_f32(&b, k, n, sb, &mut packed);
                assert!(
                    packed[..len].iter().all(|v| !v.is_nan()),
                    "{m}x{k}x{n}: unfilled"
                );
                assert!(
                    packed[len..].iter().all(|v| v.is_nan()),
                    "{m}x{k}x{n}: overrun"
                );
                for &acc in &[false, true] {
                    let c0 = fill(m * n, seed + 2);
                    let (mut want, mut got) = (c0.clone(), c0);
                    let mut scratch = vec![f32::NAN; SCRATCH_LEN];
                    matmul_f32(&a, &b, &mut want, m, k, n, sa, sb, acc, &mut scratch);
                    let mut scratch = vec![f32::NAN; SCRATCH_LEN];
                    matmul_prepacked_f32(
                        &a,
                        &b,
                        &packed[..len],
                        &mut got,
                        m,
                        k,
                        n,
                        n,
                        sa,
                        sb,
                        acc,
                        &mut scratch,
                    );
                    let same = want
                        .iter()
                        .zip(&got)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{m}x{k}x{n} ta={ta} tb={tb} acc={acc}: bits differ");
                }
            }
        }
    }

    #[test]
    fn pack_b_of_an_empty_operand_writes_nothing() {
        assert_eq!(packed_b_len(0, 9), 0);
        assert_eq!(packed_b_len(3, 0), 0);
        assert_eq!(packed_b_len(3, 9), 3 * 16);
        let mut dst = vec![1.0f32; 4];
        pack_b_f32(&[], 0, 9, [9, 1], &mut dst);
        pack_b_f32(&[], 3, 0, [1, 3], &mut dst);
        assert_eq!(dst, vec![1.0; 4]);
    }

    #[test]
    fn large_square() {
        check(257, 257, 257, false, false, true, 0);
        check(257, 257, 257, true, false, false, 0);
        check(257, 257, 257, false, true, true, 3);
    }
}
