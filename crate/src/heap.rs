//! The allocator behind `nb_alloc`/`nb_free`: Rust's global allocator (dlmalloc on wasm32),
//! 16-byte aligned so every buffer can be read with aligned SIMD loads.

use std::alloc::{alloc as raw_alloc, dealloc, Layout};

const ALIGN: usize = 16;

fn layout(bytes: usize) -> Option<Layout> {
    Layout::from_size_align(bytes.max(1), ALIGN).ok()
}

/// Returns the address of a fresh block of `bytes` bytes, or 0 when memory cannot grow.
pub fn alloc(bytes: usize) -> usize {
    match layout(bytes) {
        // SAFETY: the layout has a non-zero size.
        Some(l) => unsafe { raw_alloc(l) as usize },
        None => 0,
    }
}

/// Frees a block returned by `alloc(bytes)`.
pub fn free(ptr: usize, bytes: usize) {
    if ptr == 0 {
        return;
    }
    if let Some(l) = layout(bytes) {
        // SAFETY: `ptr` came from `alloc` with this same layout (the caller's contract).
        unsafe { dealloc(ptr as *mut u8, l) }
    }
}
