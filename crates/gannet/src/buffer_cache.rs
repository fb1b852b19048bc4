//! A global-allocator wrapper that keeps large freed blocks for the next request of the same size.
//!
//! candle allocates a fresh buffer for every op result and frees it when the tensor drops. A GAN
//! train step repeats the same sequence of buffer sizes every step, so handing the block freed at
//! step `t` straight back at step `t + 1` skips the allocator and, above all, the kernel: a general
//! allocator returns big blocks to the OS, and faulting them in again (the kernel zeroing fresh
//! pages) took half of a DCGAN train step's CPU time (docs/speed.md).
//!
//! Only blocks of at least [`MIN_CACHED`] bytes are cached; sizes are rounded up to a quarter
//! octave so that near-equal requests (the last batch of an epoch, a different resolution) share
//! blocks, at most 25% of each block being slack. Cached bytes are capped
//! ([`BufferCache::set_limit`]); past the cap a freed block goes back to the inner allocator.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Smallest block size the cache keeps (smaller ones are cheap for any allocator).
pub const MIN_CACHED: usize = 1 << 16;
/// Quarter-octave classes from 64 KiB up to 1 TiB.
const CLASSES: usize = 4 * 24;
/// Blocks kept per class.
const SLOTS: usize = 256;
/// Every cached block is page-aligned, so any request of its class can take it.
const ALIGN: usize = 4096;
/// Default cap on cached bytes.
pub const DEFAULT_LIMIT: usize = 8 << 30;

struct Slots {
    len: usize,
    ptrs: [usize; SLOTS],
}

/// Wraps `A`, caching freed blocks of [`MIN_CACHED`] bytes or more.
pub struct BufferCache<A> {
    inner: A,
    classes: [Mutex<Slots>; CLASSES],
    cached_bytes: AtomicUsize,
    limit: AtomicUsize,
}

impl<A> BufferCache<A> {
    pub const fn new(inner: A) -> Self {
        Self {
            inner,
            classes: [const { Mutex::new(Slots { len: 0, ptrs: [0; SLOTS] }) }; CLASSES],
            cached_bytes: AtomicUsize::new(0),
            limit: AtomicUsize::new(DEFAULT_LIMIT),
        }
    }

    /// Caps the bytes held in freed blocks; 0 turns the cache off for later frees.
    pub fn set_limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Relaxed);
    }

    /// Bytes currently held in freed blocks.
    pub fn cached_bytes(&self) -> usize {
        self.cached_bytes.load(Ordering::Relaxed)
    }
}

/// The class of a request and the layout every block of that class is allocated with; `None` when
/// the request is not cached (too small, too large, or over-aligned).
fn class_of(layout: Layout) -> Option<(usize, Layout)> {
    let size = layout.size();
    if size < MIN_CACHED || layout.align() > ALIGN {
        return None;
    }
    let octave = usize::BITS - 1 - size.leading_zeros(); // floor(log2(size))
    let step = 1usize << (octave - 2);
    let quarters = size.div_ceil(step); // 4..=8
    let index = (octave as usize - MIN_CACHED.trailing_zeros() as usize) * 4 + quarters - 4;
    // quarters == 8 is the next octave's first class, which the formula lands on as well.
    if index >= CLASSES {
        return None;
    }
    // Checked: on a 32-bit target a request just under isize::MAX rounds up past it.
    Layout::from_size_align(quarters * step, ALIGN).ok().map(|block| (index, block))
}

impl<A: GlobalAlloc> BufferCache<A> {
    fn take(&self, class: usize, block: Layout) -> Option<*mut u8> {
        let mut slots = self.classes[class].lock().unwrap_or_else(|e| e.into_inner());
        if slots.len == 0 {
            return None;
        }
        slots.len -= 1;
        let ptr = slots.ptrs[slots.len];
        drop(slots);
        self.cached_bytes.fetch_sub(block.size(), Ordering::Relaxed);
        Some(ptr as *mut u8)
    }

