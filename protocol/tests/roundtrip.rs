//! Property test: every message at every supported version round-trips.
//!
//! For many arbitrary values of each request and response type, and every version this crate
//! supports: encode, decode (which must consume every byte), encode again — the bytes must be
//! identical and the decoded values equal. Fields a version lacks are dropped by the first encode,
//! so the value compared is the one that version can carry.
#![cfg(feature = "arbitrary")]

use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;
use kbus_protocol::{Decoder, Message};

/// A small deterministic generator, so failures reproduce from the printed seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn fill(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

const CASES: u64 = 300;

fn round_trip<M>()
where
    M: Message + for<'a> Arbitrary<'a> + PartialEq + std::fmt::Debug,
{
    let range = M::API_KEY.supported();
    for version in range.min..=range.max {
        for seed in 1..=CASES {
            let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ version as u64);
            let len = (rng.next() % 4096) as usize;
            let data = rng.fill(len);
            let Ok(original) = M::arbitrary(&mut Unstructured::new(&data)) else {
                continue;
            };
            let name = std::any::type_name::<M>();
            let mut first = BytesMut::new();
            if let Err(e) = original.encode(&mut first, version) {
                // Only values that cannot be represented at all (a string over 32767 bytes) may
                // fail to encode; arbitrary values never get that long here.
                panic!("{name} v{version} seed {seed}: encode failed: {e}\n{original:#?}");
            }
            let first = first.freeze();
            let mut d = Decoder::new(first.clone());
            let decoded = M::decode(&mut d, version).unwrap_or_else(|e| {
                panic!("{name} v{version} seed {seed}: decode failed: {e}\n{original:#?}")
            });
            assert!(
                d.is_empty(),
                "{name} v{version} seed {seed}: {} bytes left",
                d.remaining()
            );
            let second = decoded.to_bytes(version).unwrap();
            assert_eq!(
                first, second,
                "{name} v{version} seed {seed}: re-encoding differs"
            );
            let again = M::decode_exact(second, version).unwrap();
            assert_eq!(
                decoded, again,
                "{name} v{version} seed {seed}: values differ"
            );
        }
    }
}

macro_rules! round_trip_pair {
    ($req:ty, $resp:ty) => {
        round_trip::<$req>();
        round_trip::<$resp>();
    };
}

#[test]
fn every_message_round_trips_at_every_version() {
    kbus_protocol::for_each_message!(round_trip_pair);
}
