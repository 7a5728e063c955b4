//! The settings of a group member ([`GroupConfig`]): the Java consumer's names and defaults, read
//! from properties through [`Settings`], and the assignors a `partition.assignment.strategy`
//! value names.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{self, Settings};
use crate::error::{Error, Result};
use crate::group::assignor::{self, Assignor};
use crate::group::membership::{check_config, MembershipConfig};

/// Settings of a group member. Names and defaults follow the Java consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.id`.
    pub group_id: String,
    /// `group.instance.id`: makes the member static (KIP-345); it then sends no LeaveGroup when it
    /// closes, and keeps its partitions across a restart within the session timeout.
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms` (45 s).
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms` (3 s); below the session timeout.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms` (300 s): the rebalance timeout, and the longest gap allowed between
    /// two [`Group::polled`](crate::group::Group::polled) calls once the application has called it.
    pub max_poll_interval: Duration,
    /// `partition.assignment.strategy`, by protocol name, in order of preference (Java's default
    /// `range,cooperative-sticky`). Known names: `range`, `roundrobin`, `cooperative-sticky`.
    pub assignment_strategy: Vec<String>,
    /// `retry.backoff.ms` (100 ms).
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms` (1 s).
    pub retry_backoff_max: Duration,
    /// `client.rack`, sent in the subscription for rack-aware assignors.
    pub client_rack: Option<String>,
}

impl GroupConfig {
    /// The Java consumer's defaults for group `group_id`.
    pub fn new(group_id: impl Into<String>) -> Self {
        GroupConfig {
            group_id: group_id.into(),
            group_instance_id: None,
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: Duration::from_secs(300),
            assignment_strategy: vec!["range".into(), "cooperative-sticky".into()],
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            client_rack: None,
        }
    }

    /// The membership machine's settings.
    pub(crate) fn membership_config(&self) -> Result<MembershipConfig> {
        let config = self.membership_settings()?;
        check_config(&config, true)?;
        Ok(config)
    }

    fn membership_settings(&self) -> Result<MembershipConfig> {
        let mut assignors: Vec<Arc<dyn Assignor>> = Vec::new();
        for name in &self.assignment_strategy {
            let found = assignor::by_name(strategy_name(name)).ok_or_else(|| {
                config_error(format!(
                    "partition.assignment.strategy: unknown assignor {name:?}"
                ))
            })?;
            assignors.push(Arc::from(found));
        }
        Ok(MembershipConfig {
            group_id: self.group_id.clone(),
            group_instance_id: self.group_instance_id.clone(),
            session_timeout: self.session_timeout,
            rebalance_timeout: self.max_poll_interval,
            heartbeat_interval: self.heartbeat_interval,
            retry_backoff: self.retry_backoff,
            retry_backoff_max: self.retry_backoff_max,
            assignors,
            rack_id: self.client_rack.clone(),
        })
    }
}

impl Default for GroupConfig {
    /// No group (empty `group.id`), the Java consumer's defaults otherwise.
    fn default() -> Self {
        GroupConfig::new("")
    }
}

