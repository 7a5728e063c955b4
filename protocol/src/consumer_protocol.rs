//! The byte formats of the `consumer` protocol type, carried opaquely inside JoinGroup and
//! SyncGroup: a member's [`Subscription`] (its JoinGroup protocol metadata) and the leader's
//! [`Assignment`] for each member (SyncGroup assignment bytes).
//!
//! Both start with an `INT16` version and then use the non-flexible encodings: `INT16`-length
//! strings, `INT32` array counts, `INT32`-length nullable bytes. The layouts, by version:
//!
//! | version | subscription adds | assignment |
//! |---|---|---|
//! | 0 | topics, user data | partitions by topic, user data |
//! | 1 | owned partitions (by topic) | same as v0 |
//! | 2 | generation id | same as v0 |
//! | 3 | rack id | same as v0 |
//!
//! A version above the newest one known here is read as that newest version and the bytes after
//! the fields it defines are ignored: a newer version only ever appends fields, which is how Kafka
//! keeps old group leaders working with newer members. For the same reason, and as Kafka's own
//! reader does, bytes after the known fields are ignored at every version.
//!
//! Partitions are grouped by topic on the wire and listed flat in [`Subscription::owned_partitions`]
//! and [`Assignment::partitions`]. Decoding keeps the wire order; encoding groups by topic in order
//! of first appearance. Bytes that name a topic twice, or a topic with no partitions, therefore
//! decode to a value whose encoding differs from them, and that value encodes and decodes back to
//! itself once its partitions are grouped (Kafka's own writer groups them too).
//!
//! These bytes come from other members of a group, through the coordinator, so they are as hostile
//! as anything on the wire: decoding never panics, and every count is checked against the bytes
//! left before anything is allocated. Turning a [`Subscription`] into what an assignor reads is the
//! client's business (`kbus_client::group::consumer_protocol`).

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};

use crate::{Decoder, Encoder, ProtocolError, TopicPartition};

/// The protocol type consumer groups announce in JoinGroup.
pub const PROTOCOL_TYPE: &str = "consumer";

/// The newest subscription version this module reads and writes.
pub const SUBSCRIPTION_MAX_VERSION: i16 = 3;

/// The newest assignment version this module reads and writes.
pub const ASSIGNMENT_MAX_VERSION: i16 = 3;

/// Kafka's limit on topic name length. Owned and assigned partitions repeat their topic name once
/// per partition in memory, so a longer name would let a few wire bytes claim much more memory than
/// they justify; no topic with such a name can exist, so it is rejected.
const MAX_TOPIC_NAME_LEN: usize = 249;

/// What one member sends in JoinGroup under the `consumer` protocol type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The topics it subscribes to (v0+).
    pub topics: Vec<String>,
    /// Assignor-specific bytes (v0+).
    pub user_data: Option<Bytes>,
    /// The partitions it owned in the generation it last joined (v1+; empty before).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation those partitions were owned in (v2+; -1 when unknown or older).
    pub generation_id: i32,
    /// Its rack, `client.rack` (v3+; `None` before).
    pub rack_id: Option<String>,
}

impl Default for Subscription {
    fn default() -> Self {
        Subscription {
            topics: Vec::new(),
            user_data: None,
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
        }
    }
}

impl Subscription {
    /// A subscription to `topics` with no owned partitions, no user data, no rack and generation -1.
    pub fn new<I, S>(topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Subscription {
            topics: topics.into_iter().map(Into::into).collect(),
            ..Subscription::default()
        }
    }

    /// Writes the subscription at `version`, as [`Subscription::try_encode`] does.
    ///
    /// A version above [`SUBSCRIPTION_MAX_VERSION`] is written as that version and a negative one as
    /// version 0, so this never fails on the version.
    ///
    /// # Panics
    /// Only on values no Kafka cluster accepts: a topic name or rack id longer than 32,767 bytes, or
    /// user data of 2 GiB or more. Use [`Subscription::try_encode`] when those come from outside.
    pub fn encode(&self, version: i16) -> Bytes {
        match self.try_encode(version.max(0)) {
            Ok(b) => b,
            Err(e) => panic!("consumer protocol subscription cannot be encoded: {e}"),
        }
    }

