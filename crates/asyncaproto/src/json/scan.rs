//! Where a plain run inside a JSON string ends, for the decoder (the next
//! quote, backslash or control character) and the writer (the next byte to
//! escape).
//!
//! Short runs (keys, small values) are checked 16 bytes at a time: each
//! chunk is tested whole, with an OR of per-byte flags that the compiler
//! turns into a few vector compares and one mask (SSE2 on x86-64, no
//! `unsafe` here), and only the chunk that holds a stop is searched for it,
//! by bit tricks over two `u64` words. Longer runs are scanned in windows
//! that double in size (up to [`MAX_WINDOW`], so that both passes over a
//! window stay in cache): in each, `memchr` finds the first quote or
//! backslash (with SIMD, AVX2 where the CPU has it), and one fold over the
//! bytes before it (their minimum and maximum, which the compiler
//! vectorizes) shows whether a byte out of the allowed range comes first. A
//! window that ends the run costs at most about twice the run's length so
//! far, so a run costs time linear in its length, however the stops are
//! spread.

/// The bytes checked at once.
const CHUNK: usize = 16;

/// How many chunks are checked before a run counts as long.
const SHORT_CHUNKS: usize = 4;

/// The first window of a long run: shorter rests of the input are scanned
/// by chunks.
const FIRST_WINDOW: usize = 64;

/// The largest window.
const MAX_WINDOW: usize = 8 * 1024;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// What ends a plain run: for the decoder or for the writer.
trait Run {
    /// The allowed range of a plain byte (quote and backslash aside).
    const LO: u8;
    const HI: u8;
    /// 1 if `b` ends the run, else 0 (written without branches, so that a
    /// chunk's flags are computed side by side).
    fn flag(b: u8) -> u8;
    /// The high bit of each byte of `x` (8 lanes) set exactly where that
    /// byte ends the run.
    fn lanes(x: u64) -> u64;
}

/// A string being decoded: a quote, a backslash or a control character ends
/// a run.
struct Decoded;

impl Run for Decoded {
    const LO: u8 = 0x20;
    const HI: u8 = 0xff;
    fn flag(b: u8) -> u8 {
        u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\')
    }
    fn lanes(x: u64) -> u64 {
        below(x, 0x20) | equal(x, b'"') | equal(x, b'\\')
    }
}

/// A string being written: any byte the writer escapes ends a run.
struct Written;

impl Run for Written {
    const LO: u8 = 0x20;
    const HI: u8 = 0x7e;
    fn flag(b: u8) -> u8 {
        u8::from(b.wrapping_sub(0x20) >= 0x5f) | u8::from(b == b'"') | u8::from(b == b'\\')
    }
    fn lanes(x: u64) -> u64 {
        below(x, 0x20) | !below(x, 0x7f) & HIGH | equal(x, b'"') | equal(x, b'\\')
    }
}

/// The high bit of each lane of `x` set where the byte is below `n`
/// (`n` ≤ 0x80): exact in every lane, as no sum carries into the next.
fn below(x: u64, n: u8) -> u64 {
    !(((x & LOW7) + ONES * u64::from(0x80 - n)) | x) & HIGH
}

