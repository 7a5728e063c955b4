//! Administration: topics, groups, offsets and configs.
//!
//! Topic creation and deletion go to the controller when metadata names one (any broker forwards
//! them otherwise); group requests go to each group's coordinator; offset lookups go to each
//! partition's leader.

use std::collections::BTreeMap;

use kbus_protocol::consumer_protocol::Assignment;
use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::messages::create_topics::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use kbus_protocol::messages::describe_configs::{DescribeConfigsRequest, DescribeConfigsResource};
use kbus_protocol::messages::{
    DeleteTopicsRequest, DescribeGroupsRequest, ListGroupsRequest, MetadataRequest,
};
use kbus_protocol::ApiKey;

use crate::cluster::{Cluster, ClusterConfig, CoordinatorType, Metadata, TopicInfo};
use crate::config::{Properties, Settings};
use crate::error::{Error, Result};
use crate::group::offsets::{self as group_offsets, OffsetAndMetadata};
use crate::list_offsets;
pub use crate::list_offsets::OffsetSpec;
use crate::net::Connection;
use crate::TopicPartition;

/// How long [`Admin::list_offsets`] and [`Admin::describe_topic_config`] try again on retriable
/// errors.
const RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(15);

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// The name.
    pub name: String,
    /// Partitions; -1 lets the broker use its default.
    pub partitions: i32,
    /// Replication factor; -1 lets the broker use its default.
    pub replication_factor: i16,
    /// Topic configs (`cleanup.policy`, `retention.ms`, ...).
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and `replication_factor` replicas.
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> Self {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor,
            configs: Vec::new(),
        }
    }

    /// Adds a topic config.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// One partition's offset lookup result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffset {
    /// The partition.
    pub partition: i32,
    /// The offset found (-1 when no record matches a timestamp lookup).
    pub offset: i64,
    /// The timestamp of the record found, -1 when not applicable.
    pub timestamp: i64,
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// The protocol type (`consumer` for consumer groups).
    pub protocol_type: String,
    /// The state, when the broker reports it.
    pub state: String,
}

/// A member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The member id the coordinator assigned.
    pub member_id: String,
    /// The static membership id, if any.
    pub group_instance_id: Option<String>,
    /// The member's client id.
    pub client_id: String,
    /// The member's host.
    pub client_host: String,
    /// The partitions the member consumes, read from its assignment when the group is a consumer
    /// group (protocol type `consumer`); empty otherwise, or while the group rebalances.
    pub assignment: Vec<TopicPartition>,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// The state (`Stable`, `Empty`, `PreparingRebalance`, `Dead`, ...).
    pub state: String,
    /// The protocol type.
    pub protocol_type: String,
    /// The assignor in use (e.g. `range`, `cooperative-sticky`).
    pub protocol: String,
    /// The members.
    pub members: Vec<GroupMember>,
}

/// One config entry of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The config name.
    pub name: String,
    /// The value (`None` for sensitive or unset values).
    pub value: Option<String>,
    /// Whether the value can be changed.
    pub read_only: bool,
    /// Whether the value is secret (and so withheld).
    pub sensitive: bool,
}

/// Administrative operations on a cluster.
#[derive(Debug, Clone)]
pub struct Admin {
    cluster: Cluster,
}

const ADMIN_TIMEOUT_MS: i32 = 30_000;

fn broker_error(conn: &Connection, api: ApiKey, code: i16, message: Option<String>) -> Error {
    Error::Broker {
        broker: conn.broker().into(),
        api,
        code: ErrorCode(code),
        message,
    }
}

impl Admin {
    /// Connects to the cluster from Java/librdkafka-style properties (`bootstrap.servers`,
    /// `security.protocol`, ...); other components' keys are left alone, a key no component
    /// knows is an error naming it.
    pub async fn from_properties(properties: impl Into<Properties>) -> Result<Admin> {
        let cluster = ClusterConfig::from_properties(properties)?;
        Ok(Admin::new(Cluster::connect(cluster).await?))
    }

    /// Administration over `cluster`.
    pub fn new(cluster: Cluster) -> Self {
        Admin { cluster }
    }

    /// The cluster it administers.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The controller if metadata names one, else any broker (which forwards to the controller).
    async fn controller(&self) -> Result<std::sync::Arc<Connection>> {
        let id = self.cluster.metadata().controller_id;
        if id >= 0 {
            if let Ok(c) = self.cluster.broker(id).await {
                return Ok(c);
            }
        }
        self.cluster.any_broker().await
    }

    /// Creates topics; fails on the first topic the broker refuses (TOPIC_ALREADY_EXISTS included).
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<()> {
        for (topic, code, message) in self.create_topics_raw(topics).await? {
            if code.is_err() {
                return Err(Error::Topic {
                    topic,
                    api: ApiKey::CreateTopics,
                    code,
                    message,
                });
            }
        }
        Ok(())
    }

