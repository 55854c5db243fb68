//! The text of a failure the worker sends, in a gRPC status's message or an ERROR frame, cut to what the bridge
//! always takes (docs/protocol.md, "Error texts"): at most MAX_BYTES bytes as grpc-message carries it, so that a
//! status fits grpc-java's 8 KiB of headers with room to spare. A longer text keeps its start (where the worker
//! names the session, the step and the error's kind) and its end (the innermost cause), cut on UTF-8 character
//! boundaries around `... [N bytes cut; the whole text is in the worker's log] ...`; the worker logs the whole text.

use std::borrow::Cow;

/// The most bytes an error text may have, counted as `encoded_length` counts them.
pub const MAX_BYTES: usize = 4096;
/// The share of the room the start of a cut text gets; its end gets the rest.
const START_PERCENT: usize = 75;

/// The bytes `text` takes in grpc-message, which percent-encodes UTF-8: printable ASCII but `%` and `~` (which
/// grpc-java escapes too) is one byte, every other byte three (`%XX`).
pub fn encoded_length(text: &str) -> usize {
    text.bytes().map(cost).sum()
}

/// `text` as it is when its `encoded_length` is at most `max_bytes`; else its start and its end around the marker
/// naming how many bytes were left out, within `max_bytes` (which must hold the marker).
pub fn cut(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if encoded_length(text) <= max_bytes {
        return Cow::Borrowed(text);
    }
    // The marker is ASCII, and no more bytes are cut than the text has.
    let room = max_bytes.saturating_sub(marker(text.len()).len());
    let start = start_within(text, room * START_PERCENT / 100);
    let end = end_within(text, start, room - encoded_length(&text[..start]));
    Cow::Owned(format!("{}{}{}", &text[..start], marker(end - start), &text[end..]))
}

fn marker(bytes_cut: usize) -> String {
    format!(" ... [{bytes_cut} bytes cut; the whole text is in the worker's log] ... ")
}

/// Where the longest start of `text` of at most `budget` encoded bytes ends, on a character boundary.
fn start_within(text: &str, budget: usize) -> usize {
    let (mut end, mut used) = (0, 0);
    for byte in text.bytes() {
        if used + cost(byte) > budget {
            break;
        }
        used += cost(byte);
        end += 1;
    }
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// Where the longest end of `text` past `after` of at most `budget` encoded bytes starts, on a character boundary.
fn end_within(text: &str, after: usize, budget: usize) -> usize {
    let (mut start, mut used) = (text.len(), 0);
    for byte in text[after..].bytes().rev() {
        if used + cost(byte) > budget {
            break;
        }
        used += cost(byte);
        start -= 1;
    }
    while !text.is_char_boundary(start) {
        start += 1;
    }
    start
}

fn cost(byte: u8) -> usize {
    if (0x20..0x7e).contains(&byte) && byte != b'%' {
        1
    } else {
        3
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The start, the bytes cut and the end of a cut text; None for a text that does not have the marker's shape.
    pub fn parts(text: &str) -> Option<(&str, usize, &str)> {
        let (start, rest) = text.split_once(" ... [")?;
        let (bytes_cut, end) = rest.split_once(" bytes cut; the whole text is in the worker's log] ... ")?;
        Some((start, bytes_cut.parse().ok()?, end))
    }

    #[test]
    fn a_text_that_fits_is_kept_as_it_is() {
        let text = format!("{}ü", "x".repeat(MAX_BYTES - 3));
        assert_eq!(encoded_length(&text), MAX_BYTES + 3);
        assert!(matches!(cut(&text, MAX_BYTES + 3), Cow::Borrowed(kept) if kept == text));
    }

    #[test]
    fn percent_and_tilde_and_every_non_ascii_byte_count_three() {
        assert_eq!(encoded_length("a%~\nü😀"), 1 + 3 + 3 + 3 + 3 * 2 + 3 * 4);
    }

    #[test]
    fn a_long_text_keeps_its_start_and_end_and_says_how_much_is_cut() {
        let text = format!("RuntimeError: start {} the end", "ü€😀 x".repeat(20_000));
        let cut = cut(&text, MAX_BYTES);
        assert!(encoded_length(&cut) <= MAX_BYTES && encoded_length(&cut) > MAX_BYTES - 12, "{cut}");
        let (start, bytes_cut, end) = parts(&cut).expect("the marker");
        assert!(text.starts_with(start) && start.starts_with("RuntimeError: "), "{start}");
        assert!(text.ends_with(end) && end.ends_with(" the end"), "{end}");
        assert_eq!(start.len() + bytes_cut + end.len(), text.len());
    }

    #[test]
    fn a_cut_falls_on_character_boundaries_whatever_the_limit() {
        let text = "😀".repeat(3_000);
        for limit in 200..260 {
            let cut = cut(&text, limit);
            let (start, _, end) = parts(&cut).expect("the marker");
            assert!(encoded_length(&cut) <= limit, "{cut}");
            assert!(start.chars().chain(end.chars()).all(|c| c == '😀'), "{cut}");
        }
    }
}