/// The high bit of each lane of `x` set where the byte is `b`: exact in
/// every lane.
fn equal(x: u64, b: u8) -> u64 {
    let y = x ^ (ONES * u64::from(b));
    !(((y & LOW7) + LOW7) | y) & HIGH
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

/// The end of the run `R` at `i`: chunks, then windows.
fn run_end<R: Run>(bytes: &[u8], mut i: usize) -> usize {
    for _ in 0..SHORT_CHUNKS {
        let Some(chunk) = chunk_at(bytes, i) else {
            return run_end_in_tail::<R>(bytes, i);
        };
        if let Some(lane) = first_stop_in_chunk::<R>(chunk, 0) {
            return i + lane;
        }
        i += CHUNK;
    }
    if bytes.len().saturating_sub(i) < FIRST_WINDOW {
        while let Some(chunk) = chunk_at(bytes, i) {
            if let Some(lane) = first_stop_in_chunk::<R>(chunk, 0) {
                return i + lane;
            }
            i += CHUNK;
        }
        return run_end_in_tail::<R>(bytes, i);
    }
    long_run_end(bytes, i, R::LO, R::HI)
}

/// The 16 bytes at `i`, if there are as many.
fn chunk_at(bytes: &[u8], i: usize) -> Option<&[u8; CHUNK]> {
    bytes.get(i..i.checked_add(CHUNK)?)?.try_into().ok()
}

/// The index of the first byte of `chunk` at or after `from` that ends the
/// run `R`. The chunk is first tested whole (vector compares); only one that
/// holds a stop is searched, a word at a time.
fn first_stop_in_chunk<R: Run>(chunk: &[u8; CHUNK], from: usize) -> Option<usize> {
    if chunk.iter().fold(0, |any, &b| any | R::flag(b)) == 0 {
        return None;
    }
    let (low, high) = chunk.split_at(8);
    let word = |half: &[u8], from: usize| {
        let mut lanes = [0u8; 8];
        lanes.copy_from_slice(half);
        let flags = R::lanes(u64::from_le_bytes(lanes)) & u64::MAX.checked_shl(8 * from as u32)?;
        (flags != 0).then(|| (flags.trailing_zeros() / 8) as usize)
    };
    if from < 8 {
        if let Some(lane) = word(low, from) {
            return Some(lane);
        }
    }
    word(high, from.saturating_sub(8)).map(|lane| lane + 8)
}

/// [`run_end`] where fewer than 16 bytes are left: the last 16 bytes of the
/// input, searched from `i` (the bytes before `i` are not looked at), or,
/// in an input shorter than 16 bytes, one byte at a time.
fn run_end_in_tail<R: Run>(bytes: &[u8], i: usize) -> usize {
    let Some(base) = bytes.len().checked_sub(CHUNK) else {
        let rest = bytes.get(i..).unwrap_or_default();
        return i + rest
            .iter()
            .position(|&b| R::flag(b) != 0)
            .unwrap_or(rest.len());
    };
    let Some(chunk) = chunk_at(bytes, base) else {
        return bytes.len();
    };
    let from = i.saturating_sub(base);
    if from >= CHUNK {
        return i;
    }
    first_stop_in_chunk::<R>(chunk, from).map_or(bytes.len(), |lane| base + lane)
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
/// quote and the backslash (the reference the lanes are tested against).
#[cfg(test)]
fn is_plain(b: u8) -> bool {
    b.wrapping_sub(0x20) < 0x5f && b != b'"' && b != b'\\'
}

/// Whether `b` stops a plain run inside a string being decoded: a quote, a
/// backslash or a control character.
#[cfg(test)]
fn is_string_stop(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte at every position of runs that end in the first chunks, in
    /// the tail, in the first windows and past them, with a second stop
    /// right after.
    #[test]
    fn runs_end_exactly_at_the_first_stop() {
        let long = CHUNK * SHORT_CHUNKS + 3 * FIRST_WINDOW + 9;
        let plain: Vec<u8> = (0..long).map(|i| b'a' + (i % 26) as u8).collect();
        let medium = CHUNK * SHORT_CHUNKS;
        for len in [
            0,
            7,
            8,
            15,
            16,
            17,
            31,
            32,
            40,
            63,
            medium,
            medium + 17,
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

    /// Each lane's flag depends on its own byte only, whatever the others.
    #[test]
    fn word_lanes_flag_exactly_the_stops() {
        let fillers = [0x00u8, 0x1f, 0x20, 0x21, 0x22, 0x5c, 0x7e, 0x7f, 0x80, 0xff];
        for b in 0..=255u8 {
            for pos in 0..8 {
                for filler in fillers {
                    let mut lanes = [filler; 8];
                    lanes[pos] = b;
                    let x = u64::from_le_bytes(lanes);
                    let lane = |flags: u64| flags >> (8 * pos + 7) & 1 == 1;
                    assert_eq!(
                        lane(Decoded::lanes(x)),
                        is_string_stop(b),
                        "{b:#x} at {pos}"
                    );
                    assert_eq!(lane(Written::lanes(x)), !is_plain(b), "{b:#x} at {pos}");
                    assert_eq!(Decoded::flag(b) == 1, is_string_stop(b));
                    assert_eq!(Written::flag(b) == 1, !is_plain(b));
                    for flags in [Decoded::lanes(x), Written::lanes(x)] {
                        assert_eq!(flags & !HIGH, 0);
                    }
                }
            }
        }
    }

    /// A run read from inside the last 16 bytes of the input ignores the
    /// stops before its start.
    #[test]
    fn a_tail_is_searched_from_the_run_s_start() {
        let text = br#""key": "abcdefghij"}"#;
        assert_eq!(string_run_end(text, 1), 4);
        assert_eq!(string_run_end(text, 9), 18);
        assert_eq!(string_run_end(text, 18), 18);
        assert_eq!(string_run_end(text, 19), 20);
        assert_eq!(string_run_end(text, 20), 20);
        assert_eq!(string_run_end(text, 40), 40);
        let mut escapes = vec![b'\\'; 16];
        escapes.extend_from_slice(b"abc");
        assert_eq!(plain_run_end(&escapes, 16), 19);
        assert_eq!(plain_run_end(&escapes, 15), 15);
    }
}
