//! The allocator behind `nb_alloc`/`nb_free`: Rust's global allocator (dlmalloc on wasm32),
//! 16-byte aligned so every buffer can be read with aligned SIMD loads.

use std::alloc::{alloc as raw_alloc, dealloc, Layout};

const ALIGN: usize = 16;

/// The layout of a `bytes`-byte block. `usize` is `u32` on wasm32, so a size within `ALIGN` of
/// `usize::MAX` would wrap when rounded up to the alignment: it is refused here explicitly (the
/// allocator then reports "no memory", which TypeScript turns into an OutOfMemoryError).
fn layout(bytes: usize) -> Option<Layout> {
    if bytes > usize::MAX - ALIGN {
        return None;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_that_would_wrap_when_rounded_are_refused() {
        for bytes in [
            usize::MAX,
            usize::MAX - 1,
            usize::MAX - ALIGN + 1,
            usize::MAX - ALIGN,
        ] {
            assert_eq!(alloc(bytes), 0, "alloc({bytes})");
        }
    }

    #[test]
    fn blocks_are_aligned_and_writable() {
        for bytes in [0usize, 1, 3, 4, 5, 15, 16, 17, 257] {
            let p = alloc(bytes);
            assert_ne!(p, 0);
            assert_eq!(p % ALIGN, 0);
            // SAFETY: a fresh block of at least `bytes` bytes.
            unsafe { core::ptr::write_bytes(p as *mut u8, 0xab, bytes) };
            free(p, bytes);
        }
    }
}
