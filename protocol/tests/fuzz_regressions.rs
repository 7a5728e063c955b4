//! Inputs the fuzzers in `fuzz/` found, minimized, each replayed through the public API with the
//! property it once broke. The bytes are the message bodies (the fuzz input without the 4 bytes that
//! chose the API and version).

use bytes::{Bytes, BytesMut};
use kbus_protocol::{AnyRequest, AnyResponse, ApiKey, Decoder, ProtocolError};

/// A tagged-field section with out-of-order or repeated tags used to decode; merged with the known
/// tagged fields on re-encoding, the unknown ones came back in another order, so decode → encode →
/// decode changed the value. Tags must ascend strictly (KIP-482); such a section is now an error.
fn assert_unordered_tags_refused(result: Result<impl std::fmt::Debug, ProtocolError>) {
    match result {
        Err(ProtocolError::InvalidValue { what, .. }) if what.starts_with("tagged field tag") => {}
        other => panic!("unordered tagged fields were not refused: {other:?}"),
    }
}

#[test]
fn create_topics_response_v6_with_unordered_tags_is_refused() {
    // response_decoders: CreateTopics v6; a topic result's tags are 30, 0 (known), 2.
    const BODY: &[u8] = &[
        0x02, 0x01, 0x00, 0x00, 0x03, 0x01, 0x01, 0x5d, 0x01, 0x01, 0x80, 0xff, 0xff, 0xff, 0x02,
        0x00, 0x03, 0x1e, 0x01, 0x3f, 0x00, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
        0x02, 0x02, 0x02, 0x02, 0x02, 0x00, 0x03, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x00,
    ];
    let mut d = Decoder::new(Bytes::from_static(BODY));
    assert_unordered_tags_refused(AnyResponse::decode(ApiKey::CreateTopics, 6, &mut d));
}

#[test]
fn fetch_request_v14_with_unordered_tags_is_refused() {
    // request_decoders: Fetch v14; the request's top-level tags are 8, 42, 8, ...
    const BODY: &[u8] = &[
        0x00, 0x00, 0xfe, 0xff, 0x01, 0x00, 0x00, 0xc1, 0x00, 0x00, 0x01, 0x58, 0xfe, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x01, 0x01, 0x0a, 0x00, 0x08,
        0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0xa8, 0x08, 0x08, 0x08,
        0x08, 0x08, 0x08, 0x08, 0x00, 0x00, 0x08, 0x08, 0x08, 0x08, 0x08, 0x00, 0x00, 0x08, 0x08,
        0x08, 0x00, 0xff, 0xff, 0x00, 0x00, 0xff, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0xff,
        0x08, 0xff, 0xff, 0x00, 0x00, 0xff, 0x00, 0x00,
    ];
    let mut d = Decoder::new(Bytes::from_static(BODY));
    assert_unordered_tags_refused(AnyRequest::decode(ApiKey::Fetch, 14, &mut d));
}

#[test]
fn ordered_tags_still_round_trip() {
    // Heartbeat v4 request: group "g", generation 1, member "m", no instance id, then a tagged
    // section with unknown tags 3 and 7, in order.
    const BODY: &[u8] = &[
        0x02, b'g', 0x00, 0x00, 0x00, 0x01, 0x02, b'm', 0x00, 0x02, 0x03, 0x01, 0xaa, 0x07, 0x00,
    ];
    let mut d = Decoder::new(Bytes::from_static(BODY));
    let request = AnyRequest::decode(ApiKey::Heartbeat, 4, &mut d).unwrap();
    assert!(d.is_empty());
    let mut again = BytesMut::new();
    request.encode(&mut again, 4).unwrap();
    assert_eq!(&again[..], BODY);
}
