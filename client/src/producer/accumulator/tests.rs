//! Tests of [`super`].

use super::*;
use kbus_protocol::compression::Compression;
use std::time::Duration;

fn acc(batch_size: usize, linger_ms: u64) -> Accumulator {
    Accumulator::new(Arc::new(ProducerConfig {
        batch_size,
        linger: Duration::from_millis(linger_ms),
        ..Default::default()
    }))
}

fn rec(key: &str) -> ProducerRecord {
    ProducerRecord::new("t")
        .key(key.to_owned())
        .value(vec![7u8; 100])
}

fn push(a: &Accumulator, r: &ProducerRecord, now: Instant) -> DeliveryFuture {
    let m = Accumulator::record_size(r);
    a.append(r, 1, m, now).unwrap().unwrap()
}

#[test]
fn unknown_topic_asks_for_metadata() {
    let a = acc(16384, 5);
    assert!(a
        .append(&rec("k"), 1, 10, Instant::now())
        .unwrap()
        .is_none());
    a.set_partition_count("t", 3);
    assert!(a
        .append(&rec("k"), 1, 10, Instant::now())
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn a_new_batch_wakes_the_sender_so_its_linger_deadline_is_kept() {
    let a = acc(16384, 5);
    a.set_partition_count("t", 1);
    drop(push(&a, &rec("k"), Instant::now()));
    let woken = tokio::time::timeout(Duration::ZERO, a.wake.notified()).await;
    assert!(woken.is_ok(), "the sender must learn of the first batch");
    // A record joining the open batch does not wake it again.
    drop(push(&a, &rec("k"), Instant::now()));
    let woken = tokio::time::timeout(Duration::ZERO, a.wake.notified()).await;
    assert!(woken.is_err());
}

#[test]
fn a_batch_is_ready_after_linger_or_when_full() {
    let a = acc(1000, 5);
    a.set_partition_count("t", 1);
    let t0 = Instant::now();
    drop(push(&a, &rec("k"), t0));
    let d = a.drain(t0, |_, _| Some(1), |_| true, None);
    assert!(d.requests.is_empty());
    // The sender is woken when the linger ends (its timer is precise).
    assert_eq!(d.next_wake, Some(t0 + Duration::from_millis(5)));
    let d = a.drain(
        t0 + Duration::from_micros(4_990),
        |_, _| Some(1),
        |_| true,
        None,
    );
    assert!(d.requests.is_empty(), "before its linger ends");
    let d = a.drain(
        t0 + Duration::from_millis(5),
        |_, _| Some(1),
        |_| true,
        None,
    );
    assert_eq!(d.requests.len(), 1);
    // Ten 100-byte records overflow a 1000-byte batch: the first batch is ready at once.
    for _ in 0..10 {
        drop(push(&a, &rec("k"), t0));
    }
    let d = a.drain(t0, |_, _| Some(1), |_| true, None);
    assert_eq!(d.requests.len(), 1);
    assert_eq!(d.requests[0].1.len(), 1);
    assert!(d.requests[0].1[0].records >= 8);
}

#[test]
fn batch_size_bounds_the_compressed_size_once_a_ratio_was_seen() {
    let a = Accumulator::new(Arc::new(ProducerConfig {
        batch_size: 2000,
        // Lingered at once, so that each round drains everything it made.
        linger: Duration::ZERO,
        compression: Compression::Gzip,
        max_request_size: 12_000,
        ..Default::default()
    }));
    a.set_partition_count("t", 1);
    let t0 = Instant::now();
    let first_batch = |a: &Accumulator| {
        for _ in 0..200 {
            drop(push(a, &rec("k"), t0));
        }
        let d = a.drain(t0, |_, _| Some(1), |_| true, None);
        let records = d.requests[0].1[0].records;
        drop(drain_all(a, None));
        records
    };
    // Nothing compressed yet: the uncompressed size fills the batch, as without compression.
    let plain = first_batch(&a);
    assert!((15..=18).contains(&plain), "{plain}");
    // Batches of the topic shrink to a fifth: about four and a half times the records fit.
    for _ in 0..10 {
        a.observe_compression("t", 10_000, 2_000);
    }
    let packed = first_batch(&a);
    assert!(
        (70..=90).contains(&packed),
        "{packed} records, {plain} before"
    );
    // Never past max.request.size uncompressed, however well the data compresses.
    for _ in 0..10 {
        a.observe_compression("t", 10_000, 10);
    }
    let capped = first_batch(&a);
    assert!((95..=110).contains(&capped), "{capped}");
    // Data that stops compressing counts at once: a 0.9 ratio, about plain's count again.
    a.observe_compression("t", 10_000, 9_000);
    let worse = first_batch(&a);
    assert!((plain..=plain + 2).contains(&worse), "{worse}");
}

#[test]
fn one_request_per_broker_holds_every_ready_partition_it_leads() {
    let a = acc(16384, 0);
    a.set_partition_count("t", 4);
    for i in 0..40 {
        drop(push(&a, &rec(&format!("key-{i}")), Instant::now()));
    }
    let d = a.drain(Instant::now(), |_, p| Some(p % 2), |_| true, None);
    assert_eq!(d.requests.len(), 2);
    for (broker, batches) in &d.requests {
        assert!(batches.iter().all(|b| b.partition % 2 == *broker));
    }
    let total: i32 = d
        .requests
        .iter()
        .flat_map(|r| &r.1)
        .map(|b| b.records)
        .sum();
    assert_eq!(total, 40);
}

/// A broker with a ready batch takes the first batch of each of its other partitions too,
/// lingered or not (the Java client's drain); a broker with nothing ready sends nothing yet.
#[test]
fn a_ready_broker_takes_the_lingering_batches_of_its_other_partitions() {
    let a = acc(1000, 5_000);
    a.set_partition_count("t", 4);
    let t0 = Instant::now();
    // Partition 0 (broker 1) gets more than a batch holds; partitions 1..4 one record each.
    for _ in 0..12 {
        drop(push(&a, &rec("k").partition(0), t0));
    }
    for p in 1..4 {
        drop(push(&a, &rec("k").partition(p), t0));
    }
    let leader = |_: &str, p: i32| Some(if p < 2 { 1 } else { 2 });
    let d = a.drain(t0, leader, |_| true, None);
    let sent: Vec<(i32, Vec<i32>)> = d
        .requests
        .iter()
        .map(|(b, batches)| (*b, batches.iter().map(|b| b.partition).collect()))
        .collect();
    assert_eq!(sent.len(), 1, "only broker 1 has a ready batch: {sent:?}");
    let (broker, mut partitions) = sent[0].clone();
    partitions.sort();
    assert_eq!(
        (broker, partitions),
        (1, vec![0, 1]),
        "partition 1 went along"
    );
    // Broker 2's batches wait for their linger.
    assert_eq!(d.next_wake, Some(t0 + Duration::from_millis(5_000)));
}

#[test]
fn batches_are_compressed_at_the_configured_gzip_level() {
    // The same compressible records, one batch each way: level 1 writes more bytes than 9.
    let built_size = |level: Option<u32>| {
        let a = Accumulator::new(Arc::new(ProducerConfig {
            batch_size: 1 << 20,
            linger: Duration::ZERO,
            compression: Compression::Gzip,
            compression_level: level,
            ..Default::default()
        }));
        a.set_partition_count("t", 1);
        for i in 0..500 {
            let value = format!(
                "{{\"order\":{i},\"state\":\"placed\",\"amount\":{}}}",
                i * 37 % 1000
            );
            let r = ProducerRecord::new("t")
                .key(format!("k{}", i % 50))
                .value(value);
            drop(push(&a, &r, Instant::now()));
        }
        let mut batches = drain_all(&a, None);
        assert_eq!(batches.len(), 1);
        batches[0].take_payload().into_bytes().unwrap().len()
    };
    let (fastest, default, smallest) = (built_size(Some(1)), built_size(None), built_size(Some(9)));
    assert!(
        fastest > default && default >= smallest,
        "level 1: {fastest} bytes, default: {default}, level 9: {smallest}"
    );
}

/// Drains until nothing more is sent now, as the sender would.
fn drain_all(a: &Accumulator, producer: Option<(i64, i16)>) -> Vec<ProducerBatch> {
    let mut sent = Vec::new();
    loop {
        let d = a.drain(Instant::now(), |_, _| Some(0), |_| true, producer);
        if d.requests.is_empty() {
            return sent;
        }
        sent.extend(d.requests.into_iter().flat_map(|r| r.1));
    }
}

fn written() -> BatchOutcome {
    BatchOutcome::Written {
        base_offset: 0,
        log_append_time: -1,
    }
}

fn failed() -> BatchOutcome {
    BatchOutcome::Failed(Arc::new(Error::Closed))
}

#[test]
fn sequences_follow_batches_and_retries_go_first_in_order() {
    let a = acc(300, 0);
    a.set_partition_count("t", 1);
    for _ in 0..8 {
        drop(push(&a, &rec("k"), Instant::now()));
    }
    let first = drain_all(&a, Some((9, 0)));
    assert_eq!(
        first.len(),
        1,
        "one batch until the broker knows the producer"
    );
    a.complete(first.into_iter().next().unwrap(), written(), true);
    let sent = drain_all(&a, Some((9, 0)));
    let seqs: Vec<_> = sent.iter().map(|b| b.base_sequence.unwrap()).collect();
    assert_eq!(seqs, vec![2, 4, 6]);
    // The first two fail; they come back in sequence order regardless of requeue order,
    // and wait until nothing of the partition is in flight.
    let mut it = sent.into_iter();
    let (b2, b4, b6) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    a.requeue(b4);
    assert!(
        drain_all(&a, Some((9, 0))).is_empty(),
        "two batches still in flight"
    );
    a.requeue(b2);
    a.complete(b6, failed(), true);
    let d = a.drain(Instant::now(), |_, _| Some(0), |_| true, Some((9, 0)));
    assert_eq!(d.requests[0].1[0].base_sequence, Some(2));
}

#[test]
fn until_a_first_batch_is_acknowledged_one_batch_is_in_flight() {
    let a = acc(300, 0);
    a.set_partition_count("t", 1);
    for _ in 0..8 {
        drop(push(&a, &rec("k"), Instant::now()));
    }
    let first = drain_all(&a, Some((9, 0)));
    assert_eq!(first.len(), 1);
    // A retriable failure of the first batch: it goes again, still alone.
    a.requeue(first.into_iter().next().unwrap());
    let again = drain_all(&a, Some((9, 0)));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].base_sequence, Some(0));
    a.complete(again.into_iter().next().unwrap(), written(), true);
    assert_eq!(
        drain_all(&a, Some((9, 0))).len(),
        3,
        "then the pipeline opens"
    );
    // Without idempotence there is nothing to wait for.
    let b = acc(300, 0);
    b.set_partition_count("t", 1);
    for _ in 0..8 {
        drop(push(&b, &rec("k"), Instant::now()));
    }
    assert_eq!(drain_all(&b, None).len(), 4);
}