    /// Creates `topic` unless it exists; true when it was created. Safe to call from many processes
    /// at once.
    pub async fn ensure_topic(&self, topic: &NewTopic) -> Result<bool> {
        let results = self.create_topics_raw(std::slice::from_ref(topic)).await?;
        let (_, code, message) = results.into_iter().next().unwrap_or((
            topic.name.clone(),
            ErrorCode::UNKNOWN_SERVER_ERROR,
            Some("no result for the topic".into()),
        ));
        match code {
            ErrorCode::NONE => {
                self.cluster.refresh(&[&topic.name]).await?;
                Ok(true)
            }
            ErrorCode::TOPIC_ALREADY_EXISTS => Ok(false),
            code => Err(Error::Topic {
                topic: topic.name.clone(),
                api: ApiKey::CreateTopics,
                code,
                message,
            }),
        }
    }

    async fn create_topics_raw(
        &self,
        topics: &[NewTopic],
    ) -> Result<Vec<(String, ErrorCode, Option<String>)>> {
        let conn = self.controller().await?;
        let req = CreateTopicsRequest {
            topics: topics
                .iter()
                .map(|t| CreatableTopic {
                    name: t.name.clone(),
                    num_partitions: t.partitions,
                    replication_factor: t.replication_factor,
                    configs: t
                        .configs
                        .iter()
                        .map(|(k, v)| CreatableTopicConfig {
                            name: k.clone(),
                            value: Some(v.clone()),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            timeout_ms: ADMIN_TIMEOUT_MS,
            validate_only: false,
            ..Default::default()
        };
        let resp = conn.send(&req).await?;
        Ok(resp
            .topics
            .into_iter()
            .map(|t| (t.name, ErrorCode(t.error_code), t.error_message))
            .collect())
    }

    /// Deletes topics by name.
    pub async fn delete_topics(&self, names: &[&str]) -> Result<()> {
        let conn = self.controller().await?;
        let req = DeleteTopicsRequest::by_names(names.iter().copied(), ADMIN_TIMEOUT_MS);
        let resp = conn.send(&req).await?;
        for r in resp.responses {
            if r.error_code != 0 {
                return Err(Error::Topic {
                    topic: r.name.unwrap_or_else(|| r.topic_id.to_string()),
                    api: ApiKey::DeleteTopics,
                    code: ErrorCode(r.error_code),
                    message: r.error_message,
                });
            }
        }
        Ok(())
    }

    /// Names of all topics, internal ones excluded, sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>> {
        let md = self.all_topics().await?;
        let mut names: Vec<String> = md
            .topics
            .values()
            .filter(|t| !t.internal)
            .map(|t| t.name.clone())
            .collect();
        names.sort();
        Ok(names)
    }

    async fn all_topics(&self) -> Result<Metadata> {
        let conn = self.cluster.any_broker().await?;
        let resp = conn
            .send(&MetadataRequest {
                topics: None,
                ..Default::default()
            })
            .await?;
        Ok(Metadata::from_response(&resp, std::time::Instant::now()))
    }

    /// Partitions, leaders and replicas of `topics`, freshly fetched.
    pub async fn describe_topics(&self, topics: &[&str]) -> Result<Vec<TopicInfo>> {
        let md = self.cluster.refresh(topics).await?;
        topics
            .iter()
            .map(|name| match md.topic(name) {
                Some(t) if t.error.is_err() => Err(Error::Topic {
                    topic: (*name).into(),
                    api: ApiKey::Metadata,
                    code: t.error,
                    message: None,
                }),
                Some(t) => Ok(t.clone()),
                None => Err(Error::Topic {
                    topic: (*name).into(),
                    api: ApiKey::Metadata,
                    code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    message: None,
                }),
            })
            .collect()
    }

    /// Every group known to any broker, sorted by id.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let md = self.cluster.metadata();
        let mut ids: Vec<i32> = md.brokers.keys().copied().collect();
        ids.sort();
        let mut groups = BTreeMap::new();
        for id in ids {
            let conn = self.cluster.broker(id).await?;
            let resp = conn.send(&ListGroupsRequest::default()).await?;
            if resp.error_code != 0 {
                return Err(broker_error(
                    &conn,
                    ApiKey::ListGroups,
                    resp.error_code,
                    None,
                ));
            }
            for g in resp.groups {
                groups.insert(
                    g.group_id.clone(),
                    GroupListing {
                        group_id: g.group_id,
                        protocol_type: g.protocol_type,
                        state: g.group_state,
                    },
                );
            }
        }
        Ok(groups.into_values().collect())
    }

    /// Describes groups, asking each group's coordinator.
    pub async fn describe_groups(&self, groups: &[&str]) -> Result<Vec<GroupDescription>> {
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let (_, conn) = self
                .cluster
                .coordinator(CoordinatorType::Group, group)
                .await?;
            let resp = conn
                .send(&DescribeGroupsRequest {
                    groups: vec![(*group).into()],
                    ..Default::default()
                })
                .await?;
            for g in resp.groups {
                if g.error_code != 0 {
                    return Err(broker_error(
                        &conn,
                        ApiKey::DescribeGroups,
                        g.error_code,
                        g.error_message.or(Some(g.group_id)),
                    ));
                }
                let consumer_group = g.protocol_type == "consumer";
                out.push(GroupDescription {
                    group_id: g.group_id,
                    state: g.group_state,
                    protocol_type: g.protocol_type,
                    protocol: g.protocol_data,
                    members: g
                        .members
                        .into_iter()
                        .map(|m| GroupMember {
                            member_id: m.member_id,
                            group_instance_id: m.group_instance_id,
                            client_id: m.client_id,
                            client_host: m.client_host,
                            // Bytes another client wrote: unreadable ones show as no partitions.
                            assignment: if consumer_group && !m.member_assignment.is_empty() {
                                Assignment::decode(m.member_assignment)
                                    .map(|a| a.partitions)
                                    .unwrap_or_default()
                            } else {
                                Vec::new()
                            },
                        })
                        .collect(),
                });
            }
        }
        Ok(out)
    }

    /// Looks up offsets of `partitions` of `topic` (all partitions when empty), asking each leader.
    /// Retriable errors (NOT_LEADER_OR_FOLLOWER while a new topic's leaders settle, a topic just
    /// created that has not reached every broker's metadata yet, ...) are tried again with fresh
    /// metadata for up to 15 s; then, and for other errors, the first error is returned.
    pub async fn list_offsets(
        &self,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
    ) -> Result<Vec<PartitionOffset>> {
        let wanted: Vec<i32> = if partitions.is_empty() {
            self.cluster.partitions(topic).await?
        } else {
            partitions.to_vec()
        };
        let asked: Vec<(TopicPartition, OffsetSpec)> = wanted
            .iter()
            .map(|p| (TopicPartition::new(topic, *p), spec))
            .collect();
        let offsets = self
            .retrying(topic, || async {
                let listed = list_offsets::list_offsets(&self.cluster, &asked, 0).await;
                match listed.errors.into_iter().next() {
                    Some((_, e)) => Err(e),
                    None => Ok(listed.offsets),
                }
            })
            .await?;
        let mut out: Vec<PartitionOffset> = offsets
            .into_iter()
            .map(|(tp, found)| PartitionOffset {
                partition: tp.partition,
                offset: found.offset,
                timestamp: found.timestamp,
            })
            .collect();
        out.sort_by_key(|p| p.partition);
        Ok(out)
    }

    /// Every offset `group` has committed, with the metadata beside it, sorted by topic and
    /// partition.
    pub async fn list_group_offsets(
        &self,
        group: &str,
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>> {
        let found =
            group_offsets::committed_with_metadata(&self.cluster, group, None, false).await?;
        Ok(found.into_iter().collect())
    }

    /// The configs of `topic`. Retriable errors (a topic just created that the broker asked does
    /// not know yet) are tried again with fresh metadata for up to 15 s.
    pub async fn describe_topic_config(&self, topic: &str) -> Result<Vec<ConfigEntry>> {
        self.retrying(topic, || self.describe_topic_config_once(topic))
            .await
    }

    /// Runs `attempt` again, with fresh metadata for `topic`, while it fails with a retriable
    /// error (a leader that moved; a topic just created that a broker does not know yet), for up
    /// to [`RETRY_FOR`], as the Java admin client retries; then returns its last result.
    async fn retrying<T, F, Fut>(&self, topic: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let deadline = std::time::Instant::now() + RETRY_FOR;
        let mut backoff = std::time::Duration::from_millis(50);
        loop {
            match attempt().await {
                Err(e) if e.is_retriable() && std::time::Instant::now() < deadline => {
                    tracing::debug!(topic, error = %e, "admin request failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                    let _ = self.cluster.refresh(&[topic]).await;
                }
                result => return result,
            }
        }
    }

    async fn describe_topic_config_once(&self, topic: &str) -> Result<Vec<ConfigEntry>> {
        /// Resource type 2 is a topic.
        const TOPIC: i8 = 2;
        let conn = self.cluster.any_broker().await?;
        let resp = conn
            .send(&DescribeConfigsRequest {
                resources: vec![DescribeConfigsResource {
                    resource_type: TOPIC,
                    resource_name: topic.into(),
                    configuration_keys: None,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .await?;
        let mut out = Vec::new();
        for r in resp.results {
            if r.error_code != 0 {
                return Err(broker_error(
                    &conn,
                    ApiKey::DescribeConfigs,
                    r.error_code,
                    r.error_message,
                ));
            }
            out.extend(r.configs.into_iter().map(|c| ConfigEntry {
                name: c.name,
                value: c.value,
                read_only: c.read_only,
                sensitive: c.is_sensitive,
            }));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}
