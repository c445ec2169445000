//! 2-d convolution through the packed GEMM, forward and both gradients, with no im2col buffer.
//! Per image and group the output is `W_g [Co/g, K] · col [K, L]` (`K = Ci/g · kh · kw` kernel
//! taps, `L = oh · ow` window positions). `col` is never stored: the GEMM asks for its B panels,
//! which the forward and the weight gradient (`dW_g += dY · colᵀ`) pack from a zero-padded
//! copy of each image in caller scratch (`conv_pack.rs`). Images too large to copy padded keep
//! the older paths: the forward packs from the image in runs (`pack_cols`) or unfolds a plane
//! that fits one chunk; the weight gradient unfolds a bounded chunk of columns at a time and sums
//! `dW_gᵀ += col · dYᵀ`. The input gradient forms `W_gᵀ · dY` a chunk at a time and adds it
//! back onto the image (col2im) while it is still in cache. The gradients keep a group's weights
//! transposed after the chunk (`W_gᵀ` stored once per call, the `dW_gᵀ` sum) when they fit, so
//! the GEMM reads the wide operand as contiguous rows and only `dY` through strides (which its
//! packing transposes in registers). A 1×1, stride-1, unpadded convolution is a plain GEMM on
//! the image.
//!
//! Work ranges: the forward and the input gradient over images, the weight gradient over output
//! channels (each sums over all images), so a worker pool can split any of them.

use super::conv_direct;
use super::conv_pack;
use super::conv_winograd;
use super::depthwise;
use super::matmul::{self, matmul_f32, matmul_packing_b_f32, PANEL};
use super::unfold::{add_into, runs, Window};
use crate::simd::F32x4;

/// The geometry: one input plane's window (`Window`) and how channels split into groups.
#[derive(Clone, Copy, Debug)]
pub struct Conv {
    pub win: Window,
    pub groups: usize,
    /// Input channels per group.
    pub cig: usize,
    /// Output channels per group.
    pub cog: usize,
    /// Whether 3×3 convolutions may run by Winograd (`conv_winograd.rs`): faster, but not the
    /// direct sum's rounding, which PyTorch's CPU kernels keep; off unless the user opts in.
    pub winograd: bool,
}

impl Conv {
    /// Kernel taps per output: the GEMM depth.
    pub fn depth(&self) -> usize {
        self.cig * self.win.kh * self.win.kw
    }
    /// Window positions per plane: the GEMM width.
    pub fn positions(&self) -> usize {
        self.win.oh * self.win.ow
    }
    fn plane(&self) -> usize {
        self.win.h * self.win.w
    }
    /// One input channel per group (and more than one group): the direct kernels of
    /// `depthwise.rs`, since each plane's GEMM would be a single row.
    fn depthwise(&self) -> bool {
        self.cig == 1 && self.groups > 1
    }
    /// One input channel, few output channels, stride and dilation 1, a kernel row that fits
    /// in registers and a padded plane that fits the GEMM scratch: the direct kernels of
    /// `conv_direct.rs`, since with so few taps and rows the im2col GEMM spends as long
    /// copying as multiplying (at 32 output channels the GEMM wins again: MNIST's 1→32 3×3
    /// forward ran 14 GFLOP/s direct, 19 through unfold + GEMM).
    fn direct(&self) -> bool {
        let g = &self.win;
        let unit = g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1;
        self.groups == 1
            && self.cig == 1
            && self.cog <= 8
            && unit
            && g.kw <= conv_direct::MAX_KW
            && conv_direct::scratch_len(self) <= SCRATCH_LEN
    }
    /// A 3×3 kernel at stride 1 over enough channels and a small enough plane, Winograd allowed:
    /// the forward and weight gradient of `conv_winograd.rs`, 2.25x fewer multiply-adds.
    fn winograd(&self) -> bool {
        conv_winograd::fits(self)
    }
    /// Neither pointwise nor too large to copy padded: the forward and weight gradient pack
    /// their GEMM panels from a padded copy of each image (`conv_pack.rs`).
    fn padded(&self) -> bool {
        !self.pointwise() && conv_pack::fits(self)
    }
    /// A 1×1 kernel at stride 1 without padding reads the image as the im2col matrix itself.
    fn pointwise(&self) -> bool {
        let g = &self.win;
        g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0
    }
}

/// Column budget of one gradient chunk, in floats: 512 KiB, so the chunk col2im reads back is
/// still in L2, and deep enough (256 columns at K = 512) for whole GEMM depth slices.
const CHUNK_FLOATS: usize = 128 * 1024;

/// Columns per input-gradient chunk: as many as fit the budget, at least 64 so the GEMM keeps
/// whole panels, at most `l`.
fn chunk(k: usize, l: usize) -> usize {
    l.min((CHUNK_FLOATS / k.max(1)).max(64))
}

/// Most floats of a group's weights (`K · Co/g`) kept transposed after the column chunk.
const TRANSPOSED_MAX: usize = 64 * 1024;

/// Floats after the column chunk for one group's weights transposed, `[K, Co/g]`: the input
/// gradient's `W_gᵀ` stored once per call instead of packed through strides per chunk, and
/// the weight gradient's `dW_gᵀ` sum (0 when the weights are too large: strided reads then).
fn transposed_len(cv: &Conv) -> usize {
    let len = cv.depth() * cv.cog;
    if len <= TRANSPOSED_MAX {
        len
    } else {
        0
    }
}