impl Settings for GroupConfig {
    /// Sets one property by its Java name: `group.id`, `group.instance.id`,
    /// `session.timeout.ms`, `heartbeat.interval.ms`, `max.poll.interval.ms`,
    /// `partition.assignment.strategy` (comma-separated names, or the Java assignor class names),
    /// `retry.backoff.ms`, `retry.backoff.max.ms`, `client.rack`. Returns `Ok(false)` for a key
    /// that is not a group setting, an error for a value that cannot be read.
    fn set_property(&mut self, key: &str, value: &str) -> Result<bool> {
        let key = key.trim();
        let text = value.trim();
        let ms = || config::millis(key, text);
        match key {
            "group.id" => self.group_id = text.to_string(),
            "group.instance.id" => self.group_instance_id = config::optional(text),
            "client.rack" => self.client_rack = config::optional(text),
            "session.timeout.ms" => self.session_timeout = ms()?,
            "heartbeat.interval.ms" => self.heartbeat_interval = ms()?,
            "max.poll.interval.ms" => self.max_poll_interval = ms()?,
            "retry.backoff.ms" => self.retry_backoff = ms()?,
            "retry.backoff.max.ms" => self.retry_backoff_max = ms()?,
            "partition.assignment.strategy" => self.assignment_strategy = parse_strategies(text)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks the member's settings (but not the group id: a consumer needs one only to join a
    /// group or commit).
    fn finish(&mut self) -> Result<()> {
        check_config(&self.membership_settings()?, false)
    }
}

/// The assignors of a `partition.assignment.strategy` value: comma-separated protocol names or
/// Java assignor class names, in order of preference.
pub(crate) fn parse_strategies(text: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let name = strategy_name(entry);
        if assignor::by_name(name).is_none() {
            return Err(config_error(format!(
                "partition.assignment.strategy: unknown assignor {entry:?} \
                 (known: range, roundrobin, cooperative-sticky)"
            )));
        }
        names.push(name.to_string());
    }
    if names.is_empty() {
        return Err(config_error(
            "partition.assignment.strategy needs at least one assignor".into(),
        ));
    }
    Ok(names)
}

/// The protocol name for a strategy given by name or by Java class name.
fn strategy_name(entry: &str) -> &str {
    match entry.rsplit('.').next().unwrap_or(entry) {
        "RangeAssignor" => "range",
        "RoundRobinAssignor" => "roundrobin",
        "CooperativeStickyAssignor" => "cooperative-sticky",
        _ => entry,
    }
}

fn config_error(message: String) -> Error {
    Error::Config { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_use_the_java_names() {
        let mut c = GroupConfig::new("g");
        assert_eq!(c.assignment_strategy, vec!["range", "cooperative-sticky"]);
        assert!(c.set_property("group.id", "billing").unwrap());
        assert!(c.set_property("group.instance.id", "i-1").unwrap());
        assert!(c.set_property("session.timeout.ms", "6000").unwrap());
        assert!(c.set_property("heartbeat.interval.ms", "300").unwrap());
        assert!(c.set_property("max.poll.interval.ms", "60000").unwrap());
        assert!(c.set_property("retry.backoff.ms", "50").unwrap());
        assert!(c.set_property("retry.backoff.max.ms", "500").unwrap());
        assert!(c
            .set_property(
                "partition.assignment.strategy",
                "org.apache.kafka.clients.consumer.CooperativeStickyAssignor, roundrobin"
            )
            .unwrap());
        assert_eq!(c.group_id, "billing");
        assert_eq!(c.group_instance_id.as_deref(), Some("i-1"));
        assert_eq!(c.session_timeout, Duration::from_secs(6));
        assert_eq!(c.heartbeat_interval, Duration::from_millis(300));
        assert_eq!(c.max_poll_interval, Duration::from_secs(60));
        assert_eq!(c.retry_backoff, Duration::from_millis(50));
        assert_eq!(c.retry_backoff_max, Duration::from_millis(500));
        assert_eq!(
            c.assignment_strategy,
            vec!["cooperative-sticky", "roundrobin"]
        );
        assert!(!c.set_property("bootstrap.servers", "x:9092").unwrap());
        assert!(c.set_property("session.timeout.ms", "soon").is_err());
        assert!(c
            .set_property("partition.assignment.strategy", "sticky-ish")
            .is_err());
        assert!(c.set_property("group.instance.id", "").unwrap());
        assert_eq!(c.group_instance_id, None);
    }

    #[test]
    fn membership_settings_follow_the_group_settings() {
        let mut c = GroupConfig::new("g");
        c.max_poll_interval = Duration::from_secs(10);
        c.assignment_strategy = vec!["cooperative-sticky".into()];
        let m = c.membership_config().unwrap();
        assert_eq!(m.rebalance_timeout, Duration::from_secs(10));
        assert_eq!(m.assignors.len(), 1);
        assert_eq!(m.assignors[0].name(), "cooperative-sticky");
    }
}
