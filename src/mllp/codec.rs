//! MLLP framing: each message travels as `0x0B payload 0x1C 0x0D`.
//!
//! Peers are untrusted, so the decoder never buffers more than about
//! `max_bytes` of one frame, never rescans bytes it has already searched, and
//! reports anything it cannot frame as an error instead of guessing.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

const START: u8 = 0x0B;
const END: [u8; 2] = [0x1C, 0x0D];

/// How much of an oversize payload is kept, enough for the MSH segment so the
/// caller can name the message (MSH-10) when it rejects it.
pub const TOO_LARGE_HEAD: usize = 4096;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The payload, without the framing bytes.
    Message(Bytes),
    /// A payload longer than the codec's limit: its first
    /// [`TOO_LARGE_HEAD`] bytes (fewer if it was shorter) and its full size.
    TooLarge { head: Bytes, size: usize },
}

#[derive(Debug, thiserror::Error)]
pub enum MllpError {
    #[error("byte 0x{byte:02X} between MLLP frames where a start byte 0x0B was expected")]
    Garbage { byte: u8 },
    #[error("connection ended inside an MLLP frame after {size} payload bytes")]
    Truncated { size: usize },
    #[error("payload contains the MLLP end marker 0x1C 0x0D and cannot be framed")]
    Unframeable,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(Debug)]
enum State {
    /// Waiting for a start byte.
    Between,
    /// The start byte has been consumed; the buffer holds the payload so far,
    /// of which the first `scanned` bytes hold no end marker start.
    Reading { scanned: usize },
    /// Past the limit: the payload so far has been dropped, save its head.
    Discarding { head: Vec<u8>, size: usize },
}

#[derive(Debug)]
pub struct MllpCodec {
    max_bytes: usize,
    state: State,
}

impl MllpCodec {
    /// A codec that yields payloads of at most `max_bytes` whole and reports
    /// longer ones as [`Frame::TooLarge`].
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            state: State::Between,
        }
    }
}

/// Where `0x1C 0x0D` starts in `buf`, looking at pairs from `from` on.
fn find_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|pair| pair == END)
        .map(|at| from + at)
}

/// How many leading bytes of `buf` are certainly payload when no end marker
/// was found: all but a final 0x1C, which may start the marker.
fn certain_payload(buf: &[u8]) -> usize {
    match buf.last() {
        Some(&b) if b == END[0] => buf.len() - 1,
        _ => buf.len(),
    }
}

