//! Where a request body stands in its gRPC message frames: each message is
//! a 1-byte compressed flag, a 4-byte big-endian length and its bytes.

use bytes::{Buf, Bytes};

use crate::error::Error;

/// Where a body stands in its message frames.
#[derive(Debug)]
pub(super) struct Frames {
    limit: usize,
    unary: bool,
    /// Whether the call names a grpc-encoding, so that compressed messages
    /// are tonic's to take or refuse.
    encoded: bool,
    /// The prefix of the message being read, while incomplete.
    prefix: [u8; 5],
    prefix_read: usize,
    /// Bytes of the current message still to come, once its prefix is read.
    remaining: Option<usize>,
    /// Messages whose prefix was read.
    pub(super) messages: u64,
}

/// The length of a message's prefix: its flag and its length.
const PREFIX: usize = 5;

impl Frames {
    pub(super) fn new(limit: usize, unary: bool, encoded: bool) -> Self {
        Self {
            limit,
            unary,
            encoded,
            prefix: [0; PREFIX],
            prefix_read: 0,
            remaining: None,
            messages: 0,
        }
    }

    /// Follows the frames through `data`, the next bytes of the body, and
    /// adds the lengths of the messages begun in it to `begun`. Returns
    /// where in `data` the prefix of the first of them starts (0 when it
    /// started in an earlier piece): the bytes before belong to messages
    /// begun before.
    pub(super) fn read(&mut self, mut data: Bytes, begun: &mut Vec<usize>) -> Result<usize, Error> {
        let length = data.len();
        let mut first = 0;
        while data.has_remaining() {
            match self.remaining {
                Some(remaining) => {
                    let taken = remaining.min(data.remaining());
                    data.advance(taken);
                    self.remaining = Some(remaining - taken).filter(|r| *r > 0);
                }
                None => {
                    if self.prefix_read == 0 && begun.is_empty() {
                        first = length - data.remaining();
                    }
                    let taken = (PREFIX - self.prefix_read).min(data.remaining());
                    data.copy_to_slice(
                        &mut self.prefix[self.prefix_read..self.prefix_read + taken],
                    );
                    self.prefix_read += taken;
                    if self.prefix_read == PREFIX {
                        self.prefix_read = 0;
                        begun.push(self.begin_message()?);
                    }
                }
            }
        }
        Ok(first)
    }

    /// Checks the prefix just read; the message's length.
    pub(super) fn begin_message(&mut self) -> Result<usize, Error> {
        let [flag, length @ ..] = self.prefix;
        let length = u32::from_be_bytes(length) as usize;
        self.messages += 1;
        match flag {
            0 => {}
            1 if self.encoded => {}
            1 => {
                return Err(Error::Malformed {
                    reason: "COMPRESSED_WITHOUT_ENCODING",
                    message: "a request message is flagged compressed but the call names no \
                              grpc-encoding; send it uncompressed"
                        .to_owned(),
                });
            }
            other => {
                return Err(Error::Malformed {
                    reason: "MALFORMED_MESSAGE",
                    message: format!(
                        "a request message has the compressed flag {other}; \
                         gRPC's flags are 0 and 1"
                    ),
                });
            }
        }
        if length > self.limit {
            return Err(Error::MessageTooLarge {
                size: length,
                limit: self.limit,
            });
        }
        if self.unary && self.messages > 1 {
            return Err(Error::Malformed {
                reason: "TOO_MANY_MESSAGES",
                message: "a unary call takes one request message; a second one came".to_owned(),
            });
        }
        self.remaining = Some(length).filter(|l| *l > 0);
        Ok(length)
    }

    /// Checks that the body ended between messages, with a message if the
    /// method takes exactly one.
    pub(super) fn finish(&self) -> Result<(), Error> {
        if self.prefix_read > 0 || self.remaining.is_some() {
            let (read, of) = match self.remaining {
                Some(remaining) => {
                    let length = u32::from_be_bytes([
                        self.prefix[1],
                        self.prefix[2],
                        self.prefix[3],
                        self.prefix[4],
                    ]) as usize;
                    (length - remaining, length)
                }
                None => (self.prefix_read, PREFIX),
            };
            let part = if self.remaining.is_some() {
                "message"
            } else {
                "message's 5-byte prefix"
            };
            return Err(Error::Malformed {
                reason: "TRUNCATED_MESSAGE",
                message: format!(
                    "the request ended inside a {part}: {read} of its {of} bytes came"
                ),
            });
        }
        if self.unary && self.messages == 0 {
            return Err(Error::Malformed {
                reason: "MISSING_MESSAGE",
                message: "a unary call takes one request message; the request had none".to_owned(),
            });
        }
        Ok(())
    }
}
