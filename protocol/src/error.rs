//! The one error type of the protocol crate.
//!
//! Every decode or encode failure says *what* was being read or written (a field path such as
//! `"MetadataResponse.topics.name"`), so an error from a hostile or buggy peer points at the byte that
//! broke the contract. Nothing in this crate panics on input; every failure is one of these values.

use std::fmt;

use crate::api_key::ApiKey;

/// Errors raised while decoding or encoding Kafka wire data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The input ended before a value was complete.
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length or count was negative where that is not allowed, or larger than the input can hold.
    InvalidLength {
        /// The field being read.
        what: &'static str,
        /// The length that was found on the wire.
        length: i64,
    },
    /// A variable-length integer ran over its maximum number of bytes.
    VarintOverflow {
        /// The field being read.
        what: &'static str,
    },
    /// A string field did not hold UTF-8.
    InvalidUtf8 {
        /// The field being read.
        what: &'static str,
    },
    /// A value that has a fixed set of meanings held none of them.
    InvalidValue {
        /// The field being read.
        what: &'static str,
        /// The value found.
        value: i64,
    },
    /// A null was found where the field is not nullable, or a value that cannot be encoded was given.
    UnexpectedNull {
        /// The field being read or written.
        what: &'static str,
    },
    /// The API key is not one this crate knows.
    UnknownApiKey(i16),
    /// This crate does not implement the requested version of an API.
    UnsupportedVersion {
        /// The API.
        api: ApiKey,
        /// The version asked for.
        version: i16,
    },
    /// A value is too large for the wire form it must be written in.
    TooLong {
        /// The field being written.
        what: &'static str,
        /// Its length.
        length: usize,
    },
    /// A frame announced a size above the configured maximum.
    FrameTooLarge {
        /// The announced size.
        size: i64,
        /// The configured maximum.
        max: usize,
    },
    /// A record batch failed its CRC32C check.
    CrcMismatch {
        /// The CRC stored in the batch.
        expected: u32,
        /// The CRC computed over the bytes received.
        computed: u32,
        /// The batch's base offset.
        base_offset: i64,
    },
    /// A record batch uses a magic (message format version) other than 2.
    UnsupportedMagic(i8),
    /// The batch names a compression codec this crate does not know or was built without.
    UnsupportedCompression {
        /// The codec id from the batch attributes.
        codec: u8,
        /// Why it cannot be used (unknown id, or the cargo feature that enables it).
        reason: &'static str,
    },
    /// Compressing or decompressing failed.
    Compression {
        /// The codec.
        codec: &'static str,
        /// What the codec said.
        message: String,
    },
    /// Decompressed data would exceed the configured bound.
    DecompressedTooLarge {
        /// The codec.
        codec: &'static str,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// Bytes were left over after a complete message was decoded.
    TrailingBytes {
        /// The message that was decoded.
        what: &'static str,
        /// How many bytes were left.
        remaining: usize,
    },
}

impl ProtocolError {
    /// A short helper for the most common case.
    pub(crate) fn truncated(what: &'static str, needed: usize, remaining: usize) -> Self {
        ProtocolError::Truncated {
            what,
            needed,
            remaining,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Truncated {
                what,
                needed,
                remaining,
            } => write!(
                f,
                "truncated input reading {what}: needed {needed} bytes, {remaining} left"
            ),
            ProtocolError::InvalidLength { what, length } => {
                write!(f, "invalid length {length} for {what}")
            }
            ProtocolError::VarintOverflow { what } => {
                write!(f, "variable-length integer too long reading {what}")
            }
            ProtocolError::InvalidUtf8 { what } => write!(f, "{what} is not valid UTF-8"),
            ProtocolError::InvalidValue { what, value } => {
                write!(f, "invalid value {value} for {what}")
            }
            ProtocolError::UnexpectedNull { what } => write!(f, "{what} must not be null"),
            ProtocolError::UnknownApiKey(key) => write!(f, "unknown API key {key}"),
            ProtocolError::UnsupportedVersion { api, version } => write!(
                f,
                "{api:?} version {version} is not supported (supported: {}..={})",
                api.supported().min,
                api.supported().max
            ),
            ProtocolError::TooLong { what, length } => {
                write!(f, "{what} is too long for its wire form ({length})")
            }
            ProtocolError::FrameTooLarge { size, max } => {
                write!(f, "frame of {size} bytes exceeds the maximum of {max} bytes")
            }
            ProtocolError::CrcMismatch {
                expected,
                computed,
                base_offset,
            } => write!(
                f,
                "record batch at offset {base_offset} is corrupt: CRC32C {computed:#010x} != stored {expected:#010x}"
            ),
            ProtocolError::UnsupportedMagic(m) => write!(
                f,
                "record batch magic {m} is not supported (only message format v2 is)"
            ),
            ProtocolError::UnsupportedCompression { codec, reason } => {
                write!(f, "compression codec {codec} cannot be used: {reason}")
            }
            ProtocolError::Compression { codec, message } => {
                write!(f, "{codec} (de)compression failed: {message}")
            }
            ProtocolError::DecompressedTooLarge { codec, limit } => write!(
                f,
                "{codec} data decompresses to more than the limit of {limit} bytes"
            ),
            ProtocolError::TrailingBytes { what, remaining } => {
                write!(f, "{remaining} unexpected bytes after {what}")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Result alias used throughout the crate.
pub type Result<T, E = ProtocolError> = std::result::Result<T, E>;