impl Decoder for MllpCodec {
    type Item = Frame;
    type Error = MllpError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, MllpError> {
        loop {
            match &mut self.state {
                State::Between => {
                    // Some engines end frames with an extra CR or LF.
                    let skip = buf
                        .iter()
                        .position(|&b| b != b'\r' && b != b'\n')
                        .unwrap_or(buf.len());
                    buf.advance(skip);
                    let Some(&byte) = buf.first() else {
                        return Ok(None);
                    };
                    if byte != START {
                        // Drop up to the next start byte so a caller that
                        // carries on resynchronises after one error.
                        let junk = buf.iter().position(|&b| b == START).unwrap_or(buf.len());
                        buf.advance(junk);
                        return Err(MllpError::Garbage { byte });
                    }
                    buf.advance(1);
                    self.state = State::Reading { scanned: 0 };
                }
                State::Reading { scanned } => {
                    if let Some(at) = find_end(buf, *scanned) {
                        let payload = buf.split_to(at).freeze();
                        buf.advance(END.len());
                        self.state = State::Between;
                        return Ok(Some(if at <= self.max_bytes {
                            Frame::Message(payload)
                        } else {
                            Frame::TooLarge {
                                head: payload.slice(..TOO_LARGE_HEAD.min(at)),
                                size: at,
                            }
                        }));
                    }
                    let certain = certain_payload(buf);
                    if certain <= self.max_bytes {
                        // Only a final 0x1C needs looking at again.
                        *scanned = certain;
                        return Ok(None);
                    }
                    let head = buf[..TOO_LARGE_HEAD.min(certain)].to_vec();
                    buf.advance(certain);
                    self.state = State::Discarding {
                        head,
                        size: certain,
                    };
                }
                State::Discarding { head, size } => {
                    let found = find_end(buf, 0);
                    let payload = found.unwrap_or_else(|| certain_payload(buf));
                    let room = TOO_LARGE_HEAD.saturating_sub(head.len()).min(payload);
                    head.extend_from_slice(&buf[..room]);
                    *size = size.saturating_add(payload);
                    buf.advance(payload);
                    if found.is_none() {
                        return Ok(None);
                    }
                    buf.advance(END.len());
                    let frame = Frame::TooLarge {
                        head: Bytes::from(std::mem::take(head)),
                        size: *size,
                    };
                    self.state = State::Between;
                    return Ok(Some(frame));
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, MllpError> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        let size = match &self.state {
            State::Between => return Ok(None),
            State::Reading { .. } => buf.len(),
            State::Discarding { size, .. } => size.saturating_add(buf.len()),
        };
        buf.clear();
        self.state = State::Between;
        Err(MllpError::Truncated { size })
    }
}

impl Encoder<&[u8]> for MllpCodec {
    type Error = MllpError;

    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<(), MllpError> {
        // An end marker inside the payload would end the frame early and let
        // the rest be read as another message.
        if find_end(payload, 0).is_some() {
            return Err(MllpError::Unframeable);
        }
        dst.reserve(payload.len() + 3);
        dst.put_u8(START);
        dst.put_slice(payload);
        dst.put_slice(&END);
        Ok(())
    }
}

impl Encoder<Bytes> for MllpCodec {
    type Error = MllpError;

    fn encode(&mut self, payload: Bytes, dst: &mut BytesMut) -> Result<(), MllpError> {
        self.encode(&payload[..], dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut v = vec![START];
        v.extend_from_slice(payload);
        v.extend_from_slice(&END);
        v
    }

    fn message(payload: &[u8]) -> Frame {
        Frame::Message(Bytes::copy_from_slice(payload))
    }

    /// Feeds `input` in chunks of `chunk` bytes, collecting every frame.
    fn feed(codec: &mut MllpCodec, input: &[u8], chunk: usize) -> Vec<Frame> {
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for piece in input.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                frames.push(frame);
            }
        }
        assert!(codec.decode_eof(&mut buf).unwrap().is_none());
        frames
    }

    #[test]
    fn one_frame() {
        let mut buf = BytesMut::from(&framed(b"MSH|^~\\&|A\r")[..]);
        let mut codec = MllpCodec::new(1024);
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(message(b"MSH|^~\\&|A\r"))
        );
        assert!(buf.is_empty());
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn two_frames_in_one_buffer() {
        let mut input = framed(b"first");
        input.extend(framed(b"second"));
        let frames = feed(&mut MllpCodec::new(1024), &input, input.len());
        assert_eq!(frames, vec![message(b"first"), message(b"second")]);
    }

    #[test]
    fn byte_by_byte() {
        let mut input = framed(b"MSH|one\r");
        input.extend(framed(b""));
        input.extend(framed(b"MSH|three\r"));
        let frames = feed(&mut MllpCodec::new(1024), &input, 1);
        assert_eq!(
            frames,
            vec![message(b"MSH|one\r"), message(b""), message(b"MSH|three\r")]
        );
    }

    #[test]
    fn limit_is_inclusive() {
        let exact = vec![b'x'; 100];
        let over = vec![b'y'; 101];
        let mut input = framed(&exact);
        input.extend(framed(&over));
        for chunk in [1, 7, input.len()] {
            let frames = feed(&mut MllpCodec::new(100), &input, chunk);
            assert_eq!(
                frames,
                vec![
                    message(&exact),
                    Frame::TooLarge {
                        head: Bytes::from(over.clone()),
                        size: 101
                    }
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn oversize_frame_is_discarded_as_it_arrives() {
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        // Keep the payload free of an accidental end marker.
        let big: Vec<u8> = big
            .into_iter()
            .map(|b| if b == 0x1C { 0 } else { b })
            .collect();
        let mut input = framed(&big);
        input.extend(b"\r\n");
        input.extend(framed(b"after"));

        let mut codec = MllpCodec::new(10_000);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for piece in input.chunks(3_000) {
            buf.extend_from_slice(piece);
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                frames.push(frame);
            }
            // Never much more than the limit plus one read is held.
            assert!(buf.len() <= 10_000 + 3_000, "{}", buf.len());
        }
        assert_eq!(
            frames,
            vec![
                Frame::TooLarge {
                    head: Bytes::copy_from_slice(&big[..TOO_LARGE_HEAD]),
                    size: big.len()
                },
                message(b"after"),
            ]
        );
    }

    #[test]
    fn small_limit_still_keeps_a_full_head() {
        let big = vec![b'z'; 10_000];
        for chunk in [1, 333, 20_000] {
            let frames = feed(&mut MllpCodec::new(10), &framed(&big), chunk);
            assert_eq!(
                frames,
                vec![Frame::TooLarge {
                    head: Bytes::copy_from_slice(&big[..TOO_LARGE_HEAD]),
                    size: big.len()
                }],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn end_marker_split_across_reads_while_discarding() {
        let mut payload = vec![b'a'; 50];
        payload.push(0x1C);
        payload.extend(b"bc");
        for chunk in 1..=8 {
            let frames = feed(&mut MllpCodec::new(10), &framed(&payload), chunk);
            assert_eq!(
                frames,
                vec![Frame::TooLarge {
                    head: Bytes::from(payload.clone()),
                    size: payload.len()
                }],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn garbage_before_a_frame() {
        let mut codec = MllpCodec::new(1024);
        let mut buf = BytesMut::from(&b"HELLO"[..]);
        buf.extend_from_slice(&framed(b"msg"));
        assert!(matches!(
            codec.decode(&mut buf),
            Err(MllpError::Garbage { byte: b'H' })
        ));
        // A caller that carries on picks up at the next frame.
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(message(b"msg")));
    }

    #[test]
    fn spaces_between_frames_are_garbage() {
        let mut codec = MllpCodec::new(1024);
        let mut buf = BytesMut::from(&b" "[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(MllpError::Garbage { byte: b' ' })
        ));
    }

    #[test]
    fn line_breaks_between_frames_are_tolerated() {
        let mut input = b"\r\n".to_vec();
        input.extend(framed(b"one"));
        input.extend(b"\r\n\n\r");
        input.extend(framed(b"two"));
        input.extend(b"\n");
        for chunk in [1, 2, input.len()] {
            let frames = feed(&mut MllpCodec::new(1024), &input, chunk);
            assert_eq!(frames, vec![message(b"one"), message(b"two")]);
        }
    }

    #[test]
    fn lone_end_byte_and_start_byte_are_payload() {
        let payloads: [&[u8]; 4] = [b"a\x1Cb", b"a\x1C", b"\x1C\x1C", b"a\x0Bb\x0B"];
        for payload in payloads {
            for chunk in [1, 2, 100] {
                let frames = feed(&mut MllpCodec::new(1024), &framed(payload), chunk);
                assert_eq!(frames, vec![message(payload)], "{payload:?} by {chunk}");
            }
        }
    }

    #[test]
    fn final_end_byte_waits_for_the_next() {
        let mut codec = MllpCodec::new(1024);
        let mut buf = BytesMut::from(&b"\x0Babc\x1C"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"\r");
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(message(b"abc")));
    }

    #[test]
    fn truncated_at_eof() {
        let mut codec = MllpCodec::new(1024);
        let mut buf = BytesMut::from(&b"\x0Bhalf a mess"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(MllpError::Truncated { size: 11 })
        ));
        assert!(buf.is_empty());
        assert!(codec.decode_eof(&mut buf).unwrap().is_none());

        let mut codec = MllpCodec::new(4);
        let mut buf = BytesMut::from(&b"\x0Btoo long to keep\x1C"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(MllpError::Truncated { size: 17 })
        ));

        let mut codec = MllpCodec::new(4);
        let mut buf = BytesMut::from(&b"\x0B"[..]);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(MllpError::Truncated { size: 0 })
        ));
    }

    #[test]
    fn line_breaks_at_eof_are_fine() {
        let mut codec = MllpCodec::new(1024);
        let mut buf = BytesMut::from(&b"\r\n\r\n"[..]);
        assert!(codec.decode_eof(&mut buf).unwrap().is_none());
        let mut buf = BytesMut::new();
        assert!(codec.decode_eof(&mut buf).unwrap().is_none());
    }

    #[test]
    fn encoder_round_trip() {
        let mut codec = MllpCodec::new(1024);
        let mut wire = BytesMut::new();
        codec.encode(&b"MSH|^~\\&|ACK\r"[..], &mut wire).unwrap();
        codec
            .encode(Bytes::from_static(b"lone \x1C ok"), &mut wire)
            .unwrap();
        assert_eq!(
            &wire[..],
            &[framed(b"MSH|^~\\&|ACK\r"), framed(b"lone \x1C ok")].concat()[..]
        );
        assert_eq!(
            codec.decode(&mut wire).unwrap(),
            Some(message(b"MSH|^~\\&|ACK\r"))
        );
        assert_eq!(
            codec.decode(&mut wire).unwrap(),
            Some(message(b"lone \x1C ok"))
        );
    }

    #[test]
    fn encoder_refuses_an_embedded_end_marker() {
        let mut wire = BytesMut::new();
        assert!(matches!(
            MllpCodec::new(1024).encode(&b"MSA|AA|x\x1C\rMSH|forged"[..], &mut wire),
            Err(MllpError::Unframeable)
        ));
        assert!(wire.is_empty());
    }
}
