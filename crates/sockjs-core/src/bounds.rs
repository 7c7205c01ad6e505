//! Where the client's WebSocket frames end, in the bytes handed to tungstenite.
//!
//! tungstenite grows its read buffer to the size of the largest frame it has
//! read and its write buffer to the largest frame it has written, and keeps
//! both for the life of the connection: one 1 MiB message would leave an
//! idle session holding 2 MiB. Nothing in its API shrinks them; making a
//! fresh `WebSocketStream` over the same socket does, but only when no
//! state is lost, and that needs to know that tungstenite holds no bytes of
//! a frame it has not finished. `FrameBounds` follows the frame headers of
//! the byte stream (RFC 6455 section 5.2) so that the reader below
//! tungstenite can hand out bytes up to the end of one frame at a time and
//! say when everything handed out made whole frames and whole messages.
//! It judges nothing: tungstenite validates the frames.

/// Frames larger than this grow tungstenite's buffers enough to be worth a
/// fresh stream once the message is over.
pub const LARGE_FRAME: u64 = 4096;

#[derive(Debug)]
pub struct FrameBounds {
    part: Part,
    /// A data message was started by a frame without FIN and is not over.
    in_fragmented: bool,
    /// A frame larger than `LARGE_FRAME` was seen (or, `mark_large`,
    /// written the other way) since the last `reset_large`.
    large_seen: bool,
    /// The header of a close frame was seen.
    close_seen: bool,
}

#[derive(Debug)]
enum Part {
    /// Reading a header: the bytes of it seen so far.
    Header { bytes: [u8; 14], len: u8 },
    /// Reading a payload: bytes of it still to come.
    Payload { left: u64 },
}

impl Default for FrameBounds {
    fn default() -> Self {
        FrameBounds {
            part: Part::Header { bytes: [0; 14], len: 0 },
            in_fragmented: false,
            large_seen: false,
            close_seen: false,
        }
    }
}

/// The header's full size once its first two bytes are known.
fn header_size(second: u8) -> usize {
    let extended = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + extended + mask
}

/// The payload length a complete header announces.
fn payload_len(header: &[u8]) -> u64 {
    match header[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        127 => u64::from_be_bytes(header[2..10].try_into().expect("eight bytes")),
        short => u64::from(short),
    }
}

impl FrameBounds {
    /// Take as many of `bytes` as belong to the current frame, stopping at
    /// its end; returns how many.
    pub fn take(&mut self, bytes: &[u8]) -> usize {
        let mut taken = 0;
        while taken < bytes.len() {
            match &mut self.part {
                Part::Payload { left } => {
                    let n = (bytes.len() - taken).min(usize::try_from(*left).unwrap_or(usize::MAX));
                    taken += n;
                    *left -= n as u64;
                    if *left == 0 {
                        self.part = Part::Header { bytes: [0; 14], len: 0 };
                        return taken;
                    }
                }
                Part::Header { bytes: header, len } => {
                    header[usize::from(*len)] = bytes[taken];
                    *len += 1;
                    taken += 1;
                    let have = usize::from(*len);
                    if have < 2 || have < header_size(header[1]) {
                        continue;
                    }
                    let first = header[0];
                    let size = payload_len(&header[..have]);
                    self.on_header(first, size);
                    if size == 0 {
                        self.part = Part::Header { bytes: [0; 14], len: 0 };
                        return taken;
                    }
                    self.part = Part::Payload { left: size };
                }
            }
        }
        taken
    }

    fn on_header(&mut self, first: u8, size: u64) {
        let fin = first & 0x80 != 0;
        match first & 0x0f {
            // Text, binary: a message starts; without FIN, more will follow.
            1 | 2 => self.in_fragmented = !fin,
            // Continuation: the message ends with its FIN.
            0 if fin => self.in_fragmented = false,
            8 => self.close_seen = true,
            _ => {}
        }
        if size > LARGE_FRAME {
            self.large_seen = true;
        }
    }

    /// How many payload bytes of the current frame are still to come (0
    /// while in a header).
    pub fn payload_left(&self) -> u64 {
        match self.part {
            Part::Payload { left } => left,
            Part::Header { .. } => 0,
        }
    }

    /// Everything taken so far makes whole frames and whole messages.
    pub fn between_messages(&self) -> bool {
        matches!(self.part, Part::Header { len: 0, .. }) && !self.in_fragmented
    }

    /// A large frame went by since the last `reset`.
    pub fn large_seen(&self) -> bool {
        self.large_seen
    }

    /// A close frame began: the peer is closing (its header was taken,
    /// the payload may not have been yet).
    pub fn close_seen(&self) -> bool {
        self.close_seen
    }

