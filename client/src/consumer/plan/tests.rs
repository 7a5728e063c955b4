//! Tests of [`super`].

use super::*;
use crate::cluster::{BrokerInfo, PartitionInfo, TopicInfo};
use crate::consumer::config::{ConsumerConfig, OffsetReset};
use crate::consumer::decode::Decoded;
use crate::consumer::record::ConsumerRecord;
use crate::list_offsets::{Found, Listed, OffsetSpec};
use kbus_protocol::record::TimestampType;
use kbus_protocol::{ProtocolError, Uuid};
use std::collections::HashMap;
use std::time::Duration;

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

fn metadata(leaders: &[(i32, i32)]) -> Arc<Metadata> {
    let mut md = Metadata::empty();
    for id in 1..=3 {
        md.brokers.insert(
            id,
            BrokerInfo {
                id,
                host: "h".into(),
                port: id,
                rack: None,
            },
        );
    }
    md.topics.insert(
        "t".into(),
        TopicInfo {
            name: "t".into(),
            id: Uuid::NIL,
            internal: false,
            error: ErrorCode::NONE,
            partitions: leaders
                .iter()
                .map(|&(id, leader)| PartitionInfo {
                    id,
                    leader,
                    leader_epoch: 4,
                    replicas: vec![leader],
                    in_sync: vec![leader],
                    offline: vec![],
                    error: ErrorCode::NONE,
                })
                .collect(),
        },
    );
    Arc::new(md)
}

fn state(config: ConsumerConfig) -> ConsumerState {
    ConsumerState::new(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        ..config
    })
}

/// Runs the metadata job of a fresh plan with `leaders`.
fn route(s: &mut ConsumerState, now: Instant, leaders: &[(i32, i32)]) {
    let plan = s.plan(now);
    let (id, _) = plan
        .jobs
        .iter()
        .find(|(_, j)| matches!(j, Job::Metadata { .. }))
        .expect("a metadata job");
    let id = *id;
    for (other, job) in plan.jobs {
        if other != id {
            // Hand back whatever else was planned unanswered.
            let _ = job;
            s.apply(other, Outcome::Lost, now);
        }
    }
    s.apply(id, Outcome::Metadata(Ok(metadata(leaders))), now);
}

fn fetches(plan: &Plan) -> Vec<(u64, FetchJob)> {
    plan.jobs
        .iter()
        .filter_map(|(id, j)| match j {
            Job::Fetch(f) => Some((*id, f.clone())),
            _ => None,
        })
        .collect()
}

fn data(target: &FetchTarget, n: i64, hw: i64) -> PartitionOutcome {
    let records = (0..n)
        .map(|i| ConsumerRecord {
            topic: target.topic.clone(),
            partition: target.tp.partition,
            offset: target.offset + i,
            timestamp: 0,
            timestamp_type: TimestampType::CreateTime,
            key: None,
            value: None,
            headers: Vec::new(),
        })
        .collect();
    PartitionOutcome::Data {
        decoded: Decoded {
            records,
            next_offset: target.offset + n,
            bytes: 100 * n as usize,
            batches: 1,
            truncated: false,
            error: None,
        },
        high_watermark: hw,
        last_stable_offset: -1,
        log_start_offset: 0,
    }
}

fn done(targets: &[FetchTarget], f: impl Fn(&FetchTarget) -> PartitionOutcome) -> Outcome {
    Outcome::Fetch(FetchOutcome::Done {
        broker: "h:1".into(),
        partitions: targets.iter().map(|t| (t.clone(), f(t))).collect(),
    })
}

#[test]
fn one_fetch_per_broker_covers_every_partition_it_leads() {
    let now = Instant::now();
    let mut s = state(ConsumerConfig::default());
    s.assign((0..4).map(tp));
    for p in 0..4 {
        s.seek(&tp(p), 0).unwrap();
    }
    route(&mut s, now, &[(0, 1), (1, 2), (2, 1), (3, 2)]);
    let plan = s.plan(now);
    let f = fetches(&plan);
    assert_eq!(f.len(), 2);
    let mut brokers: Vec<(i32, Vec<i32>)> = f
        .iter()
        .map(|(_, j)| {
            let mut ps: Vec<i32> = j.targets.iter().map(|t| t.tp.partition).collect();
            ps.sort();
            (j.broker, ps)
        })
        .collect();
    brokers.sort();
    assert_eq!(brokers, vec![(1, vec![0, 2]), (2, vec![1, 3])]);
    assert_eq!(f[0].1.targets[0].leader_epoch, 4);
    // Nothing more while those are in flight.
    assert!(fetches(&s.plan(now)).is_empty());
}

