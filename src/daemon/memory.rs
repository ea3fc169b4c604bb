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
//!
//! It also defines the C function `pow` for the process, so that the C maths library is never
//! loaded: mapped, `libm.so.6` kept ~0.5 MB resident (its symbol tables, and the text and
//! tables around the few functions called), a twentieth of the daemon's whole footprint. The
//! runtime's scheduler was its last caller (tokio's statistics weigh poll times with `powf`);
//! the daemon's own code calls the `libm` crate, and SQLite is built without FTS5, whose ranking
//! called `log` (`.cargo/config.toml`). With no symbol left to take from it, the linker drops the
//! library (`--as-needed`); `tests/deb_contents.rs` checks that the release binary does not need
//! it.

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

/// `pow(3)` for the whole process: the `libm` crate's (musl's algorithm), linked ahead of the C
/// maths library so that nothing takes the symbol from it (see the module paragraph).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[unsafe(no_mangle)]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pow_is_the_c_function() {
        // What the runtime asks of it: a weight between 0 and 1 from a fraction and a count.
        let w = 1.0 - super::pow(1.0 - 0.1, 3.0);
        assert!((w - 0.271).abs() < 1e-12, "{w}");
        assert_eq!(super::pow(2.0, 10.0), 1024.0);
        assert!(super::pow(-1.0, 0.5).is_nan());
    }
}
