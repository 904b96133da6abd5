//! Input validation: ids that become paths, the bundle directory, Update's resources JSON, and
//! how much of a client's string a message may quote.

use std::path::Path;

use crate::error::Error;
pub use crate::quote::shown;

/// The longest id any request may carry, in bytes: longer ones are refused before any lookup, so
/// no message ever quotes (and no reply ever echoes) more than this of one.
pub const MAX_ID_BYTES: usize = 1024;
/// The size bound every id of every request obeys, whatever else its method requires of it (a
/// lookup's id is then only compared, never used in a path).
pub fn id_size(kind: &str, id: &str) -> Result<(), Error> {
    if id.len() > MAX_ID_BYTES {
        return Err(Error::InvalidArgument(format!(
            "invalid {kind} id {:?}: {} bytes, longer than the {MAX_ID_BYTES} allowed",
            shown(id),
            id.len()
        )));
    }
    Ok(())
}

/// containerd's identifier rule: letters and digits, separated by single `.`, `_` or `-`, at most
/// 76 characters. Nothing with `/`, `..` or NUL can pass, so an id is always safe in a path.
pub fn id(kind: &str, id: &str) -> Result<(), Error> {
    let bad = |why: &str| {
        Err(Error::InvalidArgument(format!(
            "invalid {kind} id {:?}: {why}",
            shown(id)
        )))
    };
    if id.is_empty() {
        return bad("must not be empty");
    }
    if id.len() > 76 {
        return bad("longer than 76 characters");
    }
    let bytes = id.as_bytes();
    let sep = |b: u8| matches!(b, b'.' | b'_' | b'-');
    if !bytes.iter().all(|&b| b.is_ascii_alphanumeric() || sep(b)) {
        return bad("only letters, digits, '.', '_' and '-' are allowed");
    }
    if sep(bytes[0])
        || sep(bytes[bytes.len() - 1])
        || bytes.windows(2).any(|w| sep(w[0]) && sep(w[1]))
    {
        return bad("must start and end with a letter or digit, with single separators");
    }
    Ok(())
}

/// The bundle must be an existing absolute directory.
pub fn bundle(path: &Path) -> Result<(), Error> {
    let bad = |why: &str| {
        Err(Error::InvalidArgument(format!(
            "bundle {:?} is not {why}",
            shown(&path.to_string_lossy())
        )))
    };
    if !path.is_absolute() {
        return bad("an absolute path");
    }
    if !path.is_dir() {
        return bad("a directory");
    }
    Ok(())
}

/// Update's `specs.LinuxResources`: it must be a JSON object, or runc would answer with a
/// message about its stdin. What is in it is runc's to judge.
pub fn resources(json: &[u8]) -> Result<(), Error> {
    let bad = |why: String| {
        Err(Error::InvalidArgument(format!(
            "update resources are not an OCI LinuxResources: {why}"
        )))
    };
    match serde_json::from_slice::<serde_json::Value>(json) {
        Ok(v) if v.is_object() => Ok(()),
        Ok(_) => bad("not a JSON object".into()),
        Err(e) => bad(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_style_ids_are_accepted() {
        for ok in ["t1", "a.b_c-d", "A9", &"x".repeat(76)] {
            assert!(id("container", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn ids_that_could_escape_a_path_are_invalid_arguments() {
        for bad in [
            "",
            "../x",
            "a/b",
            "..",
            "a..b",
            "a\0b",
            ".a",
            "a-",
            "a b",
            &"x".repeat(77),
        ] {
            assert!(
                matches!(id("exec", bad), Err(Error::InvalidArgument(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_long_id_is_quoted_by_its_first_64_characters_only() {
        let long = "é".repeat(5000);
        let Err(Error::InvalidArgument(msg)) = id("exec", &long) else {
            panic!("a 5000-character id passed");
        };
        assert!(msg.len() < 300, "{} bytes: {msg}", msg.len());
        assert!(msg.contains(&format!("{}…", "é".repeat(64))), "{msg}");
        assert_eq!(shown("short"), "short");
        assert_eq!(shown(&"x".repeat(64)), "x".repeat(64));
        assert_eq!(shown(&"x".repeat(65)), format!("{}…", "x".repeat(64)));
    }

    #[test]
    fn ids_over_1_kib_are_refused_whatever_the_method_and_not_echoed() {
        assert!(id_size("process", &"x".repeat(MAX_ID_BYTES)).is_ok());
        assert!(id_size("process", "").is_ok());
        let huge = "y".repeat(1 << 20);
        let Err(Error::InvalidArgument(msg)) = id_size("process", &huge) else {
            panic!("a 1 MiB id passed");
        };
        assert!(msg.len() < 300, "{} bytes: {msg}", msg.len());
        assert!(msg.contains("1048576 bytes"), "{msg}");
    }

    #[test]
    fn resources_must_be_a_json_object() {
        assert!(resources(br#"{"memory":{"limit":1048576}}"#).is_ok());
        assert!(resources(b"{}").is_ok());
        for bad in [&b""[..], b"{", b"[]", b"42", b"null", b"\xff"] {
            assert!(
                matches!(resources(bad), Err(Error::InvalidArgument(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_relative_or_missing_bundle_is_an_invalid_argument() {
        assert!(matches!(
            bundle(Path::new("rel/dir")),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            bundle(Path::new("/nonexistent/bundle")),
            Err(Error::InvalidArgument(_))
        ));
        assert!(bundle(Path::new("/tmp")).is_ok());
        let Err(Error::InvalidArgument(msg)) = bundle(Path::new(&"/x".repeat(1 << 19))) else {
            panic!("a missing bundle passed");
        };
        assert!(msg.len() < 300, "a {}-byte message", msg.len());
    }
}
