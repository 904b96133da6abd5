//! The shim's log: the `log` facade's backend, logrus text lines written to a fifo, never blocking.

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

    fn of(level: log::Level) -> Level {
        match level {
            log::Level::Error => Level::Error,
            log::Level::Warn => Level::Warn,
            log::Level::Info => Level::Info,
            log::Level::Debug | log::Level::Trace => Level::Debug,
        }
    }
}

/// One line must fit in PIPE_BUF so each write is atomic on the fifo (no interleaving, no partial line).
const MAX_LINE: usize = 4096;

/// The `log` facade's backend: where lines go and what is dropped.
struct Logger {
    out: Option<File>,
    min: Level,
    dropped: AtomicU64,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Log from now on (every crate's `log::info!` and friends) to the fifo at `path` (made here if
/// missing), opened O_RDWR|O_NONBLOCK so a full or unread fifo never blocks the shim. `keep` are
/// further fifos held open O_RDWR for the life of the process, like Go's keep-alive handles, so a
/// restarted containerd can reopen them. With no path the log goes nowhere. Returns the error of
/// opening the log, if any (the shim runs on without a log).
pub fn init(path: Option<&Path>, keep: &[&Path], debug: bool) -> io::Result<()> {
    let min = if debug { Level::Debug } else { Level::Info };
    let (out, result) = match path {
        None => (None, Ok(())),
        Some(path) => {
            for k in keep {
                if let Ok(f) = open_fifo(k) {
                    std::mem::forget(f);
                }
            }
            match open_fifo(path) {
                Ok(f) => (Some(f), Ok(())),
                Err(e) => (None, Err(e)),
            }
        }
    };
    let logger = LOGGER.get_or_init(|| Logger {
        out,
        min,
        dropped: AtomicU64::new(0),
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(if debug {
            log::LevelFilter::Debug
        } else {
            log::LevelFilter::Info
        });
    }
    result
}

/// The v1 shim's layout: `<workdir>/shim.stdout.log`, with `shim.stderr.log` kept open too.
pub fn init_workdir(workdir: Option<&Path>, debug: bool) -> io::Result<()> {
    match workdir {
        None => init(None, &[], debug),
        Some(w) => init(
            Some(&w.join("shim.stdout.log")),
            &[&w.join("shim.stderr.log")],
            debug,
        ),
    }
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

impl log::Log for Logger {
    fn enabled(&self, meta: &log::Metadata<'_>) -> bool {
        Level::of(meta.level()) >= self.min && self.out.is_some()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut fields = Fields(Vec::new());
        let _ = record.key_values().visit(&mut fields);
        let msg = record.args().to_string();
        self.write(Level::of(record.level()), &msg, &fields.0);
    }

    fn flush(&self) {}
}

/// A record's key=value pairs, as text.
struct Fields(Vec<(String, String)>);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        self.0.push((key.to_string(), value.to_string()));
        Ok(())
    }
}

impl Logger {
    fn write(&self, level: Level, msg: &str, fields: &[(String, String)]) {
        let Some(out) = self.out.as_ref() else {
            return;
        };
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let line = format_line(
                SystemTime::now(),
                Level::Warn,
                "log lines dropped (log fifo full)",
                &[("count".into(), dropped.to_string())],
            );
            if !write_line(out, &line) {
                self.dropped.fetch_add(dropped + 1, Ordering::Relaxed);
                return;
            }
        }
        let line = format_line(SystemTime::now(), level, msg, fields);
        if !write_line(out, &line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One write(2); false when it did not go out (full fifo: EAGAIN; anything else alike).
fn write_line(mut out: &File, line: &str) -> bool {
    matches!(out.write(line.as_bytes()), Ok(n) if n == line.len())
}

/// `time="2026-11-22T20:00:00.000000000Z" level=info msg="..." key=value\n`, at most MAX_LINE bytes.
fn format_line(at: SystemTime, level: Level, msg: &str, fields: &[(String, String)]) -> String {
    let mut line = String::with_capacity(128);
    let _ = write!(
        line,
        "time=\"{}\" level={} msg=",
        rfc3339_nanos(at),
        level.name()
    );
    quote_into(&mut line, msg);
    for (key, value) in fields {
        let _ = write!(line, " {key}=");
        if needs_quoting(value) {
            quote_into(&mut line, value);
        } else {
            line.push_str(value);
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
            &[("id".into(), "t1".into()), ("path".into(), "/a b".into())],
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
