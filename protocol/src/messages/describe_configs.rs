//! DescribeConfigs (key 32): the configs of topics, brokers and other resources, optionally with
//! their synonyms (v1+) and documentation (v3+). Versions 1–4; flexible from 4.
//!
//! Kafka 4.0 removed version 0 (KIP-896), and with it the response's v0-only `is_default` flag;
//! `config_source` says where a value comes from instead.

use bytes::{BufMut, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{Decoder, Encoder, TaggedFields};
use crate::primitives::{tags, put_tags};

const FIRST_FLEXIBLE: i16 = 4;

/// DescribeConfigs request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DescribeConfigsRequest {
    /// The resources whose configs to describe.
    pub resources: Vec<DescribeConfigsResource>,
    /// v1+: whether to return each config's synonyms.
    pub include_synonyms: bool,
    /// v3+: whether to return each config's documentation.
    pub include_documentation: bool,
    /// v4+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// A resource whose configs to describe.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DescribeConfigsResource {
    /// The resource type (2 topic, 4 broker, 8 broker logger, ...).
    pub resource_type: i8,
    /// The resource name (a topic name, or a broker id in decimal).
    pub resource_name: String,
    /// The config keys to return, or null for all of them.
    pub configuration_keys: Option<Vec<String>>,
    /// v4+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

const WHAT_RESOURCES: &str = "DescribeConfigsRequest.resources";
const WHAT_KEYS: &str = "DescribeConfigsRequest.resources.configuration_keys";

impl Message for DescribeConfigsRequest {
    const API_KEY: ApiKey = ApiKey::DescribeConfigs;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FIRST_FLEXIBLE;
        buf.put_array(flexible, &self.resources, WHAT_RESOURCES, |b, r| {
            b.put_i8(r.resource_type);
            b.put_string(
                flexible,
                &r.resource_name,
                "DescribeConfigsRequest.resources.resource_name",
            )?;
            b.put_nullable_array(
                flexible,
                r.configuration_keys.as_deref(),
                WHAT_KEYS,
                |b, k| b.put_string(flexible, k, WHAT_KEYS),
            )?;
            put_tags(b, flexible, &r.tagged_fields)
        })?;
        if version >= 1 {
            buf.put_bool(self.include_synonyms);
        }
        if version >= 3 {
            buf.put_bool(self.include_documentation);
        }
        put_tags(buf, flexible, &self.tagged_fields)
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FIRST_FLEXIBLE;
        let mut m = DescribeConfigsRequest {
            resources: d.array(flexible, WHAT_RESOURCES, |d| {
                Ok(DescribeConfigsResource {
                    resource_type: d.i8("DescribeConfigsRequest.resources.resource_type")?,
                    resource_name: d
                        .string(flexible, "DescribeConfigsRequest.resources.resource_name")?,
                    configuration_keys: d
                        .nullable_array(flexible, WHAT_KEYS, |d| d.string(flexible, WHAT_KEYS))?,
                    tagged_fields: tags(d, flexible)?,
                })
            })?,
            ..Default::default()
        };
        if version >= 1 {
            m.include_synonyms = d.bool("DescribeConfigsRequest.include_synonyms")?;
        }
        if version >= 3 {
            m.include_documentation = d.bool("DescribeConfigsRequest.include_documentation")?;
        }
        m.tagged_fields = tags(d, flexible)?;
        Ok(m)
    }
}

