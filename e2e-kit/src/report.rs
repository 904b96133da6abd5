//! What one (row, shim) run came to, and the results file `cargo xtask test` prints as a table.
//!
//! `E2E_RESULTS=<file>` makes every run append one line `<row>\t<shim>\t<outcome>`; the outcome is
//! `PASS`, `PASS: <note>`, `FAIL: <msg>`, `NOT-RUNNABLE: <reason>` or `SKIP: <reason>`.

use std::env;
use std::fs::OpenOptions;
use std::io::Write;

/// What a row body reports when it returns (a panic is a failure). Rows with nothing to say
/// return `()`, which is `Passed`.
#[derive(Debug)]
pub enum Ran {
    Passed,
    /// Passed; the note says what was (or could not be) checked, e.g. a known Go race taken.
    PassedWith(String),
    /// The contract's expected outcome cannot be produced on this machine (e.g. criu cannot
    /// dump on this kernel): not a failure, not a pass.
    NotRunnable(String),
}

impl From<()> for Ran {
    fn from((): ()) -> Ran {
        Ran::Passed
    }
}

/// The outcome of one row for one shim.
#[derive(Debug)]
pub enum Outcome {
    Ran(Ran),
    Fail(String),
    /// Could not run for want of something (a tool, root, the shim binary); never reported
    /// when `SHIM_REQUIRE_ROOT_TESTS=1` (that makes it a failure, see prereq::cannot_run).
    Skip(String),
}

impl Outcome {
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Fail(_))
    }
}

/// One line of text: tabs and line breaks become spaces, and it is cut at 300 characters.
fn one_line(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Ran(Ran::Passed) => write!(f, "PASS"),
            Outcome::Ran(Ran::PassedWith(note)) => write!(f, "PASS: {}", one_line(note)),
            Outcome::Ran(Ran::NotRunnable(why)) => write!(f, "NOT-RUNNABLE: {}", one_line(why)),
            Outcome::Fail(msg) => {
                // A panic's first line says what failed; the rest (outputs, logs) is on stderr.
                let first = msg.lines().next().unwrap_or_default();
                write!(f, "FAIL: {}", one_line(first))
            }
            Outcome::Skip(why) => write!(f, "SKIP: {}", one_line(why)),
        }
    }
}

/// Prints the outcome and, with `E2E_RESULTS` set, appends it to that file (one write per line,
/// O_APPEND: rows running in parallel do not interleave).
pub fn record(row: &str, shim: &str, outcome: &Outcome) {
    eprintln!("{row} [{shim}]: {outcome}");
    let Some(path) = env::var_os("E2E_RESULTS") else {
        return;
    };
    let line = format!("{row}\t{shim}\t{outcome}\n");
    let written = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!(
            "cannot append to E2E_RESULTS={}: {e}",
            path.to_string_lossy()
        );
    }
}
