//! ApiVersions (key 18): which APIs and versions a broker speaks. Versions 0–4; flexible from 3.
//!
//! A broker that does not know the request's version answers in version 0 form with error
//! `UNSUPPORTED_VERSION` (35) and its own ranges, so a client can retry with a version it supports.

use bytes::{BufMut, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{tagged_value, Decoder, Encoder, TaggedFields};
use crate::primitives::{put_tags, tags};

/// ApiVersions request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ApiVersionsRequest {
    /// v3+: the client library's name (KIP-511), for example `kbus`.
    pub client_software_name: String,
    /// v3+: the client library's version.
    pub client_software_version: String,
    /// v3+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Message for ApiVersionsRequest {
    const API_KEY: ApiKey = ApiKey::ApiVersions;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        if version >= 3 {
            buf.put_string(true, &self.client_software_name, "ApiVersionsRequest.client_software_name")?;
            buf.put_string(true, &self.client_software_version, "ApiVersionsRequest.client_software_version")?;
            self.tagged_fields.encode(buf)?;
        }
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let mut m = ApiVersionsRequest::default();
        if version >= 3 {
            m.client_software_name = d.string(true, "ApiVersionsRequest.client_software_name")?;
            m.client_software_version = d.string(true, "ApiVersionsRequest.client_software_version")?;
            m.tagged_fields = d.unknown_tagged_fields()?;
        }
        Ok(m)
    }
}

