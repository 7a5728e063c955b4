//! API keys, the version ranges this crate implements, and version negotiation with a broker.

use crate::error::{ProtocolError, Result};

/// An inclusive range of API versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionRange {
    /// Lowest version.
    pub min: i16,
    /// Highest version.
    pub max: i16,
}

impl VersionRange {
    /// A range from `min` to `max` inclusive.
    pub const fn new(min: i16, max: i16) -> Self {
        VersionRange { min, max }
    }

    /// True when `version` lies in the range.
    pub const fn contains(&self, version: i16) -> bool {
        version >= self.min && version <= self.max
    }

    /// The highest version both ranges contain, if they overlap.
    pub fn highest_common(&self, other: &VersionRange) -> Option<i16> {
        let max = self.max.min(other.max);
        (max >= self.min.max(other.min)).then_some(max)
    }
}

macro_rules! api_keys {
    ($( $(#[$doc:meta])* $name:ident = $key:literal, versions $min:literal ..= $max:literal, flexible $flex:expr; )*) => {
        /// The Kafka APIs this crate implements.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ApiKey {
            $( $(#[$doc])* $name = $key, )*
        }

        impl ApiKey {
            /// Every API this crate implements, in key order.
            pub const ALL: &'static [ApiKey] = &[$(ApiKey::$name),*];

            /// The API with wire key `key`.
            pub fn from_i16(key: i16) -> Result<ApiKey> {
                match key {
                    $( $key => Ok(ApiKey::$name), )*
                    other => Err(ProtocolError::UnknownApiKey(other)),
                }
            }

            /// The versions this crate can encode and decode.
            pub const fn supported(self) -> VersionRange {
                match self {
                    $( ApiKey::$name => VersionRange::new($min, $max), )*
                }
            }

            /// The first flexible version (compact strings and arrays, tagged fields), if any.
            pub const fn flexible_from(self) -> Option<i16> {
                match self {
                    $( ApiKey::$name => $flex, )*
                }
            }
        }
    };
}

api_keys! {
    /// Produce (0).
    Produce = 0, versions 3..=12, flexible Some(9);
    /// Fetch (1).
    Fetch = 1, versions 4..=17, flexible Some(12);
    /// ListOffsets (2).
    ListOffsets = 2, versions 1..=10, flexible Some(6);
    /// Metadata (3).
    Metadata = 3, versions 0..=13, flexible Some(9);
    /// OffsetCommit (8).
    OffsetCommit = 8, versions 2..=9, flexible Some(8);
    /// OffsetFetch (9).
    OffsetFetch = 9, versions 1..=9, flexible Some(6);
    /// FindCoordinator (10).
    FindCoordinator = 10, versions 0..=6, flexible Some(3);
    /// JoinGroup (11).
    JoinGroup = 11, versions 0..=9, flexible Some(6);
    /// Heartbeat (12).
    Heartbeat = 12, versions 0..=4, flexible Some(4);
    /// LeaveGroup (13).
    LeaveGroup = 13, versions 0..=5, flexible Some(4);
    /// SyncGroup (14).
    SyncGroup = 14, versions 0..=5, flexible Some(4);
    /// DescribeGroups (15).
    DescribeGroups = 15, versions 0..=6, flexible Some(5);
    /// ListGroups (16).
    ListGroups = 16, versions 0..=5, flexible Some(3);
    /// SaslHandshake (17).
    SaslHandshake = 17, versions 0..=1, flexible None;
    /// ApiVersions (18).
    ApiVersions = 18, versions 0..=4, flexible Some(3);
    /// CreateTopics (19).
    CreateTopics = 19, versions 2..=7, flexible Some(5);
    /// DeleteTopics (20).
    DeleteTopics = 20, versions 1..=6, flexible Some(4);
    /// InitProducerId (22).
    InitProducerId = 22, versions 0..=5, flexible Some(2);
    /// DescribeConfigs (32).
    DescribeConfigs = 32, versions 1..=4, flexible Some(4);
    /// SaslAuthenticate (36).
    SaslAuthenticate = 36, versions 0..=2, flexible Some(2);
}

impl ApiKey {
    /// The wire key.
    pub const fn as_i16(self) -> i16 {
        self as i16
    }

    /// True when `version` of this API uses the flexible encoding.
    pub const fn is_flexible(self, version: i16) -> bool {
        match self.flexible_from() {
            Some(v) => version >= v,
            None => false,
        }
    }

    /// Fails unless this crate implements `version` of this API.
    pub fn check_version(self, version: i16) -> Result<()> {
        if self.supported().contains(version) {
            Ok(())
        } else {
            Err(ProtocolError::UnsupportedVersion { api: self, version })
        }
    }

    /// The request header version used with `version` of this API: 2 when flexible, else 1.
    pub const fn request_header_version(self, version: i16) -> i16 {
        if self.is_flexible(version) {
            2
        } else {
            1
        }
    }

    /// The response header version used with `version` of this API: 1 when flexible, else 0.
    ///
    /// ApiVersions is the exception: its response header is always version 0, because a client
    /// must be able to read the answer before it knows which versions the broker speaks.
    pub const fn response_header_version(self, version: i16) -> i16 {
        if self.is_flexible(version) && !matches!(self, ApiKey::ApiVersions) {
            1
        } else {
            0
        }
    }
}

/// Picks the version to use for `api` given the range a broker advertised for it in ApiVersions:
/// the highest version both sides support, or `None` when they share none.
pub fn negotiate(api: ApiKey, broker: VersionRange) -> Option<i16> {
    api.supported().highest_common(&broker)
}

/// Picks a version for every API this crate implements from a broker's advertised ranges,
/// given as `(api_key, min, max)`. APIs the broker does not list, or shares no version of, are absent.
pub fn negotiate_all(broker: impl IntoIterator<Item = (i16, i16, i16)>) -> Vec<(ApiKey, i16)> {
    let mut out: Vec<(ApiKey, i16)> = broker
        .into_iter()
        .filter_map(|(key, min, max)| {
            let api = ApiKey::from_i16(key).ok()?;
            negotiate(api, VersionRange::new(min, max)).map(|v| (api, v))
        })
        .collect();
    out.sort();
    out.dedup_by_key(|(api, _)| *api);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_takes_highest_common_version() {
        assert_eq!(negotiate(ApiKey::Produce, VersionRange::new(0, 7)), Some(7));
        assert_eq!(negotiate(ApiKey::Produce, VersionRange::new(0, 2)), None);
        assert_eq!(
            negotiate(ApiKey::Metadata, VersionRange::new(0, 99)),
            Some(13)
        );
        assert_eq!(
            negotiate(ApiKey::Fetch, VersionRange::new(13, 13)),
            Some(13)
        );
    }

    #[test]
    fn negotiate_all_skips_unknown_and_disjoint() {
        let got = negotiate_all([(0, 0, 2), (3, 0, 8), (999, 0, 1), (18, 0, 3)]);
        assert_eq!(got, vec![(ApiKey::Metadata, 8), (ApiKey::ApiVersions, 3)]);
    }

    #[test]
    fn header_versions_follow_flexibility() {
        assert_eq!(ApiKey::Metadata.request_header_version(8), 1);
        assert_eq!(ApiKey::Metadata.request_header_version(9), 2);
        assert_eq!(ApiKey::Metadata.response_header_version(9), 1);
        assert_eq!(ApiKey::ApiVersions.request_header_version(3), 2);
        assert_eq!(ApiKey::ApiVersions.response_header_version(3), 0);
        assert_eq!(ApiKey::SaslHandshake.request_header_version(1), 1);
    }

    #[test]
    fn crate_docs_table_matches_the_implementation() {
        let docs = include_str!("lib.rs");
        for api in ApiKey::ALL {
            let r = api.supported();
            let flex = api
                .flexible_from()
                .map_or_else(|| "never".to_string(), |v| v.to_string());
            let row = format!(
                "//! | {api:?} | {} | {}–{} | {flex} |",
                api.as_i16(),
                r.min,
                r.max
            );
            assert!(docs.contains(&row), "lib.rs docs lack the row: {row}");
        }
    }

    #[test]
    fn keys_round_trip() {
        for api in ApiKey::ALL {
            assert_eq!(ApiKey::from_i16(api.as_i16()).unwrap(), *api);
        }
        assert!(ApiKey::from_i16(-1).is_err());
    }
}
