//! The daemon's process-wide memory settings, applied once before the runtime starts: how many
//! malloc arenas glibc may create. It owns nothing else and touches no other layer.
//!
//! Why: glibc gives every thread that allocates under contention its own arena (up to eight per
//! core), and each arena keeps the pages it once used. The daemon's allocations are small and
//! brief (a row, a PDU, a reply) but come from the runtime's workers and from the blocking pool
//! that runs every store call, so during a broadcast nine arenas held ~14 MB between them
//! (`/proc/PID/smaps`, docs/daemon.md, "Footprint"). Two arenas still held 0.6 MB more than one
//! at the footprint scenario's peak (anonymous memory 5.2 → 4.6 MB), and one arena cost no
//! measurable CPU per SMS: the daemon's threads mostly wait on I/O, so its lock is rarely
//! contended. Other C libraries (musl) have no arenas: nothing to do there.

/// Malloc arenas allowed for the whole process.
pub const MALLOC_ARENAS: i32 = 1;

/// Limits glibc's malloc arenas to [`MALLOC_ARENAS`]; a no-op elsewhere. Call before any thread
/// is spawned (arenas already created stay).
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of glibc's allocator; called before any other thread
    // exists, so no allocation races with it.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
    }
}
