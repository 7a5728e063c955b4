//! The byte formats of the `consumer` protocol type, carried opaquely inside JoinGroup and
//! SyncGroup: a member's [`Subscription`] and the leader's [`Assignment`] for each member.
//!
//! The formats (their version table, limits and the rules for unknown versions) live in
//! [`kbus_protocol::consumer_protocol`], with the rest of the wire protocol, where the fuzzers
//! reach them: these bytes come from other clients. They are re-exported here under their old
//! path; what ties them to this crate, the step from a decoded subscription to what an
//! [`Assignor`](crate::group::assignor::Assignor) reads, is [`SubscriptionExt`].

pub use kbus_protocol::consumer_protocol::{
    Assignment, Subscription, ASSIGNMENT_MAX_VERSION, PROTOCOL_TYPE, SUBSCRIPTION_MAX_VERSION,
};

use crate::group::assignor::MemberSubscription;

/// The consumer-protocol version of the subscriptions and assignments this client writes.
/// Version 3 carries owned partitions (needed by cooperative assignors), their generation and the
/// rack; older readers read what they know and ignore the rest.
pub(crate) const WRITE_VERSION: i16 = 3;

/// What a [`Subscription`] becomes on the group leader's side. A trait, because `Subscription` is
/// defined in the protocol crate, which knows nothing of assignors.
pub trait SubscriptionExt {
    /// The subscription as the group leader hands it to an
    /// [`Assignor`](crate::group::assignor::Assignor), with the member's ids from JoinGroup.
    fn into_member(
        self,
        member_id: impl Into<String>,
        group_instance_id: Option<String>,
    ) -> MemberSubscription;
}

impl SubscriptionExt for Subscription {
    fn into_member(
        self,
        member_id: impl Into<String>,
        group_instance_id: Option<String>,
    ) -> MemberSubscription {
        MemberSubscription {
            member_id: member_id.into(),
            group_instance_id,
            topics: self.topics,
            owned_partitions: self.owned_partitions,
            generation_id: self.generation_id,
            rack_id: self.rack_id,
            user_data: self.user_data,
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::TopicPartition;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    fn full_subscription() -> Subscription {
        Subscription {
            topics: vec!["orders".into(), "payments".into()],
            user_data: Some(Bytes::from_static(b"\x00\x01ud")),
            owned_partitions: vec![tp("orders", 0), tp("orders", 3), tp("payments", 1)],
            generation_id: 7,
            rack_id: Some("eu-west-1a".into()),
        }
    }

    #[test]
    fn into_member_keeps_every_field() {
        let m = full_subscription().into_member("m-1", Some("instance-a".into()));
        assert_eq!(m.member_id, "m-1");
        assert_eq!(m.group_instance_id.as_deref(), Some("instance-a"));
        assert_eq!(m.topics, ["orders", "payments"]);
        assert_eq!(m.owned_partitions.len(), 3);
        assert_eq!(m.generation_id, 7);
        assert_eq!(m.rack_id.as_deref(), Some("eu-west-1a"));
        assert!(m.user_data.is_some());
    }
}
