//! Heap accounting: a counting allocator, so "never allocates past the limits" is
//! measured, not inferred. Only allocations made on the current thread while tracking is
//! on count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

pub struct Counting;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = TRACKING.try_with(|tracking| {
        if tracking.get() {
            let _ = LIVE.try_with(|live| {
                let now = live.get() + delta;
                live.set(now);
                let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
            });
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping
// touches only const-initialised thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            note(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            note(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        new
    }
}

/// Forgets everything counted so far on this thread.
pub fn reset() {
    LIVE.with(|live| live.set(0));
    PEAK.with(|peak| peak.set(0));
}

/// The most bytes held at once by tracked allocations since `reset`.
pub fn peak() -> usize {
    PEAK.with(|peak| peak.get()).max(0) as usize
}

/// Counts this thread's allocations until dropped (also when unwinding from a panic).
pub struct Tracked(());

impl Tracked {
    pub fn start() -> Tracked {
        TRACKING.with(|tracking| tracking.set(true));
        Tracked(())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        TRACKING.with(|tracking| tracking.set(false));
    }
}
