//! The allocator behind `nb_alloc`/`nb_free`: Rust's global allocator (dlmalloc on wasm32),
//! 16-byte aligned so every buffer can be read with aligned SIMD loads, for every block a
//! `Layout` can describe; and whole wasm pages for the rest. Since Rust 1.64 a `Layout` is at most
//! `isize::MAX` bytes, 2 GiB on wasm32, yet a wasm32 heap is 4 GiB and a tensor may take most of
//! it: such a block is grown for it at the end of memory and, once freed, kept for the next one.

use std::alloc::{alloc as raw_alloc, dealloc, Layout};
use std::sync::Mutex;

const ALIGN: usize = 16;
const PAGE: usize = 65536;

/// The layout of a `bytes`-byte block, or `None` past `isize::MAX` (rounded to the alignment).
fn layout(bytes: usize) -> Option<Layout> {
    Layout::from_size_align(bytes.max(1), ALIGN).ok()
}

/// Blocks too large for a `Layout`: page runs grown from the engine, in use or free.
struct Huge {
    used: Vec<(usize, usize)>,
    free: Vec<(usize, usize)>,
}

impl Huge {
    /// A run of at least `bytes` bytes: the smallest free one that fits, else `grow` pages.
    /// The run is one `ALIGN` longer than asked so that a block never ends at address 2^32,
    /// which wraps to 0 in a 32-bit `ptr + len`.
    fn alloc(&mut self, bytes: usize, grow: impl FnOnce(usize) -> Option<usize>) -> usize {
        let Some(need) = bytes.checked_add(ALIGN) else {
            return 0;
        };
        let best = (self.free.iter().enumerate())
            .filter(|(_, &(_, len))| len >= need)
            .min_by_key(|(_, &(_, len))| len)
            .map(|(i, _)| i);
        let run = match best {
            Some(i) => self.free.swap_remove(i),
            None => {
                let pages = need / PAGE + usize::from(need % PAGE != 0);
                match grow(pages) {
                    Some(ptr) => (ptr, pages * PAGE),
                    None => return 0,
                }
            }
        };
        self.used.push(run);
        run.0
    }

    /// Returns the run at `ptr` to the free list; false when no run starts there.
    fn free(&mut self, ptr: usize) -> bool {
        match self.used.iter().position(|&(p, _)| p == ptr) {
            Some(i) => {
                let run = self.used.swap_remove(i);
                self.free.push(run);
                true
            }
            None => false,
        }
    }
}

static HUGE: Mutex<Huge> = Mutex::new(Huge {
    used: Vec::new(),
    free: Vec::new(),
});

/// Grows the wasm memory by `pages` pages; the address of the first new byte.
#[cfg(target_arch = "wasm32")]
fn grow_memory(pages: usize) -> Option<usize> {
    let before = core::arch::wasm32::memory_grow(0, pages);
    // usize::MAX: the engine refused; a pages count past 65536 cannot succeed in wasm32 either.
    (before != usize::MAX).then(|| before * PAGE)
}

/// Natively a `Layout` holds any realistic size, so this path is only reached on wasm32.
#[cfg(not(target_arch = "wasm32"))]
fn grow_memory(_pages: usize) -> Option<usize> {
    None
}

fn huge() -> std::sync::MutexGuard<'static, Huge> {
    HUGE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Returns the address of a fresh block of `bytes` bytes, or 0 when memory cannot grow.
pub fn alloc(bytes: usize) -> usize {
    match layout(bytes) {
        // SAFETY: the layout has a non-zero size.
        Some(l) => unsafe { raw_alloc(l) as usize },
        None => huge().alloc(bytes, grow_memory),
    }
}

/// Frees a block returned by `alloc(bytes)`.
pub fn free(ptr: usize, bytes: usize) {
    if ptr == 0 {
        return;
    }
    match layout(bytes) {
        // SAFETY: `ptr` came from `alloc` with this same layout (the caller's contract).
        Some(l) => unsafe { dealloc(ptr as *mut u8, l) },
        None => {
            huge().free(ptr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_runs_are_whole_pages_reused_best_fit_and_never_end_at_the_top() {
        let mut h = Huge {
            used: Vec::new(),
            free: Vec::new(),
        };
        let mut top = 0x1000_0000usize;
        let mut grow = |pages: usize| {
            let at = top;
            top += pages * PAGE;
            Some(at)
        };
        let a = h.alloc(3 * PAGE, &mut grow);
        assert_eq!(a, 0x1000_0000);
        // 3 pages + ALIGN needs a fourth page
        assert_eq!(h.used, vec![(a, 4 * PAGE)]);
        let b = h.alloc(PAGE - ALIGN, &mut grow);
        assert_eq!(b, a + 4 * PAGE);
        assert!(h.free(a) && h.free(b));
        assert!(!h.free(a), "a second free of the same run is refused");
        // best fit: the one-page run, not the four-page one
        assert_eq!(h.alloc(100, |_| None), b);
        assert_eq!(h.alloc(2 * PAGE, |_| None), a);
        assert_eq!(h.alloc(2 * PAGE, |_| None), 0, "nothing free and no growth");
        assert_eq!(
            h.alloc(usize::MAX - 3, |_| Some(0)),
            0,
            "size + ALIGN overflows"
        );
    }

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
