//! Keeping the resident set small with glibc's allocator.
//!
//! Two of glibc's defaults kept ~30 MB of freed memory resident in an
//! idle server (measured with `bench/startup.sh`):
//!
//! - its *dynamic* mmap threshold: after the first argon2id hash (19 MiB,
//!   served by `mmap`) is freed, the threshold rises to 19 MiB, so every
//!   later hash comes from an arena's heap and stays resident there after
//!   it is freed — up to 19 MiB per thread that ever hashed a password;
//! - per-thread arenas are trimmed only from their top: each HTTP worker
//!   builds the route table and its spec on its own thread, and the ~10 MB
//!   it freed stayed resident behind the few live objects above it.
//!
//! Other platforms and allocators need neither call; they are no-ops there.

/// Fixes the mmap threshold at 128 KiB (glibc's initial value), which also
/// turns the dynamic adjustment off: large buffers such as argon2's are
/// always mapped and returned to the system when freed. Call first thing.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Returns the free pages of every arena to the system. For after a
/// one-off burst of allocation on a long-lived thread (a worker building
/// its routes); not for hot paths (it locks each arena in turn).
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}
