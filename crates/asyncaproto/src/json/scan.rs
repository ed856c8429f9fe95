//! Where a plain run inside a JSON string ends, for the decoder (the next
//! quote, backslash or control character) and the writer (the next byte to
//! escape).
//!
//! Short runs (keys, small values) end within the first few 8-byte words,
//! checked with bit tricks over a `u64`; then come a few 32-byte chunks, each
//! checked whole (a fold without an early exit, which the compiler turns into
//! vector instructions). Longer runs are scanned in windows that double in
//! size (up to [`MAX_WINDOW`], so that both passes over a window stay in
//! cache): in each, `memchr` finds the first quote or backslash (with SIMD,
//! AVX2 where the CPU has it), and one fold over the bytes before it (their
//! minimum and maximum, which the compiler vectorizes) shows whether a byte
//! out of the allowed range comes first. A window that ends the run costs at
//! most about twice the run's length so far, so a run costs time linear in
//! its length, however the stops are spread.

/// How many 8-byte words are checked one by one before a run counts as long.
const SHORT_WORDS: usize = 2;

/// The size of the chunks checked whole, and how many are, after the words.
const CHUNK: usize = 32;
const MEDIUM_CHUNKS: usize = 2;

/// The first window of a long run: shorter rests of the input are scanned
/// by words.
const FIRST_WINDOW: usize = 64;

/// The largest window.
const MAX_WINDOW: usize = 8 * 1024;

/// What ends a plain run: for the decoder or for the writer.
trait Run {
    /// The allowed range of a plain byte (quote and backslash aside).
    const LO: u8;
    const HI: u8;
    /// Whether `b` ends the run.
    fn stops(b: u8) -> bool;
    /// The index of the first of 8 bytes that ends the run.
    fn first_stop(lanes: [u8; 8]) -> Option<usize>;
}

/// A string being decoded: a quote, a backslash or a control character ends
/// a run.
struct Decoded;

impl Run for Decoded {
    const LO: u8 = 0x20;
    const HI: u8 = 0xff;
    fn stops(b: u8) -> bool {
        is_string_stop(b)
    }
    fn first_stop(lanes: [u8; 8]) -> Option<usize> {
        first_string_stop(lanes)
    }
}

/// A string being written: any byte the writer escapes ends a run.
struct Written;

impl Run for Written {
    const LO: u8 = 0x20;
    const HI: u8 = 0x7e;
    fn stops(b: u8) -> bool {
        !is_plain(b)
    }
    fn first_stop(lanes: [u8; 8]) -> Option<usize> {
        if is_plain_word(&lanes) {
            None
        } else {
            lanes.iter().position(|&b| !is_plain(b))
        }
    }
}

/// The end of the plain run at `i` of a JSON string being decoded: the
/// position of the first quote, backslash or control character at or after
/// `i`, or the length of `bytes` (`i` itself when past the end).
pub(super) fn string_run_end(bytes: &[u8], i: usize) -> usize {
    run_end::<Decoded>(bytes, i)
}

/// The end of the plain run at `i` of a string being written: the position
/// of the first byte at or after `i` that is not printable ASCII, or is a
/// quote or a backslash (the writer's escape table marks exactly those), or
/// the length of `bytes`.
pub(super) fn plain_run_end(bytes: &[u8], i: usize) -> usize {
    run_end::<Written>(bytes, i)
}

/// The end of the run `R` at `i`: words, then chunks, then windows.
fn run_end<R: Run>(bytes: &[u8], mut i: usize) -> usize {
    for _ in 0..SHORT_WORDS {
        let Some(word) = bytes.get(i..i + 8) else {
            break;
        };
        let mut lanes = [0u8; 8];
        lanes.copy_from_slice(word);
        if let Some(lane) = R::first_stop(lanes) {
            return i + lane;
        }
        i += 8;
    }
    for _ in 0..MEDIUM_CHUNKS {
        let Some(chunk) = bytes.get(i..i + CHUNK) else {
            break;
        };
        if chunk
            .iter()
            .fold(0, |any, &b| any.max(u8::from(R::stops(b))))
            != 0
        {
            return run_end_by_words::<R>(bytes, i);
        }
        i += CHUNK;
    }
    if bytes.len().saturating_sub(i) < FIRST_WINDOW {
        return run_end_by_words::<R>(bytes, i);
    }
    long_run_end(bytes, i, R::LO, R::HI)
}

/// [`run_end`] 8 bytes at a time, then one (for the rest of a chunk known
/// to hold a stop, or a short rest of the input).
fn run_end_by_words<R: Run>(bytes: &[u8], mut i: usize) -> usize {
    while let Some(word) = bytes.get(i..i + 8) {
        let mut lanes = [0u8; 8];
        lanes.copy_from_slice(word);
        if let Some(lane) = R::first_stop(lanes) {
            return i + lane;
        }
        i += 8;
    }
    let rest = bytes.get(i..).unwrap_or_default();
    i + rest.iter().position(|&b| R::stops(b)).unwrap_or(rest.len())
}

