//! [`ThreadSpares`]: the spare allocations of decoded payloads, one set per
//! worker thread, lent to one batch of input at a time.

use std::cell::Cell;

use asyncaproto::Spares;

/// What a worker thread's spare allocations keep after a batch (see
/// [`ThreadSpares`]): strings of up to this capacity...
const KEEP_SPARE_STRING: usize = 4 * 1024;
/// ...and map entry vectors of up to this many entries.
const KEEP_SPARE_ENTRIES: usize = 64;

thread_local! {
    /// The spare allocations of decoded payloads, one set per worker thread.
    static SPARES: Cell<Option<Spares>> = const { Cell::new(None) };
}

/// A batch's spare allocations: the worker thread's set, borrowed for the
/// batch and given back (trimmed) when it ends, so that the first packet of
/// a batch decodes into allocations the last batch on the thread left, and
/// a session keeps none while it is idle.
pub(crate) struct ThreadSpares(pub(crate) Spares);

impl ThreadSpares {
    /// The thread's set (empty if another batch holds it, or none was
    /// given back yet).
    pub(crate) fn take() -> ThreadSpares {
        let kept = SPARES.try_with(Cell::take).ok().flatten();
        ThreadSpares(kept.unwrap_or_default())
    }
}

impl Drop for ThreadSpares {
    fn drop(&mut self) {
        let mut spares = std::mem::take(&mut self.0);
        spares.trim(KEEP_SPARE_STRING, KEEP_SPARE_ENTRIES);
        // Another batch on this thread may have given its set back meanwhile
        // (this one waited on a handler): one of the two is dropped. At the
        // thread's end there is nowhere to give it back to: dropped too.
        let _ = SPARES.try_with(|kept| kept.set(Some(spares)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asyncaproto::Encoding;

    #[test]
    fn a_batch_gives_its_spares_back_to_the_thread_without_the_large_ones() {
        // A thread of its own: nothing else uses its set.
        std::thread::spawn(|| {
            let text = br#"{"small": "value"}"#;
            let long = format!(r#"{{"k": "{}"}}"#, "x".repeat(2 * KEEP_SPARE_STRING));
            {
                let mut batch = ThreadSpares::take();
                assert!(batch.0.is_empty(), "nothing kept before a batch");
                let map = Encoding::Json.decode_with(text, &mut batch.0).unwrap();
                batch.0.reclaim(map);
                let map = Encoding::Json
                    .decode_with(long.as_bytes(), &mut batch.0)
                    .unwrap();
                batch.0.reclaim(map);
            }
            let mut next = ThreadSpares::take();
            assert!(!next.0.is_empty(), "the batch's spares came back");
            // Trimmed: the long string's allocation was not kept.
            assert!(
                next.0.kept_bytes() < KEEP_SPARE_STRING,
                "{}",
                next.0.kept_bytes()
            );
            // While one batch holds the set, another gets an empty one.
            assert!(ThreadSpares::take().0.is_empty());
            // A long payload decodes right from what came back all the same.
            let map = Encoding::Json
                .decode_with(long.as_bytes(), &mut next.0)
                .unwrap();
            assert_eq!(map["k"].as_str().map(str::len), Some(2 * KEEP_SPARE_STRING));
        })
        .join()
        .unwrap();
    }
}