    /// The peer's close frame was taken whole: nothing more is to be read,
    /// and what is written now is the last before the connection ends.
    pub fn close_taken(&self) -> bool {
        self.close_seen && matches!(self.part, Part::Header { len: 0, .. })
    }

    /// A frame larger than `LARGE_FRAME` went the other way: tungstenite's
    /// write buffer grew. Kept here, beside the reads' flag, to keep the
    /// reader that holds these bounds (one per connection) small.
    pub fn mark_large(&mut self) {
        self.large_seen = true;
    }

    pub fn reset_large(&mut self) {
        self.large_seen = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&[1, 2, 3, 4]);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ [1, 2, 3, 4][i % 4]));
        out
    }

    /// Feed `bytes` in pieces of at most `piece`; the lengths taken per call.
    fn feed(bounds: &mut FrameBounds, bytes: &[u8], piece: usize) -> Vec<usize> {
        let mut at = 0;
        let mut steps = Vec::new();
        while at < bytes.len() {
            let end = (at + piece).min(bytes.len());
            let n = bounds.take(&bytes[at..end]);
            assert!(n > 0, "always takes something");
            steps.push(n);
            at += n;
        }
        steps
    }

    #[test]
    fn stops_at_the_end_of_each_frame() {
        let mut stream = frame(0x81, b"hello");
        stream.extend(frame(0x81, b""));
        stream.extend(frame(0x82, &[7; 300]));
        let mut b = FrameBounds::default();
        assert_eq!(feed(&mut b, &stream, 10_000), vec![11, 6, 308]);
        assert!(b.between_messages());
        assert!(!b.large_seen());
    }

    #[test]
    fn follows_headers_split_across_pieces() {
        let big = frame(0x81, &vec![b'x'; 70_000]);
        assert_eq!(big.len(), 14 + 70_000);
        for piece in [1, 2, 3, 13, 14, 4096] {
            let mut b = FrameBounds::default();
            let steps = feed(&mut b, &big, piece);
            assert_eq!(steps.iter().sum::<usize>(), big.len(), "piece {piece}");
            assert!(b.between_messages(), "piece {piece}");
            assert!(b.large_seen());
            b.reset_large();
            assert!(!b.large_seen());
        }
        let mut b = FrameBounds::default();
        b.take(&big[..20]);
        assert_eq!(b.payload_left(), 70_000 - 6);
        assert!(!b.between_messages());
    }

    #[test]
    fn a_fragmented_message_is_over_at_its_final_continuation() {
        let mut b = FrameBounds::default();
        let first = frame(0x01, b"par");
        assert_eq!(b.take(&first), first.len());
        assert!(!b.between_messages(), "after a frame without FIN");
        let ping = frame(0x89, b"p");
        assert_eq!(b.take(&ping), ping.len());
        assert!(!b.between_messages(), "a ping does not end the message");
        let middle = frame(0x00, b"t");
        assert_eq!(b.take(&middle), middle.len());
        assert!(!b.between_messages());
        let last = frame(0x80, b"s");
        assert_eq!(b.take(&last), last.len());
        assert!(b.between_messages());
    }

    #[test]
    fn a_close_frame_is_seen_once_its_header_is_taken() {
        let mut b = FrameBounds::default();
        let text = frame(0x81, b"hi");
        let ping = frame(0x89, b"p");
        b.take(&text);
        b.take(&ping);
        assert!(!b.close_seen());
        let close = frame(0x88, &[0x03, 0xe8, b'b', b'y', b'e']);
        // The header alone (masked: 2 bytes, then the 4-byte key).
        assert_eq!(b.take(&close[..6]), 6);
        assert!(b.close_seen(), "before the payload is handed out");
        assert!(!b.close_taken(), "its payload is still to come");
        assert_eq!(b.take(&close[6..8]), 2);
        assert!(!b.close_taken());
        assert_eq!(b.take(&close[8..]), close.len() - 8);
        assert!(b.close_seen());
        assert!(b.close_taken());
    }

    #[test]
    fn an_empty_close_frame_is_taken_with_its_header() {
        let mut b = FrameBounds::default();
        let close = frame(0x88, b"");
        assert_eq!(b.take(&close[..1]), 1);
        assert!(!b.close_taken());
        assert_eq!(b.take(&close[1..]), close.len() - 1);
        assert!(b.close_taken());
    }

    #[test]
    fn an_absurd_length_is_only_counted() {
        // tungstenite refuses it; the tracker must just not fail.
        let mut b = FrameBounds::default();
        let header = [0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4];
        assert_eq!(b.take(&header), header.len());
        assert_eq!(b.payload_left(), u64::MAX);
        assert_eq!(b.take(&[0; 100]), 100);
        assert!(b.large_seen());
    }
}