#[test]
fn retries_keep_sequence_order_across_the_wrap_to_zero() {
    let a = acc(300, 0);
    a.set_partition_count("t", 1);
    {
        let mut st = a.lock();
        let q = &mut st.topics.get_mut("t").unwrap().partitions[0];
        q.next_sequence = i32::MAX - 2;
        q.acked_sequence = i32::MAX - 2;
        q.confirmed = true;
    }
    for _ in 0..6 {
        drop(push(&a, &rec("k"), Instant::now()));
    }
    let sent = drain_all(&a, Some((9, 0)));
    let seqs: Vec<_> = sent.iter().map(|b| b.base_sequence.unwrap()).collect();
    assert_eq!(seqs, vec![i32::MAX - 2, i32::MAX, 1]);
    // All three come back, the last first: they go again from the one before the wrap.
    for b in sent.into_iter().rev() {
        a.requeue(b);
    }
    let mut order = Vec::new();
    loop {
        let d = a.drain(Instant::now(), |_, _| Some(0), |_| true, Some((9, 0)));
        let Some(b) = d.requests.into_iter().flat_map(|r| r.1).next() else {
            break;
        };
        order.push(b.base_sequence.unwrap());
        a.complete(b, written(), true);
    }
    assert_eq!(order, vec![i32::MAX - 2, i32::MAX, 1]);
}