    /// Writes the subscription at `version`.
    ///
    /// Fields the version does not have are left out. A version above
    /// [`SUBSCRIPTION_MAX_VERSION`] is written as that version (as Kafka's client does); a negative
    /// version, or a string or bytes field too long for its length prefix, is an error.
    pub fn try_encode(&self, version: i16) -> Result<Bytes, ProtocolError> {
        let version = check_version(version, "consumer protocol subscription version")?
            .min(SUBSCRIPTION_MAX_VERSION);
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        buf.put_array(false, &self.topics, "subscription topics", |b, t| {
            b.put_string(false, t, "subscription topic")
        })?;
        buf.put_nullable_bytes(false, self.user_data.as_deref(), "subscription user data")?;
        if version >= 1 {
            put_topic_partitions(
                &mut buf,
                &self.owned_partitions,
                "subscription owned partitions",
            )?;
        }
        if version >= 2 {
            buf.put_i32(self.generation_id);
        }
        if version >= 3 {
            buf.put_nullable_string(false, self.rack_id.as_deref(), "subscription rack id")?;
        }
        Ok(buf.freeze())
    }

    /// Reads a subscription; the version is its first `INT16`.
    ///
    /// User data is sliced out of `buf` without copying. A negative version is an error; a version
    /// above [`SUBSCRIPTION_MAX_VERSION`] is read as far as that version goes.
    pub fn decode(buf: Bytes) -> Result<Subscription, ProtocolError> {
        let mut d = Decoder::new(buf);
        let version = d.i16("consumer protocol subscription version")?;
        let version = check_version(version, "consumer protocol subscription version")?
            .min(SUBSCRIPTION_MAX_VERSION);
        let topics = d.array(false, "subscription topics", |d| {
            d.string(false, "subscription topic")
        })?;
        let user_data = d.nullable_bytes(false, "subscription user data")?;
        let owned_partitions = if version >= 1 {
            read_topic_partitions(&mut d, "subscription owned partitions")?
        } else {
            Vec::new()
        };
        let generation_id = if version >= 2 {
            d.i32("subscription generation id")?
        } else {
            -1
        };
        let rack_id = if version >= 3 {
            d.nullable_string(false, "subscription rack id")?
        } else {
            None
        };
        Ok(Subscription {
            topics,
            user_data,
            owned_partitions,
            generation_id,
            rack_id,
        })
    }
}

/// What the leader gives one member in SyncGroup under the `consumer` protocol type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// The partitions the member is to consume. On the wire they are grouped by topic: topics in the
    /// order of their first appearance here, each topic's partitions in the order they appear.
    pub partitions: Vec<TopicPartition>,
    /// Assignor-specific bytes.
    pub user_data: Option<Bytes>,
}

impl Assignment {
    /// An assignment of `partitions` with no user data.
    pub fn new(partitions: Vec<TopicPartition>) -> Self {
        Assignment {
            partitions,
            user_data: None,
        }
    }

    /// Writes the assignment at `version`, as [`Assignment::try_encode`] does.
    ///
    /// A version above [`ASSIGNMENT_MAX_VERSION`] is written as that version and a negative one as
    /// version 0, so this never fails on the version.
    ///
    /// # Panics
    /// Only on values no Kafka cluster accepts: a topic name longer than 32,767 bytes, or user data
    /// of 2 GiB or more. Use [`Assignment::try_encode`] when those come from outside.
    pub fn encode(&self, version: i16) -> Bytes {
        match self.try_encode(version.max(0)) {
            Ok(b) => b,
            Err(e) => panic!("consumer protocol assignment cannot be encoded: {e}"),
        }
    }

    /// Writes the assignment at `version`. Every version has the same content: the partitions
    /// grouped by topic, then the user data. A version above [`ASSIGNMENT_MAX_VERSION`] is written as
    /// that version; a negative version, or a field too long for its length prefix, is an error.
    pub fn try_encode(&self, version: i16) -> Result<Bytes, ProtocolError> {
        let version = check_version(version, "consumer protocol assignment version")?
            .min(ASSIGNMENT_MAX_VERSION);
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        put_topic_partitions(&mut buf, &self.partitions, "assignment partitions")?;
        buf.put_nullable_bytes(false, self.user_data.as_deref(), "assignment user data")?;
        Ok(buf.freeze())
    }

    /// Reads an assignment; the version is its first `INT16`.
    ///
    /// Empty bytes are an empty assignment: coordinators send them to members the leader gave
    /// nothing. A negative version is an error; a version above [`ASSIGNMENT_MAX_VERSION`] is read as
    /// that version.
    pub fn decode(buf: Bytes) -> Result<Assignment, ProtocolError> {
        if buf.is_empty() {
            return Ok(Assignment::default());
        }
        let mut d = Decoder::new(buf);
        let version = d.i16("consumer protocol assignment version")?;
        check_version(version, "consumer protocol assignment version")?;
        let partitions = read_topic_partitions(&mut d, "assignment partitions")?;
        let user_data = d.nullable_bytes(false, "assignment user data")?;
        Ok(Assignment {
            partitions,
            user_data,
        })
    }
}

