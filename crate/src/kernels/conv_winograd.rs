//! 3×3 convolution forward at stride and dilation 1 by Winograd's F(2×2, 3×3): each 2×2 block
//! of outputs comes from a 4×4 input tile in 16 multiply-adds per channel pair instead of 36,
//! so the GEMM does 2.25x fewer (a ResNet block's 64→64 3×3 spends nearly all its time there).
//! Per call the weights become `U = G g Gᵀ`, 16 matrices `[Co, Ci]`; per image every tile
//! becomes `V = Bᵀ d B`, 16 matrices `[Ci, tiles]` (four tiles a vector, from zero-padded
//! planes), the 16 products `M = U · V` run through the packed GEMM, and `Y = Aᵀ M A` gives the
//! outputs. The transforms only add, subtract and halve, so the result is within a few units
//! in the last place of the direct sum (tested against the definition). The input gradient of
//! such a convolution is one too (`transposed`: the kernels turned 180° with their channels
//! swapped) and runs here as well, and so does the weight gradient (the forward's adjoint:
//! the same input tiles against transformed output-gradient tiles). Only for planes small
//! enough that one image's transforms fit the column scratch (`fits`); work ranges: images,
//! and output channels for the weight gradient.

use super::conv::Conv;
use super::matmul::{self, round_up};
use crate::simd::F32x4;

/// Floats of column scratch at most: 4 MiB, a CIFAR- or MNIST-sized plane at 64 channels.
const BUDGET: usize = 1 << 20;

/// Tiles per tile row, rounded up to whole vectors (the extra tiles read padding).
fn tiles_x(cv: &Conv) -> usize {
    round_up(halves(cv.win.ow), 4)
}

fn tiles_y(cv: &Conv) -> usize {
    halves(cv.win.oh)
}

/// 2×2 tiles along `n` outputs: `n / 2` rounded up (written out: `usize::div_ceil` is newer
/// than the Rust 1.63 this crate builds with).
fn halves(n: usize) -> usize {
    n / 2 + n % 2
}

/// The padded planes' (rows, row length): every tile's 4×4 window inside, plus the vector
/// loads' reach past the last tile.
fn padded(cv: &Conv) -> (usize, usize) {
    (2 * tiles_y(cv) + 2, 2 * tiles_x(cv) + 4)
}

/// Float offsets of the scratch parts: transformed weights, padded planes, V, M; and the end.
fn layout(cv: &Conv) -> [usize; 5] {
    let (hp, wp) = padded(cv);
    let t = tiles_y(cv) * tiles_x(cv);
    let (ci, co) = (cv.cig, cv.cog);
    let u = 16 * co * ci;
    let p = u + ci * hp * wp;
    let v = p + 16 * ci * t;
    let m = v + 16 * co * t;
    [0, u, p, v, m]
}

/// Floats of column scratch the kernel uses.
pub fn scratch_len(cv: &Conv) -> usize {
    layout(cv)[4]
}

/// Whether the kernel takes `cv`: Winograd allowed, one group, 3×3 at stride and dilation 1,
/// padding at most 2, enough channels for the transforms to pay (16), and one image's buffers
/// within the budget.
pub fn fits(cv: &Conv) -> bool {
    let g = &cv.win;
    let geometry = (g.kh, g.kw, g.sh, g.sw, g.dh, g.dw) == (3, 3, 1, 1, 1, 1);
    cv.winograd
        && cv.groups == 1
        && geometry
        && g.ph <= 2
        && g.pw <= 2
        && g.oh >= 1
        && g.ow >= 1
        && cv.cig >= 16
        && cv.cog >= 16
        && scratch_len(cv) <= BUDGET
}

/// Forward for images `begin..end`: `x` `[N, Ci, h, w]`, `w` `[Co, Ci, 3, 3]`, `bias` `[Co]`,
/// `y` `[N, Co, oh, ow]`. `cols` holds `scratch_len(cv)` floats, `scratch` `matmul::SCRATCH_LEN`.
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
    run(x, w, false, bias, y, cv, begin, end, cols, scratch);
}

/// The geometry of the input gradient of a 3×3, stride-1 convolution `cv`: a convolution of
/// `dy` (`[Co, oh, ow]` planes) with the kernels flipped and their channels swapped, padded by
/// `2 - p`, giving `[Ci, h, w]`.
pub fn transposed(cv: &Conv) -> Conv {
    let g = cv.win;
    let mut win = g;
    (win.h, win.w, win.oh, win.ow) = (g.oh, g.ow, g.h, g.w);
    (win.ph, win.pw) = (2 - g.ph.min(2), 2 - g.pw.min(2));
    Conv {
        win,
        groups: 1,
        cig: cv.cog,
        cog: cv.cig,
        winograd: cv.winograd,
    }
}

