//! Signal names and numbers: parsing `TERM`, `SIGKILL`, `9`, `RTMIN+2` and naming a number back.

use nix::sys::signal::Signal;
use std::fmt;
use std::str::FromStr;

/// A signal name or number that does not denote a Linux signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSignal(pub String);

impl fmt::Display for UnknownSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown signal {:?} (use a name like TERM or SIGKILL, or a number 1-64)",
            self.0
        )
    }
}

impl std::error::Error for UnknownSignal {}

/// Highest signal number on Linux (SIGRTMAX).
const SIGNAL_MAX: u32 = 64;

/// Parses a signal given as a number, a name with or without the `SIG` prefix (any case),
/// or `RTMIN+n` / `RTMAX-n`.
pub fn parse(text: &str) -> Result<u32, UnknownSignal> {
    let unknown = || UnknownSignal(text.to_string());
    let trimmed = text.trim();
    if let Ok(n) = trimmed.parse::<u32>() {
        return if (1..=SIGNAL_MAX).contains(&n) {
            Ok(n)
        } else {
            Err(unknown())
        };
    }
    let upper = trimmed.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(n) = parse_realtime(bare) {
        return Ok(n);
    }
    Signal::from_str(&format!("SIG{bare}"))
        .map(|s| s as u32)
        .map_err(|_| unknown())
}

fn rtmin() -> u32 {
    u32::try_from(libc::SIGRTMIN()).unwrap_or(34)
}

fn rtmax() -> u32 {
    u32::try_from(libc::SIGRTMAX()).unwrap_or(SIGNAL_MAX)
}

fn parse_realtime(bare: &str) -> Option<u32> {
    let offset = |rest: &str| -> Option<u32> {
        if rest.is_empty() {
            Some(0)
        } else {
            rest.get(1..)?.parse().ok()
        }
    };
    let n = if let Some(rest) = bare.strip_prefix("RTMIN") {
        if !(rest.is_empty() || rest.starts_with('+')) {
            return None;
        }
        rtmin().checked_add(offset(rest)?)?
    } else if let Some(rest) = bare.strip_prefix("RTMAX") {
        if !(rest.is_empty() || rest.starts_with('-')) {
            return None;
        }
        rtmax().checked_sub(offset(rest)?)?
    } else {
        return None;
    };
    (rtmin()..=rtmax()).contains(&n).then_some(n)
}

/// The conventional name of a signal number (`SIGKILL`, `SIGRTMIN+3`), or `signal N`.
pub fn name(number: u32) -> String {
    if let Ok(sig) = i32::try_from(number)
        .map_err(|_| ())
        .and_then(|n| Signal::try_from(n).map_err(|_| ()))
    {
        return sig.as_str().to_string();
    }
    if (rtmin()..=rtmax()).contains(&number) {
        return match number - rtmin() {
            0 => "SIGRTMIN".to_string(),
            k => format!("SIGRTMIN+{k}"),
        };
    }
    format!("signal {number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_and_without_prefix_in_any_case() {
        assert_eq!(parse("TERM"), Ok(15));
        assert_eq!(parse("SIGKILL"), Ok(9));
        assert_eq!(parse("sigint"), Ok(2));
        assert_eq!(parse("hup"), Ok(1));
        assert_eq!(parse("9"), Ok(9));
    }

    #[test]
    fn parses_realtime_offsets() {
        assert_eq!(parse("RTMIN"), Ok(rtmin()));
        assert_eq!(parse("SIGRTMIN+2"), Ok(rtmin() + 2));
        assert_eq!(parse("RTMAX-1"), Ok(rtmax() - 1));
        assert!(parse("RTMIN+99").is_err());
    }

    #[test]
    fn rejects_unknown_names_and_out_of_range_numbers() {
        assert!(parse("NOPE").is_err());
        assert!(parse("0").is_err());
        assert!(parse("65").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn names_numbers_back() {
        assert_eq!(name(9), "SIGKILL");
        assert_eq!(name(15), "SIGTERM");
        assert_eq!(name(rtmin() + 3), "SIGRTMIN+3");
        assert_eq!(name(200), "signal 200");
    }
}