    fn keep(&self, class: usize, block: Layout, ptr: *mut u8) -> bool {
        let (limit, bytes) = (self.limit.load(Ordering::Relaxed), block.size());
        if self.cached_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes > limit {
            self.cached_bytes.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        let mut slots = self.classes[class].lock().unwrap_or_else(|e| e.into_inner());
        if slots.len == SLOTS {
            drop(slots);
            self.cached_bytes.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        let len = slots.len;
        slots.ptrs[len] = ptr as usize;
        slots.len += 1;
        true
    }
}

// SAFETY: a request of a cached class gets a block of the class's layout: at least as large
// (`class_of`) and aligned to ALIGN, at least the request's alignment. The block comes from the
// inner allocator with that layout, or from the cache, where only blocks freed by requests of
// the same class go, and a class has one layout; so each block goes back to the inner allocator
// with the layout it came with. Other requests pass through unchanged. Nothing here unwinds
// (a poisoned lock is entered anyway, every index is in range), and the locks are never held
// across an allocation.
unsafe impl<A: GlobalAlloc> GlobalAlloc for BufferCache<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            // SAFETY: the caller's request, unchanged.
            None => unsafe { self.inner.alloc(layout) },
            Some((class, block)) => match self.take(class, block) {
                Some(ptr) => ptr,
                // SAFETY: `block` is a valid layout of at least MIN_CACHED bytes (not zero-sized).
                None => unsafe { self.inner.alloc(block) },
            },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            // SAFETY: the caller's request, unchanged.
            None => unsafe { self.inner.alloc_zeroed(layout) },
            Some((class, block)) => match self.take(class, block) {
                Some(ptr) => {
                    // SAFETY: a cached block of this class has at least `layout.size()` bytes and
                    // belongs to no one else until it is returned here.
                    unsafe { ptr.write_bytes(0, layout.size()) };
                    ptr
                }
                // SAFETY: `block` is a valid layout of at least MIN_CACHED bytes (not zero-sized).
                None => unsafe { self.inner.alloc_zeroed(block) },
            },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match class_of(layout) {
            // SAFETY: an uncached request's block came from the inner allocator with this layout.
            None => unsafe { self.inner.dealloc(ptr, layout) },
            Some((class, block)) => {
                if !self.keep(class, block, ptr) {
                    // SAFETY: every block of this class came from the inner allocator as `block`.
                    unsafe { self.inner.dealloc(ptr, block) };
                }
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: realloc's contract: `new_size` is not zero and, rounded up to `layout.align()`
        // (a power of two, from a valid layout), does not overflow isize.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new_layout)) {
            // SAFETY: both uncached: the block came from the inner allocator with `layout`, and the
            // caller's contract holds for it as for us.
            (None, None) => unsafe { self.inner.realloc(ptr, layout, new_size) },
            (Some((old, _)), Some((new, _))) if old == new => ptr,
            _ => {
                // SAFETY: `new_layout` is valid and not zero-sized (above).
                let new_ptr = unsafe { self.alloc(new_layout) };
                if !new_ptr.is_null() {
                    // SAFETY: the old block holds `layout.size()` bytes and the new one `new_size`;
                    // two live blocks do not overlap. `ptr` was allocated here with `layout`.
                    unsafe {
                        new_ptr.copy_from_nonoverlapping(ptr, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new_ptr
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    #[test]
    fn classes_cover_their_requests_with_at_most_a_quarter_slack() {
        let mut last: Option<(usize, usize)> = None;
        for size in (MIN_CACHED..(64 << 20)).step_by(4093) {
            let (class, block) = class_of(Layout::from_size_align(size, 4).unwrap()).unwrap();
            assert_eq!(block.align(), ALIGN);
            let block = block.size();
            assert!(block >= size && (block - size) * 4 <= size, "{size} -> {block}");
            if let Some((c, b)) = last {
                // Classes grow with the size, and one class always means one block size.
                assert!(class > c || (class == c && block == b), "classes out of order at {size}");
                assert!(class == c || block > b, "a larger class has a larger block at {size}");
            }
            last = Some((class, block));
        }
        assert!(class_of(Layout::from_size_align(MIN_CACHED - 1, 4).unwrap()).is_none());
        assert!(class_of(Layout::from_size_align(MIN_CACHED, 8192).unwrap()).is_none());
    }

    #[test]
    fn a_freed_block_serves_the_next_request_of_its_class_and_zeroes_when_asked() {
        let cache = BufferCache::new(System);
        // SAFETY: each block is written and read within the size it was allocated (or reallocated)
        // with, and freed once, with that layout.
        unsafe {
            let a = Layout::from_size_align(3 << 20, 4).unwrap();
            let p = cache.alloc(a);
            p.write_bytes(7, a.size());
            cache.dealloc(p, a);
            assert_eq!(cache.cached_bytes(), 3 << 20);
            let b = Layout::from_size_align((3 << 20) - 100, 4).unwrap();
            let q = cache.alloc_zeroed(b);
            assert_eq!(q, p, "same class reuses the block");
            assert!(std::slice::from_raw_parts(q, b.size()).iter().all(|&x| x == 0));
            assert_eq!(cache.cached_bytes(), 0);
            // Growing within the class keeps the block; growing past it moves the data.
            let q2 = cache.realloc(q, b, 3 << 20);
            assert_eq!(q2, q);
            q2.write_bytes(5, 3 << 20);
            let q3 = cache.realloc(q2, a, 5 << 20);
            assert_eq!(*q3.add((3 << 20) - 1), 5);
            cache.dealloc(q3, Layout::from_size_align(5 << 20, 4).unwrap());
        }
    }

    #[test]
    fn the_limit_sends_blocks_back_to_the_inner_allocator() {
        let cache = BufferCache::new(System);
        cache.set_limit(2 << 20);
        // SAFETY: each block is freed once, with the layout it was allocated with.
        unsafe {
            let l = Layout::from_size_align(2 << 20, 4).unwrap();
            let (p, q) = (cache.alloc(l), cache.alloc(l));
            cache.dealloc(p, l);
            cache.dealloc(q, l);
            assert_eq!(cache.cached_bytes(), 2 << 20, "the second block is over the cap");
            assert_eq!(cache.alloc(l), p);
            cache.dealloc(p, l);
        }
    }
}
