//! Size-prefixed frames: every request and response travels as a 4-byte big-endian length followed
//! by that many bytes.
//!
//! [`FrameSplitter`] cuts frames out of a byte stream that arrives in arbitrary pieces; the functions
//! [`encode_request`] and [`encode_response`] write a whole frame (size, header, body) into one buffer.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{ProtocolError, Result};
use crate::header::{RequestHeader, ResponseHeader};
use crate::messages::Message;

/// Kafka's default `socket.request.max.bytes` (100 MiB), a sensible default frame limit.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 100 * 1024 * 1024;

/// Splits a byte stream into frames, incrementally.
///
/// Append received bytes to [`buffer_mut`](Self::buffer_mut) (or [`extend`](Self::extend)), then call
/// [`next_frame`](Self::next_frame) until it returns `Ok(None)`. A frame announcing more than the
/// configured maximum (or a negative size) is an error before any of it is buffered, so a hostile
/// peer cannot make the splitter allocate.
#[derive(Debug)]
pub struct FrameSplitter {
    buf: BytesMut,
    max_frame_size: usize,
}

impl Default for FrameSplitter {
    fn default() -> Self {
        FrameSplitter::new(DEFAULT_MAX_FRAME_SIZE)
    }
}

impl FrameSplitter {
    /// A splitter that rejects frames larger than `max_frame_size` bytes (not counting the prefix).
    pub fn new(max_frame_size: usize) -> Self {
        FrameSplitter {
            buf: BytesMut::with_capacity(64 * 1024),
            max_frame_size,
        }
    }

    /// The buffer to read into (for example with `AsyncReadExt::read_buf`).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Appends received bytes.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Returns the next complete frame body (without its size prefix), `Ok(None)` if more bytes are
    /// needed, or an error if the next frame's announced size is invalid.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let size = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        if size < 0 || size as usize > self.max_frame_size {
            return Err(ProtocolError::FrameTooLarge {
                size: i64::from(size),
                max: self.max_frame_size,
            });
        }
        let size = size as usize;
        if self.buf.len() < 4 + size {
            // Reserve the rest of the frame at once so reads land in one allocation.
            self.buf.reserve(4 + size - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(4);
        Ok(Some(self.buf.split_to(size).freeze()))
    }
}

fn with_size_prefix(
    buf: &mut BytesMut,
    write: impl FnOnce(&mut BytesMut) -> Result<()>,
) -> Result<()> {
    let start = buf.len();
    buf.put_i32(0);
    write(buf)?;
    let size = buf.len() - start - 4;
    let size = i32::try_from(size).map_err(|_| ProtocolError::TooLong {
        what: "frame",
        length: size,
    })?;
    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// Writes a whole request frame (size, header, body) to `buf`.
///
/// Fails if the header names another API than the message, or a version this crate does not support.
pub fn encode_request<M: Message>(
    header: &RequestHeader,
    body: &M,
    buf: &mut BytesMut,
) -> Result<()> {
    if header.api_key != M::API_KEY {
        return Err(ProtocolError::InvalidValue {
            what: "RequestHeader.api_key",
            value: i64::from(header.api_key.as_i16()),
        });
    }
    M::API_KEY.check_version(header.api_version)?;
    with_size_prefix(buf, |buf| {
        header.encode(buf)?;
        body.encode(buf, header.api_version)
    })
}

/// Writes a whole response frame (size, header, body) to `buf`, as a broker would.
pub fn encode_response<M: Message>(
    header: &ResponseHeader,
    api_version: i16,
    body: &M,
    buf: &mut BytesMut,
) -> Result<()> {
    M::API_KEY.check_version(api_version)?;
    with_size_prefix(buf, |buf| {
        header.encode(buf, M::API_KEY, api_version)?;
        body.encode(buf, api_version)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_frames_arriving_byte_by_byte() {
        let mut stream = Vec::new();
        for body in [&b"abc"[..], b"", b"hello world"] {
            stream.extend_from_slice(&(body.len() as i32).to_be_bytes());
            stream.extend_from_slice(body);
        }
        let mut s = FrameSplitter::new(1024);
        let mut frames = Vec::new();
        for b in &stream {
            s.extend(std::slice::from_ref(b));
            while let Some(f) = s.next_frame().unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(
            frames,
            vec![
                Bytes::from_static(b"abc"),
                Bytes::new(),
                Bytes::from_static(b"hello world")
            ]
        );
        assert_eq!(s.buffered(), 0);
    }

    #[test]
    fn rejects_oversized_and_negative_frames_before_buffering() {
        let mut s = FrameSplitter::new(10);
        s.extend(&11i32.to_be_bytes());
        assert_eq!(
            s.next_frame(),
            Err(ProtocolError::FrameTooLarge { size: 11, max: 10 })
        );
        let mut s = FrameSplitter::new(10);
        s.extend(&(-5i32).to_be_bytes());
        assert!(matches!(
            s.next_frame(),
            Err(ProtocolError::FrameTooLarge { size: -5, .. })
        ));
    }
}
