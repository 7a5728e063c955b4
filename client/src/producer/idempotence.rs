//! The idempotent producer's identity: a producer id and epoch from InitProducerId (KIP-98).
//! With them, every batch carries a per-partition sequence number and the broker drops the
//! duplicates a retry would otherwise write.
//!
//! When a batch that held sequence numbers fails for good (expired, refused), or the broker no
//! longer knows the producer or its sequence, the sequences of its partition cannot continue:
//! the producer then bumps its epoch (KIP-360) and numbers every unacknowledged batch again from 0.
//! The broker takes the higher epoch as the same producer starting over, and refuses the old
//! epoch's batches from then on.

use std::time::{Duration, Instant};

use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::messages::InitProducerIdRequest;
use kbus_protocol::ApiKey;

use super::config::{Acks, ProducerConfig};
use crate::cluster::{Backoff, Cluster};
use crate::error::{Error, Result};

/// A producer id and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    /// The producer id.
    pub id: i64,
    /// The producer epoch.
    pub epoch: i16,
}

/// Whether `config` asks for idempotence: explicitly, or by default with `acks=all`.
pub(crate) fn wanted(config: &ProducerConfig) -> bool {
    config
        .enable_idempotence
        .unwrap_or(config.acks == Acks::All)
}

/// Gets a producer id when idempotence is wanted. With idempotence on by default (not set
/// explicitly), a cluster whose brokers do not offer InitProducerId gets a producer without it;
/// asked for explicitly, that is an error.
pub(crate) async fn init(
    cluster: &Cluster,
    config: &ProducerConfig,
) -> Result<Option<ProducerIdentity>> {
    if !wanted(config) {
        return Ok(None);
    }
    let deadline = Instant::now() + config.request_timeout;
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    loop {
        let attempt = init_once(cluster, config).await;
        let retry = match &attempt {
            Ok(_) => false,
            Err(e) => e.is_retriable(),
        };
        if !retry || Instant::now() >= deadline {
            return attempt;
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

async fn init_once(cluster: &Cluster, config: &ProducerConfig) -> Result<Option<ProducerIdentity>> {
    let conn = cluster.any_broker().await?;
    if conn.version(ApiKey::InitProducerId).is_none() {
        return match config.enable_idempotence {
            Some(true) => Err(Error::UnsupportedApi {
                broker: conn.broker().to_owned(),
                api: ApiKey::InitProducerId,
            }),
            _ => Ok(None),
        };
    }
    request(cluster).await.map(Some)
}

/// The identity to continue with after sequences broke: the next epoch of the same producer id,
/// which the broker accepts from an idempotent producer starting again at sequence 0 and which
/// fences the old epoch's batches (KIP-360; the Java client bumps it the same way, without a
/// request). Once the epoch is exhausted, a new producer id.
pub(crate) async fn bump(cluster: &Cluster, current: ProducerIdentity) -> Result<ProducerIdentity> {
    if current.epoch < i16::MAX {
        return Ok(ProducerIdentity {
            id: current.id,
            epoch: current.epoch + 1,
        });
    }
    request(cluster).await
}

/// One InitProducerId for an idempotent (not transactional) producer: a new producer id.
async fn request(cluster: &Cluster) -> Result<ProducerIdentity> {
    let conn = cluster.any_broker().await?;
    let resp = conn
        .send(&InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        })
        .await?;
    let code = ErrorCode::from(resp.error_code);
    if code.is_err() {
        cluster.report_code(code);
        return Err(Error::Broker {
            broker: conn.broker().to_owned(),
            api: ApiKey::InitProducerId,
            code,
            message: None,
        });
    }
    Ok(ProducerIdentity {
        id: resp.producer_id,
        epoch: resp.producer_epoch,
    })
}