/// The position of the first quote or backslash at or after `i`, or of the
/// first byte outside `lo..=hi` if one comes before; the length of `bytes`
/// if neither is found; `i` when past the end.
fn long_run_end(bytes: &[u8], mut i: usize, lo: u8, hi: u8) -> usize {
    let mut window = FIRST_WINDOW;
    loop {
        let end = i.saturating_add(window).min(bytes.len());
        let Some(chunk) = bytes.get(i..end) else {
            return i;
        };
        let quote = memchr::memchr2(b'"', b'\\', chunk);
        let run = chunk.get(..quote.unwrap_or(chunk.len())).unwrap_or(chunk);
        let (min, max) = run
            .iter()
            .fold((u8::MAX, 0), |(min, max), &b| (min.min(b), max.max(b)));
        if min < lo || max > hi {
            let stop = run.iter().position(|&b| b < lo || b > hi);
            return i + stop.unwrap_or(run.len());
        }
        if let Some(q) = quote {
            return i + q;
        }
        if end == bytes.len() {
            return end;
        }
        i = end;
        window = (window * 2).min(MAX_WINDOW);
    }
}

/// Whether `b` is written as is inside a string: printable ASCII but the
/// quote and the backslash.
fn is_plain(b: u8) -> bool {
    b.wrapping_sub(0x20) < 0x5f && b != b'"' && b != b'\\'
}

/// Whether `b` stops a plain run inside a string being decoded: a quote, a
/// backslash or a control character.
fn is_string_stop(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// The index of the first of 8 bytes that stops a plain run inside a JSON
/// string: a quote, a backslash or a control character.
pub(super) fn first_string_stop(lanes: [u8; 8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let x = u64::from_le_bytes(lanes);
    // A high bit in a lane marks a byte below 0x20, a quote or a backslash;
    // a borrow may raise false alarms, but only in lanes above a real one, so
    // the lowest mark is always real.
    let quote = x ^ (ONES * u64::from(b'"'));
    let backslash = x ^ (ONES * u64::from(b'\\'));
    let flags = (x.wrapping_sub(ONES * 0x20)
        | quote.wrapping_sub(ONES) & !quote
        | backslash.wrapping_sub(ONES) & !backslash)
        & !x
        & HIGH;
    (flags != 0).then(|| (flags.trailing_zeros() / 8) as usize)
}

/// Whether none of the 8 bytes of `word` needs escaping: each is printable
/// ASCII (0x20 to 0x7e), and neither `"` nor `\\`. Bit tricks over a `u64`:
/// a high bit in one lane of `flags` marks a byte that needs a closer look.
pub(super) fn is_plain_word(word: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut lanes = [0u8; 8];
    lanes.copy_from_slice(word);
    let x = u64::from_le_bytes(lanes);
    let below_space = x.wrapping_sub(ONES * 0x20) & !x;
    let del_or_above = x.wrapping_add(ONES) | x;
    let quote = x ^ (ONES * u64::from(b'"'));
    let backslash = x ^ (ONES * u64::from(b'\\'));
    let is_quote = quote.wrapping_sub(ONES) & !quote;
    let is_backslash = backslash.wrapping_sub(ONES) & !backslash;
    (below_space | del_or_above | is_quote | is_backslash) & HIGH == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte at every position of runs that reach the short words, the
    /// first windows and past them, with a second stop right after.
    #[test]
    fn runs_end_exactly_at_the_first_stop() {
        let long = 8 * SHORT_WORDS + CHUNK * MEDIUM_CHUNKS + 3 * FIRST_WINDOW + 9;
        let plain: Vec<u8> = (0..long).map(|i| b'a' + (i % 26) as u8).collect();
        let medium = 8 * SHORT_WORDS + CHUNK * MEDIUM_CHUNKS;
        for len in [
            0,
            7,
            8,
            15,
            16,
            17,
            40,
            medium,
            medium + FIRST_WINDOW + 1,
            long,
        ] {
            let text = &plain[..len];
            assert_eq!(string_run_end(text, 0), len);
            assert_eq!(plain_run_end(text, 0), len);
            assert_eq!(string_run_end(text, len + 3), len + 3);
            for b in 0..=255u8 {
                for pos in 0..len {
                    let mut bytes = text.to_vec();
                    bytes[pos] = b;
                    if pos + 1 < len {
                        bytes[pos + 1] = if b % 2 == 0 { b'"' } else { 0x01 };
                    }
                    let next = (pos + 1).min(len);
                    let want = if is_string_stop(b) { pos } else { next };
                    assert_eq!(string_run_end(&bytes, 0), want, "{b:#x} at {pos} of {len}");
                    assert_eq!(
                        string_run_end(&bytes, pos),
                        want,
                        "{b:#x} at {pos} of {len}"
                    );
                    let want = if is_plain(b) { next } else { pos };
                    assert_eq!(plain_run_end(&bytes, 0), want, "{b:#x} at {pos} of {len}");
                    assert_eq!(plain_run_end(&bytes, pos), want, "{b:#x} at {pos} of {len}");
                }
            }
        }
    }

    #[test]
    fn words_flag_exactly_the_stops() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut word = *b"abcdefgh";
                word[pos] = b;
                assert_eq!(is_plain_word(&word), is_plain(b), "{b:#x} at {pos}");
                let want = is_string_stop(b).then_some(pos);
                assert_eq!(first_string_stop(word), want, "{b:#x} at {pos}");
            }
        }
        assert!(is_plain_word(b" ~~~~~~~"));
        assert!(!is_plain_word(b"\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f"));
    }
}
