//! The shim's log: logrus text lines, levelled, written without ever blocking to shim.stdout.log.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::stat::Mode;

/// Severity, named as logrus prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

/// One line must fit in PIPE_BUF so each write is atomic on the fifo (no interleaving, no partial line).
const MAX_LINE: usize = 4096;

/// Where lines go and what is dropped.
struct Logger {
    out: Option<File>,
    min: Level,
    dropped: AtomicU64,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Open `<workdir>/shim.stdout.log` (a fifo containerd made; made here if missing) O_RDWR|O_NONBLOCK
/// and log to it from now on. Also holds `shim.stderr.log` open O_RDWR like the Go shim, so a
/// restarted containerd can reopen both. With no workdir the log goes nowhere.
/// Returns the error of opening the log, if any (the shim runs on without a log).
pub fn init(workdir: Option<&Path>, debug: bool) -> io::Result<()> {
    let min = if debug { Level::Debug } else { Level::Info };
    let (out, result) = match workdir {
        None => (None, Ok(())),
        Some(workdir) => {
            let stderr_log = open_fifo(&workdir.join("shim.stderr.log"));
            match open_fifo(&workdir.join("shim.stdout.log")) {
                Ok(f) => {
                    // Held for the life of the process, like Go's keep-alive handle.
                    if let Ok(e) = stderr_log {
                        std::mem::forget(e);
                    }
                    (Some(f), Ok(()))
                }
                Err(e) => (None, Err(e)),
            }
        }
    };
    let _ = LOGGER.set(Logger {
        out,
        min,
        dropped: AtomicU64::new(0),
    });
    result
}

fn open_fifo(path: &Path) -> io::Result<File> {
    match nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(io::Error::from(e)),
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

/// Log `msg` with `key=value` fields at `level`.
pub fn log(level: Level, msg: &str, fields: &[(&str, &dyn std::fmt::Display)]) {
    let Some(logger) = LOGGER.get() else { return };
    if level < logger.min {
        return;
    }
    let Some(out) = logger.out.as_ref() else {
        return;
    };
    let dropped = logger.dropped.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        let line = format_line(
            SystemTime::now(),
            Level::Warn,
            "log lines dropped (log fifo full)",
            &[("count", &dropped)],
        );
        if !write_line(out, &line) {
            logger.dropped.fetch_add(dropped + 1, Ordering::Relaxed);
            return;
        }
    }
    let line = format_line(SystemTime::now(), level, msg, fields);
    if !write_line(out, &line) {
        logger.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// One write(2); false when it did not go out (full fifo: EAGAIN; anything else alike).
fn write_line(mut out: &File, line: &str) -> bool {
    matches!(out.write(line.as_bytes()), Ok(n) if n == line.len())
}

/// `log::info!("msg", "key" => value, ...)`: log at a level with `key=value` fields.
macro_rules! log_at {
    ($level:expr, $msg:expr $(, $k:expr => $v:expr)* $(,)?) => {
        $crate::log::log($level, &$msg, &[$(($k, &$v as &dyn ::std::fmt::Display)),*])
    };
}
macro_rules! debug_ {
    ($($t:tt)*) => { $crate::log::log_at!($crate::log::Level::Debug, $($t)*) };
}
macro_rules! info_ {
    ($($t:tt)*) => { $crate::log::log_at!($crate::log::Level::Info, $($t)*) };
}
macro_rules! warn_ {
    ($($t:tt)*) => { $crate::log::log_at!($crate::log::Level::Warn, $($t)*) };
}
macro_rules! error_ {
    ($($t:tt)*) => { $crate::log::log_at!($crate::log::Level::Error, $($t)*) };
}
#[allow(unused_imports)]
pub(crate) use {debug_ as debug, error_ as error, info_ as info, log_at, warn_ as warn};

/// `time="2026-11-22T20:00:00.000000000Z" level=info msg="..." key=value\n`, at most MAX_LINE bytes.
fn format_line(
    at: SystemTime,
    level: Level,
    msg: &str,
    fields: &[(&str, &dyn std::fmt::Display)],
) -> String {
    let mut line = String::with_capacity(128);
    let _ = write!(
        line,
        "time=\"{}\" level={} msg=",
        rfc3339_nanos(at),
        level.name()
    );
    quote_into(&mut line, msg);
    for (key, value) in fields {
        let value = value.to_string();
        let _ = write!(line, " {key}=");
        if needs_quoting(&value) {
            quote_into(&mut line, &value);
        } else {
            line.push_str(&value);
        }
    }
    if line.len() >= MAX_LINE {
        let mut cut = MAX_LINE - 5;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str("...");
    }
    line.push('\n');
    line
}

/// logrus quotes a value unless it is made only of these characters.
fn needs_quoting(s: &str) -> bool {
    s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c))
}

/// Go `%q`-style quoting of the characters that matter in a log line.
fn quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// UTC RFC 3339 with nanoseconds, the way logrus prints time.RFC3339Nano with fixed width.
pub fn rfc3339_nanos(at: SystemTime) -> String {
    let d = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_a_logrus_text_line() {
        let at = UNIX_EPOCH + Duration::new(1_795_377_600, 5);
        let line = format_line(
            at,
            Level::Info,
            "exit \"x\"",
            &[("id", &"t1"), ("path", &"/a b")],
        );
        assert_eq!(line, "time=\"2026-11-22T20:00:00.000000005Z\" level=info msg=\"exit \\\"x\\\"\" id=t1 path=\"/a b\"\n");
    }

    #[test]
    fn time_is_utc_rfc3339_with_nanoseconds() {
        assert_eq!(rfc3339_nanos(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nanos(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn long_lines_are_cut_to_one_atomic_write() {
        let long = "x".repeat(10_000);
        let line = format_line(UNIX_EPOCH, Level::Warn, &long, &[]);
        assert!(line.len() <= MAX_LINE);
        assert!(line.ends_with("...\n"));
    }

    #[test]
    fn a_full_fifo_drops_lines_instead_of_blocking() {
        let dir = std::env::temp_dir().join(format!("shim-log-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = open_fifo(&dir.join("shim.stdout.log")).unwrap();
        let line = "y".repeat(1000);
        let mut failures = 0;
        for _ in 0..200 {
            if !write_line(&f, &line) {
                failures += 1;
            }
        }
        assert!(
            failures > 0,
            "a 64 KiB fifo must refuse some of 200 KB without blocking"
        );
        drop(f);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