#[test]
fn every_broker_gets_a_fetch_however_large_fetch_max_bytes_is() {
    let now = Instant::now();
    let mut s = state(ConsumerConfig::default());
    s.assign((0..6).map(tp));
    for p in 0..6 {
        s.seek(&tp(p), 0).unwrap();
    }
    route(
        &mut s,
        now,
        &[(0, 1), (1, 2), (2, 3), (3, 1), (4, 2), (5, 3)],
    );
    let f = fetches(&s.plan(now));
    assert_eq!(f.len(), 3, "one fetch per broker at once");
    for (_, job) in &f {
        assert_eq!(job.max_bytes, 2 << 20, "two partitions' worth reserved");
    }
    assert_eq!(s.reserved, 6 << 20);
}

#[test]
fn fetched_records_are_delivered_in_order_and_fetching_continues_after_them() {
    let now = Instant::now();
    let mut s = state(ConsumerConfig::default());
    s.assign([tp(0)]);
    s.seek(&tp(0), 10).unwrap();
    route(&mut s, now, &[(0, 1)]);
    let (id, job) = fetches(&s.plan(now)).remove(0);
    assert_eq!(job.targets[0].offset, 10);
    s.apply(id, done(&job.targets, |t| data(t, 3, 20)), now);
    let (id2, job2) = fetches(&s.plan(now)).remove(0);
    assert_eq!(job2.targets[0].offset, 13, "prefetching continues");
    let got = s.pop().unwrap().unwrap();
    let offsets: Vec<i64> = got.records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [10, 11, 12]);
    assert_eq!(got.high_watermark, 20);
    assert_eq!(s.position(&tp(0)), Some(13));
    s.apply(id2, done(&job2.targets, |t| data(t, 2, 20)), now);
    assert_eq!(s.pop().unwrap().unwrap().records[0].offset, 13);
    assert_eq!(s.position(&tp(0)), Some(15));
    assert!(s.jobs.is_empty());
    assert_eq!((s.buffered, s.reserved), (0, 0));
}

#[test]
fn a_fetch_in_flight_across_a_seek_is_discarded() {
    let now = Instant::now();
    let mut s = state(ConsumerConfig::default());
    s.assign([tp(0)]);
    s.seek(&tp(0), 0).unwrap();
    route(&mut s, now, &[(0, 1)]);
    let (id, job) = fetches(&s.plan(now)).remove(0);
    s.seek(&tp(0), 100).unwrap();
    s.apply(id, done(&job.targets, |t| data(t, 5, 200)), now);
    assert!(
        s.pop().is_none(),
        "records from before the seek are never delivered"
    );
    let (_, job) = fetches(&s.plan(now)).remove(0);
    assert_eq!(job.targets[0].offset, 100);
    // A pause is no seek: the fetch in flight lands and waits, nothing is fetched while paused,
    // and on resume its records come out first and fetching goes on after them.
    let mut s = state(ConsumerConfig::default());
    s.assign([tp(0)]);
    s.seek(&tp(0), 0).unwrap();
    route(&mut s, now, &[(0, 1)]);
    let (id, job) = fetches(&s.plan(now)).remove(0);
    s.pause(&tp(0));
    s.apply(id, done(&job.targets, |t| data(t, 5, 200)), now);
    assert!(s.pop().is_none(), "a paused partition hands nothing out");
    assert!(
        fetches(&s.plan(now)).is_empty(),
        "a paused partition is not fetched"
    );
    s.resume(&tp(0));
    let got = s.pop().unwrap().unwrap();
    assert_eq!((got.records[0].offset, got.next_offset), (0, 5));
    let (_, job) = fetches(&s.plan(now)).remove(0);
    assert_eq!(job.targets[0].offset, 5);
}

#[test]
fn a_moved_leader_is_looked_up_again_and_fetching_resumes_at_the_same_offset() {
    let now = Instant::now();
    let mut s = state(ConsumerConfig::default());
    s.assign([tp(0)]);
    s.seek(&tp(0), 7).unwrap();
    route(&mut s, now, &[(0, 1)]);
    let (id, job) = fetches(&s.plan(now)).remove(0);
    s.apply(
        id,
        done(&job.targets, |_| {
            PartitionOutcome::Error(ErrorCode::NOT_LEADER_OR_FOLLOWER)
        }),
        now,
    );
    assert!(
        s.pop().is_none(),
        "a retriable error is not the application's business"
    );
    assert_eq!(s.partitions[&tp(0)].leader, None);
    // After the backoff, metadata first, then the new leader from the same offset.
    let later = now + Duration::from_millis(150);
    assert!(s.plan(now).jobs.is_empty(), "backing off");
    route(&mut s, later, &[(0, 3)]);
    let (_, job) = fetches(&s.plan(later)).remove(0);
    assert_eq!((job.broker, job.targets[0].offset), (3, 7));
    assert_eq!(s.position(&tp(0)), Some(7));
}