/// The gradients' column scratch cut into the column chunk and the transposed weights after
/// it (`transposed_len`); both empty for a pointwise convolution, which has no scratch.
fn chunk_and_transposed<'a>(cv: &Conv, cols: &'a mut [f32]) -> (&'a mut [f32], &'a mut [f32]) {
    if cv.pointwise() {
        return (&mut [], &mut []);
    }
    let k = cv.depth();
    let (chunk_cols, rest) = cols.split_at_mut(k * chunk(k, cv.positions()));
    (chunk_cols, &mut rest[..transposed_len(cv)])
}

/// Floats of column scratch the kernels need (0 for pointwise and depthwise convolutions).
pub fn cols_len(cv: &Conv) -> usize {
    if cv.pointwise() || cv.depthwise() {
        0
    } else {
        let mut len = cv.depth() * chunk(cv.depth(), cv.positions()) + transposed_len(cv);
        if cv.padded() {
            len = len.max(conv_pack::padded_len(cv));
        }
        if cv.winograd() {
            len = len.max(conv_winograd::scratch_len(cv));
        }
        if conv_winograd::fits_bwd_input(cv) {
            len = len.max(conv_winograd::scratch_len(&conv_winograd::transposed(cv)));
        }
        len
    }
}

/// Forward for images `begin..end`: `x` `[N, Ci, h, w]`, `w` `[Co, Ci/g, kh, kw]`, `bias`
/// `[Co]`, `y` `[N, Co, oh, ow]`. `cols` holds `cols_len(cv)` floats, `scratch`
/// `matmul::SCRATCH_LEN`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_f32(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    cv: &Conv,
    begin: usize,
    end: usize,
    cols: &mut [f32],
    scratch: &mut [f32],
) {
    if cv.depthwise() {
        let co = cv.groups * cv.cog;
        return depthwise::depthwise_f32(x, w, bias, y, cv, begin * co, end * co);
    }
    if cv.direct() {
        return conv_direct::conv2d_f32(x, w, bias, y, cv, begin, end, scratch);
    }
    if cv.winograd() {
        return conv_winograd::conv2d_f32(x, w, bias, y, cv, begin, end, cols, scratch);
    }
    gemm_forward(x, w, bias, y, cv, begin, end, cols, scratch, cv.padded());
}

/// The forward through the GEMM, per image and group; `padded` packs the columns from a padded
/// copy of the image (`Conv::padded`), else they are unfolded or packed from the image in runs.
#[allow(clippy::too_many_arguments)]
fn gemm_forward(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    cv: &Conv,
    begin: usize,
    end: usize,
    cols: &mut [f32],
    scratch: &mut [f32],
    padded: bool,
) {
    let (k, l, plane) = (cv.depth(), cv.positions(), cv.plane());
    let lc = chunk(k, l);
    let (cig, cog) = (cv.cig, cv.cog);
    for img in begin..end {
        for grp in 0..cv.groups {
            let at = img * cv.groups + grp;
            let xs = &x[at * cig * plane..(at + 1) * cig * plane];
            let out = &mut y[at * cog * l..(at + 1) * cog * l];
            let wg = &w[grp * cog * k..(grp + 1) * cog * k];
            if cv.pointwise() {
                matmul_f32(wg, xs, out, cog, k, l, [k, 1], [l, 1], false, scratch);
            } else if padded {
                conv_pack::pad_image(xs, cv, cols, img == begin && grp == 0);
                let pad = &cols[..];
                let pack = |pc, kc, jc, nc, dst: &mut [f32]| {
                    conv_pack::pack_panels(pad, cv, pc, kc, jc, nc, dst)
                };
                matmul_packing_b_f32(wg, [k, 1], out, cog, k, l, false, scratch, pack);
            } else if l <= lc {
                // A plane whose columns fit one chunk is unfolded by whole rows and multiplied
                // by the plain GEMM: cheaper than packing from the image run by run, whose cost
                // per input-row run dominated at LeNet's widths (28 and 10).
                unfold_cols(xs, &cv.win, k, 0, l, cols);
                matmul_f32(wg, cols, out, cog, k, l, [k, 1], [l, 1], false, scratch);
            } else {
                let pack =
                    |pc, kc, jc, nc, dst: &mut [f32]| pack_cols(xs, &cv.win, pc, kc, jc, nc, dst);
                matmul_packing_b_f32(wg, [k, 1], out, cog, k, l, false, scratch, pack);
            }
            // Added after the product, as `conv + bias` would: the same bits as the
            // composition, and the image's output is still in cache.
            if let Some(b) = bias {
                for (row, &v) in out.chunks_exact_mut(l).zip(&b[grp * cog..]) {
                    add_scalar(row, v);
                }
            }
        }
    }
}