/// Whether the input gradient of `cv` runs here: its transposed geometry `fits` (which keeps
/// the kernel, stride and dilation, but not the groups or a padding past 2).
pub fn fits_bwd_input(cv: &Conv) -> bool {
    cv.groups == 1 && cv.win.ph <= 2 && cv.win.pw <= 2 && fits(&transposed(cv))
}

/// Input gradient for images `begin..end`: overwrites `dx` `[N, Ci, h, w]` from `dy`
/// `[N, Co, oh, ow]` and `w` `[Co, Ci, 3, 3]`. `cols` holds `scratch_len(&transposed(cv))`.
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
    run(
        dy,
        w,
        true,
        None,
        dx,
        &transposed(cv),
        begin,
        end,
        cols,
        scratch,
    );
}

/// Weight gradient rows `begin..end` (output channels) summed over the `n` images, overwriting
/// those rows of `dw` `[Co, Ci, 3, 3]`: the adjoint of the forward's bilinear map,
/// `dW[o][i] = Gᵀ (Σ_tiles (A dy Aᵀ)[o] ⊙ (Bᵀ d B)[i]) G` with each tile's 2×2 output gradient
/// `dy` (zero past the plane), the tile sums as 16 products `[rows, tiles] · [tiles, Ci]`
/// accumulated over the images. `cols` holds `scratch_len(cv)` floats (the products take the
/// transformed weights' room, the output gradients the outputs').
#[allow(clippy::too_many_arguments)]
pub fn conv2d_bwd_weight_f32(
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    n: usize,
    cv: &Conv,
    begin: usize,
    end: usize,
    cols: &mut [f32],
    scratch: &mut [f32],
) {
    let g = &cv.win;
    let (ci, co, rows) = (cv.cig, cv.cog, end - begin);
    let (plane, l, t) = (g.h * g.w, g.oh * g.ow, tiles_y(cv) * tiles_x(cv));
    let [sums, pad, v, m] = parts(cv, cols);
    let sums = &mut sums[..16 * rows * ci];
    sums.fill(0.0);
    for img in 0..n {
        pad_planes(&x[img * ci * plane..(img + 1) * ci * plane], cv, pad);
        transform_input(pad, cv, v);
        transform_grad(
            &dy[(img * co + begin) * l..(img * co + end) * l],
            cv,
            rows,
            m,
        );
        for xi in 0..16 {
            let (mc, vc) = (&m[xi * rows * t..][..rows * t], &v[xi * ci * t..][..ci * t]);
            let sc = &mut sums[xi * rows * ci..][..rows * ci];
            matmul::matmul_f32(mc, vc, sc, rows, t, ci, [t, 1], [1, t], true, scratch);
        }
    }
    for (ri, out) in dw[begin * ci * 9..end * ci * 9]
        .chunks_exact_mut(9)
        .enumerate()
    {
        // Gᵀ S G: Gᵀ down each of S's 4 columns, then along each of the 3 rows.
        let sv = |xi: usize| sums[xi * rows * ci + ri];
        let cols = [0, 1, 2, 3].map(|c| gt_column(sv(c), sv(4 + c), sv(8 + c), sv(12 + c)));
        for (a, row) in out.chunks_exact_mut(3).enumerate() {
            row.copy_from_slice(&gt_column(cols[0][a], cols[1][a], cols[2][a], cols[3][a]));
        }
    }
}

/// `Gᵀ · (a, b, c, d)`, `Gᵀ` = [[1, ½, ½, 0], [0, ½, -½, 0], [0, ½, ½, 1]].
fn gt_column(a: f32, b: f32, c: f32, d: f32) -> [f32; 3] {
    let half = 0.5 * (b + c);
    [a + half, 0.5 * (b - c), half + d]
}

/// `M[ξ][r][t] = (A e Aᵀ)[ξ]` for tile `t`'s 2×2 block `e` of output-gradient plane `r` (zero
/// past the plane), `A` = [[1, 0], [1, 1], [1, -1], [0, -1]].
fn transform_grad(dy: &[f32], cv: &Conv, rows: usize, m: &mut [f32]) {
    let g = &cv.win;
    let (tx, ty) = (tiles_x(cv), tiles_y(cv));
    let t = tx * ty;
    let at = |r: usize, c: usize, p: &[f32]| {
        if r < g.oh && c < g.ow {
            p[r * g.ow + c]
        } else {
            0.0
        }
    };
    for (r, p) in dy.chunks_exact(g.oh * g.ow).take(rows).enumerate() {
        for yi in 0..ty {
            for xi in 0..tx {
                let (y0, x0) = (2 * yi, 2 * xi);
                let e = [
                    [at(y0, x0, p), at(y0, x0 + 1, p)],
                    [at(y0 + 1, x0, p), at(y0 + 1, x0 + 1, p)],
                ];
                let lift = |a: f32, b: f32| [a, a + b, a - b, -b];
                let (c0, c1) = (lift(e[0][0], e[1][0]), lift(e[0][1], e[1][1]));
                for (i, (&u0, &u1)) in c0.iter().zip(&c1).enumerate() {
                    for (k, val) in lift(u0, u1).iter().enumerate() {
                        m[((4 * i + k) * rows + r) * t + yi * tx + xi] = *val;
                    }
                }
            }
        }
    }
}