#[test]
fn a_lost_connection_forgets_the_leader_and_keeps_the_offset() {
    let now = Instant::now();
    let mut s = state(ConsumerConfig::default());
    s.assign([tp(0)]);
    s.seek(&tp(0), 3).unwrap();
    route(&mut s, now, &[(0, 1)]);
    let (id, _) = fetches(&s.plan(now)).remove(0);
    let error = Error::Disconnected {
        broker: "h:1".into(),
    };
    s.apply(
        id,
        Outcome::Fetch(FetchOutcome::Failed { error, stale: true }),
        now,
    );
    assert!(s.pop().is_none());
    assert_eq!(s.partitions[&tp(0)].leader, None);
    assert_eq!(s.partitions[&tp(0)].fetch, FetchState::At(3));
}

#[test]
fn offset_out_of_range_resets_or_stops_per_policy() {
    let now = Instant::now();
    for (reset, expect) in [
        (
            OffsetReset::Earliest,
            FetchState::Reset(OffsetSpec::Earliest),
        ),
        (OffsetReset::Latest, FetchState::Reset(OffsetSpec::Latest)),
        (OffsetReset::None, FetchState::Stopped),
    ] {
        let mut s = ConsumerState::new(ConsumerConfig {
            auto_offset_reset: reset,
            ..Default::default()
        });
        s.assign([tp(0)]);
        s.seek(&tp(0), 1000).unwrap();
        route(&mut s, now, &[(0, 1)]);
        let (id, job) = fetches(&s.plan(now)).remove(0);
        s.apply(
            id,
            done(&job.targets, |_| {
                PartitionOutcome::Error(ErrorCode::OFFSET_OUT_OF_RANGE)
            }),
            now,
        );
        assert_eq!(s.partitions[&tp(0)].fetch, expect);
        if reset == OffsetReset::None {
            let err = s.pop().unwrap().unwrap_err();
            assert!(
                matches!(&err, Error::Consume { topic, partition: 0, offset: 1000, .. } if topic == "t"),
                "{err}"
            );
            assert!(err.to_string().contains("t/0 at offset 1000"), "{err}");
            assert!(s.plan(now).jobs.is_empty(), "stopped until a seek");
        } else {
            let plan = s.plan(now);
            let resets: Vec<&Job> = plan
                .jobs
                .iter()
                .map(|(_, j)| j)
                .filter(|j| matches!(j, Job::Reset(_)))
                .collect();
            assert_eq!(resets.len(), 1);
        }
    }
}

#[test]
fn committed_offsets_start_partitions_and_missing_ones_follow_the_reset_policy() {
    let now = Instant::now();
    let mut s = ConsumerState::new(ConsumerConfig {
        group: crate::group::GroupConfig::new("g"),
        auto_offset_reset: OffsetReset::Latest,
        ..Default::default()
    });
    s.assign([tp(0), tp(1)]);
    let plan = s.plan(now);
    let (id, job) = plan
        .jobs
        .iter()
        .find(|(_, j)| matches!(j, Job::Committed(_)))
        .unwrap();
    assert!(matches!(job, Job::Committed(tps) if tps.len() == 2));
    let offsets = HashMap::from([(tp(0), 42)]);
    s.apply(*id, Outcome::Committed(Ok(offsets)), now);
    assert_eq!(s.position(&tp(0)), Some(42));
    assert_eq!(
        s.partitions[&tp(1)].fetch,
        FetchState::Reset(OffsetSpec::Latest)
    );
    let plan = s.plan(now);
    let (id, _) = plan
        .jobs
        .iter()
        .find(|(_, j)| matches!(j, Job::Reset(_)))
        .unwrap();
    let listed = Listed {
        offsets: HashMap::from([(
            tp(1),
            Found {
                offset: 9,
                timestamp: -1,
            },
        )]),
        errors: Vec::new(),
    };
    s.apply(*id, Outcome::Reset(listed), now);
    assert_eq!(s.position(&tp(1)), Some(9));
}