/// Input gradient for images `begin..end`: `dx = col2im(W_gᵀ · dY)` per group, overwriting
/// `dx` `[N, Ci, h, w]`. `cols` holds `cols_len(cv)` floats, `scratch` `matmul::SCRATCH_LEN`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_bwd_input_f32(
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    cv: &Conv,
    begin: usize,
    end: usize,
    cols: &mut [f32],
    scratch: &mut [f32],
) {
    if cv.depthwise() {
        let ci = cv.groups;
        return depthwise::depthwise_bwd_input_f32(dy, w, dx, cv, begin * ci, end * ci);
    }
    if conv_winograd::fits_bwd_input(cv) {
        let sc = scratch;
        return conv_winograd::conv2d_bwd_input_f32(dy, w, dx, cv, begin, end, cols, sc);
    }
    let (k, l, plane) = (cv.depth(), cv.positions(), cv.plane());
    let (cig, cog) = (cv.cig, cv.cog);
    let lc = chunk(k, l);
    let (cols, wt) = chunk_and_transposed(cv, cols);
    for grp in 0..cv.groups {
        let wg = &w[grp * cog * k..(grp + 1) * cog * k];
        // W_gᵀ: stored once when it fits (the GEMM then packs it from contiguous rows, as
        // for every chunk of every image it would otherwise gather through strides).
        let (a, a_strides) = if wt.is_empty() {
            (wg, [1, k])
        } else {
            transpose(wg, cog, k, wt);
            (&wt[..], [cog, 1])
        };
        for img in begin..end {
            let at = img * cv.groups + grp;
            let dxs = &mut dx[at * cig * plane..(at + 1) * cig * plane];
            let dys = &dy[at * cog * l..(at + 1) * cog * l];
            if cv.pointwise() {
                matmul_f32(a, dys, dxs, k, cog, l, a_strides, [l, 1], false, scratch);
                continue;
            }
            dxs.fill(0.0);
            for l0 in (0..l).step_by(lc) {
                let len = lc.min(l - l0);
                let dcol = &mut cols[..k * len];
                let dyc = &dys[l0..];
                matmul_f32(a, dyc, dcol, k, cog, len, a_strides, [l, 1], false, scratch);
                fold_cols(dcol, dxs, &cv.win, k, l0, len);
            }
        }
    }
}

/// `dst` `[cols, rows]` = `src` `[rows, cols]` transposed.
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    for (r, row) in src.chunks_exact(cols).take(rows).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            dst[c * rows + r] = v;
        }
    }
}

/// Weight (and bias) gradient for output channels `begin..end`, summed over all `n` images:
/// `dw[co] = Σ dY[co] · colᵀ`, `db[co] = Σ dY[co]`, overwriting those rows of `dw`
/// `[Co, Ci/g, kh, kw]` and entries of `db` `[Co]`. The columns are unfolded a chunk at a
/// time into `cols` (`cols_len(cv)` floats); `scratch` holds `matmul::SCRATCH_LEN`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_bwd_weight_f32(
    x: &[f32],
    dy: &[f32],
    dw: Option<&mut [f32]>,
    db: Option<&mut [f32]>,
    n: usize,
    cv: &Conv,
    begin: usize,
    end: usize,
    cols: &mut [f32],
    scratch: &mut [f32],
) {
    if cv.depthwise() {
        return depthwise::depthwise_bwd_weight_f32(x, dy, dw, db, n, cv, begin, end);
    }
    if cv.direct() {
        return conv_direct::conv2d_bwd_weight_f32(x, dy, dw, db, n, cv, begin, end, scratch);
    }
    let l = cv.positions();
    let co = cv.cog * cv.groups;
    if let Some(db) = db {
        for (c, d) in db.iter_mut().enumerate().take(end).skip(begin) {
            *d = (0..n).map(|img| sum(&dy[(img * co + c) * l..][..l])).sum();
        }
    }
    let dw = match dw {
        Some(dw) => dw,
        None => return,
    };
    if cv.winograd() {
        let sc = scratch;
        return conv_winograd::conv2d_bwd_weight_f32(x, dy, dw, n, cv, begin, end, cols, sc);
    }
    gemm_bwd_weight(x, dy, dw, n, cv, begin, end, cols, scratch, cv.padded());
}

/// The weight gradient through the GEMM, per group and image. With `padded` (`Conv::padded`)
/// each image is copied padded into `cols` and `dW_g += dY · colᵀ` takes `colᵀ`'s panels from
/// it (`conv_pack.rs`): no unfold, and the sum lands in `dw` as laid out. Otherwise the columns
/// are unfolded a chunk at a time, summed as `dW_gᵀ += col · dYᵀ` when that fits after the
/// chunk (the GEMM then packs the wide columns as contiguous rows and only the narrow `dY`
/// through strides) and as `dW_g += dY · colᵀ` through strides when it does not.
#[allow(clippy::too_many_arguments)]
fn gemm_bwd_weight(
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    n: usize,
    cv: &Conv,
    begin: usize,
    end: usize,
    cols: &mut [f32],
    scratch: &mut [f32],
    padded: bool,
) {
    let (k, l, plane) = (cv.depth(), cv.positions(), cv.plane());
    let lc = chunk(k, l);
    let (cig, cog, co) = (cv.cig, cv.cog, cv.cog * cv.groups);
    let (cols, sum_t) = if padded {
        (cols, &mut [][..])
    } else {
        chunk_and_transposed(cv, cols)
    };
    for grp in 0..cv.groups {
        let (r0, r1) = (begin.max(grp * cog), end.min((grp + 1) * cog));
        if r0 >= r1 {
            continue;
        }
        let rows = r1 - r0;
        let dwg = &mut dw[r0 * k..r1 * k];
        if n == 0 {
            dwg.fill(0.0);
        }
        let used = if sum_t.is_empty() { 0 } else { k * rows };
        let sum_t = &mut sum_t[..used];
        for img in 0..n {
            let xs = &x[(img * cv.groups + grp) * cig * plane..][..cig * plane];
            let dys = &dy[(img * co + r0) * l..][..rows * l];
            if cv.pointwise() {
                let acc = img > 0;
                matmul_f32(dys, xs, dwg, rows, l, k, [l, 1], [1, l], acc, scratch);
                continue;
            }
            if padded {
                conv_pack::pad_image(xs, cv, cols, img == 0);
                let pad = &cols[..];
                let pack = |pc, kc, jc, nc, dst: &mut [f32]| {
                    conv_pack::pack_transposed(pad, cv, pc, kc, jc, nc, dst)
                };
                matmul_packing_b_f32(dys, [l, 1], dwg, rows, l, k, img > 0, scratch, pack);
                continue;
            }
            for l0 in (0..l).step_by(lc) {
                let len = lc.min(l - l0);
                unfold_cols(xs, &cv.win, k, l0, len, cols);
                let (dyc, acc) = (&dys[l0..], img > 0 || l0 > 0);
                if sum_t.is_empty() {
                    matmul_f32(dyc, cols, dwg, rows, len, k, [l, 1], [1, len], acc, scratch);
                } else {
                    let sc = &mut *scratch;
                    matmul_f32(cols, dyc, sum_t, k, len, rows, [len, 1], [1, l], acc, sc);
                }
            }
        }
        if !sum_t.is_empty() && n > 0 {
            transpose(sum_t, k, rows, dwg);
        }
    }
}

