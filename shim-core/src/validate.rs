//! Input validation: ids that become paths, the bundle directory, Update's resources JSON.

use std::path::Path;

use crate::error::Error;

/// containerd's identifier rule: letters and digits, separated by single `.`, `_` or `-`, at most
/// 76 characters. Nothing with `/`, `..` or NUL can pass, so an id is always safe in a path.
pub fn id(kind: &str, id: &str) -> Result<(), Error> {
    let bad = |why: &str| {
        Err(Error::InvalidArgument(format!(
            "invalid {kind} id {id:?}: {why}"
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
    if !path.is_absolute() {
        return Err(Error::InvalidArgument(format!(
            "bundle {path:?} is not an absolute path"
        )));
    }
    if !path.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "bundle {path:?} is not a directory"
        )));
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
    }
}