/// DescribeConfigs response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DescribeConfigsResponse {
    /// How long the request was throttled, in milliseconds.
    pub throttle_time_ms: i32,
    /// One result per resource asked for.
    pub results: Vec<DescribeConfigsResult>,
    /// v4+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// The configs of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DescribeConfigsResult {
    /// The error code, 0 for none.
    pub error_code: i16,
    /// The error message, if any.
    pub error_message: Option<String>,
    /// The resource type.
    pub resource_type: i8,
    /// The resource name.
    pub resource_name: String,
    /// The resource's configs.
    pub configs: Vec<DescribeConfigsEntry>,
    /// v4+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One config of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DescribeConfigsEntry {
    /// The config name.
    pub name: String,
    /// The config value, null when sensitive.
    pub value: Option<String>,
    /// Whether the config is read-only.
    pub read_only: bool,
    /// v1+: where the value comes from (a `ConfigSource` id: 1 dynamic topic, 4 static broker,
    /// 5 default, ...), -1 when unknown.
    pub config_source: i8,
    /// Whether the config is sensitive.
    pub is_sensitive: bool,
    /// v1+: the config's synonyms, in order of precedence (returned when asked for).
    pub synonyms: Vec<DescribeConfigsSynonym>,
    /// v3+: the config's data type (a `ConfigType` id: 1 boolean, 2 string, 3 int, ...), 0 when
    /// unknown.
    pub config_type: i8,
    /// v3+: the config's documentation (returned when asked for). Before v3 it holds Kafka's
    /// default, an empty string.
    pub documentation: Option<String>,
    /// v4+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for DescribeConfigsEntry {
    fn default() -> Self {
        DescribeConfigsEntry {
            name: String::new(),
            value: None,
            read_only: false,
            config_source: -1,
            is_sensitive: false,
            synonyms: Vec::new(),
            config_type: 0,
            documentation: Some(String::new()),
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// A synonym of a config (v1+): another name under which its value may be set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DescribeConfigsSynonym {
    /// The synonym's name.
    pub name: String,
    /// The synonym's value.
    pub value: Option<String>,
    /// Where the synonym's value comes from (a `ConfigSource` id).
    pub source: i8,
    /// v4+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

const WHAT_RESULTS: &str = "DescribeConfigsResponse.results";
const WHAT_CONFIGS: &str = "DescribeConfigsResponse.results.configs";
const WHAT_SYNONYMS: &str = "DescribeConfigsResponse.results.configs.synonyms";

fn put_entry(b: &mut BytesMut, version: i16, c: &DescribeConfigsEntry) -> Result<()> {
    let flexible = version >= FIRST_FLEXIBLE;
    b.put_string(
        flexible,
        &c.name,
        "DescribeConfigsResponse.results.configs.name",
    )?;
    b.put_nullable_string(
        flexible,
        c.value.as_deref(),
        "DescribeConfigsResponse.results.configs.value",
    )?;
    b.put_bool(c.read_only);
    if version >= 1 {
        b.put_i8(c.config_source);
    }
    b.put_bool(c.is_sensitive);
    if version >= 1 {
        b.put_array(flexible, &c.synonyms, WHAT_SYNONYMS, |b, s| {
            b.put_string(flexible, &s.name, WHAT_SYNONYMS)?;
            b.put_nullable_string(flexible, s.value.as_deref(), WHAT_SYNONYMS)?;
            b.put_i8(s.source);
            put_tags(b, flexible, &s.tagged_fields)
        })?;
    }
    if version >= 3 {
        b.put_i8(c.config_type);
        b.put_nullable_string(
            flexible,
            c.documentation.as_deref(),
            "DescribeConfigsResponse.results.configs.documentation",
        )?;
    }
    put_tags(b, flexible, &c.tagged_fields)
}

fn get_entry(d: &mut Decoder, version: i16) -> Result<DescribeConfigsEntry> {
    let flexible = version >= FIRST_FLEXIBLE;
    let mut c = DescribeConfigsEntry {
        name: d.string(flexible, "DescribeConfigsResponse.results.configs.name")?,
        value: d.nullable_string(flexible, "DescribeConfigsResponse.results.configs.value")?,
        read_only: d.bool("DescribeConfigsResponse.results.configs.read_only")?,
        ..Default::default()
    };
    if version >= 1 {
        c.config_source = d.i8("DescribeConfigsResponse.results.configs.config_source")?;
    }
    c.is_sensitive = d.bool("DescribeConfigsResponse.results.configs.is_sensitive")?;
    if version >= 1 {
        c.synonyms = d.array(flexible, WHAT_SYNONYMS, |d| {
            Ok(DescribeConfigsSynonym {
                name: d.string(flexible, WHAT_SYNONYMS)?,
                value: d.nullable_string(flexible, WHAT_SYNONYMS)?,
                source: d.i8(WHAT_SYNONYMS)?,
                tagged_fields: tags(d, flexible)?,
            })
        })?;
    }
    if version >= 3 {
        c.config_type = d.i8("DescribeConfigsResponse.results.configs.config_type")?;
        c.documentation = d.nullable_string(
            flexible,
            "DescribeConfigsResponse.results.configs.documentation",
        )?;
    }
    c.tagged_fields = tags(d, flexible)?;
    Ok(c)
}

impl Message for DescribeConfigsResponse {
    const API_KEY: ApiKey = ApiKey::DescribeConfigs;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FIRST_FLEXIBLE;
        buf.put_i32(self.throttle_time_ms);
        buf.put_array(flexible, &self.results, WHAT_RESULTS, |b, r| {
            b.put_i16(r.error_code);
            b.put_nullable_string(
                flexible,
                r.error_message.as_deref(),
                "DescribeConfigsResponse.results.error_message",
            )?;
            b.put_i8(r.resource_type);
            b.put_string(
                flexible,
                &r.resource_name,
                "DescribeConfigsResponse.results.resource_name",
            )?;
            b.put_array(flexible, &r.configs, WHAT_CONFIGS, |b, c| {
                put_entry(b, version, c)
            })?;
            put_tags(b, flexible, &r.tagged_fields)
        })?;
        put_tags(buf, flexible, &self.tagged_fields)
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FIRST_FLEXIBLE;
        Ok(DescribeConfigsResponse {
            throttle_time_ms: d.i32("DescribeConfigsResponse.throttle_time_ms")?,
            results: d.array(flexible, WHAT_RESULTS, |d| {
                Ok(DescribeConfigsResult {
                    error_code: d.i16("DescribeConfigsResponse.results.error_code")?,
                    error_message: d.nullable_string(
                        flexible,
                        "DescribeConfigsResponse.results.error_message",
                    )?,
                    resource_type: d.i8("DescribeConfigsResponse.results.resource_type")?,
                    resource_name: d
                        .string(flexible, "DescribeConfigsResponse.results.resource_name")?,
                    configs: d.array(flexible, WHAT_CONFIGS, |d| get_entry(d, version))?,
                    tagged_fields: tags(d, flexible)?,
                })
            })?,
            tagged_fields: tags(d, flexible)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn sample_request() -> DescribeConfigsRequest {
        DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: 2,
                resource_name: "t".into(),
                configuration_keys: None,
                tagged_fields: TaggedFields::default(),
            }],
            include_synonyms: true,
            include_documentation: true,
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn request_v1_v3_and_v4_bytes() {
        let req = sample_request();
        // v1: array of (INT8 type, STRING name, null key array), include_synonyms.
        let v1: &[u8] = &[0, 0, 0, 1, 2, 0, 1, b't', 0xff, 0xff, 0xff, 0xff, 1];
        assert_eq!(&req.to_bytes(1).unwrap()[..], v1);
        let back = DescribeConfigsRequest::decode_exact(Bytes::from(v1), 1).unwrap();
        assert!(back.include_synonyms && !back.include_documentation);

        let v3: &[u8] = &[0, 0, 0, 1, 2, 0, 1, b't', 0xff, 0xff, 0xff, 0xff, 1, 1];
        assert_eq!(&req.to_bytes(3).unwrap()[..], v3);
        assert_eq!(
            DescribeConfigsRequest::decode_exact(Bytes::from(v3), 3).unwrap(),
            req
        );

        let mut with_keys = req.clone();
        with_keys.resources[0].configuration_keys = Some(vec!["k".into()]);
        let v4: &[u8] = &[2, 2, 2, b't', 2, 2, b'k', 0, 1, 1, 0];
        assert_eq!(&with_keys.to_bytes(4).unwrap()[..], v4);
        assert_eq!(
            DescribeConfigsRequest::decode_exact(Bytes::from(v4), 4).unwrap(),
            with_keys
        );
    }

    fn sample_response() -> DescribeConfigsResponse {
        DescribeConfigsResponse {
            throttle_time_ms: 0,
            results: vec![DescribeConfigsResult {
                error_code: 0,
                error_message: None,
                resource_type: 2,
                resource_name: "t".into(),
                configs: vec![DescribeConfigsEntry {
                    name: "k".into(),
                    value: Some("v".into()),
                    read_only: false,
                    config_source: 5,
                    is_sensitive: false,
                    synonyms: vec![DescribeConfigsSynonym {
                        name: "s".into(),
                        value: Some("v".into()),
                        source: 5,
                        tagged_fields: TaggedFields::default(),
                    }],
                    config_type: 2,
                    documentation: None,
                    tagged_fields: TaggedFields::default(),
                }],
                tagged_fields: TaggedFields::default(),
            }],
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn response_v1_bytes() {
        let resp = sample_response();
        #[rustfmt::skip]
        let v1: &[u8] = &[
            0, 0, 0, 0,             // throttle_time_ms
            0, 0, 0, 1,             // results: 1
            0, 0,                   //   error_code
            0xff, 0xff,             //   error_message null
            2,                      //   resource_type
            0, 1, b't',             //   resource_name
            0, 0, 0, 1,             //   configs: 1
            0, 1, b'k',             //     name
            0, 1, b'v',             //     value
            0,                      //     read_only
            5,                      //     config_source
            0,                      //     is_sensitive
            0, 0, 0, 1,             //     synonyms: 1
            0, 1, b's', 0, 1, b'v', 5,
        ];
        assert_eq!(&resp.to_bytes(1).unwrap()[..], v1);
        let back = DescribeConfigsResponse::decode_exact(Bytes::from(v1), 1).unwrap();
        let entry = &back.results[0].configs[0];
        assert_eq!(entry.config_type, 0);
        assert_eq!(entry.documentation.as_deref(), Some(""));
        assert_eq!(entry.synonyms, resp.results[0].configs[0].synonyms);
    }

    #[test]
    fn response_v4_bytes() {
        let resp = sample_response();
        #[rustfmt::skip]
        let v4: &[u8] = &[
            0, 0, 0, 0,             // throttle_time_ms
            2,                      // results: 1
            0, 0, 0, 2, 2, b't',    //   error_code, null message, type, name
            2,                      //   configs: 1
            2, b'k', 2, b'v', 0, 5, 0,
            2, 2, b's', 2, b'v', 5, 0,  // synonyms: one, with its tags
            2,                      //     config_type
            0,                      //     documentation null
            0,                      //     config tags
            0,                      //   result tags
            0,                      // tags
        ];
        assert_eq!(&resp.to_bytes(4).unwrap()[..], v4);
        assert_eq!(
            DescribeConfigsResponse::decode_exact(Bytes::from(v4), 4).unwrap(),
            resp
        );
    }

    #[test]
    fn truncated_input_is_an_error() {
        let resp = sample_response();
        for version in 1..=4 {
            let bytes = resp.to_bytes(version).unwrap();
            for cut in 0..bytes.len() {
                assert!(
                    DescribeConfigsResponse::decode_exact(bytes.slice(..cut), version).is_err()
                );
            }
        }
        let req = sample_request();
        for version in 1..=4 {
            let bytes = req.to_bytes(version).unwrap();
            for cut in 0..bytes.len() {
                assert!(DescribeConfigsRequest::decode_exact(bytes.slice(..cut), version).is_err());
            }
        }
    }
}
