//! SaslAuthenticate (key 36): carries one SASL token each way after a v1 SaslHandshake (KIP-152).
//! Versions 0–2; flexible from 2.
//!
//! The tokens hold credentials (a PLAIN password, SCRAM proofs, OAuth bearer tokens), so the
//! `Debug` output of both bodies shows only their length, never their content.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{Decoder, Encoder, TaggedFields};
use crate::primitives::put_tags;

/// The first flexible version.
const FLEXIBLE: i16 = 2;

/// SaslAuthenticate request. `Debug` prints the token's length only.
#[derive(Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SaslAuthenticateRequest {
    /// The client's SASL token, as the mechanism defines it. Secret.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::primitives::arb::bytes))]
    pub auth_bytes: Bytes,
    /// v2+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Message for SaslAuthenticateRequest {
    const API_KEY: ApiKey = ApiKey::SaslAuthenticate;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        buf.put_bytes_field(flexible, &self.auth_bytes, "SaslAuthenticateRequest.auth_bytes")?;
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut m = SaslAuthenticateRequest {
            auth_bytes: d.bytes(flexible, "SaslAuthenticateRequest.auth_bytes")?,
            ..Default::default()
        };
        if flexible {
            m.tagged_fields = d.unknown_tagged_fields()?;
        }
        Ok(m)
    }
}

/// SaslAuthenticate response. `Debug` prints the token's length only.
#[derive(Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SaslAuthenticateResponse {
    /// The error code, 0 for none; `SASL_AUTHENTICATION_FAILED` (58) on bad credentials.
    pub error_code: i16,
    /// A message describing the error, `None` when there is none.
    pub error_message: Option<String>,
    /// The broker's SASL token, as the mechanism defines it. May be secret.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::primitives::arb::bytes))]
    pub auth_bytes: Bytes,
    /// v1+: milliseconds after which the session expires and the client must re-authenticate on
    /// the same connection (KIP-368); 0 when it never expires.
    pub session_lifetime_ms: i64,
    /// v2+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Message for SaslAuthenticateResponse {
    const API_KEY: ApiKey = ApiKey::SaslAuthenticate;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        buf.put_i16(self.error_code);
        buf.put_nullable_string(
            flexible,
            self.error_message.as_deref(),
            "SaslAuthenticateResponse.error_message",
        )?;
        buf.put_bytes_field(flexible, &self.auth_bytes, "SaslAuthenticateResponse.auth_bytes")?;
        if version >= 1 {
            buf.put_i64(self.session_lifetime_ms);
        }
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut m = SaslAuthenticateResponse {
            error_code: d.i16("SaslAuthenticateResponse.error_code")?,
            error_message: d.nullable_string(flexible, "SaslAuthenticateResponse.error_message")?,
            auth_bytes: d.bytes(flexible, "SaslAuthenticateResponse.auth_bytes")?,
            ..Default::default()
        };
        if version >= 1 {
            m.session_lifetime_ms = d.i64("SaslAuthenticateResponse.session_lifetime_ms")?;
        }
        if flexible {
            m.tagged_fields = d.unknown_tagged_fields()?;
        }
        Ok(m)
    }
}

/// Shows a secret's length in place of its content.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes redacted>", self.0)
    }
}

/// Shows unknown tagged fields as tags and lengths: their values could hold anything.
struct TagSummary<'a>(&'a TaggedFields);

impl fmt::Debug for TagSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0 .0.iter().map(|(tag, v)| (tag, Redacted(v.len()))))
            .finish()
    }
}

impl fmt::Debug for SaslAuthenticateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslAuthenticateRequest")
            .field("auth_bytes", &Redacted(self.auth_bytes.len()))
            .field("tagged_fields", &TagSummary(&self.tagged_fields))
            .finish()
    }
}

