//! Topic creation and watermarks on tansu and Kafka, through kbus's admin client (outside the
//! clock).

use super::*;
use kbus::admin::{Admin, NewTopic, OffsetSpec};
use kbus::cluster::{Cluster, ClusterConfig};

async fn admin(bootstrap: &str) -> Result<Admin, String> {
    let cluster = Cluster::connect(ClusterConfig::new(bootstrap))
        .await
        .map_err(|e| format!("admin connect: {e}"))?;
    Ok(Admin::new(cluster))
}

/// Creates `topic` (replication 1: tansu, or Kafka here, is one broker).
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<(), String> {
    runtime().block_on(async {
        admin(bootstrap)
            .await?
            .create_topics(&[NewTopic::new(topic, partitions, 1)])
            .await
            .map_err(|e| format!("create topic {topic}: {e}"))
    })
}

/// Low and high watermark of every partition.
pub fn watermarks(bootstrap: &str, topic: &str) -> Result<Vec<(i64, i64)>, String> {
    runtime().block_on(async {
        let admin = admin(bootstrap).await?;
        let offsets = |spec| admin.list_offsets(topic, &[], spec);
        let low = offsets(OffsetSpec::Earliest)
            .await
            .map_err(|e| format!("earliest offsets of {topic}: {e}"))?;
        let high = offsets(OffsetSpec::Latest)
            .await
            .map_err(|e| format!("latest offsets of {topic}: {e}"))?;
        Ok(low
            .iter()
            .zip(&high)
            .map(|(l, h)| (l.offset, h.offset))
            .collect())
    })
}

/// Has the broker start its group coordinator (creating `__consumer_offsets`), outside the
/// clock: asks for a group's description until the coordinator answers.
pub fn start_group_coordinator(bootstrap: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    runtime().block_on(async {
        let admin = admin(bootstrap).await?;
        loop {
            match admin.describe_groups(&["bench-coordinator"]).await {
                // Kafka 4 answers for a group it does not know with GROUP_ID_NOT_FOUND.
                Ok(_) => return Ok(()),
                Err(kbus::Error::Broker { code, .. })
                    if code == kbus_protocol::error_code::ErrorCode::GROUP_ID_NOT_FOUND =>
                {
                    return Ok(())
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("describe a group: {e}"))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    })
}

/// That `topic` holds exactly `records` records in `partitions` partitions from offset 0.
pub fn check(bootstrap: &str, topic: &str, partitions: i32, records: usize) -> Result<(), String> {
    let marks = watermarks(bootstrap, topic)?;
    let total: i64 = marks.iter().map(|(_, high)| high).sum();
    if marks.len() == partitions as usize
        && marks.iter().all(|(low, _)| *low == 0)
        && total == records as i64
    {
        Ok(())
    } else {
        Err(format!(
            "the topic has {total} records (watermarks {marks:?}), expected {records} from offset 0"
        ))
    }
}