/// Weight (and bias) gradient partial sums over image chunks `begin..end` of `chunks`: chunk
/// `c` covers images `c·n/chunks .. (c+1)·n/chunks` and overwrites `dw[c]` (`co · depth`
/// floats) and `db[c]` (`co`). Their sum in chunk order is the gradient. The chunks depend on
/// `n` and `chunks` only, so any split of `begin..end` over threads gives the same bits (the
/// split by images the weight gradient otherwise lacks: by output channels, every thread
/// unfolds every image).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_bwd_weight_chunks_f32(
    x: &[f32],
    dy: &[f32],
    mut dw: Option<&mut [f32]>,
    mut db: Option<&mut [f32]>,
    n: usize,
    chunks: usize,
    cv: &Conv,
    begin: usize,
    end: usize,
    cols: &mut [f32],
    scratch: &mut [f32],
) {
    let co = cv.cog * cv.groups;
    let (x_img, dy_img, dw_len) = (
        cv.groups * cv.cig * cv.plane(),
        co * cv.positions(),
        co * cv.depth(),
    );
    for c in begin..end {
        let (i0, i1) = (c * n / chunks, (c + 1) * n / chunks);
        conv2d_bwd_weight_f32(
            &x[i0 * x_img..i1 * x_img],
            &dy[i0 * dy_img..i1 * dy_img],
            dw.as_deref_mut()
                .map(|d| &mut d[c * dw_len..(c + 1) * dw_len]),
            db.as_deref_mut().map(|d| &mut d[c * co..(c + 1) * co]),
            i1 - i0,
            cv,
            0,
            co,
            cols,
            scratch,
        );
    }
}

/// `dst = src` four lanes at a time. Runs are short (an output row), where a call to the
/// module's memcpy (no bulk-memory instructions) costs more than the copy.
#[inline(always)]
fn copy(dst: &mut [f32], src: &[f32]) {
    let mut d4 = dst.chunks_exact_mut(4);
    let mut s4 = src.chunks_exact(4);
    for (d, s) in (&mut d4).zip(&mut s4) {
        F32x4::load(s).store(d);
    }
    for (d, &s) in d4.into_remainder().iter_mut().zip(s4.remainder()) {
        *d = s;
    }
}

/// `row[t] += v`.
fn add_scalar(row: &mut [f32], v: f32) {
    let vv = F32x4::splat(v);
    let mut chunks = row.chunks_exact_mut(4);
    for c in &mut chunks {
        F32x4::load(c).add(vv).store(c);
    }
    for x in chunks.into_remainder() {
        *x += v;
    }
}

/// Σ of a slice with four vector accumulators.
pub(crate) fn sum(x: &[f32]) -> f32 {
    let mut acc = [F32x4::splat(0.0); 4];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for (a, q) in acc.iter_mut().zip(c.chunks_exact(4)) {
            *a = a.add(F32x4::load(q));
        }
    }
    let s = acc[0].add(acc[1]).add(acc[2].add(acc[3])).to_array();
    let tail: f32 = chunks.remainder().iter().sum();
    (s[0] + s[1]) + (s[2] + s[3]) + tail
}

/// Packs rows `pc..pc+kc` (taps), columns `jc..jc+nc` (window positions) of one group's im2col
/// matrix into `PANEL`-wide micro-panels, as the GEMM's own B packing lays them out. `x` holds
/// the group's input planes. Each tap's positions are runs of an input row (`runs`), copied a
/// vector at a time into the panels they straddle.
fn pack_cols(x: &[f32], g: &Window, pc: usize, kc: usize, jc: usize, nc: usize, dst: &mut [f32]) {
    let (kk, plane) = (g.kh * g.kw, g.h * g.w);
    let (mut ch, mut ki, mut kj) = (pc / kk, pc % kk / g.kw, pc % g.kw);
    for p in 0..kc {
        let src = &x[ch * plane..(ch + 1) * plane];
        runs(g, ki, kj, jc, jc + nc, |t, len, at| match at {
            None => put_run(dst, kc, p, t, len, |_| 0.0),
            Some(a) if g.sw == 1 => put_slice(dst, kc, p, t, &src[a..a + len]),
            Some(a) => put_run(dst, kc, p, t, len, |q| src[a + q * g.sw]),
        });
        kj += 1;
        if kj == g.kw {
            kj = 0;
            ki += 1;
            if ki == g.kh {
                ki = 0;
                ch += 1;
            }
        }
    }
    // The last panel's lanes past `nc` are zero padding.
    let tail = nc % PANEL;
    if tail > 0 {
        let last = (nc / PANEL) * PANEL * kc;
        for row in dst[last..last + PANEL * kc].chunks_exact_mut(PANEL) {
            row[tail..].fill(0.0);
        }
    }
}

/// Where packed position `q` of tap row `p` goes: panel `q / PANEL`, row `p`, lane `q % PANEL`.
#[inline(always)]
fn packed(kc: usize, p: usize, q: usize) -> usize {
    (q / PANEL) * PANEL * kc + p * PANEL + q % PANEL
}