/// The column scratch cut into its parts (`layout`): transformed weights (the weight
/// gradient's tile sums), padded planes, V, M.
fn parts<'a>(cv: &Conv, cols: &'a mut [f32]) -> [&'a mut [f32]; 4] {
    let [_, pu, pp, pv, pm] = layout(cv);
    let (u, rest) = cols[..pm].split_at_mut(pu);
    let (pad, rest) = rest.split_at_mut(pp - pu);
    let (v, m) = rest.split_at_mut(pv - pp);
    [u, pad, v, m]
}

/// The convolution `cv` of images `begin..end` with the weights `w` `[Co, Ci, 3, 3]`; with
/// `flip`, `cv` is their input gradient's `transposed` geometry (its channels theirs swapped).
#[allow(clippy::too_many_arguments)]
fn run(
    x: &[f32],
    w: &[f32],
    flip: bool,
    bias: Option<&[f32]>,
    y: &mut [f32],
    cv: &Conv,
    begin: usize,
    end: usize,
    cols: &mut [f32],
    scratch: &mut [f32],
) {
    let g = &cv.win;
    let (ci, co, l) = (cv.cig, cv.cog, g.oh * g.ow);
    let [u, pad, v, m] = parts(cv, cols);
    let (w_ci, w_co) = if flip { (co, ci) } else { (ci, co) };
    transform_weights(w, w_ci, w_co, flip, u);
    let t = tiles_y(cv) * tiles_x(cv);
    let plane = g.h * g.w;
    for img in begin..end {
        pad_planes(&x[img * ci * plane..(img + 1) * ci * plane], cv, pad);
        transform_input(pad, cv, v);
        for xi in 0..16 {
            let (uc, vc) = (&u[xi * co * ci..][..co * ci], &v[xi * ci * t..][..ci * t]);
            let mc = &mut m[xi * co * t..][..co * t];
            matmul::matmul_f32(uc, vc, mc, co, ci, t, [ci, 1], [t, 1], false, scratch);
        }
        let out = &mut y[img * co * l..(img + 1) * co * l];
        transform_output(m, cv, bias, out);
    }
}

/// `U[ξ][o][i] = (G g Gᵀ)[ξ]` for each 3×3 kernel `g = w[o][i]`, `G` = [[1, 0, 0], [½, ½, ½],
/// [½, -½, ½], [0, 0, 1]]; with `flip`, the input gradient's `U[ξ][i][o]` of `g` turned 180°.
fn transform_weights(w: &[f32], ci: usize, co: usize, flip: bool, u: &mut [f32]) {
    for (oi, k) in w[..co * ci * 9].chunks_exact(9).enumerate() {
        let tap = |r: usize, c: usize| if flip { k[8 - 3 * r - c] } else { k[3 * r + c] };
        let at = if flip { oi % ci * co + oi / ci } else { oi };
        // G g: 4 rows of 3.
        let mut gg = [[0.0f32; 3]; 4];
        for (c, [g0, g1, g2, g3]) in (0..3).map(|c| (c, gg_column(tap(0, c), tap(1, c), tap(2, c))))
        {
            gg[0][c] = g0;
            gg[1][c] = g1;
            gg[2][c] = g2;
            gg[3][c] = g3;
        }
        for (r, row) in gg.iter().enumerate() {
            let t = gg_column(row[0], row[1], row[2]);
            for (c, &val) in t.iter().enumerate() {
                u[(4 * r + c) * co * ci + at] = val;
            }
        }
    }
}

/// `G · (a, b, d)`: one column (or row) of a kernel through `G`.
fn gg_column(a: f32, b: f32, d: f32) -> [f32; 4] {
    [a, 0.5 * (a + b + d), 0.5 * (a - b + d), d]
}

/// Copies the image's planes into `pad` `[Ci, hp, wp]` shifted by the padding, zeros around.
fn pad_planes(x: &[f32], cv: &Conv, pad: &mut [f32]) {
    let g = &cv.win;
    let (hp, wp) = padded(cv);
    let pad = &mut pad[..cv.cig * hp * wp];
    pad.fill(0.0);
    for (src, dst) in x.chunks_exact(g.h * g.w).zip(pad.chunks_exact_mut(hp * wp)) {
        for (r, row) in src.chunks_exact(g.w).enumerate().take(hp - g.ph) {
            let n = g.w.min(wp - g.pw);
            dst[(r + g.ph) * wp + g.pw..][..n].copy_from_slice(&row[..n]);
        }
    }
}

