//! Records as JSON lines: text where the bytes are UTF-8, base64 where they are not (and a
//! `*_encoding` field saying so).

use serde_json::{Map, Value};

use kbus::consumer::ConsumerRecord;

/// One record as a JSON object: topic, partition, offset, timestamp, key, value, headers.
pub fn record(r: &ConsumerRecord) -> Value {
    let mut o = Map::new();
    o.insert("topic".into(), r.topic.as_ref().into());
    o.insert("partition".into(), r.partition.into());
    o.insert("offset".into(), r.offset.into());
    o.insert("timestamp".into(), r.timestamp.into());
    bytes_field(&mut o, "key", r.key.as_deref());
    bytes_field(&mut o, "value", r.value.as_deref());
    let headers: Vec<Value> = r
        .headers
        .iter()
        .map(|h| {
            let mut ho = Map::new();
            bytes_field(&mut ho, "key", Some(&h.key));
            bytes_field(&mut ho, "value", h.value.as_deref());
            Value::Object(ho)
        })
        .collect();
    o.insert("headers".into(), Value::Array(headers));
    Value::Object(o)
}

/// `name`: the bytes as text, or null; base64 with `name_encoding: "base64"` when not UTF-8.
fn bytes_field(o: &mut Map<String, Value>, name: &str, bytes: Option<&[u8]>) {
    match bytes {
        None => {
            o.insert(name.into(), Value::Null);
        }
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => {
                o.insert(name.into(), text.into());
            }
            Err(_) => {
                o.insert(name.into(), base64(b).into());
                o.insert(format!("{name}_encoding"), "base64".into());
            }
        },
    }
}

/// Standard base64 with padding (RFC 4648).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_base64_and_said_so() {
        let mut o = Map::new();
        bytes_field(&mut o, "value", Some(&[0xff, 0x00]));
        bytes_field(&mut o, "key", Some(b"k"));
        bytes_field(&mut o, "none", None);
        assert_eq!(
            Value::Object(o),
            serde_json::json!({"value": "/wA=", "value_encoding": "base64", "key": "k", "none": null})
        );
    }
}
