//! `bounds`: `bounds::FrameBounds`, which follows a client's WebSocket frame
//! headers in the bytes the engine hands to tungstenite, on arbitrary bytes
//! (whatever a client sends goes through it before tungstenite judges it).
//!
//! Input: the first byte sets a piece size (1 to 256); the rest is the byte
//! stream, fed once whole and once in pieces of that size.
//!
//! Invariants:
//! - `take` never panics, takes at least one byte of a non-empty slice and
//!   never more than it was given;
//! - fed whole, takes stop exactly at the frame ends a plain reading of the
//!   RFC 6455 headers finds (and at the end of the stream);
//! - fed in pieces, every one of those frame ends is also where a `take`
//!   stops (a read never crosses the end of a frame), and both ways end in
//!   the same state (`between_messages`, `large_seen`, `payload_left`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockjs_core::bounds::FrameBounds;

/// Feed `bytes` in slices of at most `piece`; the offsets where takes stop.
fn feed(bounds: &mut FrameBounds, bytes: &[u8], piece: usize) -> Vec<usize> {
    let mut at = 0;
    let mut stops = Vec::new();
    while at < bytes.len() {
        let end = (at + piece).min(bytes.len());
        let n = bounds.take(&bytes[at..end]);
        assert!(n >= 1 && n <= end - at, "took {n} of {}", end - at);
        at += n;
        stops.push(at);
    }
    stops
}

/// Frame ends by reading each header in place: 2 bytes, then 2 or 8 of
/// extended length, then 4 of mask when the mask bit is set.
fn reference_ends(stream: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 0usize;
    while at + 2 <= stream.len() {
        let second = stream[at + 1];
        let extended = match second & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let header = 2 + extended + if second & 0x80 != 0 { 4 } else { 0 };
        if at + header > stream.len() {
            break;
        }
        let len = match extended {
            2 => u64::from(u16::from_be_bytes([stream[at + 2], stream[at + 3]])),
            8 => u64::from_be_bytes(stream[at + 2..at + 10].try_into().unwrap()),
            _ => u64::from(second & 0x7f),
        };
        let Some(end) = ((at + header) as u64).checked_add(len) else {
            break;
        };
        if end > stream.len() as u64 {
            break;
        }
        at = end as usize;
        ends.push(at);
    }
    ends
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let piece = usize::from(first) + 1;

    let mut whole = FrameBounds::default();
    let frame_ends = feed(&mut whole, stream, stream.len().max(1));
    let mut pieces = FrameBounds::default();
    let stops = feed(&mut pieces, stream, piece);

    let expected = reference_ends(stream);
    for stop in &frame_ends {
        assert!(
            expected.binary_search(stop).is_ok() || *stop == stream.len(),
            "stopped at {stop}, not a frame end"
        );
    }
    for end in &expected {
        assert!(
            frame_ends.binary_search(end).is_ok(),
            "went past the frame end at {end}"
        );
    }
    for end in &frame_ends {
        assert!(
            stops.binary_search(end).is_ok(),
            "a piecewise read crossed the frame end at {end}"
        );
    }
    assert_eq!(whole.between_messages(), pieces.between_messages());
    assert_eq!(whole.large_seen(), pieces.large_seen());
    assert_eq!(whole.payload_left(), pieces.payload_left());
});