fn check_version(version: i16, what: &'static str) -> Result<i16, ProtocolError> {
    if version < 0 {
        Err(ProtocolError::InvalidValue {
            what,
            value: i64::from(version),
        })
    } else {
        Ok(version)
    }
}

/// Writes `partitions` as an array of (topic, array of partition ids), grouping by topic in order
/// of first appearance. `what` names the field in errors (`subscription owned`, `assignment`).
fn put_topic_partitions(
    buf: &mut BytesMut,
    partitions: &[TopicPartition],
    what: &'static str,
) -> Result<(), ProtocolError> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<(&str, Vec<i32>)> = Vec::new();
    for tp in partitions {
        let i = *index.entry(tp.topic.as_str()).or_insert_with(|| {
            groups.push((tp.topic.as_str(), Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(tp.partition);
    }
    buf.put_array(false, &groups, what, |b, (topic, ids)| {
        b.put_string(false, topic, what)?;
        b.put_array(false, ids, what, |b, id| {
            b.put_i32(*id);
            Ok(())
        })
    })
}

/// Reads an array of (topic, array of partition ids) into a flat list, in wire order.
fn read_topic_partitions(
    d: &mut Decoder,
    what: &'static str,
) -> Result<Vec<TopicPartition>, ProtocolError> {
    let topics = d.array_len(false, what)?;
    let mut out = Vec::new();
    for _ in 0..topics {
        let topic = d.string(false, what)?;
        if topic.len() > MAX_TOPIC_NAME_LEN {
            return Err(ProtocolError::InvalidLength {
                what,
                length: topic.len() as i64,
            });
        }
        let n = d.array_len(false, what)?;
        // The count was checked against the bytes left; each id takes four of them, so reserving
        // for all of them is what the input justifies.
        out.reserve(n.min(d.remaining() / 4));
        for _ in 0..n {
            let partition = d.i32(what)?;
            out.push(TopicPartition::new(topic.clone(), partition));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    fn full_subscription() -> Subscription {
        Subscription {
            topics: vec!["orders".into(), "payments".into()],
            user_data: Some(Bytes::from_static(b"\x00\x01ud")),
            owned_partitions: vec![tp("orders", 0), tp("orders", 3), tp("payments", 1)],
            generation_id: 7,
            rack_id: Some("eu-west-1a".into()),
        }
    }

    /// What survives a round trip at `version`: fields the version lacks take their defaults.
    fn as_of(s: &Subscription, version: i16) -> Subscription {
        Subscription {
            topics: s.topics.clone(),
            user_data: s.user_data.clone(),
            owned_partitions: if version >= 1 {
                s.owned_partitions.clone()
            } else {
                Vec::new()
            },
            generation_id: if version >= 2 { s.generation_id } else { -1 },
            rack_id: if version >= 3 {
                s.rack_id.clone()
            } else {
                None
            },
        }
    }

    #[test]
    fn subscription_round_trips_at_every_version() {
        let s = full_subscription();
        for version in 0..=SUBSCRIPTION_MAX_VERSION {
            let bytes = s.encode(version);
            assert_eq!(&bytes[..2], &version.to_be_bytes());
            let back = Subscription::decode(bytes).unwrap();
            assert_eq!(back, as_of(&s, version), "version {version}");
        }
    }

    #[test]
    fn subscription_round_trips_nulls_and_empties() {
        let s = Subscription::new(Vec::<String>::new());
        for version in 0..=SUBSCRIPTION_MAX_VERSION {
            assert_eq!(Subscription::decode(s.encode(version)).unwrap(), s);
        }
        let s = Subscription {
            user_data: Some(Bytes::new()),
            rack_id: Some(String::new()),
            ..Subscription::new(["t"])
        };
        assert_eq!(Subscription::decode(s.encode(3)).unwrap(), s);
    }

    #[test]
    fn subscription_v0_bytes_by_hand() {
        let s = Subscription {
            topics: vec!["ab".into(), "c".into()],
            user_data: Some(Bytes::from_static(&[1, 2, 3])),
            // Not in v0: must not be written.
            owned_partitions: vec![tp("ab", 0)],
            generation_id: 4,
            rack_id: Some("r".into()),
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0,             // version 0
            0, 0, 0, 2,       // two topics
            0, 2, b'a', b'b', // "ab"
            0, 1, b'c',       // "c"
            0, 0, 0, 3,       // user data: three bytes
            1, 2, 3,
        ];
        assert_eq!(&s.encode(0)[..], expected);
        let back = Subscription::decode(Bytes::from_static(expected)).unwrap();
        assert_eq!(back.topics, ["ab", "c"]);
        assert_eq!(back.user_data.as_deref(), Some(&[1u8, 2, 3][..]));
        assert!(back.owned_partitions.is_empty());
        assert_eq!(back.generation_id, -1);
        assert_eq!(back.rack_id, None);
    }

    #[test]
    fn subscription_v3_bytes_by_hand() {
        let s = Subscription {
            topics: vec!["t".into()],
            user_data: None,
            owned_partitions: vec![tp("t", 2)],
            generation_id: 5,
            rack_id: None,
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 3,                // version 3
            0, 0, 0, 1, 0, 1, b't', // topics ["t"]
            0xff, 0xff, 0xff, 0xff, // user data null
            0, 0, 0, 1,          // one owned topic
            0, 1, b't',          // "t"
            0, 0, 0, 1, 0, 0, 0, 2, // partitions [2]
            0, 0, 0, 5,          // generation 5
            0xff, 0xff,          // rack null
        ];
        assert_eq!(&s.encode(3)[..], expected);
        assert_eq!(
            Subscription::decode(Bytes::from_static(expected)).unwrap(),
            s
        );
    }

    #[test]
    fn assignment_v1_bytes_by_hand() {
        let a = Assignment {
            partitions: vec![tp("t0", 0), tp("x", 1), tp("t0", 2)],
            user_data: None,
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 1,                   // version 1
            0, 0, 0, 2,             // two topics
            0, 2, b't', b'0',       // "t0"
            0, 0, 0, 2,             // two partitions
            0, 0, 0, 0,             // 0
            0, 0, 0, 2,             // 2
            0, 1, b'x',             // "x"
            0, 0, 0, 1,             // one partition
            0, 0, 0, 1,             // 1
            0xff, 0xff, 0xff, 0xff, // user data null
        ];
        assert_eq!(&a.encode(1)[..], expected);
        let back = Assignment::decode(Bytes::from_static(expected)).unwrap();
        // Grouped by topic on the wire, so the order is the grouped one.
        assert_eq!(back.partitions, [tp("t0", 0), tp("t0", 2), tp("x", 1)]);
        assert_eq!(back.user_data, None);
    }

    #[test]
    fn a_topic_named_twice_decodes_in_wire_order_and_encodes_grouped() {
        #[rustfmt::skip]
        let wire: &[u8] = &[
            0, 0,                   // version 0
            0, 0, 0, 3,             // three topic entries
            0, 1, b'a', 0, 0, 0, 1, 0, 0, 0, 0, // "a": [0]
            0, 1, b'b', 0, 0, 0, 1, 0, 0, 0, 1, // "b": [1]
            0, 1, b'a', 0, 0, 0, 1, 0, 0, 0, 2, // "a" again: [2]
            0xff, 0xff, 0xff, 0xff, // user data null
        ];
        let a = Assignment::decode(Bytes::from_static(wire)).unwrap();
        assert_eq!(a.partitions, [tp("a", 0), tp("b", 1), tp("a", 2)]);
        let grouped = Assignment::decode(a.encode(0)).unwrap();
        assert_eq!(grouped.partitions, [tp("a", 0), tp("a", 2), tp("b", 1)]);
        assert_eq!(Assignment::decode(grouped.encode(0)).unwrap(), grouped);
    }

    #[test]
    fn assignment_round_trips_at_every_version() {
        let a = Assignment {
            partitions: vec![tp("a", 0), tp("a", 1), tp("b", 5)],
            user_data: Some(Bytes::from_static(b"meta")),
        };
        for version in 0..=ASSIGNMENT_MAX_VERSION {
            let bytes = a.encode(version);
            assert_eq!(&bytes[..2], &version.to_be_bytes());
            assert_eq!(Assignment::decode(bytes).unwrap(), a, "version {version}");
        }
        let empty = Assignment::default();
        assert_eq!(Assignment::decode(empty.encode(0)).unwrap(), empty);
    }

    #[test]
    fn empty_assignment_bytes_are_an_empty_assignment() {
        assert_eq!(
            Assignment::decode(Bytes::new()).unwrap(),
            Assignment::default()
        );
    }

    #[test]
    fn user_data_is_not_copied() {
        let s = full_subscription();
        let bytes = s.encode(3);
        let back = Subscription::decode(bytes.clone()).unwrap();
        let ud = back.user_data.unwrap();
        let start = bytes.as_ptr() as usize;
        let at = ud.as_ptr() as usize;
        assert!(at >= start && at + ud.len() <= start + bytes.len());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let s = full_subscription();
        for version in 0..=SUBSCRIPTION_MAX_VERSION {
            let bytes = s.encode(version);
            for cut in 0..bytes.len() {
                assert!(
                    Subscription::decode(bytes.slice(..cut)).is_err(),
                    "subscription v{version} cut at {cut}"
                );
            }
        }
        let a = Assignment {
            partitions: vec![tp("a", 0), tp("b", 1)],
            user_data: Some(Bytes::from_static(b"xy")),
        };
        let bytes = a.encode(0);
        // Zero bytes is the empty assignment; every other cut is an error.
        for cut in 1..bytes.len() {
            assert!(
                Assignment::decode(bytes.slice(..cut)).is_err(),
                "assignment cut at {cut}"
            );
        }
    }

    #[test]
    fn errors_name_the_field() {
        let bytes = full_subscription().encode(3);
        let err = Subscription::decode(bytes.slice(..bytes.len() - 3)).unwrap_err();
        assert!(err.to_string().contains("rack id"), "{err}");
    }

    #[test]
    fn higher_versions_decode_as_far_as_known() {
        let s = full_subscription();
        let mut future = BytesMut::new();
        future.put_i16(9);
        future.extend_from_slice(&s.encode(3)[2..]);
        future.extend_from_slice(b"fields from the future");
        assert_eq!(Subscription::decode(future.freeze()).unwrap(), s);

        let a = Assignment::new(vec![tp("t", 1)]);
        let mut future = BytesMut::new();
        future.put_i16(i16::MAX);
        future.extend_from_slice(&a.encode(0)[2..]);
        future.extend_from_slice(&[0xde, 0xad]);
        assert_eq!(Assignment::decode(future.freeze()).unwrap(), a);
    }

    #[test]
    fn encoding_above_the_newest_version_writes_the_newest() {
        let s = full_subscription();
        assert_eq!(s.encode(42), s.encode(SUBSCRIPTION_MAX_VERSION));
        let a = Assignment::new(vec![tp("t", 1)]);
        assert_eq!(a.encode(42), a.encode(ASSIGNMENT_MAX_VERSION));
    }

    #[test]
    fn negative_versions_are_errors() {
        assert!(matches!(
            Subscription::decode(Bytes::from_static(&[0xff, 0xff, 0, 0, 0, 0])),
            Err(ProtocolError::InvalidValue { value: -1, .. })
        ));
        assert!(Assignment::decode(Bytes::from_static(&[0x80, 0, 0, 0, 0, 0])).is_err());
        assert!(full_subscription().try_encode(-1).is_err());
        assert_eq!(
            full_subscription().encode(-1),
            full_subscription().encode(0)
        );
    }

    #[test]
    fn hostile_counts_and_lengths_are_errors() {
        // Two billion topics in six bytes.
        assert!(Subscription::decode(Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff])).is_err());
        // A null topic list.
        assert!(Subscription::decode(Bytes::from_static(&[0, 0, 0xff, 0xff, 0xff, 0xff])).is_err());
        // A negative string length.
        assert!(Subscription::decode(Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0xff, 0xfe])).is_err());
        // An assignment whose partition count claims more than is left.
        assert!(Assignment::decode(Bytes::from_static(&[
            0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0x10, 0, 0, 0, 0, 0, 0
        ]))
        .is_err());
    }

    #[test]
    fn topic_names_longer_than_kafka_allows_are_rejected_where_they_would_be_repeated() {
        let long = "x".repeat(MAX_TOPIC_NAME_LEN + 1);
        let a = Assignment::new(vec![tp(&long, 0), tp(&long, 1)]);
        assert!(matches!(
            Assignment::decode(a.encode(0)),
            Err(ProtocolError::InvalidLength { .. })
        ));
        let ok = "x".repeat(MAX_TOPIC_NAME_LEN);
        let a = Assignment::new(vec![tp(&ok, 0)]);
        assert_eq!(Assignment::decode(a.encode(0)).unwrap(), a);
    }

    #[test]
    fn invalid_utf8_topic_is_an_error() {
        assert!(matches!(
            Subscription::decode(Bytes::from_static(&[
                0, 0, 0, 0, 0, 1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff
            ])),
            Err(ProtocolError::InvalidUtf8 { .. })
        ));
    }
}
