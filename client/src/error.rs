//! The one error type of the `kbus` crate.
//!
//! Every error says where it happened (the broker, and the API when there is one) and whether
//! retrying can help ([`Error::is_retriable`]).

use std::fmt;
use std::time::Duration;

use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::{ApiKey, ProtocolError};

/// Errors from the client.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Connecting to or talking over a socket failed.
    Io {
        /// The broker (`host:port`).
        broker: String,
        /// What was being done.
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// No connection could be made within the connect timeout.
    ConnectTimeout {
        /// The broker.
        broker: String,
        /// The timeout that ran out.
        after: Duration,
    },
    /// A request got no answer within its timeout.
    RequestTimeout {
        /// The broker.
        broker: String,
        /// The API of the request.
        api: ApiKey,
        /// The timeout that ran out.
        after: Duration,
    },
    /// The connection closed with this request still waiting for its answer.
    Disconnected {
        /// The broker.
        broker: String,
    },
    /// Bytes from the broker broke the protocol, or a request could not be encoded.
    Protocol {
        /// The broker.
        broker: String,
        /// The API concerned, when known.
        api: Option<ApiKey>,
        /// What was wrong.
        source: ProtocolError,
    },
    /// The broker and kbus share no version of an API.
    UnsupportedApi {
        /// The broker.
        broker: String,
        /// The API.
        api: ApiKey,
    },
    /// A setting is missing or invalid.
    Config {
        /// What is wrong.
        message: String,
    },
    /// The API was used in a way it does not allow (seeking a partition that is not assigned,
    /// assigning partitions to a subscribed consumer, ...): a bug in the calling program, not a
    /// setting or a broker's answer.
    Misuse {
        /// What was done, and what is allowed.
        message: String,
    },
    /// Something could not be encoded before it was sent to any broker (a record batch too large
    /// for the protocol, say).
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Why it failed.
        source: ProtocolError,
    },
    /// A broker id that metadata does not (or no longer) list.
    UnknownBroker {
        /// The broker id.
        id: i32,
    },
    /// A partition cannot be used right now (unknown topic, no leader, ...).
    Partition {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Why.
        code: ErrorCode,
    },
    /// An operation on a topic failed with an error code (creating, deleting, describing it).
    Topic {
        /// The topic.
        topic: String,
        /// The API that failed.
        api: ApiKey,
        /// The code.
        code: ErrorCode,
        /// The broker's message, if it sent one.
        message: Option<String>,
    },
    /// SASL authentication failed: the broker refused the credentials, does not enable the
    /// mechanism, closed the connection during the exchange, or could not prove it knows the
    /// credentials. Not retriable: the same credentials fail again.
    Authentication {
        /// The broker.
        broker: String,
        /// The SASL mechanism, as Kafka spells it (`SCRAM-SHA-512`, ...).
        mechanism: String,
        /// What went wrong.
        message: String,
    },
    /// TLS with a broker failed: its certificate was rejected (wrong host, expired, unknown CA), it
    /// refused the handshake, or the TLS settings are unusable (a file missing, a certificate
    /// without its key). Not retriable: the same settings fail again.
    Tls {
        /// The broker.
        broker: String,
        /// What went wrong, in terms of the settings that can fix it.
        message: String,
    },
    /// The broker answered with an error code.
    Broker {
        /// The broker.
        broker: String,
        /// The API that was answered.
        api: ApiKey,
        /// The code.
        code: ErrorCode,
        /// The broker's message, if it sent one.
        message: Option<String>,
    },
    /// A produced record was not delivered: the batch holding it failed for good (`cause`), or
    /// `delivery.timeout.ms` ran out while it was being retried.
    Delivery {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Why; shared by every record of the batch.
        cause: std::sync::Arc<Error>,
    },
    /// `delivery.timeout.ms` ran out before the record was acknowledged.
    DeliveryTimeout {
        /// The timeout that ran out.
        after: Duration,
        /// The last error a send attempt got, if any.
        last_error: Option<std::sync::Arc<Error>>,
    },
    /// A record is larger than the producer accepts (`max.request.size` or `buffer.memory`).
    RecordTooLarge {
        /// The record's size in bytes.
        size: usize,
        /// The limit it is over.
        max: usize,
    },
    /// The producer or consumer was closed; nothing more can go through it.
    Closed,
    /// Consuming a partition stopped at an offset and waits for the application to seek: the
    /// offset is out of range (or there is no committed offset) and `auto.offset.reset` is `none`,
    /// or the records there are corrupt (a CRC mismatch, a malformed batch).
    Consume {
        /// The broker the records came from; `None` when no broker was asked (no committed
        /// offset and `auto.offset.reset=none`).
        broker: Option<String>,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset where consuming stopped; -1 when the partition never had one.
        offset: i64,
        /// OFFSET_OUT_OF_RANGE or CORRUPT_MESSAGE.
        code: ErrorCode,
        /// What happened, in words.
        message: String,
        /// The decoder's error, for corrupt records.
        source: Option<ProtocolError>,
    },
}