/// `V[ξ][c][t] = (Bᵀ d B)[ξ]` for tile `t`'s 4×4 window `d` of plane `c`, four tiles a vector:
/// `Bᵀ` = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]].
fn transform_input(pad: &[f32], cv: &Conv, v: &mut [f32]) {
    let (hp, wp) = padded(cv);
    let (tx, ty, ci) = (tiles_x(cv), tiles_y(cv), cv.cig);
    let t = tx * ty;
    for (c, plane) in pad.chunks_exact(hp * wp).take(ci).enumerate() {
        for yi in 0..ty {
            for x0 in (0..tx).step_by(4) {
                // d[r][k]: column k of window row r, for the four tiles x0..x0 + 4.
                let mut d = [[F32x4::splat(0.0); 4]; 4];
                for (r, dr) in d.iter_mut().enumerate() {
                    let row = &plane[(2 * yi + r) * wp + 2 * x0..][..10];
                    let (e0, o0) = F32x4::deinterleave(F32x4::load(row), F32x4::load(&row[4..]));
                    let (e2, o2) =
                        F32x4::deinterleave(F32x4::load(&row[2..]), F32x4::load(&row[6..]));
                    *dr = [e0, o0, e2, o2];
                }
                let rows = [
                    sub4(d[0], d[2]),
                    add4(d[1], d[2]),
                    sub4(d[2], d[1]),
                    sub4(d[1], d[3]),
                ];
                for (r, q) in rows.iter().enumerate() {
                    let cols = [
                        q[0].sub(q[2]),
                        q[1].add(q[2]),
                        q[2].sub(q[1]),
                        q[1].sub(q[3]),
                    ];
                    for (k, val) in cols.iter().enumerate() {
                        let at = ((4 * r + k) * ci + c) * t + yi * tx + x0;
                        val.store(&mut v[at..at + 4]);
                    }
                }
            }
        }
    }
}

/// `Y = Aᵀ m A` for every output channel and tile, `Aᵀ` = [[1, 1, 1, 0], [0, 1, -1, -1]]: the
/// tile's 2×2 outputs (those inside the plane) into `out` `[Co, oh, ow]`, plus the bias.
fn transform_output(m: &[f32], cv: &Conv, bias: Option<&[f32]>, out: &mut [f32]) {
    let g = &cv.win;
    let (tx, ty, co) = (tiles_x(cv), tiles_y(cv), cv.cog);
    let t = tx * ty;
    for (o, plane) in out.chunks_exact_mut(g.oh * g.ow).take(co).enumerate() {
        let b = bias.map_or(0.0, |b| b[o]);
        for yi in 0..ty {
            for x0 in (0..tx).step_by(4) {
                let at = |xi: usize| (xi * co + o) * t + yi * tx + x0;
                let mut mm = [[F32x4::splat(0.0); 4]; 4];
                for (r, row) in mm.iter_mut().enumerate() {
                    for (k, val) in row.iter_mut().enumerate() {
                        *val = F32x4::load(&m[at(4 * r + k)..]);
                    }
                }
                let s0 = add4(add4(mm[0], mm[1]), mm[2]);
                let s1 = sub4(sub4(mm[1], mm[2]), mm[3]);
                for (a, s) in [s0, s1].iter().enumerate() {
                    let y0 = s[0].add(s[1]).add(s[2]).to_array();
                    let y1 = s[1].sub(s[2]).sub(s[3]).to_array();
                    let r = 2 * yi + a;
                    if r >= g.oh {
                        continue;
                    }
                    let row = &mut plane[r * g.ow..(r + 1) * g.ow];
                    for q in 0..4 {
                        let col = 2 * (x0 + q);
                        if col < g.ow {
                            row[col] = y0[q] + b;
                        }
                        if col + 1 < g.ow {
                            row[col + 1] = y1[q] + b;
                        }
                    }
                }
            }
        }
    }
}

fn add4(a: [F32x4; 4], b: [F32x4; 4]) -> [F32x4; 4] {
    [
        a[0].add(b[0]),
        a[1].add(b[1]),
        a[2].add(b[2]),
        a[3].add(b[3]),
    ]
}

fn sub4(a: [F32x4; 4], b: [F32x4; 4]) -> [F32x4; 4] {
    [
        a[0].sub(b[0]),
        a[1].sub(b[1]),
        a[2].sub(b[2]),
        a[3].sub(b[3]),
    ]
}
