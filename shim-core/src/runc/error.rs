//! RuncError: a failed runc call, worded as the Go shim words it, with the message taken from log.json.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// Which runc command failed; decides the prefix of the error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuncOp {
    Create,
    Start,
    Exec,
    Kill,
    Delete,
    Pause,
    Resume,
    Ps,
    Update,
    Checkpoint,
    Restore,
}

/// A failed runc call. `message` is runc's own message (the last `"level":"error"` line of log.json
/// written during this call) or go-runc's `<runc> did not terminate successfully: ...` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuncError {
    pub op: RuncOp,
    pub message: String,
}

impl RuncError {
    /// runc said the container does not exist (Delete ignores this; Kill maps it to NotFound).
    pub fn is_not_exist(&self) -> bool {
        self.message.contains("does not exist")
    }
}

impl fmt::Display for RuncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.op {
            RuncOp::Create => "OCI runtime create failed: ",
            RuncOp::Start => "OCI runtime start failed: ",
            RuncOp::Exec => "OCI runtime exec failed: ",
            RuncOp::Pause => "OCI runtime pause failed: ",
            RuncOp::Resume => "OCI runtime resume failed: ",
            RuncOp::Restore => "OCI runtime restore failed: ",
            RuncOp::Delete => "failed to delete task: ",
            RuncOp::Kill | RuncOp::Ps | RuncOp::Update | RuncOp::Checkpoint => "",
        };
        write!(f, "{prefix}{}", self.message)
    }
}

impl std::error::Error for RuncError {}

/// The most of log.json we read per call: runc writes a few lines; a huge tail is not a message.
const MAX_LOG_READ: u64 = 1 << 20;

/// Length of the log before a call: lines below this offset belong to earlier calls.
pub(crate) fn log_offset(log: &Path) -> u64 {
    std::fs::metadata(log).map(|m| m.len()).unwrap_or(0)
}

/// The trimmed `msg` of the last `"level":"error"` line written at or after `offset`.
/// A missing log means no message; a log shorter than `offset` was replaced, so it is read whole.
pub(crate) fn last_error_since(log: &Path, offset: u64) -> io::Result<Option<String>> {
    let mut file = match File::open(log) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let mut start = if len < offset { 0 } else { offset };
    let partial_first_line = len - start > MAX_LOG_READ;
    if partial_first_line {
        start = len - MAX_LOG_READ;
    }
    file.seek(SeekFrom::Start(start))?;
    let mut text = Vec::new();
    file.take(len - start).read_to_end(&mut text)?;
    let text = String::from_utf8_lossy(&text);
    let mut lines = text.lines();
    if partial_first_line {
        lines.next();
    }
    Ok(lines.rev().find_map(error_message))
}

/// `msg` of one JSON log line when its level is "error".
fn error_message(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    if value.get("level")?.as_str()? != "error" {
        return None;
    }
    Some(value.get("msg")?.as_str()?.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(op: RuncOp, message: &str) -> RuncError {
        RuncError {
            op,
            message: message.to_string(),
        }
    }

    #[test]
    fn display_uses_the_go_shim_prefix_per_operation() {
        let cases = [
            (RuncOp::Create, "OCI runtime create failed: m"),
            (RuncOp::Start, "OCI runtime start failed: m"),
            (RuncOp::Exec, "OCI runtime exec failed: m"),
            (RuncOp::Pause, "OCI runtime pause failed: m"),
            (RuncOp::Resume, "OCI runtime resume failed: m"),
            (RuncOp::Restore, "OCI runtime restore failed: m"),
            (RuncOp::Delete, "failed to delete task: m"),
            (RuncOp::Kill, "m"),
            (RuncOp::Update, "m"),
            (RuncOp::Ps, "m"),
            (RuncOp::Checkpoint, "m"),
        ];
        for (op, text) in cases {
            assert_eq!(err(op, "m").to_string(), text, "{op:?}");
        }
    }

    #[test]
    fn is_not_exist_looks_for_runc_wording() {
        assert!(err(RuncOp::Delete, "container \"x\" does not exist").is_not_exist());
        assert!(!err(RuncOp::Delete, "container not running").is_not_exist());
    }

    #[test]
    fn error_message_takes_error_lines_only() {
        let line = r#"{"level":"error","msg":"  boom \n","time":"t"}"#;
        assert_eq!(error_message(line).as_deref(), Some("boom"));
        assert_eq!(error_message(r#"{"level":"warning","msg":"w"}"#), None);
        assert_eq!(error_message("not json"), None);
    }
}