impl Error {
    /// True when the same request may succeed if retried (after a reconnect or metadata refresh).
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Io { .. }
            | Error::ConnectTimeout { .. }
            | Error::RequestTimeout { .. }
            | Error::Disconnected { .. } => true,
            Error::Protocol { .. }
            | Error::UnsupportedApi { .. }
            | Error::Config { .. }
            | Error::Misuse { .. }
            | Error::Encode { .. } => false,
            Error::Authentication { .. } => false,
            Error::Tls { .. } => false,
            Error::Delivery { cause, .. } => cause.is_retriable(),
            Error::DeliveryTimeout { .. } => true,
            Error::RecordTooLarge { .. } | Error::Closed => false,
            Error::Consume { .. } => false,
            Error::UnknownBroker { .. } => true,
            Error::Partition { code, .. }
            | Error::Topic { code, .. }
            | Error::Broker { code, .. } => code.is_retriable(),
        }
    }

    /// The broker the error concerns, when it concerns one.
    pub fn broker(&self) -> Option<&str> {
        match self {
            Error::Delivery { cause, .. } => cause.broker(),
            Error::DeliveryTimeout { last_error, .. } => last_error.as_deref()?.broker(),
            Error::Config { .. }
            | Error::Misuse { .. }
            | Error::Encode { .. }
            | Error::RecordTooLarge { .. }
            | Error::Closed
            | Error::UnknownBroker { .. }
            | Error::Partition { .. }
            | Error::Topic { .. } => None,
            Error::Consume { broker, .. } => broker.as_deref(),
            Error::Io { broker, .. }
            | Error::ConnectTimeout { broker, .. }
            | Error::RequestTimeout { broker, .. }
            | Error::Disconnected { broker }
            | Error::Protocol { broker, .. }
            | Error::UnsupportedApi { broker, .. }
            | Error::Authentication { broker, .. }
            | Error::Tls { broker, .. }
            | Error::Broker { broker, .. } => Some(broker),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io {
                broker,
                action,
                source,
            } => write!(f, "{action} {broker}: {source}"),
            Error::ConnectTimeout { broker, after } => {
                write!(f, "connecting to {broker} timed out after {after:?}")
            }
            Error::RequestTimeout { broker, api, after } => {
                write!(
                    f,
                    "{api:?} request to {broker} got no answer within {after:?}"
                )
            }
            Error::Disconnected { broker } => {
                write!(f, "connection to {broker} closed before the answer arrived")
            }
            Error::Protocol {
                broker,
                api: Some(api),
                source,
            } => write!(f, "{api:?} with {broker}: {source}"),
            Error::Protocol {
                broker,
                api: None,
                source,
            } => write!(f, "talking to {broker}: {source}"),
            Error::UnsupportedApi { broker, api } => write!(
                f,
                "{broker} supports no version of {api:?} that kbus implements"
            ),
            Error::Config { message } => write!(f, "configuration: {message}"),
            Error::Misuse { message } => write!(f, "{message}"),
            Error::Encode { what, source } => write!(f, "encoding {what}: {source}"),
            Error::UnknownBroker { id } => write!(f, "broker {id} is not in the cluster metadata"),
            Error::Authentication {
                broker,
                mechanism,
                message,
            } => write!(
                f,
                "SASL {mechanism} authentication with {broker} failed: {message}"
            ),
            Error::Tls { broker, message } => write!(f, "TLS with {broker}: {message}"),
            Error::Partition {
                topic,
                partition,
                code,
            } => write!(f, "{topic}/{partition}: {code}"),
            Error::Topic {
                topic,
                api,
                code,
                message,
            } => {
                write!(f, "{api:?} of topic {topic} failed: {code}")?;
                if let Some(m) = message {
                    write!(f, " ({m})")?;
                }
                Ok(())
            }
            Error::Broker {
                broker,
                api,
                code,
                message,
            } => {
                write!(f, "{api:?} at {broker} failed: {code}")?;
                if let Some(m) = message {
                    write!(f, " ({m})")?;
                }
                Ok(())
            }
            Error::Delivery {
                topic,
                partition,
                cause,
            } => write!(f, "delivery to {topic}/{partition} failed: {cause}"),
            Error::DeliveryTimeout { after, last_error } => {
                write!(f, "not delivered within delivery.timeout.ms ({after:?})")?;
                if let Some(e) = last_error {
                    write!(f, "; last attempt: {e}")?;
                }
                Ok(())
            }
            Error::RecordTooLarge { size, max } => {
                write!(f, "record of {size} bytes is over the limit of {max} bytes")
            }
            Error::Closed => write!(f, "closed"),
            Error::Consume {
                broker,
                topic,
                partition,
                offset,
                code,
                message,
                source,
            } => {
                write!(
                    f,
                    "{topic}/{partition} at offset {offset}: {code}: {message}"
                )?;
                if let Some(broker) = broker {
                    write!(f, " (from {broker})")?;
                }
                if let Some(source) = source {
                    write!(f, ": {source}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Protocol { source, .. } => Some(source),
            Error::Consume {
                source: Some(source),
                ..
            } => Some(source),
            Error::Encode { source, .. } => Some(source),
            Error::Delivery { cause, .. } => Some(&**cause),
            Error::DeliveryTimeout {
                last_error: Some(last),
                ..
            } => Some(&**last),
            _ => None,
        }
    }
}

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::sync::Arc;

    #[test]
    fn a_delivery_timeout_leads_to_its_last_error() {
        let last = Arc::new(Error::Broker {
            broker: "b:9092".into(),
            api: ApiKey::Produce,
            code: ErrorCode::NOT_ENOUGH_REPLICAS,
            message: None,
        });
        let e = Error::DeliveryTimeout {
            after: Duration::from_secs(1),
            last_error: Some(last),
        };
        let source = e.source().expect("the last attempt's error");
        assert!(
            source.to_string().contains("NOT_ENOUGH_REPLICAS"),
            "{source}"
        );
        assert_eq!(e.broker(), Some("b:9092"));
        let none = Error::DeliveryTimeout {
            after: Duration::from_secs(1),
            last_error: None,
        };
        assert!(none.source().is_none());
        assert_eq!(none.broker(), None);
    }

    #[test]
    fn errors_without_a_broker_say_so() {
        for e in [
            Error::Config {
                message: "x".into(),
            },
            Error::Misuse {
                message: "x".into(),
            },
            Error::Closed,
        ] {
            assert_eq!(e.broker(), None, "{e}");
            assert!(!e.is_retriable(), "{e}");
        }
    }
}
