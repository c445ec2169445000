//! The GEMM panels of the im2col matrix (`col` for the forward, `colᵀ` for the weight gradient;
//! `conv.rs`) packed from a zero-padded copy of one group's image. With the padding stored, a
//! tap of a window position is a fixed offset into the copy: eight positions of a tap along one
//! output row are two vector loads, a panel that wraps onto the next output row is two pairs of
//! loads blended by lane, four positions of eight taps are eight loads transposed in registers,
//! and only strided windows and partial panels are read lane by lane. One copy of the image
//! replaces the unfold and packing (two copies of every column, in runs of an output row: 10
//! floats at LeNet's 6→16); the forward's panels are the same, so its product has the same bits.

use super::conv::Conv;
use super::matmul::{round_up, PANEL};
use super::unfold::Window;
use crate::simd::F32x4;

/// Most floats of padded image this path takes (1 MiB); larger images keep the plain path.
const PADDED_MAX: usize = 256 * 1024;

/// Zero floats after the padded planes: a wrapping panel's first pair of loads runs up to a
/// panel past its last real lane.
const SLACK: usize = PANEL;

/// A padded plane's rows and row length.
fn dims(cv: &Conv) -> (usize, usize) {
    let g = &cv.win;
    (g.h + 2 * g.ph, g.w + 2 * g.pw)
}

/// Floats of the padded copy of one group's planes (saturating: `fits` rejects the huge).
pub fn padded_len(cv: &Conv) -> usize {
    let (hp, wp) = dims(cv);
    cv.cig
        .saturating_mul(hp.saturating_mul(wp))
        .saturating_add(SLACK)
}

/// Whether the padded copy is small enough for this path.
pub fn fits(cv: &Conv) -> bool {
    cv.win.h > 0 && cv.win.w > 0 && padded_len(cv) <= PADDED_MAX
}

/// Copies one group's planes `x` `[cig, h, w]` into `pad` (`padded_len` floats) shifted by the
/// padding. The zeros around them are written when `fresh` (the first image of a call) and
/// then left alone, since later images overwrite only the interior.
pub fn pad_image(x: &[f32], cv: &Conv, pad: &mut [f32], fresh: bool) {
    let g = &cv.win;
    let (hp, wp) = dims(cv);
    let pad = &mut pad[..padded_len(cv)];
    if fresh {
        pad.fill(0.0);
    }
    for (plane, dst) in x.chunks_exact(g.h * g.w).zip(pad.chunks_exact_mut(hp * wp)) {
        for (row, out) in plane.chunks_exact(g.w).zip(dst[g.ph * wp..].chunks_mut(wp)) {
            out[g.pw..g.pw + g.w].copy_from_slice(row);
        }
    }
}

/// How a panel's lanes (window positions) sit in the padded copy, relative to a tap's offset.
enum Lanes {
    /// Eight consecutive floats from here.
    Run(usize),
    /// The first `split` lanes from `first` on, the rest from `second` on (the next output row).
    Wrap {
        first: usize,
        split: usize,
        second: usize,
    },
    /// Each lane at its own offset; lanes past `used` are zero padding.
    Gather { at: [usize; PANEL], used: usize },
}

/// Packs rows `pc..pc+kc` (taps), columns `jc..jc+nc` (window positions) of the group's im2col
/// matrix into `dst` as the GEMM packs B: `PANEL`-wide micro-panels `kc` deep, the last one
/// zero-padded. `pad` is the group's padded copy (`pad_image`).
pub fn pack_panels(
    pad: &[f32],
    cv: &Conv,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
    dst: &mut [f32],
) {
    let (g, wp, pad) = (&cv.win, dims(cv).1, &pad[..padded_len(cv)]);
    let at = |q: usize| (q / g.ow) * g.sh * wp + (q % g.ow) * g.sw;
    for (panel, q0, used) in panels(dst, kc, jc, nc) {
        let ox = q0 % g.ow;
        let lanes = if g.sw != 1 || used < PANEL || ox + PANEL > 2 * g.ow {
            Lanes::Gather {
                at: core::array::from_fn(|i| if i < used { at(q0 + i) } else { 0 }),
                used,
            }
        } else if ox + PANEL <= g.ow {
            Lanes::Run(at(q0))
        } else {
            let split = g.ow - ox;
            Lanes::Wrap {
                first: at(q0),
                split,
                second: at(q0 + split),
            }
        };
        match lanes {
            Lanes::Run(first) => taps(cv, pc, kc, |p, off| {
                let src = &pad[off + first..off + first + PANEL];
                let row = &mut panel[p * PANEL..(p + 1) * PANEL];
                F32x4::load(src).store(row);
                F32x4::load(&src[4..]).store(&mut row[4..]);
            }),
            Lanes::Wrap {
                first,
                split,
                second,
            } => {
                let (lo, hi) = (lanes_below(0, split), lanes_below(4, split));
                // The second row's run shifted back by `split`, so its lane `split` lines up.
                let second = second - split;
                taps(cv, pc, kc, |p, off| {
                    let a = &pad[off + first..off + first + PANEL];
                    let b = &pad[off + second..off + second + PANEL];
                    let row = &mut panel[p * PANEL..(p + 1) * PANEL];
                    F32x4::select(lo, F32x4::load(a), F32x4::load(b)).store(row);
                    let upper = F32x4::select(hi, F32x4::load(&a[4..]), F32x4::load(&b[4..]));
                    upper.store(&mut row[4..]);
                })
            }
            Lanes::Gather { at, used } => taps(cv, pc, kc, |p, off| {
                let row = &mut panel[p * PANEL..(p + 1) * PANEL];
                for (i, (x, &a)) in row.iter_mut().zip(&at).enumerate() {
                    *x = if i < used { pad[off + a] } else { 0.0 };
                }
            }),
        }
    }
}

