//! A process's IO as the client gave it: IoSpec (URIs as received), IoOwner, and scheme parsing.

pub mod binary;
pub mod console;
pub mod error;
pub mod fifo;
mod latch;
pub mod pipes;
mod reactor;

use std::path::PathBuf;

pub use binary::LoggerContext;
pub use console::{Console, ConsoleSocket};
pub use error::IoError;
pub use pipes::ProcessIo;

/// The client's stdio URIs, exactly as received, and whether the process has a terminal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IoSpec {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// Owner given to runc's ends of the pipes (CreateOptions io_uid / io_gid).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoOwner {
    pub uid: u32,
    pub gid: u32,
}

/// Where a non-terminal process's output goes, decided by the stdout URI (contract 6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// All three streams empty: runc gets /dev/null.
    Null,
    /// Plain paths (no scheme, or `fifo`): the client's fifos.
    Fifo,
    /// `file:///abs`: stdout and stderr appended to one file.
    File(PathBuf),
    /// `binary:///abs/logger?k=v`: a logging binary reads the output pipes itself.
    Binary { path: PathBuf, args: Vec<String> },
}

impl IoSpec {
    /// No stream at all (`ctr --null-io`).
    pub fn is_null(&self) -> bool {
        self.stdin.is_empty() && self.stdout.is_empty() && self.stderr.is_empty()
    }

    pub(crate) fn scheme(&self) -> Result<Scheme, IoError> {
        if self.is_null() {
            return Ok(Scheme::Null);
        }
        match uri_scheme(&self.stdout) {
            None | Some("fifo") => Ok(Scheme::Fifo),
            Some("file") => file_path(&self.stdout).map(Scheme::File),
            Some("binary") => binary_uri(&self.stdout),
            Some(other) => Err(IoError::Unsupported(format!(
                "unknown STDIO scheme {other}"
            ))),
        }
    }
}

/// The scheme of a URI as Go's url.Parse sees it; `None` for plain paths.
fn uri_scheme(uri: &str) -> Option<&str> {
    let (scheme, _) = uri.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// `binary:///abs/logger?k1=v1&k2` → the logger and its arguments `k1 v1 k2` (Go's order is a
/// map's; ours is the query's).
fn binary_uri(uri: &str) -> Result<Scheme, IoError> {
    let (path_part, query) = uri.split_once('?').unwrap_or((uri, ""));
    let path =
        file_path(&path_part.replacen("binary:", "file:", 1)).map_err(|_| IoError::InvalidUri {
            uri: uri.to_string(),
            reason: "binary URI needs an absolute path",
        })?;
    let mut args = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| percent_decode(s).map(|o| o.to_string_lossy().into_owned());
        args.extend(decode(k));
        if !v.is_empty() {
            args.extend(decode(v));
        }
    }
    Ok(Scheme::Binary { path, args })
}

/// The decoded absolute path of `file:///abs/path` (query and fragment dropped).
fn file_path(uri: &str) -> Result<PathBuf, IoError> {
    let invalid = |reason| IoError::InvalidUri {
        uri: uri.to_string(),
        reason,
    };
    let rest = uri
        .strip_prefix("file:")
        .ok_or_else(|| invalid("not a file URI"))?;
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let path = match rest.strip_prefix("//") {
        Some(authority_and_path) => {
            let slash = authority_and_path
                .find('/')
                .ok_or_else(|| invalid("file URI without a path"))?;
            &authority_and_path[slash..]
        }
        None => rest,
    };
    if !path.starts_with('/') {
        return Err(invalid("file URI path must be absolute"));
    }
    percent_decode(path)
        .map(PathBuf::from)
        .ok_or_else(|| invalid("bad percent-encoding"))
}

fn percent_decode(s: &str) -> Option<std::ffi::OsString> {
    use std::os::unix::ffi::OsStringExt;
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(stdin: &str, stdout: &str, stderr: &str) -> IoSpec {
        IoSpec {
            stdin: stdin.into(),
            stdout: stdout.into(),
            stderr: stderr.into(),
            terminal: false,
        }
    }

    #[test]
    fn scheme_comes_from_stdout() {
        assert_eq!(spec("", "", "").scheme().unwrap(), Scheme::Null);
        assert_eq!(
            spec("/f/in", "/f/out", "/f/err").scheme().unwrap(),
            Scheme::Fifo
        );
        assert_eq!(spec("", "/f/out", "").scheme().unwrap(), Scheme::Fifo);
        assert_eq!(spec("/f/in", "", "").scheme().unwrap(), Scheme::Fifo);
        assert_eq!(
            spec("", "fifo:///f/out", "").scheme().unwrap(),
            Scheme::Fifo
        );
        assert_eq!(
            spec("", "file:///var/log/a%20b.log", "file:///var/log/a%20b.log")
                .scheme()
                .unwrap(),
            Scheme::File(PathBuf::from("/var/log/a b.log"))
        );
        assert_eq!(
            spec("", "file://host/x.log?k=v", "").scheme().unwrap(),
            Scheme::File(PathBuf::from("/x.log"))
        );
    }

    #[test]
    fn a_binary_uri_gives_the_logger_and_its_query_as_arguments() {
        assert_eq!(
            spec("", "binary:///bin/log?a=b&flag&c=d%20e", "")
                .scheme()
                .unwrap(),
            Scheme::Binary {
                path: PathBuf::from("/bin/log"),
                args: ["a", "b", "flag", "c", "d e"].map(String::from).to_vec(),
            }
        );
        assert!(matches!(
            spec("", "binary:relative", "").scheme(),
            Err(IoError::InvalidUri { .. })
        ));
    }

    #[test]
    fn unknown_schemes_are_unsupported() {
        assert!(matches!(
            spec("", "tcp://x", "").scheme(),
            Err(IoError::Unsupported(_))
        ));
    }

    #[test]
    fn relative_file_uri_is_invalid() {
        assert!(matches!(
            spec("", "file:rel.log", "").scheme(),
            Err(IoError::InvalidUri { .. })
        ));
    }
}
