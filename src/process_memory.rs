//! Resident memory, read from `/proc/<pid>/status`: the process's own for the metrics gauges and
//! the log lines of long stages (resolution, store writes), a child's for the benchmarks. It
//! depends on nothing in the crate, so every layer may use it without reaching up to the metrics
//! registry.

/// The process's resident memory now and at its peak, in bytes (Linux: `/proc/self/status`;
/// `None` elsewhere or if unreadable).
pub fn resident_bytes() -> Option<(u64, u64)> {
    read("/proc/self/status")
}

/// Another process's resident memory now and at its peak, in bytes (`None` when it is gone).
pub fn resident_bytes_of(pid: u32) -> Option<(u64, u64)> {
    read(&format!("/proc/{pid}/status"))
}

fn read(path: &str) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(path).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Resident memory in MiB for log lines (0 when unknown).
pub fn resident_mb() -> u64 {
    resident_bytes().map_or(0, |(now, _)| now >> 20)
}
