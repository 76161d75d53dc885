//! Giving freed memory back to the operating system.
//!
//! glibc's allocator keeps what a burst of work freed (large stream
//! batches, decoded and stored) in its per-thread arenas, so a server that
//! peaked at some hundreds of megabytes stayed there, idle. When the
//! stream budget drains to nothing, the server asks the allocator to
//! return its free pages, at most once in a while and off the request
//! path.

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// The least time between two trims.
const INTERVAL: Duration = Duration::from_secs(2);

/// Asks the allocator to return its free memory to the operating system,
/// unless it did so within [`INTERVAL`] or is doing so now.
pub fn give_back() {
    static START: OnceLock<Instant> = OnceLock::new();
    static LAST: AtomicU64 = AtomicU64::new(0);
    static RUNNING: AtomicBool = AtomicBool::new(false);
    // Milliseconds since the first call, one more so that the first trim
    // is not taken for one just made.
    let now = START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1;
    let last = LAST.load(Ordering::Relaxed);
    if (last != 0 && now.saturating_sub(last) < INTERVAL.as_millis() as u64)
        || RUNNING.swap(true, Ordering::AcqRel)
    {
        return;
    }
    LAST.store(now, Ordering::Relaxed);
    let trim = || {
        trim();
        RUNNING.store(false, Ordering::Release);
    };
    // A trim walks the whole heap: not on a caller's time.
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn_blocking(trim);
        }
        Err(_) => trim(),
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; it
    // takes no pointers of ours.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
