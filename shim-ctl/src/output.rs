//! Human and JSON output: aligned tables, local times, decoded exit statuses, status names.

use serde::Serialize;
use std::io::{self, Write};

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) as Unix seconds: what a shim reports for "not exited".
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// A point in time as the shim sends it (protobuf Timestamp), `None` when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    pub seconds: i64,
    pub nanos: i32,
}

impl Time {
    /// `None` for an absent, Unix-epoch or Go-zero time: all mean "never" on this wire.
    pub fn known(seconds: i64, nanos: i32) -> Option<Time> {
        let never = (seconds == 0 && nanos == 0) || seconds <= GO_ZERO_TIME_SECONDS;
        (!never).then_some(Time { seconds, nanos })
    }
}

fn broken_down(seconds: i64, local: bool) -> Option<libc::tm> {
    let t = libc::time_t::try_from(seconds).ok()?;
    // SAFETY: tm is plain data; localtime_r/gmtime_r write it and return NULL on failure.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        // glibc's localtime_r reads TZ / /etc/localtime on first use.
        let res = if local {
            libc::localtime_r(&t, &mut tm)
        } else {
            libc::gmtime_r(&t, &mut tm)
        };
        (!res.is_null()).then_some(tm)
    }
}

/// `2024-05-01 12:34:56 +0200` in the local time zone; `-` for "never".
pub fn local_time(time: Option<Time>) -> String {
    let Some(time) = time else {
        return "-".to_string();
    };
    let Some(tm) = broken_down(time.seconds, true) else {
        return format!("@{}", time.seconds);
    };
    let off = tm.tm_gmtoff / 60;
    let sign = if off < 0 { '-' } else { '+' };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {}{:02}{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        sign,
        off.abs() / 60,
        off.abs() % 60
    )
}

/// RFC 3339 in UTC with nanoseconds (`2024-05-01T10:34:56.000000001Z`), for `--json`.
pub fn rfc3339_utc(time: Option<Time>) -> Option<String> {
    let time = time?;
    let tm = broken_down(time.seconds, false)?;
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        time.nanos.max(0)
    ))
}

/// `exited 3` or `killed by SIGKILL` (shims report a signal death as 128 + signal).
pub fn exit_description(status: u32) -> String {
    match status.checked_sub(128) {
        Some(sig @ 1..=64) => format!("killed by {}", crate::signal::name(sig)),
        _ => format!("exited {status}"),
    }
}

/// The lowercase name of a `containerd.v1.types.Status` value.
pub fn status_name(status: i32) -> &'static str {
    match status {
        1 => "created",
        2 => "running",
        3 => "stopped",
        4 => "paused",
        5 => "pausing",
        _ => "unknown",
    }
}

/// Rows of cells printed with every column but the last padded to its widest cell.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `KEY  value` lines with the keys padded to the same width.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

/// Writes text to stdout as is.
pub fn print_text(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Writes one value as pretty JSON plus a newline.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(print_text(&text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_go_zero_times_are_never() {
        assert_eq!(Time::known(0, 0), None);
        assert_eq!(Time::known(GO_ZERO_TIME_SECONDS, 0), None);
        assert_eq!(local_time(None), "-");
        assert!(Time::known(1_700_000_000, 5).is_some());
    }

    #[test]
    fn utc_time_is_rfc3339_with_nanoseconds() {
        let t = Time::known(1_700_000_000, 1);
        assert_eq!(
            rfc3339_utc(t).as_deref(),
            Some("2023-11-14T22:13:20.000000001Z")
        );
    }

    #[test]
    fn exit_statuses_decode_signals_above_128() {
        assert_eq!(exit_description(0), "exited 0");
        assert_eq!(exit_description(3), "exited 3");
        assert_eq!(exit_description(137), "killed by SIGKILL");
        assert_eq!(exit_description(143), "killed by SIGTERM");
        assert_eq!(exit_description(255), "exited 255");
    }

    #[test]
    fn status_names_are_lowercase() {
        assert_eq!(status_name(2), "running");
        assert_eq!(status_name(5), "pausing");
        assert_eq!(status_name(99), "unknown");
    }

    #[test]
    fn table_pads_all_but_the_last_column() {
        let mut t = Table::new(&["ID", "STATUS"]);
        t.row(vec!["long-id".into(), "running".into()]);
        assert_eq!(t.render(), "ID       STATUS\nlong-id  running\n");
    }
}
