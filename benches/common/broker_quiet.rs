//! Letting a broker's process go quiet after a warm-up: a fresh Kafka node's JIT compilers go on
//! working off what the warm-up queued, taking a good part of the 2 cores from the runs that
//! follow. Each bench that warms a broker includes this file with `#[path]`.

use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/*/stat` times (`getconf CLK_TCK`; 100 on Linux if unknown).
pub fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// User + system time process `pid` has used (`/proc/PID/stat`; zero once it is gone).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_nanos((ticks(11) + ticks(12)) * 1_000_000_000 / clock_ticks())
}

/// Waits (at most 30 s, blocking the thread) until process `pid` uses less than 5% of a core
/// over half a second. Returns how long it took.
pub fn wait_until_quiet(pid: u32) -> Duration {
    let started = Instant::now();
    let step = Duration::from_millis(500);
    while started.elapsed() < Duration::from_secs(30) {
        let before = cpu_time(pid);
        std::thread::sleep(step);
        if cpu_time(pid).saturating_sub(before) < step / 20 {
            break;
        }
    }
    started.elapsed()
}