/// ApiVersions response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ApiVersionsResponse {
    /// The error code, 0 for none.
    pub error_code: i16,
    /// The APIs the broker supports, with their version ranges.
    pub api_keys: Vec<ApiVersion>,
    /// v1+: how long the request was throttled, in milliseconds.
    pub throttle_time_ms: i32,
    /// v3+ (tag 0): features the broker supports.
    pub supported_features: Vec<SupportedFeature>,
    /// v3+ (tag 1): the epoch of the finalized features, -1 when unknown.
    pub finalized_features_epoch: i64,
    /// v3+ (tag 2): the cluster-wide finalized features.
    pub finalized_features: Vec<FinalizedFeature>,
    /// v3+ (tag 3): whether a ZooKeeper-mode controller is ready to migrate to KRaft.
    pub zk_migration_ready: bool,
    /// v3+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for ApiVersionsResponse {
    fn default() -> Self {
        ApiVersionsResponse {
            error_code: 0,
            api_keys: Vec::new(),
            throttle_time_ms: 0,
            supported_features: Vec::new(),
            finalized_features_epoch: -1,
            finalized_features: Vec::new(),
            zk_migration_ready: false,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// One API's version range in an ApiVersions response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ApiVersion {
    /// The API key.
    pub api_key: i16,
    /// The lowest supported version.
    pub min_version: i16,
    /// The highest supported version.
    pub max_version: i16,
    /// v3+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// A feature the broker supports (v3+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SupportedFeature {
    /// The feature name.
    pub name: String,
    /// The lowest supported level.
    pub min_version: i16,
    /// The highest supported level.
    pub max_version: i16,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// A finalized cluster feature (v3+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct FinalizedFeature {
    /// The feature name.
    pub name: String,
    /// The highest finalized level.
    pub max_version_level: i16,
    /// The lowest finalized level.
    pub min_version_level: i16,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

const WHAT_FEATURES: &str = "ApiVersionsResponse.supported_features";
const WHAT_FINALIZED: &str = "ApiVersionsResponse.finalized_features";

impl Message for ApiVersionsResponse {
    const API_KEY: ApiKey = ApiKey::ApiVersions;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= 3;
        buf.put_i16(self.error_code);
        buf.put_array(flexible, &self.api_keys, "ApiVersionsResponse.api_keys", |buf, k| {
            buf.put_i16(k.api_key);
            buf.put_i16(k.min_version);
            buf.put_i16(k.max_version);
            put_tags(buf, flexible, &k.tagged_fields)?;
            Ok(())
        })?;
        if version >= 1 {
            buf.put_i32(self.throttle_time_ms);
        }
        if flexible {
            let mut known = Vec::new();
            if !self.supported_features.is_empty() {
                known.push(tagged_value(0, |b| {
                    b.put_array(true, &self.supported_features, WHAT_FEATURES, |b, f| {
                        b.put_string(true, &f.name, WHAT_FEATURES)?;
                        b.put_i16(f.min_version);
                        b.put_i16(f.max_version);
                        f.tagged_fields.encode(b)
                    })
                })?);
            }
            if self.finalized_features_epoch != -1 {
                known.push(tagged_value(1, |b| {
                    b.put_i64(self.finalized_features_epoch);
                    Ok(())
                })?);
            }
            if !self.finalized_features.is_empty() {
                known.push(tagged_value(2, |b| {
                    b.put_array(true, &self.finalized_features, WHAT_FINALIZED, |b, f| {
                        b.put_string(true, &f.name, WHAT_FINALIZED)?;
                        b.put_i16(f.max_version_level);
                        b.put_i16(f.min_version_level);
                        f.tagged_fields.encode(b)
                    })
                })?);
            }
            if self.zk_migration_ready {
                known.push(tagged_value(3, |b| {
                    b.put_bool(true);
                    Ok(())
                })?);
            }
            self.tagged_fields.encode_with(buf, known)?;
        }
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= 3;
        let mut m = ApiVersionsResponse {
            error_code: d.i16("ApiVersionsResponse.error_code")?,
            ..Default::default()
        };
        m.api_keys = d.array(flexible, "ApiVersionsResponse.api_keys", |d| {
            Ok(ApiVersion {
                api_key: d.i16("ApiVersionsResponse.api_keys.api_key")?,
                min_version: d.i16("ApiVersionsResponse.api_keys.min_version")?,
                max_version: d.i16("ApiVersionsResponse.api_keys.max_version")?,
                tagged_fields: tags(d, flexible)?,
            })
        })?;
        if version >= 1 {
            m.throttle_time_ms = d.i32("ApiVersionsResponse.throttle_time_ms")?;
        }
        if flexible {
            let mut supported = Vec::new();
            let mut epoch = -1;
            let mut finalized = Vec::new();
            let mut zk_ready = false;
            m.tagged_fields = d.tagged_fields(|tag, d| {
                match tag {
                    0 => {
                        supported = d.array(true, WHAT_FEATURES, |d| {
                            Ok(SupportedFeature {
                                name: d.string(true, WHAT_FEATURES)?,
                                min_version: d.i16(WHAT_FEATURES)?,
                                max_version: d.i16(WHAT_FEATURES)?,
                                tagged_fields: d.unknown_tagged_fields()?,
                            })
                        })?
                    }
                    1 => epoch = d.i64("ApiVersionsResponse.finalized_features_epoch")?,
                    2 => {
                        finalized = d.array(true, WHAT_FINALIZED, |d| {
                            Ok(FinalizedFeature {
                                name: d.string(true, WHAT_FINALIZED)?,
                                max_version_level: d.i16(WHAT_FINALIZED)?,
                                min_version_level: d.i16(WHAT_FINALIZED)?,
                                tagged_fields: d.unknown_tagged_fields()?,
                            })
                        })?
                    }
                    3 => zk_ready = d.bool("ApiVersionsResponse.zk_migration_ready")?,
                    _ => return Ok(false),
                }
                Ok(true)
            })?;
            m.supported_features = supported;
            m.finalized_features_epoch = epoch;
            m.finalized_features = finalized;
            m.zk_migration_ready = zk_ready;
        }
        Ok(m)
    }
}

impl ApiVersionsResponse {
    /// The broker's ranges as `(api_key, min, max)`, ready for [`crate::negotiate_all`].
    pub fn ranges(&self) -> impl Iterator<Item = (i16, i16, i16)> + '_ {
        self.api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn v0_request_is_empty_and_v3_carries_client_software() {
        let req = ApiVersionsRequest {
            client_software_name: "kbus".into(),
            client_software_version: "0.1.0".into(),
            tagged_fields: TaggedFields::default(),
        };
        assert!(req.to_bytes(0).unwrap().is_empty());
        assert_eq!(&req.to_bytes(3).unwrap()[..], b"\x05kbus\x060.1.0\x00");
    }

    #[test]
    fn v3_response_keeps_known_and_unknown_tags() {
        let resp = ApiVersionsResponse {
            api_keys: vec![ApiVersion {
                api_key: 18,
                min_version: 0,
                max_version: 4,
                tagged_fields: TaggedFields::default(),
            }],
            finalized_features_epoch: 7,
            tagged_fields: TaggedFields(vec![(99, Bytes::from_static(b"xy"))]),
            ..Default::default()
        };
        let bytes = resp.to_bytes(3).unwrap();
        let back = ApiVersionsResponse::decode_exact(bytes, 3).unwrap();
        assert_eq!(back, resp);
    }
}
