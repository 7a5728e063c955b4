//! Tests of [`super`].

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

#[test]
fn a_dropped_revoke_ack_acknowledges() {
    let (tx, mut rx) = oneshot::channel();
    drop(RevokeAck(Some(tx)));
    assert_eq!(rx.try_recv(), Ok(()));
    let (tx, mut rx) = oneshot::channel();
    RevokeAck(Some(tx)).ack();
    assert_eq!(rx.try_recv(), Ok(()));
}