#[test]
fn an_epoch_bump_numbers_waiting_batches_again_from_zero() {
    let a = acc(300, 0);
    a.set_partition_count("t", 1);
    for _ in 0..6 {
        drop(push(&a, &rec("k"), Instant::now()));
    }
    let first = drain_all(&a, Some((9, 0)));
    a.complete(first.into_iter().next().unwrap(), written(), true);
    let mut sent = drain_all(&a, Some((9, 0))).into_iter();
    let (b2, b4) = (sent.next().unwrap(), sent.next().unwrap());
    // The batch at sequence 2 fails for good; the one after it comes back for a retry.
    a.complete(b2, failed(), true);
    let mut b4 = b4;
    let bytes = b4.take_payload().into_bytes().unwrap();
    b4.set_built(bytes);
    a.requeue(b4);
    assert!(a.reset_sequences(9, 1).is_empty());
    let mut again = drain_all(&a, Some((9, 1))).into_iter();
    let mut b = again.next().expect("the retried batch goes first, alone");
    assert_eq!(b.base_sequence, Some(0));
    let batch = kbus_protocol::record::BatchDecoder::new(b.take_payload().into_bytes().unwrap())
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(
        (batch.producer_id, batch.producer_epoch, batch.base_sequence),
        (9, 1, 0)
    );
    assert!(again.next().is_none());
    a.complete(b, written(), true);
    drop(push(&a, &rec("k"), Instant::now()));
    let next = drain_all(&a, Some((9, 1)));
    assert_eq!(
        next[0].base_sequence,
        Some(2),
        "new batches continue after it"
    );
}

