//! Safe kernels over slices, one file per family; forward and backward live side by side.

pub mod attention;
pub mod batchnorm;
pub mod conv;
pub mod conv_direct;
pub mod conv_pack;
pub mod conv_winograd;
pub mod copy;
pub mod depthwise;
pub mod elementwise;
pub mod index;
pub mod layernorm;
pub mod loss;
pub mod matmul;
pub mod optim;
pub mod pool;
pub mod reduce;
pub mod rng;
pub mod rnn;
pub mod sample;
pub mod scan;
pub mod select;
pub mod softmax;
pub mod sort;
pub mod special;
pub mod strided;
pub mod unfold;
