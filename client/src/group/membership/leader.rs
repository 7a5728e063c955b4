//! The group leader's step, as a pure function of the JoinGroup answer: decode every member's
//! subscription, run the assignor the coordinator chose, encode each member's assignment.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kbus_protocol::messages::sync_group::SyncGroupRequestAssignment;
use kbus_protocol::messages::JoinGroupResponse;
use kbus_protocol::{ApiKey, ProtocolError};

use crate::group::assignor::{Assignor, MemberSubscription};
use crate::group::consumer_protocol::{Assignment, Subscription, SubscriptionExt, WRITE_VERSION};
use crate::TopicPartition;

/// What the leader worked out.
#[derive(Debug)]
pub(super) struct Led {
    /// Every member's assignment, to send in SyncGroup (none when the coordinator asked the
    /// leader to skip assigning).
    pub assignments: Vec<SyncGroupRequestAssignment>,
    /// Every topic some member subscribes to.
    pub group_topics: BTreeSet<String>,
    /// The partition counts the assignment was computed with (`None` when skipped).
    pub counts: Option<BTreeMap<String, i32>>,
}

/// Why the leader could not assign.
#[derive(Debug)]
pub(super) enum LeadError {
    /// A member's subscription could not be read, or an assignment not written.
    Protocol(ApiKey, ProtocolError),
    /// The coordinator chose an assignor this member did not offer.
    UnknownProtocol(String),
}

/// Assigns the partitions of the group's topics (counts from `counts_of`) to the members of
/// `response` with the assignor named `protocol_name`, one of `assignors`.
pub(super) fn assign(
    response: &JoinGroupResponse,
    protocol_name: &str,
    assignors: &[Arc<dyn Assignor>],
    counts_of: impl Fn(&BTreeSet<String>) -> BTreeMap<String, i32>,
) -> Result<Led, LeadError> {
    let mut members: Vec<MemberSubscription> = Vec::with_capacity(response.members.len());
    for m in &response.members {
        let subscription = Subscription::decode(m.metadata.clone())
            .map_err(|source| LeadError::Protocol(ApiKey::JoinGroup, source))?;
        members.push(subscription.into_member(m.member_id.clone(), m.group_instance_id.clone()));
    }
    let group_topics: BTreeSet<String> = members
        .iter()
        .flat_map(|m| m.topics.iter().cloned())
        .collect();
    if response.skip_assignment {
        // KIP-814: a static leader rejoining an unchanged group keeps the existing assignment.
        return Ok(Led {
            assignments: Vec::new(),
            group_topics,
            counts: None,
        });
    }
    let assignor = assignors
        .iter()
        .find(|a| a.name() == protocol_name)
        .ok_or_else(|| {
            LeadError::UnknownProtocol(format!(
                "the coordinator chose {protocol_name}, which this member did not offer"
            ))
        })?;
    let counts = counts_of(&group_topics);
    let computed = assignor.assign(&members, &counts);
    // Every member gets an entry, even one the assignor left out.
    let mut per_member: BTreeMap<&str, Vec<TopicPartition>> = members
        .iter()
        .map(|m| (m.member_id.as_str(), Vec::new()))
        .collect();
    for (member, partitions) in computed {
        if let Some(slot) = per_member.get_mut(member.as_str()) {
            *slot = partitions;
        }
    }
    let mut assignments = Vec::with_capacity(per_member.len());
    for (member_id, partitions) in per_member {
        let assignment = Assignment::new(partitions)
            .try_encode(WRITE_VERSION)
            .map_err(|source| LeadError::Protocol(ApiKey::SyncGroup, source))?;
        assignments.push(SyncGroupRequestAssignment {
            member_id: member_id.into(),
            assignment,
            ..Default::default()
        });
    }
    Ok(Led {
        assignments,
        group_topics,
        counts: Some(counts),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::assignor::RangeAssignor;
    use bytes::Bytes;
    use kbus_protocol::messages::join_group::JoinGroupResponseMember;

    fn answer(members: &[(&str, Bytes)], skip: bool) -> JoinGroupResponse {
        JoinGroupResponse {
            members: members
                .iter()
                .map(|(id, metadata)| JoinGroupResponseMember {
                    member_id: id.to_string(),
                    metadata: metadata.clone(),
                    ..Default::default()
                })
                .collect(),
            skip_assignment: skip,
            ..Default::default()
        }
    }

    fn range() -> Vec<Arc<dyn Assignor>> {
        vec![Arc::new(RangeAssignor)]
    }

    fn counts(topics: &BTreeSet<String>) -> BTreeMap<String, i32> {
        topics.iter().map(|t| (t.clone(), 4)).collect()
    }

    #[test]
    fn every_member_gets_an_assignment_covering_the_partitions() {
        let sub = Subscription::new(["t"]).encode(3);
        let led = assign(
            &answer(&[("a", sub.clone()), ("b", sub)], false),
            "range",
            &range(),
            counts,
        )
        .unwrap();
        assert_eq!(led.group_topics, BTreeSet::from(["t".to_string()]));
        assert_eq!(led.counts, Some(BTreeMap::from([("t".to_string(), 4)])));
        let mut all = Vec::new();
        for a in &led.assignments {
            all.extend(Assignment::decode(a.assignment.clone()).unwrap().partitions);
        }
        all.sort();
        assert_eq!(
            all,
            (0..4)
                .map(|p| TopicPartition::new("t", p))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn skipping_unknown_assignors_and_unreadable_subscriptions() {
        let sub = Subscription::new(["t"]).encode(3);
        let led = assign(
            &answer(&[("a", sub.clone())], true),
            "range",
            &range(),
            counts,
        )
        .unwrap();
        assert!(led.assignments.is_empty() && led.counts.is_none());
        assert_eq!(led.group_topics.len(), 1);
        assert!(matches!(
            assign(&answer(&[("a", sub)], false), "roundrobin", &range(), counts),
            Err(LeadError::UnknownProtocol(m)) if m.contains("roundrobin")
        ));
        let garbage = Bytes::from_static(&[0, 1, 0xff, 0xff, 0xff]);
        assert!(matches!(
            assign(&answer(&[("a", garbage)], false), "range", &range(), counts),
            Err(LeadError::Protocol(ApiKey::JoinGroup, _))
        ));
    }
}
