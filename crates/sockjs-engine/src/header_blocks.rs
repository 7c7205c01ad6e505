//! Small ids for the header blocks of HTTP answers. A server answers with
//! a handful of distinct blocks (one per transport and status, give or take
//! an echoed Origin), so the JavaScript side is sent each block's text once,
//! with its id, and after that only the id: no text to convert, and no
//! string for JavaScript to hash to find the header list it already made.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Distinct blocks given ids, at most. Past it (headers that vary without
/// end: many origins, session cookies) a block goes as text every time.
pub const MAX_BLOCKS: usize = 256;

/// What the caller sends for a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockId {
    /// Sent before: the id alone.
    Known(u32),
    /// First seen: the text, and the id to remember it by.
    New(u32),
    /// The table is full: the text, to be used once.
    Uncached,
}

#[derive(Debug, Default)]
pub struct HeaderBlocks {
    ids: HashMap<String, u32, BuildHasherDefault<WordHasher>>,
}

impl HeaderBlocks {
    pub fn id_of(&mut self, block: &str) -> BlockId {
        if let Some(&id) = self.ids.get(block) {
            return BlockId::Known(id);
        }
        if self.ids.len() >= MAX_BLOCKS {
            return BlockId::Uncached;
        }
        let id = self.ids.len() as u32;
        self.ids.insert(block.to_owned(), id);
        BlockId::New(id)
    }
}

/// A fast hash for the table's keys, eight bytes at a time (with std's
/// SipHash, hashing a ~250-byte block cost half of what the ids save).
/// Keys an attacker shapes (an echoed Origin) could collide on purpose, but
/// the table never holds more than `MAX_BLOCKS`, which bounds a lookup.
#[derive(Debug, Default)]
pub struct WordHasher(u64);

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_new_once_then_known_by_the_same_id() {
        let mut blocks = HeaderBlocks::default();
        assert_eq!(blocks.id_of("A\n1"), BlockId::New(0));
        assert_eq!(blocks.id_of("B\n2"), BlockId::New(1));
        assert_eq!(blocks.id_of("A\n1"), BlockId::Known(0));
        assert_eq!(blocks.id_of(""), BlockId::New(2));
        assert_eq!(blocks.id_of(""), BlockId::Known(2));
    }

    #[test]
    fn past_the_cap_new_blocks_are_uncached_and_old_ones_still_known() {
        let mut blocks = HeaderBlocks::default();
        for i in 0..MAX_BLOCKS {
            assert_eq!(blocks.id_of(&format!("Origin\nhttp://{i}")), BlockId::New(i as u32));
        }
        assert_eq!(blocks.id_of("Origin\nhttp://late"), BlockId::Uncached);
        assert_eq!(blocks.id_of("Origin\nhttp://late"), BlockId::Uncached);
        assert_eq!(blocks.id_of("Origin\nhttp://7"), BlockId::Known(7));
    }
}
