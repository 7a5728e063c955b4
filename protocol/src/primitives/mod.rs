//! Kafka's primitive types: fixed-width integers, varints, UUIDs, strings, bytes, arrays and tagged
//! fields, each in its plain, nullable, compact and compact-nullable form.

mod decoder;
mod encoder;
mod tagged;
pub mod varint;

pub use decoder::Decoder;
pub use encoder::Encoder;
pub use tagged::{put_tags, tagged_value, tags, TaggedFields};

use std::fmt;

/// A Kafka `UUID` (topic ids, client instance ids), 16 raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero UUID, which Kafka uses for "no id".
    pub const NIL: Uuid = Uuid([0; 16]);

    /// True for the all-zero UUID.
    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for Uuid {
    /// The canonical lowercase hyphenated form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

/// Helpers that let `#[derive(Arbitrary)]` fill `Bytes` fields (used by property tests and fuzzers).
#[cfg(feature = "arbitrary")]
pub mod arb {
    use arbitrary::{Result, Unstructured};
    use bytes::Bytes;

    /// Arbitrary `Bytes`.
    pub fn bytes(u: &mut Unstructured<'_>) -> Result<Bytes> {
        Ok(Bytes::from(u.arbitrary::<Vec<u8>>()?))
    }

    /// Arbitrary `Option<Bytes>`.
    pub fn opt_bytes(u: &mut Unstructured<'_>) -> Result<Option<Bytes>> {
        Ok(if u.arbitrary()? {
            Some(bytes(u)?)
        } else {
            None
        })
    }
}
