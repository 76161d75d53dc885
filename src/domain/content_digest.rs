//! Digests of what a sender said, to tell a replay from a conflicting push
//! under the same key.

use sha2::{Digest, Sha256};

/// A SHA-256 over length-prefixed fields: no two different field lists
/// give the same input by concatenation.
pub struct ContentDigest(Sha256);

impl Default for ContentDigest {
    fn default() -> Self {
        Self::new()
    }
}

impl ContentDigest {
    pub fn new() -> Self {
        Self(Sha256::new())
    }

    pub fn bytes(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
    }

    pub fn text(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }

    pub fn number(&mut self, number: i64) {
        self.bytes(&number.to_be_bytes());
    }

    pub fn optional(&mut self, bytes: Option<&[u8]>) {
        match bytes {
            None => self.0.update([0]),
            Some(bytes) => {
                self.0.update([1]);
                self.bytes(bytes);
            }
        }
    }

    pub fn optional_number(&mut self, number: Option<i64>) {
        self.optional(number.map(i64::to_be_bytes).as_ref().map(|b| &b[..]));
    }

    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}