#[test]
fn a_corrupt_batch_stops_the_partition_after_the_records_before_it() {
    let now = Instant::now();
    let mut s = state(ConsumerConfig::default());
    s.assign([tp(0)]);
    s.seek(&tp(0), 0).unwrap();
    route(&mut s, now, &[(0, 1)]);
    let (id, job) = fetches(&s.plan(now)).remove(0);
    s.apply(
        id,
        done(&job.targets, |t| {
            let PartitionOutcome::Data { mut decoded, .. } = data(t, 2, 10) else {
                unreachable!()
            };
            decoded.error = Some((
                2,
                ProtocolError::CrcMismatch {
                    expected: 1,
                    computed: 2,
                    base_offset: 2,
                },
            ));
            PartitionOutcome::Data {
                decoded,
                high_watermark: 10,
                last_stable_offset: -1,
                log_start_offset: 0,
            }
        }),
        now,
    );
    assert_eq!(s.pop().unwrap().unwrap().records.len(), 2);
    let err = s.pop().unwrap().unwrap_err();
    assert!(err.to_string().contains("t/0 at offset 2"), "{err}");
    assert!(err.to_string().contains("h:1"), "{err}");
    assert!(fetches(&s.plan(now)).is_empty());
    s.seek(&tp(0), 3).unwrap();
    assert_eq!(fetches(&s.plan(now))[0].1.targets[0].offset, 3);
}

#[test]
fn no_whole_batch_doubles_the_partition_limit_up_to_fetch_max_bytes() {
    let now = Instant::now();
    let mut s = state(ConsumerConfig {
        max_partition_fetch_bytes: 1000,
        fetch_max_bytes: 3000,
        ..Default::default()
    });
    s.assign([tp(0)]);
    s.seek(&tp(0), 0).unwrap();
    route(&mut s, now, &[(0, 1)]);
    let mut asked = Vec::new();
    for _ in 0..3 {
        let (id, job) = fetches(&s.plan(now)).remove(0);
        asked.push(job.targets[0].max_bytes);
        let outcome = PartitionOutcome::Data {
            decoded: Decoded {
                next_offset: 0,
                truncated: true,
                ..Default::default()
            },
            high_watermark: 10,
            last_stable_offset: -1,
            log_start_offset: 0,
        };
        s.apply(
            id,
            Outcome::Fetch(FetchOutcome::Done {
                broker: "h:1".into(),
                partitions: vec![(job.targets[0].clone(), outcome)],
            }),
            now,
        );
    }
    assert_eq!(asked, [1000, 2000, 3000]);
}

#[test]
fn prefetching_stops_at_the_bound_and_resumes_when_the_application_catches_up() {
    let now = Instant::now();
    let mut s = state(ConsumerConfig {
        max_prefetch_bytes: 1000,
        max_partition_fetch_bytes: 400,
        fetch_max_bytes: 10_000,
        ..Default::default()
    });
    s.assign([tp(0)]);
    s.seek(&tp(0), 0).unwrap();
    route(&mut s, now, &[(0, 1)]);
    let (id, job) = fetches(&s.plan(now)).remove(0);
    assert!(job.max_bytes <= 1000);
    // 10 records of 100 bytes fill the bound.
    s.apply(id, done(&job.targets, |t| data(t, 10, 100)), now);
    assert_eq!(s.buffered, 1000);
    assert!(fetches(&s.plan(now)).is_empty(), "the bound is reached");
    s.pop().unwrap().unwrap();
    assert_eq!(s.buffered, 0);
    assert_eq!(fetches(&s.plan(now))[0].1.targets[0].offset, 10);
}

#[test]
fn control_only_data_moves_the_position_without_delivering_anything() {
    let now = Instant::now();
    let mut s = state(ConsumerConfig::default());
    s.assign([tp(0)]);
    s.seek(&tp(0), 5).unwrap();
    route(&mut s, now, &[(0, 1)]);
    let (id, job) = fetches(&s.plan(now)).remove(0);
    let outcome = |_: &FetchTarget| PartitionOutcome::Data {
        decoded: Decoded {
            next_offset: 6,
            batches: 1,
            ..Default::default()
        },
        high_watermark: 6,
        last_stable_offset: 6,
        log_start_offset: 0,
    };
    s.apply(id, done(&job.targets, outcome), now);
    assert!(s.pop().is_none());
    assert_eq!(s.position(&tp(0)), Some(6));
}

