//! Go `flag` syntax made clap-friendly: what containerd sends a shim, rewritten before parsing.

use std::ffi::OsString;

/// Rewrite Go `flag` syntax into what clap accepts: `-name v`, `-name=v`, `--name v` all become
/// `--name=v` for the flags in `value_flags` (so a value starting with `-` survives); any other
/// bare `-flag` becomes `--flag`. Like Go, flag parsing stops at `--`, at `-`, or at the first
/// non-flag argument: it and everything after it are passed through unchanged. `args` includes
/// argv[0], which is kept.
pub fn normalise<I>(args: I, value_flags: &[&str]) -> Vec<OsString>
where
    I: IntoIterator<Item = OsString>,
{
    let mut it = args.into_iter();
    let mut out: Vec<OsString> = it.next().into_iter().collect();
    while let Some(arg) = it.next() {
        let Some(text) = arg.to_str() else {
            out.push(arg);
            out.extend(it);
            break;
        };
        let name_and_value = text.strip_prefix("--").or_else(|| text.strip_prefix('-'));
        let Some(body) = name_and_value.filter(|b| !b.is_empty() && !b.starts_with('-')) else {
            // "--" ends flags; "-" or a positional also does.
            out.push(arg);
            out.extend(it);
            break;
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if value_flags.contains(&name) {
            let value = match inline {
                Some(v) => Some(OsString::from(v)),
                None => it.next(),
            };
            match value {
                Some(v) => {
                    let mut joined = OsString::from(format!("--{name}="));
                    joined.push(v);
                    out.push(joined);
                }
                // Missing value: let clap report it.
                None => out.push(OsString::from(format!("--{name}"))),
            }
        } else {
            out.push(OsString::from(format!("--{body}")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalise(
            std::iter::once("shim")
                .chain(args.iter().copied())
                .map(OsString::from),
            &["namespace", "id"],
        )
        .into_iter()
        .map(|a| a.into_string().unwrap())
        .collect()
    }

    #[test]
    fn value_flags_are_joined_to_their_value_in_every_go_spelling() {
        assert_eq!(
            norm(&["-namespace", "a", "--id", "-x", "-namespace=b"]),
            ["shim", "--namespace=a", "--id=-x", "--namespace=b"]
        );
    }

    #[test]
    fn bool_flags_get_two_dashes_and_keep_an_inline_value() {
        assert_eq!(
            norm(&["-debug", "-v=false"]),
            ["shim", "--debug", "--v=false"]
        );
    }

    #[test]
    fn parsing_stops_at_the_first_positional_or_double_dash() {
        assert_eq!(
            norm(&["-id", "x", "start", "-debug"]),
            ["shim", "--id=x", "start", "-debug"]
        );
        assert_eq!(norm(&["--", "-id"]), ["shim", "--", "-id"]);
    }

    #[test]
    fn a_value_flag_without_its_value_is_left_for_clap_to_refuse() {
        assert_eq!(norm(&["-namespace"]), ["shim", "--namespace"]);
    }
}
