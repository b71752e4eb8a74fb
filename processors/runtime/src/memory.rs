//! Process-wide memory settings applied before the loop starts.

/// Turns transparent huge pages off for this process, unless the operator
/// asked mimalloc for them (`MIMALLOC_ALLOW_THP=1`).
///
/// mimalloc asks the kernel for huge pages on its arenas and then returns
/// idle parts of them; the next allocation there faults in a whole 2 MiB
/// page, which the kernel zeroes first. Profiled under load, that zeroing
/// was 5 % of the loop thread and 4.6 % of librdkafka's broker thread
/// (`clear_page_erms` under `do_huge_pmd_anonymous_page`); with huge
/// pages off, zeroing 4 KiB pages took half as much (docs/benchmarks.md).
/// Returns whether they are off.
pub fn huge_pages_off() -> bool {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some_and(|v| v != "0") {
        return false;
    }
    disable()
}

#[cfg(target_os = "linux")]
fn disable() -> bool {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1 as libc::c_ulong, 0, 0, 0) };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
fn disable() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernel_reports_huge_pages_off() {
        // The test binary is a process of its own; the flag only affects it.
        let asked = std::env::var_os("MIMALLOC_ALLOW_THP").is_some_and(|v| v != "0");
        assert_eq!(super::huge_pages_off(), !asked);
        // SAFETY: PR_GET_THP_DISABLE reads the flag of this process.
        let flag = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(flag == 1, !asked);
    }
}