/// Writes `s` as positions `t..t+s.len()` of tap row `p`: whole panel rows as two vectors.
#[inline(always)]
fn put_slice(dst: &mut [f32], kc: usize, p: usize, t: usize, s: &[f32]) {
    let mut i = 0;
    while i < s.len() {
        let q = t + i;
        let n = (PANEL - q % PANEL).min(s.len() - i);
        let at = packed(kc, p, q);
        if n == PANEL {
            for v in 0..PANEL / 4 {
                F32x4::load(&s[i + 4 * v..]).store(&mut dst[at + 4 * v..at + 4 * v + 4]);
            }
        } else {
            for (d, &v) in dst[at..at + n].iter_mut().zip(&s[i..i + n]) {
                *d = v;
            }
        }
        i += n;
    }
}

/// Writes `value(0..len)` as positions `t..t+len` of tap row `p`.
#[inline(always)]
fn put_run(
    dst: &mut [f32],
    kc: usize,
    p: usize,
    t: usize,
    len: usize,
    value: impl Fn(usize) -> f32,
) {
    for i in 0..len {
        dst[packed(kc, p, t + i)] = value(i);
    }
}

/// im2col of one chunk: columns `l0..l0+len` of the group's im2col matrix into `cols`
/// `[k, len]`, each tap's positions copied as runs of an input row.
fn unfold_cols(x: &[f32], g: &Window, k: usize, l0: usize, len: usize, cols: &mut [f32]) {
    let (kk, plane) = (g.kh * g.kw, g.h * g.w);
    if g.sw == 1 && whole_rows(g, l0, len) {
        return unfold_rows(x, g, k, l0 / g.ow, len / g.ow, cols);
    }
    for tap in 0..k {
        let (ch, ki, kj) = (tap / kk, tap % kk / g.kw, tap % g.kw);
        let src = &x[ch * plane..(ch + 1) * plane];
        let dst = &mut cols[tap * len..(tap + 1) * len];
        runs(g, ki, kj, l0, l0 + len, |t, n, at| match at {
            None => dst[t..t + n].iter_mut().for_each(|d| *d = 0.0),
            Some(a) if g.sw == 1 => copy(&mut dst[t..t + n], &src[a..a + n]),
            Some(a) => {
                for (q, d) in dst[t..t + n].iter_mut().enumerate() {
                    *d = src[a + q * g.sw];
                }
            }
        });
    }
}

/// Whether columns `l0..l0+len` are whole output rows. Written with division:
/// `is_multiple_of` is newer than the Rust 1.63 this crate builds with.
fn whole_rows(g: &Window, l0: usize, len: usize) -> bool {
    g.ow > 0 && l0 / g.ow * g.ow == l0 && len / g.ow * g.ow == len
}

/// `unfold_cols` for a chunk of whole output rows `oi0..oi0+rows` at column stride 1: each
/// tap's in-plane columns are found once, then every row is a zero prefix, one copy and a zero
/// suffix. Short rows (LeNet's 10 wide) made the generic walk cost ~14 ns a row.
fn unfold_rows(x: &[f32], g: &Window, k: usize, oi0: usize, rows: usize, cols: &mut [f32]) {
    let (kk, plane, ow) = (g.kh * g.kw, g.h * g.w, g.ow);
    let len = rows * ow;
    for tap in 0..k {
        let (ch, ki, kj) = (tap / kk, tap % kk / g.kw, tap % g.kw);
        let src = &x[ch * plane..(ch + 1) * plane];
        let dst = &mut cols[tap * len..(tap + 1) * len];
        let (_, lo, hi, c0) = g.rows_cols(ki, kj, 0);
        for (i, out) in dst.chunks_exact_mut(ow).enumerate() {
            let r = ((oi0 + i) * g.sh + ki * g.dh) as isize - g.ph as isize;
            if r < 0 || r >= g.h as isize || lo == hi {
                out.fill(0.0);
                continue;
            }
            out[..lo].fill(0.0);
            out[hi..].fill(0.0);
            let at = (r * g.w as isize + c0 + lo as isize) as usize;
            copy_overlapping(&mut out[lo..hi], &src[at..at + (hi - lo)]);
        }
    }
}

/// `dst = src` in vectors, the last one overlapping the one before instead of a scalar tail.
#[inline(always)]
fn copy_overlapping(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    if n < 4 {
        dst.copy_from_slice(&src[..n]);
        return;
    }
    let mut i = 0;
    while i + 4 < n {
        F32x4::load(&src[i..]).store(&mut dst[i..]);
        i += 4;
    }
    F32x4::load(&src[n - 4..]).store(&mut dst[n - 4..]);
}

/// col2im of one chunk: adds `dcol` `[k, len]` (columns `l0..l0+len` of the im2col matrix)
/// back onto the pixels they were read from in the group's planes `dx`.
fn fold_cols(dcol: &[f32], dx: &mut [f32], g: &Window, k: usize, l0: usize, len: usize) {
    let (kk, plane) = (g.kh * g.kw, g.h * g.w);
    if g.sw == 1 && whole_rows(g, l0, len) {
        return fold_rows(dcol, dx, g, k, l0 / g.ow, len / g.ow);
    }
    for tap in 0..k {
        let (ch, ki, kj) = (tap / kk, tap % kk / g.kw, tap % g.kw);
        let src = &dcol[tap * len..(tap + 1) * len];
        let dst = &mut dx[ch * plane..(ch + 1) * plane];
        runs(g, ki, kj, l0, l0 + len, |t, n, at| {
            if let Some(a) = at {
                if g.sw == 1 {
                    add_into(&mut dst[a..a + n], &src[t..t + n]);
                } else {
                    for q in 0..n {
                        dst[a + q * g.sw] += src[t + q];
                    }
                }
            }
        });
    }
}

