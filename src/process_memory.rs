//! The process's own resident memory, read from `/proc/self/status`: for the metrics gauges and
//! for the log lines of long stages (resolution, store writes). It depends on nothing in the
//! crate, so every layer may use it without reaching up to the metrics registry.

/// The process's resident memory now and at its peak, in bytes (Linux: `/proc/self/status`;
/// `None` elsewhere or if unreadable).
pub fn resident_bytes() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
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