impl fmt::Debug for SaslAuthenticateResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslAuthenticateResponse")
            .field("error_code", &self.error_code)
            .field("error_message", &self.error_message)
            .field("auth_bytes", &Redacted(self.auth_bytes.len()))
            .field("session_lifetime_ms", &self.session_lifetime_ms)
            .field("tagged_fields", &TagSummary(&self.tagged_fields))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &[u8] = b"\0alice\0hunter2";

    #[test]
    fn request_bytes_v0_and_v2() {
        let req = SaslAuthenticateRequest {
            auth_bytes: Bytes::from_static(PLAIN),
            tagged_fields: TaggedFields::default(),
        };
        let v0 = req.to_bytes(0).unwrap();
        assert_eq!(&v0[..4], b"\x00\x00\x00\x0e");
        assert_eq!(&v0[4..], PLAIN);
        assert_eq!(req.to_bytes(1).unwrap(), v0);
        let v2 = req.to_bytes(2).unwrap();
        assert_eq!(&v2[..1], b"\x0f");
        assert_eq!(&v2[1..15], PLAIN);
        assert_eq!(&v2[15..], b"\x00");
        assert_eq!(SaslAuthenticateRequest::decode_exact(v0, 0).unwrap(), req);
        assert_eq!(SaslAuthenticateRequest::decode_exact(v2, 2).unwrap(), req);
    }

    fn response() -> SaslAuthenticateResponse {
        SaslAuthenticateResponse {
            error_code: 0,
            error_message: None,
            auth_bytes: Bytes::new(),
            session_lifetime_ms: 3_600_000,
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn response_bytes_v0_v1_v2() {
        assert_eq!(
            &response().to_bytes(0).unwrap()[..],
            b"\x00\x00\xff\xff\x00\x00\x00\x00"
        );
        let v1: &[u8] = b"\x00\x00\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x36\xee\x80";
        assert_eq!(&response().to_bytes(1).unwrap()[..], v1);
        let v2: &[u8] = b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x36\xee\x80\x00";
        assert_eq!(&response().to_bytes(2).unwrap()[..], v2);
        let back = SaslAuthenticateResponse::decode_exact(Bytes::from_static(v2), 2).unwrap();
        assert_eq!(back, response());
        // v0 has no session lifetime; decoding it yields 0.
        let failed: &[u8] = b"\x00\x3a\x00\x03bad\x00\x00\x00\x00";
        let back = SaslAuthenticateResponse::decode_exact(Bytes::from_static(failed), 0).unwrap();
        assert_eq!(back.error_code, 58);
        assert_eq!(back.error_message.as_deref(), Some("bad"));
        assert_eq!(back.session_lifetime_ms, 0);
    }

    #[test]
    fn debug_does_not_leak_auth_bytes() {
        let req = SaslAuthenticateRequest {
            auth_bytes: Bytes::from_static(PLAIN),
            tagged_fields: TaggedFields(vec![(10_001, Bytes::from_static(b"hunter2"))]),
        };
        let resp = SaslAuthenticateResponse {
            auth_bytes: Bytes::from_static(b"v=c2VydmVyLXNpZ25hdHVyZQ=="),
            ..response()
        };
        for shown in [
            format!("{req:?}"),
            format!("{req:#?}"),
            format!("{resp:?}"),
            format!("{resp:#?}"),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!shown.contains("alice"), "{shown}");
            assert!(!shown.contains("c2VydmVy"), "{shown}");
            // Byte-list renderings (e.g. `104, 117`) must not appear either.
            assert!(!shown.contains("104"), "{shown}");
            assert!(shown.contains("bytes redacted"), "{shown}");
        }
        assert!(format!("{req:?}").contains("<14 bytes redacted>"));
        assert!(format!("{resp:?}").contains("<26 bytes redacted>"));
    }

    #[test]
    fn truncated_input_is_an_error() {
        let req = SaslAuthenticateRequest {
            auth_bytes: Bytes::from_static(PLAIN),
            tagged_fields: TaggedFields::default(),
        };
        for version in [0, 2] {
            let full = req.to_bytes(version).unwrap();
            for n in 0..full.len() {
                assert!(SaslAuthenticateRequest::decode_exact(full.slice(..n), version).is_err());
            }
            let full = response().to_bytes(version).unwrap();
            for n in 0..full.len() {
                assert!(SaslAuthenticateResponse::decode_exact(full.slice(..n), version).is_err());
            }
        }
    }
}
