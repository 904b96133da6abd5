//! When and on what a bench ran: the date, the CPUs, and the load the machine carried, so that
//! every table says how noisy its numbers may be.

use std::fs;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

/// The machine as a bench found it, and (after `finish`) as it left it.
pub struct Machine {
    /// UTC, `date -u +%Y-%m-%dT%H:%M:%SZ`.
    date: String,
    cpus: usize,
    /// `/proc/loadavg`'s 1, 5 and 15 minute averages at the start.
    load_start: String,
    load_end: String,
    duration: Duration,
}

impl Machine {
    pub fn now() -> Machine {
        let date = Command::new("date")
            .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        Machine {
            date,
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            load_start: loadavg(),
            load_end: String::new(),
            duration: Duration::ZERO,
        }
    }

    /// The load at the end and how long the run took.
    pub fn finish(self, duration: Duration) -> Machine {
        Machine {
            load_end: loadavg(),
            duration,
            ..self
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "run {} on {} CPUs, {:.0} s; load average (1/5/15 min) {} at the start, {} at the end{}",
            self.date,
            self.cpus,
            self.duration.as_secs_f64(),
            self.load_start,
            self.load_end,
            if self.loaded() {
                " (above the CPU count: shared machine, numbers are noisy)"
            } else {
                ""
            }
        )
    }

    /// A 1-minute load average above the CPU count at either end.
    fn loaded(&self) -> bool {
        let one = |s: &str| {
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let cpus = self.cpus as f64;
        one(&self.load_start) > cpus || one(&self.load_end) > cpus
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "date": self.date,
            "cpus": self.cpus,
            "loadavg_start": self.load_start,
            "loadavg_end": self.load_end,
            "duration_s": self.duration.as_secs_f64(),
        })
    }
}

/// The 1, 5 and 15 minute load averages, e.g. `1.20 0.80 0.50`.
fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