#[test]
fn fetches_failing_in_a_row_become_one_warning_and_a_success_ends_the_streak() {
    let t0 = Instant::now();
    let mut s = state(ConsumerConfig::default());
    s.assign([tp(0)]);
    s.seek(&tp(0), 0).unwrap();
    let timeout = || Error::RequestTimeout {
        broker: "h:1".into(),
        api: kbus_protocol::ApiKey::Fetch,
        after: std::time::Duration::from_secs(30),
    };
    let mut now = t0;
    route(&mut s, now, &[(0, 1)]);
    for attempt in 1..=4 {
        // A timeout leaves the leader known: the partition is fetched again after its backoff.
        let (id, _) = fetches(&s.plan(now)).remove(0);
        let failed = FetchOutcome::Failed {
            error: timeout(),
            stale: false,
        };
        s.apply(id, Outcome::Fetch(failed), now);
        let warned = s.warnings.len();
        assert_eq!(warned, usize::from(attempt >= 3), "after failure {attempt}");
        now += std::time::Duration::from_secs(2);
    }
    assert!(
        s.pop().is_none(),
        "a retriable failure is no error for poll"
    );
    assert!(matches!(
        s.pop_warning(),
        Some(Error::RequestTimeout { .. })
    ));
    // A fetch that comes back ends the streak: the next failure starts counting from one.
    let (id, job) = fetches(&s.plan(now)).remove(0);
    s.apply(id, done(&job.targets, |t| data(t, 1, 1)), now);
    assert!(s.streaks.is_empty(), "{:?}", s.streaks);
    let (id, _) = fetches(&s.plan(now)).remove(0);
    let failed = FetchOutcome::Failed {
        error: timeout(),
        stale: false,
    };
    s.apply(id, Outcome::Fetch(failed), now);
    assert!(s.warnings.is_empty());
}

/// A broker too slow for `request.timeout.ms`: each timed-out fetch waits out a growing backoff and
/// the next one asks for half as many bytes (down to a floor), instead of resending the same
/// request at once; answers grow the size back to `max.partition.fetch.bytes`.
#[test]
fn fetches_that_time_out_back_off_and_ask_for_less_until_answers_come_back() {
    let t0 = Instant::now();
    let mut s = state(ConsumerConfig::default());
    s.assign([tp(0)]);
    s.seek(&tp(0), 0).unwrap();
    let configured = ConsumerConfig::default().max_partition_fetch_bytes;
    let timeout = || {
        Outcome::Fetch(FetchOutcome::Failed {
            error: Error::RequestTimeout {
                broker: "h:1".into(),
                api: kbus_protocol::ApiKey::Fetch,
                after: Duration::from_secs(30),
            },
            stale: false,
        })
    };
    let mut now = t0;
    route(&mut s, now, &[(0, 1)]);
    let mut asked = Vec::new();
    let mut waits = Vec::new();
    for _ in 0..6 {
        let (id, job) = fetches(&s.plan(now)).remove(0);
        asked.push(job.targets[0].max_bytes);
        s.apply(id, timeout(), now);
        assert!(
            fetches(&s.plan(now)).is_empty(),
            "a timed-out fetch is not resent at once"
        );
        let retry_at = s.partitions[&tp(0)].retry_at.expect("a backoff");
        waits.push(retry_at - now);
        now = retry_at;
    }
    assert_eq!(
        asked,
        [
            configured,
            configured / 2,
            configured / 4,
            configured / 8,
            configured / 16,
            64 * 1024
        ],
        "halved per timeout, down to the floor"
    );
    assert!(
        waits.windows(2).all(|w| w[0] <= w[1]) && waits[0] < waits[5],
        "the backoff grows: {waits:?}"
    );
    // Answers come back: the size doubles per answer up to the configured one.
    let mut grown = Vec::new();
    for _ in 0..6 {
        let (id, job) = fetches(&s.plan(now)).remove(0);
        grown.push(job.targets[0].max_bytes);
        s.apply(id, done(&job.targets, |t| data(t, 1, 1000)), now);
        s.pop();
    }
    assert_eq!(
        grown,
        [
            64 * 1024,
            128 * 1024,
            256 * 1024,
            512 * 1024,
            configured,
            configured
        ]
    );
}

#[test]
fn metadata_lookups_failing_in_a_row_become_a_warning() {
    let now = Instant::now();
    let mut s = state(ConsumerConfig::default());
    s.assign([tp(0)]);
    s.seek(&tp(0), 0).unwrap();
    for _ in 0..3 {
        let plan = s.plan(now + std::time::Duration::from_secs(60));
        let (id, _) = plan
            .jobs
            .into_iter()
            .find(|(_, job)| matches!(job, Job::Metadata { .. }))
            .expect("a metadata lookup");
        let error = Error::Disconnected {
            broker: "h:1".into(),
        };
        s.apply(id, Outcome::Metadata(Err(error)), now);
    }
    assert!(matches!(s.pop_warning(), Some(Error::Disconnected { .. })));
    assert!(s.pop().is_none());
}
