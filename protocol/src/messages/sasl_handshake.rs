//! SaslHandshake (key 17): the client names the SASL mechanism it wants; the broker answers with
//! the mechanisms it has enabled. Versions 0–1; never flexible (the version cannot be bumped
//! because clients up to 2.4 negotiate it wrongly, KAFKA-9577).
//!
//! After a v0 handshake the SASL tokens travel as raw size-prefixed frames; after v1 they travel in
//! SaslAuthenticate requests. Both bodies are identical in v0 and v1.

use bytes::{BufMut, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{Decoder, Encoder};

/// SaslHandshake request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SaslHandshakeRequest {
    /// The SASL mechanism the client chose, for example `PLAIN` or `SCRAM-SHA-256`.
    pub mechanism: String,
}

impl Message for SaslHandshakeRequest {
    const API_KEY: ApiKey = ApiKey::SaslHandshake;

    fn encode_body(&self, buf: &mut BytesMut, _version: i16) -> Result<()> {
        buf.put_string(false, &self.mechanism, "SaslHandshakeRequest.mechanism")
    }

    fn decode_body(d: &mut Decoder, _version: i16) -> Result<Self> {
        Ok(SaslHandshakeRequest {
            mechanism: d.string(false, "SaslHandshakeRequest.mechanism")?,
        })
    }
}

/// SaslHandshake response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SaslHandshakeResponse {
    /// The error code, 0 for none; `UNSUPPORTED_SASL_MECHANISM` (33) when the mechanism is not
    /// enabled.
    pub error_code: i16,
    /// The mechanisms the broker has enabled.
    pub mechanisms: Vec<String>,
}

impl Message for SaslHandshakeResponse {
    const API_KEY: ApiKey = ApiKey::SaslHandshake;

    fn encode_body(&self, buf: &mut BytesMut, _version: i16) -> Result<()> {
        buf.put_i16(self.error_code);
        buf.put_array(false, &self.mechanisms, "SaslHandshakeResponse.mechanisms", |b, s| {
            b.put_string(false, s, "SaslHandshakeResponse.mechanisms")
        })
    }

    fn decode_body(d: &mut Decoder, _version: i16) -> Result<Self> {
        Ok(SaslHandshakeResponse {
            error_code: d.i16("SaslHandshakeResponse.error_code")?,
            mechanisms: d.array(false, "SaslHandshakeResponse.mechanisms", |d| {
                d.string(false, "SaslHandshakeResponse.mechanisms")
            })?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn request_bytes_are_the_same_in_v0_and_v1() {
        let req = SaslHandshakeRequest {
            mechanism: "PLAIN".into(),
        };
        for version in [0, 1] {
            assert_eq!(&req.to_bytes(version).unwrap()[..], b"\x00\x05PLAIN");
        }
        let back = SaslHandshakeRequest::decode_exact(Bytes::from_static(b"\x00\x05PLAIN"), 1);
        assert_eq!(back.unwrap(), req);
    }

    #[test]
    fn response_bytes() {
        let resp = SaslHandshakeResponse {
            error_code: 33,
            mechanisms: vec!["PLAIN".into(), "SCRAM-SHA-256".into()],
        };
        let wire: &[u8] = b"\x00\x21\x00\x00\x00\x02\x00\x05PLAIN\x00\x0dSCRAM-SHA-256";
        for version in [0, 1] {
            assert_eq!(&resp.to_bytes(version).unwrap()[..], wire);
            let back = SaslHandshakeResponse::decode_exact(Bytes::from_static(wire), version);
            assert_eq!(back.unwrap(), resp);
        }
    }

    #[test]
    fn truncated_input_is_an_error() {
        let wire = Bytes::from_static(b"\x00\x21\x00\x00\x00\x02\x00\x05PLAIN\x00\x0dSCRAM-SHA-256");
        for n in 0..wire.len() {
            assert!(SaslHandshakeResponse::decode_exact(wire.slice(..n), 1).is_err());
        }
        let wire = Bytes::from_static(b"\x00\x05PLAIN");
        for n in 0..wire.len() {
            assert!(SaslHandshakeRequest::decode_exact(wire.slice(..n), 1).is_err());
        }
        // A null mechanism is not allowed.
        assert!(SaslHandshakeRequest::decode_exact(Bytes::from_static(b"\xff\xff"), 1).is_err());
    }
}
