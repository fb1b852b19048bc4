//! A counting global allocator: one allocation over the malloc limit, or live heap over the
//! memory limit, while an input runs is a crash (libFuzzer's -malloc_limit_mb / -rss_limit_mb),
//! so a small input that makes the code allocate gigabytes is reported instead of slowly
//! swapping the CI machine to death.
//!
//! The fuzzer binary installs it with `#[global_allocator] static A: LimitAlloc = LimitAlloc;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub struct LimitAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ARMED: AtomicBool = AtomicBool::new(false);
static REPORTING: AtomicBool = AtomicBool::new(false);
static MALLOC_LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);
static LIVE_LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);
static ON_LIMIT: std::sync::OnceLock<fn(String) -> !> = std::sync::OnceLock::new();

/// Sets the limits (bytes) and what to do when one is crossed (report and exit); the check is
/// on from now on.
pub fn arm(malloc_limit: usize, live_limit: usize, on_limit: fn(String) -> !) {
    MALLOC_LIMIT.store(malloc_limit, Ordering::Relaxed);
    LIVE_LIMIT.store(live_limit, Ordering::Relaxed);
    let _ = ON_LIMIT.set(on_limit);
    ARMED.store(true, Ordering::SeqCst);
}

/// Heap bytes in use now.
pub fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Largest live heap since the last call (then reset to the current size).
pub fn take_peak() -> usize {
    PEAK.swap(LIVE.load(Ordering::Relaxed), Ordering::Relaxed)
}

#[inline]
fn check(size: usize) {
    if !ARMED.load(Ordering::Relaxed) || REPORTING.load(Ordering::Relaxed) {
        return;
    }
    let live = LIVE.load(Ordering::Relaxed);
    let over_one = size > MALLOC_LIMIT.load(Ordering::Relaxed);
    let over_live = live.saturating_add(size) > LIVE_LIMIT.load(Ordering::Relaxed);
    if (over_one || over_live) && !REPORTING.swap(true, Ordering::SeqCst) {
        // From here on allocations pass unchecked, so the report itself may allocate.
        let msg = if over_one {
            format!("out-of-memory: one allocation of {} MiB (malloc limit {} MiB)", size >> 20, MALLOC_LIMIT.load(Ordering::Relaxed) >> 20)
        } else {
            format!(
                "out-of-memory: {} MiB live on the heap plus {} MiB asked for (memory limit {} MiB)",
                live >> 20,
                size >> 20,
                LIVE_LIMIT.load(Ordering::Relaxed) >> 20
            )
        };
        // An allocator must not unwind (GlobalAlloc's contract), and reporting can panic (eprintln!
        // on a closed pipe): a panic here ends the process like the report would have.
        let _ = std::panic::catch_unwind(move || match ON_LIMIT.get() {
            Some(f) => f(msg),
            None => eprintln!("{msg}"),
        });
        std::process::abort()
    }
}

#[inline]
fn added(size: usize) {
    let now = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    if now > PEAK.load(Ordering::Relaxed) {
        PEAK.store(now, Ordering::Relaxed);
    }
}

// SAFETY: every call goes to System with the caller's arguments unchanged; around it only counters
// are updated, and `check` does not unwind (it may end the process).
unsafe impl GlobalAlloc for LimitAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: the caller's request, unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            added(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: the caller's request, unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            added(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from System with `layout` (every block here does).
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            check(new_size - layout.size());
            if new_size > MALLOC_LIMIT.load(Ordering::Relaxed) {
                check(new_size);
            }
        }
        // SAFETY: the caller's request, unchanged; `ptr` came from System with `layout`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            added(new_size);
        }
        p
    }
}
