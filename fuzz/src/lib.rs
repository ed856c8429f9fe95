//! Helpers shared by the fuzz targets in `fuzz_targets/`: how a target picks a
//! frame layout and a chunking from its input, and the reference checks.

use arbitrary::{Result, Unstructured};
use asyncaproto::frame::DEFAULT_MAX_PACKET_SIZE;
use asyncaproto::{ByteOrder, FrameConfig, Value};

/// Maximum packet sizes worth covering: the edges of every header size, the
/// default, and "no limit".
const MAX_PACKET_SIZES: [u64; 10] = [
    2,
    3,
    16,
    255,
    256,
    4096,
    65_535,
    DEFAULT_MAX_PACKET_SIZE,
    u32::MAX as u64,
    u64::MAX,
];

/// A frame layout chosen by the input: header size 1 to 8, either byte order,
/// and one of [`MAX_PACKET_SIZES`].
pub fn layout(u: &mut Unstructured<'_>) -> Result<FrameConfig> {
    let header_size = u.int_in_range(1..=8u8)?;
    let byte_order = if u.arbitrary::<bool>()? {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    };
    let max = *u.choose(&MAX_PACKET_SIZES)?;
    Ok(FrameConfig::new(header_size, byte_order, max).expect("a valid layout"))
}

/// Chunk sizes chosen by the input (0 to 64 bytes; 0 means "call the decoder
/// again with nothing new"), used in turn, cyclically, until the stream is fed.
pub fn chunking(u: &mut Unstructured<'_>) -> Result<Vec<usize>> {
    let count = u.int_in_range(0..=16u8)?;
    let mut sizes = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        sizes.push(usize::from(u.int_in_range(0..=64u8)?));
    }
    Ok(sizes)
}

/// Splits `stream` into consecutive chunks of the given sizes, repeated; a
/// list with no non-zero size (or none at all) means the whole stream at once.
pub fn chunks<'a>(stream: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    if !sizes.iter().any(|&n| n > 0) {
        return vec![stream];
    }
    let mut out = Vec::new();
    let mut rest = stream;
    for &n in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        out.push(chunk);
        rest = tail;
    }
    out
}

/// Whether `value` holds binary anywhere: binary is the one thing JSON does not
/// carry back (it is written as a base64 string, which decodes as a string).
pub fn has_bin(value: &Value) -> bool {
    match value {
        Value::Bin(_) => true,
        Value::Array(items) => items.iter().any(has_bin),
        Value::Map(map) => map.values().any(has_bin),
        _ => false,
    }
}

/// The deepest bracket nesting of `text`, counting brackets inside strings
/// too (an over-estimate): the reference parser recurses once per level.
pub fn rough_depth(text: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for &b in text {
        match b {
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Whether our decoded `value` is what serde_json (the reference) read from
/// the same text, allowing the data model's documented choices: `-0` is the
/// integer 0 (serde_json reads it as the float -0.0), and integers above
/// `i64::MAX` are [`Value::UInt`].
pub fn same_as_serde(ours: &Value, reference: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (ours, reference) {
        (Value::Null, J::Null) => true,
        (Value::Bool(a), J::Bool(b)) => a == b,
        (_, J::Number(n)) => {
            if let Some(u) = n.as_u64() {
                *ours == Value::from_u64(u)
            } else if let Some(i) = n.as_i64() {
                *ours == Value::Int(i)
            } else {
                let f = n
                    .as_f64()
                    .expect("a serde_json number without arbitrary precision");
                match ours {
                    Value::Float(g) => g.to_bits() == f.to_bits(),
                    Value::Int(0) => f == 0.0,
                    _ => false,
                }
            }
        }
        (Value::Str(a), J::String(b)) => a == b,
        (Value::Array(a), J::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_as_serde(x, y))
        }
        (Value::Map(a), J::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|w| same_as_serde(v, w)))
        }
        _ => false,
    }
}

/// Runs one fuzz input through `check`, timing it. The slowest input so far
/// is kept (for `run.sh` to re-time alone): when `ASYNCAPY_FUZZ_SLOWEST` names
/// a file, each new slowest input is written there, and its time in
/// nanoseconds to the same name plus `.ns`. An input that looks like a new
/// slowest is run twice more and timed by its fastest run, so that a
/// preemption on a busy machine is not taken for a slow input.
pub fn timed(data: &[u8], check: impl Fn()) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    use std::time::Instant;
    static SLOWEST_NS: AtomicU64 = AtomicU64::new(0);
    static PATH: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();

    let run = || {
        let start = Instant::now();
        check();
        u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    };
    let mut ns = run();
    if ns <= SLOWEST_NS.load(Ordering::Relaxed) {
        return;
    }
    for _ in 0..2 {
        ns = ns.min(run());
    }
    if ns <= SLOWEST_NS.load(Ordering::Relaxed) {
        return;
    }
    SLOWEST_NS.store(ns, Ordering::Relaxed);
    let path = PATH.get_or_init(|| std::env::var_os("ASYNCAPY_FUZZ_SLOWEST").map(Into::into));
    if let Some(path) = path {
        let _ = std::fs::write(path, data);
        let mut ns_path = path.clone().into_os_string();
        ns_path.push(".ns");
        let _ = std::fs::write(ns_path, ns.to_string());
    }
}
