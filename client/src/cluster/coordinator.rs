//! Finding the coordinator of a consumer group (or a transactional id), with retries while the
//! cluster is still electing or loading it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::messages::FindCoordinatorRequest;
use kbus_protocol::ApiKey;

use super::{lock, Backoff, BrokerInfo, Cluster};
use crate::error::{Error, Result};
use crate::net::Connection;

/// What a coordinator coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoordinatorType {
    /// A consumer group (key type 0).
    Group,
    /// A transactional producer (key type 1).
    Transaction,
}

impl CoordinatorType {
    fn key_type(self) -> i8 {
        match self {
            CoordinatorType::Group => 0,
            CoordinatorType::Transaction => 1,
        }
    }
}

/// Codes after which asking again (soon) can find the coordinator.
fn coordinator_retriable(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::COORDINATOR_NOT_AVAILABLE
            | ErrorCode::NOT_COORDINATOR
            | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
    )
}

impl Cluster {
    /// The coordinator for `key` and a connection to it for coordinator requests
    /// ([`coordinator_link`](Self::coordinator_link)). Answers are cached until
    /// [`invalidate_coordinator`](Self::invalidate_coordinator); COORDINATOR_NOT_AVAILABLE,
    /// NOT_COORDINATOR and COORDINATOR_LOAD_IN_PROGRESS are retried with backoff until the request
    /// timeout runs out.
    pub async fn coordinator(
        &self,
        kind: CoordinatorType,
        key: &str,
    ) -> Result<(i32, Arc<Connection>)> {
        let cached = lock(&self.inner.coordinators)
            .get(&(kind, key.to_owned()))
            .copied();
        if let Some(id) = cached {
            if let Ok(conn) = self.coordinator_link(id).await {
                return Ok((id, conn));
            }
            self.invalidate_coordinator(kind, key);
        }
        let deadline = Instant::now() + self.inner.config.connection.request_timeout;
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        loop {
            let attempt = self.find_coordinator_once(kind, key).await;
            let retry = match &attempt {
                Ok(_) => false,
                Err(Error::Broker { code, .. }) => coordinator_retriable(*code),
                Err(e) => e.is_retriable(),
            };
            if !retry || Instant::now() >= deadline {
                let info = attempt?;
                lock(&self.inner.coordinators).insert((kind, key.to_owned()), info.id);
                return Ok((info.id, self.coordinator_link(info.id).await?));
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    /// Forgets the cached coordinator for `key` (after NOT_COORDINATOR, or a lost connection).
    pub fn invalidate_coordinator(&self, kind: CoordinatorType, key: &str) {
        lock(&self.inner.coordinators).remove(&(kind, key.to_owned()));
    }

    async fn find_coordinator_once(&self, kind: CoordinatorType, key: &str) -> Result<BrokerInfo> {
        let conn = self.any_broker().await?;
        let version =
            conn.version(ApiKey::FindCoordinator)
                .ok_or_else(|| Error::UnsupportedApi {
                    broker: conn.broker().into(),
                    api: ApiKey::FindCoordinator,
                })?;
        let req = FindCoordinatorRequest {
            key: key.into(),
            key_type: kind.key_type(),
            coordinator_keys: vec![key.into()],
            ..Default::default()
        };
        let resp = conn.send_at(&req, version).await?;
        // Version 4 and later answer per key; earlier versions answer at the top level.
        let (code, message, info) = match resp.coordinators.first() {
            Some(c) if version >= 4 => (
                c.error_code,
                c.error_message.clone(),
                BrokerInfo {
                    id: c.node_id,
                    host: c.host.clone(),
                    port: c.port,
                    rack: None,
                },
            ),
            _ => (
                resp.error_code,
                resp.error_message.clone(),
                BrokerInfo {
                    id: resp.node_id,
                    host: resp.host.clone(),
                    port: resp.port,
                    rack: None,
                },
            ),
        };
        let code = ErrorCode(code);
        if code.is_err() {
            return Err(Error::Broker {
                broker: conn.broker().into(),
                api: ApiKey::FindCoordinator,
                code,
                message,
            });
        }
        // The coordinator may not be in the metadata snapshot yet: learn its address from the answer.
        if !self.metadata().brokers.contains_key(&info.id) {
            let mut md = (*self.metadata()).clone();
            md.brokers.insert(info.id, info.clone());
            self.adopt_brokers(&md);
        }
        Ok(info)
    }
}