#[tokio::test]
async fn memory_is_bounded_and_freed_on_completion() {
    let a = Arc::new(Accumulator::new(Arc::new(ProducerConfig {
        buffer_memory: 1000,
        batch_size: 500,
        ..Default::default()
    })));
    a.reserve(900).await.unwrap();
    let waiting = tokio::spawn({
        let a = a.clone();
        async move { a.reserve(200).await }
    });
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    a.release(900);
    waiting.await.unwrap().unwrap();
}

#[test]
fn keyless_records_stick_to_one_partition_per_batch() {
    let a = acc(16384, 5);
    a.set_partition_count("t", 6);
    let r = ProducerRecord::new("t").value(vec![1u8; 100]);
    let first = push(&a, &r, Instant::now()).partition();
    for _ in 0..50 {
        assert_eq!(push(&a, &r, Instant::now()).partition(), first);
    }
}

#[test]
fn a_keyless_batch_another_record_did_not_fit_is_ready_before_its_linger() {
    let a = acc(1000, 5_000);
    a.set_partition_count("t", 3);
    let t0 = Instant::now();
    let r = ProducerRecord::new("t").value(vec![1u8; 100]);
    let first = push(&a, &r, t0).partition();
    let mut moved = None;
    for _ in 0..20 {
        let p = push(&a, &r, t0).partition();
        if p != first {
            moved = Some(p);
            break;
        }
    }
    assert!(
        moved.is_some(),
        "keyless records move on when the batch is full"
    );
    // The full batch goes now; the new one, led by another broker, waits for its linger.
    let d = a.drain(
        t0,
        |_, p| Some(if p == first { 1 } else { 2 }),
        |_| true,
        None,
    );
    let sent: Vec<(i32, i32)> = d
        .requests
        .iter()
        .flat_map(|(_, batches)| batches.iter().map(|b| (b.partition, b.records)))
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, first);
    assert!(sent[0].1 >= 8);
}

#[test]
fn expired_batches_are_handed_back() {
    let a = Accumulator::new(Arc::new(ProducerConfig {
        delivery_timeout: Duration::from_millis(10),
        ..Default::default()
    }));
    a.set_partition_count("t", 1);
    let t0 = Instant::now();
    drop(push(&a, &rec("k"), t0));
    let d = a.drain(t0 + Duration::from_millis(10), |_, _| None, |_| true, None);
    assert_eq!(d.expired.len(), 1);
}