/// `dst` cut into the `PANEL`-wide, `kc`-deep micro-panels of columns `jc..jc+nc`, each with
/// its first column and how many of its lanes are real (the rest is padding).
fn panels(
    dst: &mut [f32],
    kc: usize,
    jc: usize,
    nc: usize,
) -> impl Iterator<Item = (&mut [f32], usize, usize)> {
    let cut = dst[..round_up(nc, PANEL) * kc].chunks_exact_mut(PANEL * kc);
    cut.zip((jc..jc + nc).step_by(PANEL))
        .map(move |(panel, q0)| (panel, q0, PANEL.min(jc + nc - q0)))
}

/// The mask of a panel row's lanes `first..first+4` that are below lane `n`.
fn lanes_below(first: usize, n: usize) -> F32x4 {
    let lane = |i: usize| if first + i < n { -1 } else { 0 };
    F32x4::from_i32([lane(0), lane(1), lane(2), lane(3)])
}

/// Calls `f(p, offset)` for taps `pc..pc+kc` in order, `p` counted from 0 and `offset` the
/// tap's (channel, kernel row, kernel column) position in the padded copy.
#[inline(always)]
fn taps<F: FnMut(usize, usize)>(cv: &Conv, pc: usize, kc: usize, mut f: F) {
    let mut offsets = TapOffsets::new(cv, pc);
    for p in 0..kc {
        f(p, offsets.next());
    }
}

/// Packs rows `pc..pc+kc` (window positions), columns `jc..jc+nc` (taps) of the group's
/// transposed im2col matrix (`colᵀ`, for the weight gradient `dW_g = dY · colᵀ`) into `dst`
/// as the GEMM packs B. Along an output row, four positions of eight taps are eight vector
/// loads, transposed in registers into four packed rows; the rest of a row (and strided
/// windows) are read one by one. `pad` is the group's padded copy (`pad_image`).
pub fn pack_transposed(
    pad: &[f32],
    cv: &Conv,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
    dst: &mut [f32],
) {
    let (g, wp, pad) = (&cv.win, dims(cv).1, &pad[..padded_len(cv)]);
    let mut offsets = TapOffsets::new(cv, jc);
    for (panel, _, used) in panels(dst, kc, jc, nc) {
        // Lanes past `used` repeat the last tap (in bounds) and are masked to zero.
        let mut off = [0; PANEL];
        for o in &mut off[..used] {
            *o = offsets.next();
        }
        for j in used..PANEL {
            off[j] = off[used - 1];
        }
        let upper_mask = lanes_below(4, used);
        let (mut oy, mut ox, mut p) = (pc / g.ow, pc % g.ow, 0);
        while p < kc {
            let run = (g.ow - ox).min(kc - p);
            let base = oy * g.sh * wp + ox * g.sw;
            let mut i = 0;
            while g.sw == 1 && i + 4 <= run {
                let at = base + i;
                let v: [F32x4; PANEL] =
                    core::array::from_fn(|j| F32x4::load(&pad[off[j] + at..][..4]));
                let lower = F32x4::transpose4([v[0], v[1], v[2], v[3]]);
                let upper = F32x4::transpose4([v[4], v[5], v[6], v[7]]);
                let rows = panel[(p + i) * PANEL..(p + i + 4) * PANEL].chunks_exact_mut(PANEL);
                for ((row, lo), hi) in rows.zip(lower).zip(upper) {
                    lo.store(&mut row[..4]);
                    let hi = if used < PANEL { hi.and(upper_mask) } else { hi };
                    hi.store(&mut row[4..]);
                }
                i += 4;
            }
            for i in i..run {
                let at = base + i * g.sw;
                let row = &mut panel[(p + i) * PANEL..(p + i + 1) * PANEL];
                for (j, x) in row.iter_mut().enumerate() {
                    *x = if j < used { pad[off[j] + at] } else { 0.0 };
                }
            }
            p += run;
            oy += 1;
            ox = 0;
        }
    }
}

/// Taps' offsets in the padded copy, in order from a given tap: divisions only at the start
/// (one per tap would cost as much as the copy it addresses).
struct TapOffsets<'a> {
    g: &'a Window,
    row_len: usize,
    plane: usize,
    ch: usize,
    ki: usize,
    kj: usize,
}

impl<'a> TapOffsets<'a> {
    fn new(cv: &'a Conv, tap: usize) -> Self {
        let g = &cv.win;
        let (hp, wp) = dims(cv);
        let kk = g.kh * g.kw;
        TapOffsets {
            g,
            row_len: wp,
            plane: hp * wp,
            ch: tap / kk,
            ki: tap % kk / g.kw,
            kj: tap % g.kw,
        }
    }

    /// The current tap's offset, then a step to the next tap.
    #[inline(always)]
    fn next(&mut self) -> usize {
        let g = self.g;
        let at = self.ch * self.plane + self.ki * g.dh * self.row_len + self.kj * g.dw;
        self.kj += 1;
        if self.kj == g.kw {
            self.kj = 0;
            self.ki += 1;
            if self.ki == g.kh {
                self.ki = 0;
                self.ch += 1;
            }
        }
        at
    }
}
