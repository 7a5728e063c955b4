//! The idempotent producer's identity: a producer id and epoch from InitProducerId (KIP-98).
//! With them, every batch carries a per-partition sequence number and the broker drops the
//! duplicates a retry would otherwise write.
//!
//! When a batch that held sequence numbers fails for good (expired, refused), or the broker no
//! longer knows the producer or its sequence, the sequences of its partition cannot continue:
//! the producer then bumps its epoch (KIP-360) and numbers every unacknowledged batch again from 0.

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
    request(cluster, None).await.map(Some)
}

/// Bumps the epoch of `current` (KIP-360: InitProducerId naming the producer id and epoch, from
/// version 3), so that every partition starts again at sequence 0 and a batch of the old epoch
/// can no longer be written. A broker older than that, or one that refuses the bump, gives a new
/// producer id instead, which serves the same purpose.
pub(crate) async fn bump(cluster: &Cluster, current: ProducerIdentity) -> Result<ProducerIdentity> {
    let conn = cluster.any_broker().await?;
    if conn.version(ApiKey::InitProducerId).unwrap_or(0) >= 3 {
        match request(cluster, Some(current)).await {
            Err(e) if e.is_retriable() => return Err(e),
            Err(_) => {}
            ok => return ok,
        }
    }
    request(cluster, None).await
}

/// One InitProducerId for an idempotent (not transactional) producer: a new id, or the next epoch
/// of `current`.
async fn request(cluster: &Cluster, current: Option<ProducerIdentity>) -> Result<ProducerIdentity> {
    let conn = cluster.any_broker().await?;
    let resp = conn
        .send(&InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            producer_id: current.map_or(-1, |c| c.id),
            producer_epoch: current.map_or(-1, |c| c.epoch),
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
