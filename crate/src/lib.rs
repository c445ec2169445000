//! nabla's compute core. `abi` is the exported surface (raw pointers live only there),
//! `kernels` are safe slice functions, `simd` wraps the f32x4 instructions.
//! No crate dependencies and no allocation inside kernels.

pub mod abi;
mod heap;
pub mod kernels;
pub mod math;
pub mod simd;
#[cfg(test)]
mod test_util;
