//! Who holds a lease or an outbox claim: a name that says which process on which host, under
//! which `instance_id`, so that a restarted instance can tell a holder that is provably dead
//! (its own earlier process, killed) from one that may still work and must be waited for.
//!
//! The name is `<host>:<instance_id>:<pid>:<start>:<nonce>`. `start` is the process's start
//! time in clock ticks since boot (`/proc/<pid>/stat`, field 22): a pid may be reused, a pid
//! with its start time is one process. The nonce keeps names of processes on hosts without
//! `/proc` apart.
use std::sync::OnceLock;

/// This process's holder name under `instance_id`.
pub fn this_process(instance_id: u8) -> String {
    static BASE: OnceLock<(String, u32, u64, String)> = OnceLock::new();
    let (host, pid, start, nonce) = BASE.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty() && !h.contains(':'))
            .unwrap_or_else(|| "localhost".into());
        let pid = std::process::id();
        let start = start_time(pid).unwrap_or(0);
        let nonce = uuid::Uuid::new_v4().simple().to_string()[..6].to_string();
        (host, pid, start, nonce)
    });
    format!("{host}:{instance_id:02}:{pid}:{start}:{nonce}")
}

/// Whether `holder` is provably gone: a process of this host and this `instance_id` that no
/// longer runs. Anything else — another host, another instance, a name of an older version,
/// a host without `/proc` — may still be alive and is not taken over before its time.
pub fn is_gone(holder: &str, instance_id: u8) -> bool {
    let Some(h) = Parsed::of(holder) else {
        return false;
    };
    let me = this_process(instance_id);
    let Some(mine) = Parsed::of(&me) else {
        return false;
    };
    if h.host != mine.host || h.instance != instance_id || holder == me {
        return false;
    }
    if mine.start == 0 {
        // No /proc: nothing can be proved.
        return false;
    }
    match start_time(h.pid) {
        None => true,
        Some(start) => start != h.start,
    }
}

struct Parsed<'a> {
    host: &'a str,
    instance: u8,
    pid: u32,
    start: u64,
}

impl<'a> Parsed<'a> {
    fn of(holder: &'a str) -> Option<Parsed<'a>> {
        let mut parts = holder.split(':');
        let p = Parsed {
            host: parts.next()?,
            instance: parts.next()?.parse().ok()?,
            pid: parts.next()?.parse().ok()?,
            start: parts.next()?.parse().ok()?,
        };
        parts.next()?;
        parts.next().is_none().then_some(p)
    }
}

/// The start time of process `pid` in clock ticks since boot, `None` when it does not run
/// (or the host has no `/proc`).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold blanks and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    // Field 3 is the first after it; the start time is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_one_of_this_host_is_gone() {
        let me = this_process(10);
        assert!(!is_gone(&me, 10), "{me}");
        let p = Parsed::of(&me).expect("own name parses");
        assert_eq!(p.instance, 10);
        assert_eq!(p.pid, std::process::id());
        assert!(p.start > 0, "start time read from /proc");

        // The same pid with another start time: a reused pid, the holder is gone.
        let reused = format!("{}:10:{}:{}:abcdef", p.host, p.pid, p.start + 1);
        assert!(is_gone(&reused, 10));
        // A pid that cannot exist (above the kernel's pid_max) is gone.
        let dead = format!("{}:10:{}:{}:abcdef", p.host, u32::MAX, p.start);
        assert!(is_gone(&dead, 10));
        // Another instance id, another host, or an old-style name: not ours to take.
        assert!(!is_gone(&format!("{}:11:{}:1:x", p.host, u32::MAX), 10));
        assert!(!is_gone(&format!("elsewhere:10:{}:1:x", u32::MAX), 10));
        assert!(!is_gone(&format!("{}:{}:abcdef12", p.host, u32::MAX), 10));
        // A live process of this host (pid 1) under its real start time is not gone.
        if let Some(start) = start_time(1) {
            assert!(!is_gone(&format!("{}:10:1:{start}:x", p.host), 10));
        }
    }
}
