//! Tagged-field sections of flexible versions (KIP-482).
//!
//! A flexible struct ends with a count of tagged fields, then for each a tag, a size and the value.
//! Tags this crate knows are decoded into named struct fields by the message code; the rest are kept
//! here as raw bytes and written back unchanged, so a decode/encode round trip loses nothing.

use bytes::{Bytes, BytesMut};

use super::{Decoder, Encoder};
use crate::error::{ProtocolError, Result};

/// Tagged fields not known to this crate, in ascending tag order, with their raw values.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct TaggedFields(pub Vec<(u32, Bytes)>);

impl TaggedFields {
    /// True when there are no unknown tagged fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Writes a tagged-field section holding only these unknown fields.
    pub fn encode(&self, buf: &mut BytesMut) -> Result<()> {
        self.encode_with(buf, Vec::new())
    }

    /// Writes a tagged-field section holding `known` fields (already encoded, each as `(tag, value)`)
    /// merged with these unknown ones in ascending tag order.
    pub fn encode_with(&self, buf: &mut BytesMut, mut known: Vec<(u32, Bytes)>) -> Result<()> {
        if known.is_empty() {
            write_section(buf, &self.0)
        } else {
            known.extend(self.0.iter().cloned());
            known.sort_by_key(|(tag, _)| *tag);
            write_section(buf, &known)
        }
    }
}

fn write_section(buf: &mut BytesMut, fields: &[(u32, Bytes)]) -> Result<()> {
    let count = u32::try_from(fields.len()).map_err(|_| ProtocolError::TooLong {
        what: "tagged fields",
        length: fields.len(),
    })?;
    buf.put_uvarint(count);
    for (tag, value) in fields {
        let size = u32::try_from(value.len()).map_err(|_| ProtocolError::TooLong {
            what: "tagged field",
            length: value.len(),
        })?;
        buf.put_uvarint(*tag);
        buf.put_uvarint(size);
        buf.extend_from_slice(value);
    }
    Ok(())
}

/// Reads the tagged-field section that ends every struct in flexible versions; older versions
/// have none, and get an empty set.
#[inline]
pub fn tags(d: &mut Decoder, flexible: bool) -> Result<TaggedFields> {
    if flexible {
        d.unknown_tagged_fields()
    } else {
        Ok(TaggedFields::default())
    }
}

/// Writes `fields` as a tagged-field section in flexible versions; older versions have none.
#[inline]
pub fn put_tags(buf: &mut BytesMut, flexible: bool, fields: &TaggedFields) -> Result<()> {
    if flexible {
        fields.encode(buf)?;
    }
    Ok(())
}

/// Encodes one known tagged field's value into its own buffer, ready for
/// [`TaggedFields::encode_with`].
pub fn tagged_value(
    tag: u32,
    write: impl FnOnce(&mut BytesMut) -> Result<()>,
) -> Result<(u32, Bytes)> {
    let mut b = BytesMut::new();
    write(&mut b)?;
    Ok((tag, b.freeze()))
}

impl Decoder {
    /// Reads a tagged-field section.
    ///
    /// `known` is offered each field's tag with a decoder over exactly its value; it returns
    /// `Ok(true)` when it decoded the field into the message, `Ok(false)` to keep the field raw.
    ///
    /// Tags must come in strictly ascending order, as KIP-482 requires and Kafka writes them: a
    /// repeated or out-of-order tag is an error. (Accepting them would let a known field be set twice,
    /// and unknown fields could not be written back in their order once merged with known ones.)
    pub fn tagged_fields(
        &mut self,
        mut known: impl FnMut(u32, &mut Decoder) -> Result<bool>,
    ) -> Result<TaggedFields> {
        let count = self.uvarint("tagged field count")? as usize;
        // Each field takes at least two bytes (tag and size).
        if count > self.remaining() / 2 {
            return Err(ProtocolError::InvalidLength {
                what: "tagged field count",
                length: count as i64,
            });
        }
        let mut unknown = Vec::new();
        let mut previous: Option<u32> = None;
        for _ in 0..count {
            let tag = self.uvarint("tagged field tag")?;
            if previous.is_some_and(|p| tag <= p) {
                return Err(ProtocolError::InvalidValue {
                    what: "tagged field tag (tags must be in ascending order)",
                    value: i64::from(tag),
                });
            }
            previous = Some(tag);
            let size = self.uvarint("tagged field size")? as usize;
            let value = self.raw(size, "tagged field value")?;
            let mut sub = Decoder::new(value.clone());
            if !known(tag, &mut sub)? {
                unknown.push((tag, value));
            }
        }
        Ok(TaggedFields(unknown))
    }

    /// Reads a tagged-field section in which no tag is known.
    pub fn unknown_tagged_fields(&mut self) -> Result<TaggedFields> {
        self.tagged_fields(|_, _| Ok(false))
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for TaggedFields {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        // Unknown tags are drawn from a range no message uses, so they stay unknown on decode.
        let n = u.int_in_range(0..=2)?;
        let mut fields = Vec::with_capacity(n);
        let mut tag = 10_000u32;
        for _ in 0..n {
            tag += u.int_in_range(1..=1000)?;
            let value: Vec<u8> = u.arbitrary()?;
            fields.push((tag, Bytes::from(value)));
        }
        Ok(TaggedFields(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(section: &'static [u8]) -> Result<TaggedFields> {
        Decoder::new(Bytes::from_static(section)).unknown_tagged_fields()
    }

    #[test]
    fn ascending_tags_are_kept_in_order() {
        let fields = decode(&[2, 3, 1, 0xaa, 30, 0]).unwrap();
        assert_eq!(
            fields.0,
            vec![(3, Bytes::from_static(&[0xaa])), (30, Bytes::new())]
        );
    }

    #[test]
    fn out_of_order_and_repeated_tags_are_refused() {
        // Found by the response_decoders fuzzer: tags 30 then 2 decoded, but re-encoding sorts the
        // unknown tags among the known ones, so decode -> encode -> decode changed the value.
        for section in [&[2, 30, 1, 0x3f, 2, 0][..], &[2, 5, 0, 5, 0]] {
            let mut d = Decoder::new(Bytes::from_static(section));
            assert!(
                matches!(
                    d.unknown_tagged_fields(),
                    Err(ProtocolError::InvalidValue { .. })
                ),
                "{section:?}"
            );
        }
    }
}
