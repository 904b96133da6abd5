//! Reading cgroupfs files as containerd's cgroups library reads them: numbers, "max", key-value lines.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use super::CgroupError;

/// The file's text. A missing file is an error like any other here; callers that tolerate it
/// (containerd's `IgnoreNotExist`) ask `CgroupError::is_not_found`.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(CgroupError::path("read", path))
}

/// Go's `parseUint`: a decimal u64, and any negative number reads as 0 (a v1 limit of -1).
pub(crate) fn parse_uint(s: &str) -> Option<u64> {
    if let Ok(v) = s.parse::<u64>() {
        return Some(v);
    }
    let digits = s.strip_prefix('-')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(0)
}

/// Go's `parseKV`: exactly two whitespace-separated fields, the second a number.
pub(crate) fn parse_kv(line: &str) -> Option<(&str, u64)> {
    let mut fields = line.split_whitespace();
    let (key, value) = (fields.next()?, fields.next()?);
    if fields.next().is_some() {
        return None;
    }
    Some((key, parse_uint(value)?))
}

/// Every `key value` line of the file (memory.stat, cpu.stat, memory.events...). A malformed
/// line fails the whole file, as in containerd.
pub(crate) fn read_kv(path: &Path) -> Result<HashMap<String, u64>, CgroupError> {
    let text = read(path)?;
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (key, value) =
            parse_kv(line).ok_or_else(|| CgroupError::parse(path, line, "expected `key value`"))?;
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

/// cgroup1's `readUint`: one number, "max" read as 0.
pub(crate) fn read_uint_v1(path: &Path) -> Result<u64, CgroupError> {
    let text = read(path)?;
    let text = text.trim();
    if text == "max" {
        return Ok(0);
    }
    parse_uint(text).ok_or_else(|| CgroupError::parse(path, text, "expected a number"))
}

/// cgroup2's `getStatFileContentUint64`: one number, "max" read as `u64::MAX`; a file that cannot
/// be read or parsed reads as 0, never as an error.
pub(crate) fn read_uint_v2(path: &Path) -> u64 {
    match fs::read_to_string(path) {
        Ok(text) if text.trim() == "max" => u64::MAX,
        Ok(text) => parse_uint(text.trim()).unwrap_or(0),
        Err(_) => 0,
    }
}

/// The value of `key` in a key-value file, 0 when the file, the key or the number is missing
/// (cgroup2's `getKVStatsFileContentUint64`).
pub(crate) fn read_kv_value_v2(path: &Path, key: &str) -> u64 {
    let Ok(text) = fs::read_to_string(path) else {
        return 0;
    };
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .and_then(parse_kv)
        .map_or(0, |(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;

    #[test]
    fn numbers_parse_as_go_parses_them() {
        assert_eq!(parse_uint("42"), Some(42));
        assert_eq!(parse_uint("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_uint("-1"), Some(0));
        assert_eq!(parse_uint("-99999999999999999999999"), Some(0));
        assert_eq!(parse_uint("-"), None);
        assert_eq!(parse_uint("max"), None);
        assert_eq!(parse_uint(""), None);
    }

    #[test]
    fn key_value_lines_need_exactly_two_fields() {
        assert_eq!(parse_kv("cache 4096"), Some(("cache", 4096)));
        assert_eq!(parse_kv("  oom_kill\t3 "), Some(("oom_kill", 3)));
        assert_eq!(parse_kv("some avg10=0.00"), None);
        assert_eq!(parse_kv("a 1 2"), None);
        assert_eq!(parse_kv("lonely"), None);
    }

    #[test]
    fn v1_and_v2_read_max_differently_and_tolerate_missing_files_differently() {
        let dir = FakeDir::new();
        dir.write("max", "max\n");
        dir.write("n", "123\n");
        dir.write("neg", "-1\n");
        dir.write("junk", "twelve\n");
        assert_eq!(read_uint_v1(&dir.join("max")).ok(), Some(0));
        assert_eq!(read_uint_v1(&dir.join("n")).ok(), Some(123));
        assert_eq!(read_uint_v1(&dir.join("neg")).ok(), Some(0));
        assert!(read_uint_v1(&dir.join("missing")).is_err_and(|e| e.is_not_found()));
        assert!(matches!(
            read_uint_v1(&dir.join("junk")),
            Err(CgroupError::Parse { .. })
        ));
        assert_eq!(read_uint_v2(&dir.join("max")), u64::MAX);
        assert_eq!(read_uint_v2(&dir.join("n")), 123);
        assert_eq!(read_uint_v2(&dir.join("missing")), 0);
        assert_eq!(read_uint_v2(&dir.join("junk")), 0);
    }

    #[test]
    fn a_key_value_file_fails_on_a_malformed_line_and_a_missing_one_is_not_found() {
        let dir = FakeDir::new();
        dir.write("ok", "a 1\nb 2\n");
        dir.write("bad", "a 1\nb two\n");
        let ok = read_kv(&dir.join("ok")).unwrap_or_default();
        assert_eq!((ok["a"], ok["b"]), (1, 2));
        assert!(read_kv(&dir.join("missing")).is_err_and(|e| e.is_not_found()));
        let err = read_kv(&dir.join("bad")).err().map(|e| e.to_string());
        assert_eq!(
            err,
            Some(format!(
                "parse {}: expected `key value`: \"b two\"",
                dir.join("bad").display()
            ))
        );
        dir.write("events", "max 7\n");
        assert_eq!(read_kv_value_v2(&dir.join("events"), "max"), 7);
        assert_eq!(read_kv_value_v2(&dir.join("events"), "other"), 0);
        assert_eq!(read_kv_value_v2(&dir.join("missing"), "max"), 0);
    }

    #[test]
    fn a_directory_where_a_file_should_be_is_an_error_not_a_missing_file() {
        let dir = FakeDir::new();
        dir.mkdir("sub");
        assert!(matches!(
            read(&dir.join("sub")),
            Err(ref e @ CgroupError::Path { .. }) if !e.is_not_found()
        ));
    }
}
