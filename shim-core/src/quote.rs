//! How much of a client's string a message may quote: the one rule every error message follows.

use std::borrow::Cow;

/// How many characters of a client's string a message quotes at most.
const SHOWN_CHARS: usize = 64;

/// `text` as a message may quote it: its first 64 characters, with "…" when cut. Messages that
/// name an id, a method or a path a client sent use this, so a huge string is never copied into
/// a reply or the log.
pub fn shown(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(SHOWN_CHARS) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!("{}…", &text[..cut])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_text_is_quoted_whole() {
        assert_eq!(shown("web-1"), "web-1");
    }

    #[test]
    fn a_long_text_is_cut_at_64_characters_with_an_ellipsis() {
        let long = "é".repeat(1000);
        let quoted = shown(&long);
        assert_eq!(quoted.chars().count(), 65);
        assert!(quoted.ends_with('…'));
    }
}