/// `fold_cols` for a chunk of whole output rows at column stride 1, as `unfold_rows` reads them.
fn fold_rows(dcol: &[f32], dx: &mut [f32], g: &Window, k: usize, oi0: usize, rows: usize) {
    let (kk, plane, ow) = (g.kh * g.kw, g.h * g.w, g.ow);
    let len = rows * ow;
    for tap in 0..k {
        let (ch, ki, kj) = (tap / kk, tap % kk / g.kw, tap % g.kw);
        let src = &dcol[tap * len..(tap + 1) * len];
        let dst = &mut dx[ch * plane..(ch + 1) * plane];
        let (_, lo, hi, c0) = g.rows_cols(ki, kj, 0);
        if lo == hi {
            continue;
        }
        for (i, from) in src.chunks_exact(ow).enumerate() {
            let r = ((oi0 + i) * g.sh + ki * g.dh) as isize - g.ph as isize;
            if r >= 0 && r < g.h as isize {
                let at = (r * g.w as isize + c0 + lo as isize) as usize;
                add_into(&mut dst[at..at + (hi - lo)], &from[lo..hi]);
            }
        }
    }
}

/// Floats of GEMM scratch every conv call needs.
pub const SCRATCH_LEN: usize = matmul::SCRATCH_LEN;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random;

    #[allow(clippy::too_many_arguments)]
    fn conv(
        h: usize,
        w: usize,
        k: (usize, usize),
        s: (usize, usize),
        p: (usize, usize),
        d: (usize, usize),
        groups: usize,
        cig: usize,
        cog: usize,
    ) -> Conv {
        let out = |n: usize, k: usize, s: usize, p: usize, d: usize| {
            (n + 2 * p - d * (k - 1) - 1) / s + 1
        };
        Conv {
            win: Window {
                h,
                w,
                kh: k.0,
                kw: k.1,
                dh: d.0,
                dw: d.1,
                ph: p.0,
                pw: p.1,
                sh: s.0,
                sw: s.1,
                oh: out(h, k.0, s.0, p.0, d.0),
                ow: out(w, k.1, s.1, p.1, d.1),
            },
            groups,
            cig,
            cog,
            winograd: true,
        }
    }

    /// The input pixel (channel within the group, offset) tap `t` of window `j` reads, if any.
    fn tap_at(cv: &Conv, t: usize, j: usize) -> Option<usize> {
        let g = &cv.win;
        let (ch, ki, kj) = (t / (g.kh * g.kw), t % (g.kh * g.kw) / g.kw, t % g.kw);
        let r = ((j / g.ow) * g.sh + ki * g.dh) as isize - g.ph as isize;
        let c = ((j % g.ow) * g.sw + kj * g.dw) as isize - g.pw as isize;
        let inside = r >= 0 && c >= 0 && (r as usize) < g.h && (c as usize) < g.w;
        inside.then(|| ch * g.h * g.w + r as usize * g.w + c as usize)
    }

    /// f64 references of y, dx, dw, db by the definition.
    fn reference(
        cv: &Conv,
        n: usize,
        x: &[f32],
        wt: &[f32],
        b: &[f32],
        dy: &[f32],
    ) -> [Vec<f64>; 4] {
        let (k, l, plane) = (cv.depth(), cv.positions(), cv.plane());
        let co = cv.cog * cv.groups;
        let mut y = vec![0.0; n * co * l];
        let mut dx = vec![0.0; x.len()];
        let mut dw = vec![0.0; wt.len()];
        let mut db = vec![0.0; co];
        for img in 0..n {
            for o in 0..co {
                let grp = o / cv.cog;
                let xoff = (img * cv.groups + grp) * cv.cig * plane;
                for j in 0..l {
                    let yi = (img * co + o) * l + j;
                    let mut acc = b[o] as f64;
                    db[o] += dy[yi] as f64;
                    for t in 0..k {
                        if let Some(px) = tap_at(cv, t, j) {
                            acc += wt[o * k + t] as f64 * x[xoff + px] as f64;
                            dx[xoff + px] += wt[o * k + t] as f64 * dy[yi] as f64;
                            dw[o * k + t] += x[xoff + px] as f64 * dy[yi] as f64;
                        }
                    }
                    y[yi] = acc;
                }
            }
        }
        [y, dx, dw, db]
    }

    fn close(got: &[f32], want: &[f64], what: &str, cv: &Conv) {
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g as f64 - w).abs() <= 1e-5 * scale,
                "{what} [{i}]: {g} vs {w} for {cv:?}"
            );
        }
    }

    fn check(cv: Conv, n: usize) {
        let (k, l, plane) = (cv.depth(), cv.positions(), cv.plane());
        let (ci, co) = (cv.cig * cv.groups, cv.cog * cv.groups);
        let seed = (k * 7 + l * 3 + n) as u32;
        let x = random(n * ci * plane, seed, -1.0, 1.0);
        let wt = random(co * k, seed + 1, -1.0, 1.0);
        let b = random(co, seed + 2, -1.0, 1.0);
        let dy = random(n * co * l, seed + 3, -1.0, 1.0);
        let [ry, rdx, rdw, rdb] = reference(&cv, n, &x, &wt, &b, &dy);
        let mut scratch = vec![f32::NAN; SCRATCH_LEN];
        let mut y = vec![f32::NAN; n * co * l];
        let mut cols = vec![f32::NAN; cols_len(&cv)];
        conv2d_f32(
            &x,
            &wt,
            Some(&b),
            &mut y,
            &cv,
            0,
            n,
            &mut cols,
            &mut scratch,
        );
        close(&y, &ry, "y", &cv);
        let mut dx = vec![f32::NAN; x.len()];
        conv2d_bwd_input_f32(&dy, &wt, &mut dx, &cv, 0, n, &mut cols, &mut scratch);
        close(&dx, &rdx, "dx", &cv);
        let mut dw = vec![f32::NAN; wt.len()];
        let mut db = vec![f32::NAN; co];
        // Two channel ranges, so a range boundary inside a group is exercised.
        let mid = co / 2 + 1;
        for (b0, b1) in [(0, mid.min(co)), (mid.min(co), co)] {
            let (dwr, dbr) = (Some(&mut dw[..]), Some(&mut db[..]));
            let sc = &mut scratch;
            conv2d_bwd_weight_f32(&x, &dy, dwr, dbr, n, &cv, b0, b1, &mut cols, sc);
        }
        close(&dw, &rdw, "dw", &cv);
        close(&db, &rdb, "db", &cv);
        // By image chunks (as many as images, at most 3), run as two ranges, summed in order.
        let chunks = n.min(3);
        let mut pw = vec![f32::NAN; chunks * wt.len()];
        let mut pb = vec![f32::NAN; chunks * co];
        for (c0, c1) in [(0, chunks / 2), (chunks / 2, chunks)] {
            let (pwr, pbr) = (Some(&mut pw[..]), Some(&mut pb[..]));
            let sc = &mut scratch;
            conv2d_bwd_weight_chunks_f32(&x, &dy, pwr, pbr, n, chunks, &cv, c0, c1, &mut cols, sc);
        }
        let summed = |p: &[f32], len: usize| -> Vec<f32> {
            let mut out = p[..len].to_vec();
            for c in 1..chunks {
                out.iter_mut().zip(&p[c * len..]).for_each(|(o, v)| *o += v);
            }
            out
        };
        close(&summed(&pw, wt.len()), &rdw, "dw by chunks", &cv);
        close(&summed(&pb, co), &rdb, "db by chunks", &cv);
        if cv.padded() && !cv.direct() && !cv.depthwise() {
            // The paths for images too large to copy padded: the same forward bits, and the
            // weight gradient from unfolded columns.
            let mut plain = vec![f32::NAN; y.len()];
            let (sc, c) = (&mut scratch, &mut cols);
            gemm_forward(&x, &wt, Some(&b), &mut plain, &cv, 0, n, c, sc, false);
            if !cv.winograd() {
                assert!(plain
                    .iter()
                    .zip(&y)
                    .all(|(p, q)| p.to_bits() == q.to_bits()));
            }
            let mut dw = vec![f32::NAN; wt.len()];
            let (sc, c) = (&mut scratch, &mut cols);
            gemm_bwd_weight(&x, &dy, &mut dw, n, &cv, 0, co, c, sc, false);
            close(&dw, &rdw, "dw from unfolded columns", &cv);
        }
    }

    #[test]
    fn matches_definition_over_geometries() {
        for &n in &[1usize, 3, 4, 5, 15, 16, 17] {
            check(conv(n, n, (3, 3), (1, 1), (1, 1), (1, 1), 1, 2, 5), 2);
            check(conv(n, n + 2, (1, 1), (1, 1), (0, 0), (1, 1), 1, 3, 4), 1);
            check(
                conv(n + 2, n + 1, (3, 2), (2, 1), (1, 0), (1, 1), 2, 2, 3),
                2,
            );
            check(
                conv(n + 4, n + 4, (2, 3), (3, 2), (2, 1), (2, 1), 3, 1, 2),
                1,
            );
            check(conv(n, n, (1, 1), (2, 2), (0, 0), (1, 1), 1, 4, 9), 1);
            // Depthwise, with and without a channel multiplier.
            check(conv(n, n + 3, (3, 3), (1, 1), (1, 1), (1, 1), 3, 1, 1), 2);
            check(
                conv(n + 2, n + 2, (3, 2), (2, 1), (1, 0), (1, 2), 2, 1, 3),
                2,
            );
        }
        check(conv(1, 257, (1, 3), (1, 1), (0, 1), (1, 1), 1, 2, 3), 2);
    }

    /// Depth past one KC slice (30 · 3 · 3 = 270 taps) and width past one NC block
    /// (50 · 50 = 2500 positions), LeNet's and ResNet's shapes at small batch.
    #[test]
    fn crosses_gemm_blocks_and_real_shapes() {
        check(conv(8, 8, (3, 3), (1, 1), (1, 1), (1, 1), 1, 30, 5), 1);
        check(conv(50, 50, (3, 3), (1, 1), (1, 1), (1, 1), 1, 2, 4), 1);
        check(conv(28, 28, (5, 5), (1, 1), (0, 0), (1, 1), 1, 1, 6), 2);
        check(conv(14, 14, (5, 5), (1, 1), (0, 0), (1, 1), 1, 6, 16), 2);
        check(conv(12, 12, (3, 3), (1, 1), (1, 1), (1, 1), 1, 16, 16), 1);
    }

    /// Weights too large to keep transposed after the column chunk (800 taps × 96 channels):
    /// the input gradient reads `W_gᵀ` and the weight gradient forms `dW_g` through strides.
    #[test]
    fn large_weights_take_the_strided_gemms() {
        let cv = conv(6, 7, (5, 5), (1, 1), (2, 2), (1, 1), 1, 32, 96);
        assert!(cv.depth() * cv.cog > TRANSPOSED_MAX && transposed_len(&cv) == 0);
        check(cv, 2);
        let cv = conv(6, 7, (5, 5), (1, 1), (2, 2), (1, 1), 2, 16, 48);
        assert!(transposed_len(&cv) == 16 * 25 * 48);
        check(cv, 2);
    }

    /// One input channel: the direct kernels (every channel block of 1-4, kernel rows 1-7,
    /// output rows with and without 8-column tails, padding wider than the kernel's reach),
    /// and the shapes that miss them (stride 2, an 8-wide kernel row).
    #[test]
    fn direct_single_channel_matches_definition() {
        for &(h, w, kh, kw, ph, pw, co) in &[
            (28, 28, 5, 5, 2, 2, 6),
            (1, 1, 1, 1, 0, 0, 1),
            (5, 9, 3, 3, 1, 1, 2),
            (7, 13, 2, 7, 0, 3, 3),
            (6, 17, 4, 6, 2, 4, 5),
            (9, 4, 3, 1, 0, 0, 7),
            (3, 20, 3, 2, 2, 1, 4),
            (10, 12, 3, 8, 1, 1, 3),
        ] {
            check(conv(h, w, (kh, kw), (1, 1), (ph, pw), (1, 1), 1, 1, co), 3);
            check(
                conv(h + 2, w + 2, (kh, kw), (2, 2), (ph, pw), (1, 1), 1, 1, co),
                2,
            );
        }
    }

    /// Winograd's forward and both gradients: odd and even planes (partial edge tiles),
    /// padding 0 and 1 (2 and 1 for the input gradient), tile rows that are not whole vectors,
    /// channel ranges and image chunks of the weight gradient (`check`, against the definition
    /// to 1e-5 of the largest value), and the forward near the GEMM path's.
    #[test]
    fn winograd_matches_definition() {
        for &(h, w, p, ci, co) in &[
            (32, 32, 1, 64, 64),
            (7, 9, 1, 16, 17),
            (5, 12, 0, 19, 16),
            (3, 3, 0, 16, 16),
            (1, 1, 1, 16, 20),
            (14, 13, 0, 33, 24),
        ] {
            let cv = conv(h, w, (3, 3), (1, 1), (p, p), (1, 1), 1, ci, co);
            assert!(
                cv.winograd() && conv_winograd::fits_bwd_input(&cv),
                "{cv:?}"
            );
            let off = Conv {
                winograd: false,
                ..cv
            };
            assert!(!off.winograd() && !conv_winograd::fits_bwd_input(&off));
            check(cv, 2);
            let (l, n) = (cv.positions(), 2);
            let x = random(n * ci * cv.plane(), 9, -1.0, 1.0);
            let wt = random(co * cv.depth(), 10, -1.0, 1.0);
            let mut scratch = vec![f32::NAN; SCRATCH_LEN];
            let mut cols = vec![f32::NAN; cols_len(&cv)];
            let (mut wino, mut gemm) = (vec![f32::NAN; n * co * l], vec![f32::NAN; n * co * l]);
            conv2d_f32(&x, &wt, None, &mut wino, &cv, 0, n, &mut cols, &mut scratch);
            let sc = &mut scratch;
            gemm_forward(
                &x,
                &wt,
                None,
                &mut gemm,
                &cv,
                0,
                n,
                &mut cols,
                sc,
                cv.padded(),
            );
            let scale = gemm.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            for (a, b) in wino.iter().zip(&gemm) {
                assert!((a - b).abs() <= 1e-5 * scale, "{a} vs {b} for {cv:?}");
            }
        }
        // Stride 2, dilation 2, 5×5, 8 channels and groups stay on the GEMM path.
        for cv in [
            conv(8, 8, (3, 3), (2, 2), (1, 1), (1, 1), 1, 16, 16),
            conv(8, 8, (3, 3), (1, 1), (2, 2), (2, 2), 1, 16, 16),
            conv(8, 8, (5, 5), (1, 1), (2, 2), (1, 1), 1, 16, 16),
            conv(8, 8, (3, 3), (1, 1), (1, 1), (1, 1), 1, 8, 16),
            conv(8, 8, (3, 3), (1, 1), (1, 1), (1, 1), 2, 16, 16),
        ] {
            assert!(
                !cv.winograd() && !conv_winograd::fits_bwd_input(&cv),
                "{cv:?}"
            );
        }
    }

    #[test]
    fn work_ranges_touch_only_their_images() {
        let cv = conv(6, 5, (3, 3), (1, 1), (1, 1), (1, 1), 1, 2, 4);
        let (l, plane) = (cv.positions(), cv.plane());
        let x = random(3 * 2 * plane, 1, -1.0, 1.0);
        let wt = random(4 * cv.depth(), 2, -1.0, 1.0);
        let mut y = vec![7.0; 3 * 4 * l];
        let mut scratch = vec![0.0; SCRATCH_LEN];
        let mut cols = vec![0.0; cols_len(&cv)];
        conv2d_f32(&x, &wt, None, &mut y, &cv, 1, 2, &mut cols, &mut scratch);
        assert!(y[..4 * l].iter().chain(&y[8 * l..]).all(|&v| v == 7.0));
        let mut dx = vec![7.0; x.len()];
        conv2d_bwd_input_f32(&y, &wt, &mut dx, &cv, 1, 2, &mut cols, &mut scratch);
        assert!(dx[..2 * plane]
            .iter()
            .chain(&dx[4 * plane..])
            .all(|&v| v == 7.0));
    }
}
