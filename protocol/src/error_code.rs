//! Kafka error codes: every code Kafka 4.0 defines, its name, whether retrying can help, and what it
//! means.
//!
//! Responses carry errors as bare `i16`s. [`ErrorCode`] wraps one so callers can ask what it is
//! called, whether the request is worth retrying and what went wrong, without a lookup table of
//! their own. Codes this crate does not know (a newer broker may send some) still round-trip
//! unchanged; they are named `UNKNOWN_ERROR_CODE` and treated as not retriable, which is what
//! Kafka's own client does with a code it does not recognise.
//!
//! The retriable flag follows Kafka's Java client: a code is retriable when the exception Kafka
//! maps it to extends `RetriableException`. Some non-retriable codes are still recoverable by the
//! caller in a specific way (e.g. rejoining a group after `REBALANCE_IN_PROGRESS`, or re-reading
//! the coordinator); that handling belongs to the layers above.
//!
//! ```
//! use kbus_protocol::error_code::ErrorCode;
//!
//! let e = ErrorCode::from(6);
//! assert_eq!(e, ErrorCode::NOT_LEADER_OR_FOLLOWER);
//! assert_eq!(e.name(), "NOT_LEADER_OR_FOLLOWER");
//! assert!(e.is_retriable());
//! assert!(ErrorCode::NONE.is_ok());
//! assert!(!ErrorCode::from(30000).is_retriable());
//! ```

use std::fmt;

/// A Kafka protocol error code, as carried in the `error_code` fields of responses.
///
/// Known codes have an associated constant (`ErrorCode::UNKNOWN_TOPIC_OR_PARTITION`, ...); any
/// other `i16` is still a valid value and reports itself as `UNKNOWN_ERROR_CODE`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub i16);

/// One row of the error table: a code with its Kafka name, retriability and meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorInfo {
    /// The wire code.
    pub code: ErrorCode,
    /// Kafka's UPPER_SNAKE name for the code.
    pub name: &'static str,
    /// True when Kafka classes the error as retriable (its exception extends `RetriableException`).
    pub retriable: bool,
    /// A one-line explanation of what the error means.
    pub description: &'static str,
}

/// The name reported for codes that are not in [`ERROR_CODES`].
pub const UNKNOWN_ERROR_CODE_NAME: &str = "UNKNOWN_ERROR_CODE";

const UNKNOWN_ERROR_CODE_DESCRIPTION: &str =
    "An error code this library does not know, possibly added by a newer broker.";

/// Expands to the sentence appended to a constant's doc comment for its retriability.
macro_rules! retriable_note {
    (true) => {
        " Retriable."
    };
    (false) => {
        " Not retriable."
    };
}

/// Defines one associated constant per code and the [`ERROR_CODES`] table from a single list, so
/// the two cannot drift apart. Entries must be listed in ascending code order (a test checks it).
macro_rules! error_codes {
    ($( $name:ident = $code:literal, $retriable:tt, $desc:literal; )*) => {
        impl ErrorCode {
            $(
                #[doc = concat!("`", stringify!($code), "`: ", $desc, retriable_note!($retriable))]
                pub const $name: ErrorCode = ErrorCode($code);
            )*
        }

        /// Every error code Kafka 4.0 defines, sorted by code (ascending), one row each.
        ///
        /// Lookups ([`ErrorCode::info`], [`ErrorCode::name`], ...) binary-search this table.
        pub static ERROR_CODES: &[ErrorInfo] = &[
            $(
                ErrorInfo {
                    code: ErrorCode($code),
                    name: stringify!($name),
                    retriable: $retriable,
                    description: $desc,
                },
            )*
        ];
    };
}

// Codes, names and retriable flags checked against org.apache.kafka.common.protocol.Errors and the
// exception class hierarchy at the Kafka 4.0.0 release tag. Descriptions are this crate's own.
error_codes! {
    UNKNOWN_SERVER_ERROR = -1, false,
        "The broker hit an unexpected internal failure while handling the request.";
    NONE = 0, false,
        "No error: the operation succeeded.";
    OFFSET_OUT_OF_RANGE = 1, false,
        "The requested offset lies outside the range of offsets the broker holds for the partition.";
    CORRUPT_MESSAGE = 2, true,
        "A record or batch failed validation: bad CRC, invalid size, null key on a compacted topic, or other corruption.";
    UNKNOWN_TOPIC_OR_PARTITION = 3, true,
        "The broker does not host this topic or partition, or does not know about it yet.";
    INVALID_FETCH_SIZE = 4, false,
        "The fetch asked for an invalid number of bytes.";
    LEADER_NOT_AVAILABLE = 5, true,
        "The partition has no leader at the moment, usually because an election is under way.";
    NOT_LEADER_OR_FOLLOWER = 6, true,
        "The broker is not the partition's leader (or, for replica requests, not a replica of it); refresh metadata.";
    REQUEST_TIMED_OUT = 7, true,
        "The broker did not finish the request within its timeout.";
    BROKER_NOT_AVAILABLE = 8, false,
        "The broker addressed is not available.";
    REPLICA_NOT_AVAILABLE = 9, true,
        "A replica of the partition is not available on the broker.";
    MESSAGE_TOO_LARGE = 10, false,
        "A record batch exceeds the largest message size the broker or topic accepts.";
    STALE_CONTROLLER_EPOCH = 11, false,
        "The request came from a controller whose epoch is out of date.";
    OFFSET_METADATA_TOO_LARGE = 12, false,
        "The metadata string attached to a committed offset is too long.";
    NETWORK_EXCEPTION = 13, true,
        "The connection closed before a response arrived.";
    COORDINATOR_LOAD_IN_PROGRESS = 14, true,
        "The coordinator is still loading its state and cannot serve requests yet.";
    COORDINATOR_NOT_AVAILABLE = 15, true,
        "The group or transaction coordinator is not available.";
    NOT_COORDINATOR = 16, true,
        "The broker is not the coordinator for this group or transactional id; look the coordinator up again.";
    INVALID_TOPIC_EXCEPTION = 17, false,
        "The topic name is invalid, or the operation is not allowed on this topic.";
    RECORD_LIST_TOO_LARGE = 18, false,
        "A produced batch is larger than the topic's configured segment size.";
    NOT_ENOUGH_REPLICAS = 19, true,
        "Too few in-sync replicas are available to accept the write with the requested acks.";
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20, true,
        "The write was appended, but to fewer in-sync replicas than required.";
    INVALID_REQUIRED_ACKS = 21, false,
        "The produce request carried an acks value the broker does not accept.";
    ILLEGAL_GENERATION = 22, false,
        "The group generation id in the request is not the current one.";
    INCONSISTENT_GROUP_PROTOCOL = 23, false,
        "The member's protocol type or protocol list does not fit those of the group.";
    INVALID_GROUP_ID = 24, false,
        "The group id is empty or otherwise invalid.";
    UNKNOWN_MEMBER_ID = 25, false,
        "The coordinator does not recognise this member id.";
    INVALID_SESSION_TIMEOUT = 26, false,
        "The session timeout is outside the range the broker allows.";
    REBALANCE_IN_PROGRESS = 27, false,
        "The group is rebalancing; the member has to rejoin.";
    INVALID_COMMIT_OFFSET_SIZE = 28, false,
        "The offset commit request has an invalid size.";
    TOPIC_AUTHORIZATION_FAILED = 29, false,
        "The principal lacks permission for the topic.";
    GROUP_AUTHORIZATION_FAILED = 30, false,
        "The principal lacks permission for the group.";
    CLUSTER_AUTHORIZATION_FAILED = 31, false,
        "The principal lacks permission for this cluster-level operation.";
    INVALID_TIMESTAMP = 32, false,
        "A record timestamp falls outside the range the broker accepts.";
    UNSUPPORTED_SASL_MECHANISM = 33, false,
        "The broker does not offer the requested SASL mechanism.";
    ILLEGAL_SASL_STATE = 34, false,
        "The request is not valid at this point of the SASL exchange.";
    UNSUPPORTED_VERSION = 35, false,
        "The broker does not support this version of the API.";
    TOPIC_ALREADY_EXISTS = 36, false,
        "The topic to be created exists already.";
    INVALID_PARTITIONS = 37, false,
        "The requested number of partitions is invalid.";
    INVALID_REPLICATION_FACTOR = 38, false,
        "The replication factor is below one or above the number of available brokers.";
    INVALID_REPLICA_ASSIGNMENT = 39, false,
        "The explicit replica assignment is invalid.";
    INVALID_CONFIG = 40, false,
        "A configuration value in the request is invalid.";
    NOT_CONTROLLER = 41, true,
        "The broker is not the active controller; find the controller and retry.";
    INVALID_REQUEST = 42, false,
        "The broker could not accept the request: malformed, or sent to a node that cannot handle it.";
    UNSUPPORTED_FOR_MESSAGE_FORMAT = 43, false,
        "The request needs a newer message format than the one the topic uses.";
    POLICY_VIOLATION = 44, false,
        "The request breaks a policy configured on the broker.";
    OUT_OF_ORDER_SEQUENCE_NUMBER = 45, false,
        "An idempotent producer's sequence number is not the one the broker expected next.";
    DUPLICATE_SEQUENCE_NUMBER = 46, false,
        "The broker already holds a batch with this producer sequence number.";
    INVALID_PRODUCER_EPOCH = 47, false,
        "The producer epoch is older than the one the broker knows.";
    INVALID_TXN_STATE = 48, false,
        "The transactional operation is not allowed in the transaction's current state.";
    INVALID_PRODUCER_ID_MAPPING = 49, false,
        "The producer id is not the one currently assigned to this transactional id.";
    INVALID_TRANSACTION_TIMEOUT = 50, false,
        "The transaction timeout exceeds the maximum the broker allows.";
    CONCURRENT_TRANSACTIONS = 51, true,
        "Another operation on the same transaction is still in progress.";
    TRANSACTION_COORDINATOR_FENCED = 52, false,
        "The sending transaction coordinator is no longer the current one for this producer.";
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53, false,
        "The principal lacks permission to use this transactional id.";
    SECURITY_DISABLED = 54, false,
        "Security features the request needs are disabled on the broker.";
    OPERATION_NOT_ATTEMPTED = 55, false,
        "The broker skipped this operation because another part of the batched request failed.";
    KAFKA_STORAGE_ERROR = 56, true,
        "The broker hit a disk error while reading or writing the log.";
    LOG_DIR_NOT_FOUND = 57, false,
        "The requested log directory is not configured on the broker.";
    SASL_AUTHENTICATION_FAILED = 58, false,
        "SASL authentication failed, for example because of wrong credentials.";
    UNKNOWN_PRODUCER_ID = 59, false,
        "The broker has no state for this producer id, for example because its records have expired.";
    REASSIGNMENT_IN_PROGRESS = 60, false,
        "The partitions are being reassigned, so the operation cannot proceed now.";
    DELEGATION_TOKEN_AUTH_DISABLED = 61, false,
        "The broker has delegation tokens switched off.";
    DELEGATION_TOKEN_NOT_FOUND = 62, false,
        "The broker has no such delegation token.";
    DELEGATION_TOKEN_OWNER_MISMATCH = 63, false,
        "The principal is neither the owner nor a renewer of the delegation token.";
    DELEGATION_TOKEN_REQUEST_NOT_ALLOWED = 64, false,
        "Delegation token requests are refused on plaintext, one-way TLS or token-authenticated connections.";
    DELEGATION_TOKEN_AUTHORIZATION_FAILED = 65, false,
        "The principal lacks permission for this delegation token operation.";
    DELEGATION_TOKEN_EXPIRED = 66, false,
        "The delegation token is past its expiry time.";
    INVALID_PRINCIPAL_TYPE = 67, false,
        "The given principal type is not supported.";
    NON_EMPTY_GROUP = 68, false,
        "The group still has members, so the operation is refused.";
    GROUP_ID_NOT_FOUND = 69, false,
        "No group with this id exists.";
    FETCH_SESSION_ID_NOT_FOUND = 70, true,
        "The broker has no incremental fetch session with this id.";
    INVALID_FETCH_SESSION_EPOCH = 71, true,
        "The fetch session epoch does not match the one the broker expects.";
    LISTENER_NOT_FOUND = 72, true,
        "The leader has no endpoint on the listener the metadata request arrived on.";
    TOPIC_DELETION_DISABLED = 73, false,
        "The cluster does not allow topics to be deleted.";
    FENCED_LEADER_EPOCH = 74, true,
        "The leader epoch in the request is older than the broker's.";
    UNKNOWN_LEADER_EPOCH = 75, true,
        "The leader epoch in the request is newer than the broker's.";
    UNSUPPORTED_COMPRESSION_TYPE = 76, false,
        "The client cannot handle the compression codec used for this partition's data.";
    STALE_BROKER_EPOCH = 77, false,
        "The broker epoch in the request is out of date.";
    OFFSET_NOT_AVAILABLE = 78, true,
        "The new leader's high watermark has not caught up yet, so the offset cannot be served.";
    MEMBER_ID_REQUIRED = 79, false,
        "The member must join again using the member id the coordinator has just assigned.";
    PREFERRED_LEADER_NOT_AVAILABLE = 80, true,
        "The preferred replica could not become the leader.";
    GROUP_MAX_SIZE_REACHED = 81, false,
        "The group already has its maximum number of members.";
    FENCED_INSTANCE_ID = 82, false,
        "Another member with the same group.instance.id has taken over from this static member.";
    ELIGIBLE_LEADERS_NOT_AVAILABLE = 83, true,
        "No replica eligible for leader election is available.";
    ELECTION_NOT_NEEDED = 84, true,
        "The partition already has the desired leader, so no election took place.";
    NO_REASSIGNMENT_IN_PROGRESS = 85, false,
        "There is no ongoing partition reassignment to alter or cancel.";
    GROUP_SUBSCRIBED_TO_TOPIC = 86, false,
        "A topic's offsets cannot be deleted while the group is subscribed to it.";
    INVALID_RECORD = 87, false,
        "The broker rejected a record that failed its validation.";
    UNSTABLE_OFFSET_COMMIT = 88, true,
        "Pending transactional offset commits must settle before the offsets can be read.";
    THROTTLING_QUOTA_EXCEEDED = 89, true,
        "The request went over a throttling quota, such as the topic mutation rate.";
    PRODUCER_FENCED = 90, false,
        "A newer producer with the same transactional id has fenced this one.";
    RESOURCE_NOT_FOUND = 91, false,
        "The request refers to a resource that does not exist.";
    DUPLICATE_RESOURCE = 92, false,
        "The request names the same resource more than once.";
    UNACCEPTABLE_CREDENTIAL = 93, false,
        "The proposed credential does not meet the broker's acceptance criteria.";
    INCONSISTENT_VOTER_SET = 94, false,
        "The sender or receiver of a voter-only request is not one of the expected voters.";
    INVALID_UPDATE_VERSION = 95, false,
        "The update version in the request is invalid.";
    FEATURE_UPDATE_FAILED = 96, false,
        "Finalized features could not be updated because of an unexpected server failure.";
    PRINCIPAL_DESERIALIZATION_FAILURE = 97, false,
        "The broker could not deserialize the principal of a forwarded request.";
    SNAPSHOT_NOT_FOUND = 98, false,
        "The requested metadata snapshot does not exist.";
    POSITION_OUT_OF_RANGE = 99, false,
        "The requested snapshot position is negative or past the end of the snapshot.";
    UNKNOWN_TOPIC_ID = 100, true,
        "The broker does not host a topic with this topic id.";
    DUPLICATE_BROKER_REGISTRATION = 101, false,
        "Another broker is already registered with this broker id.";
    BROKER_ID_NOT_REGISTERED = 102, false,
        "No broker is registered with this broker id.";
    INCONSISTENT_TOPIC_ID = 103, true,
        "The topic id in the request differs from the one in the broker's log.";
    INCONSISTENT_CLUSTER_ID = 104, false,
        "The cluster id in the request differs from the broker's.";
    TRANSACTIONAL_ID_NOT_FOUND = 105, false,
        "No transaction state exists for this transactional id.";
    FETCH_SESSION_TOPIC_ID_ERROR = 106, true,
        "The fetch session used topic ids inconsistently.";
    INELIGIBLE_REPLICA = 107, false,
        "The proposed in-sync replica set contains a replica that may not join it.";
    NEW_LEADER_ELECTED = 108, false,
        "The partition state was updated, but a different leader has been elected since.";
    OFFSET_MOVED_TO_TIERED_STORAGE = 109, false,
        "The requested offset is now only in tiered (remote) storage.";
    FENCED_MEMBER_EPOCH = 110, false,
        "The coordinator fenced the member's epoch; the member must give up its partitions and rejoin.";
    UNRELEASED_INSTANCE_ID = 111, false,
        "Another member still holds this instance id and must leave the group first.";
    UNSUPPORTED_ASSIGNOR = 112, false,
        "The group does not support the requested assignor or its version range.";
    STALE_MEMBER_EPOCH = 113, false,
        "The member epoch is stale; retry once a heartbeat has returned the current epoch.";
    MISMATCHED_ENDPOINT_TYPE = 114, false,
        "The request reached an endpoint of the wrong type (broker versus controller).";
    UNSUPPORTED_ENDPOINT_TYPE = 115, false,
        "The requested endpoint type is not supported yet.";
    UNKNOWN_CONTROLLER_ID = 116, false,
        "No controller with this id is known.";
    UNKNOWN_SUBSCRIPTION_ID = 117, false,
        "The client telemetry subscription id is unknown or out of date.";
    TELEMETRY_TOO_LARGE = 118, false,
        "The pushed client telemetry is larger than the broker accepts.";
    INVALID_REGISTRATION = 119, false,
        "The controller considers the broker's registration invalid.";
    TRANSACTION_ABORTABLE = 120, false,
        "The transaction hit an error; aborting it lets the transactional id be used again.";
    INVALID_RECORD_STATE = 121, false,
        "The record's delivery state does not allow this acknowledgement.";
    SHARE_SESSION_NOT_FOUND = 122, true,
        "The broker has no share session for this member.";
    INVALID_SHARE_SESSION_EPOCH = 123, true,
        "The share session epoch does not match the one the broker expects.";
    FENCED_STATE_EPOCH = 124, false,
        "The share coordinator refused the request because the share-group state epoch differs.";
    INVALID_VOTER_KEY = 125, false,
        "The voter key does not match the key of the receiving replica.";
    DUPLICATE_VOTER = 126, false,
        "The voter is already a member of the voter set.";
    VOTER_NOT_FOUND = 127, false,
        "The voter is not a member of the voter set.";
    INVALID_REGULAR_EXPRESSION = 128, false,
        "The subscription's regular expression is invalid.";
    REBOOTSTRAP_REQUIRED = 129, false,
        "The client's metadata is stale; it should rebootstrap from its bootstrap servers.";
}

impl ErrorCode {
    /// The error code with wire value `code` (known or not).
    pub const fn from_i16(code: i16) -> ErrorCode {
        ErrorCode(code)
    }

    /// The wire value.
    pub const fn code(self) -> i16 {
        self.0
    }

    /// True for [`ErrorCode::NONE`] (success).
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// True for every code except [`ErrorCode::NONE`], including unknown codes.
    pub const fn is_err(self) -> bool {
        !self.is_ok()
    }

    /// The table row for this code, or `None` when the code is not in [`ERROR_CODES`].
    pub fn info(self) -> Option<&'static ErrorInfo> {
        ERROR_CODES
            .binary_search_by_key(&self, |info| info.code)
            .ok()
            .map(|index| &ERROR_CODES[index])
    }

    /// True when the code is in [`ERROR_CODES`].
    pub fn is_known(self) -> bool {
        self.info().is_some()
    }

    /// Kafka's UPPER_SNAKE name, or `"UNKNOWN_ERROR_CODE"` for codes not in the table.
    pub fn name(self) -> &'static str {
        self.info()
            .map_or(UNKNOWN_ERROR_CODE_NAME, |info| info.name)
    }

    /// True when Kafka classes the error as retriable; false for success and for unknown codes.
    pub fn is_retriable(self) -> bool {
        self.info().is_some_and(|info| info.retriable)
    }

    /// A one-line explanation of the error.
    pub fn description(self) -> &'static str {
        self.info()
            .map_or(UNKNOWN_ERROR_CODE_DESCRIPTION, |info| info.description)
    }
}

impl From<i16> for ErrorCode {
    fn from(code: i16) -> ErrorCode {
        ErrorCode(code)
    }
}

impl From<ErrorCode> for i16 {
    fn from(code: ErrorCode) -> i16 {
        code.0
    }
}

/// `NAME (code): description`, e.g. `REQUEST_TIMED_OUT (7): The broker did not finish ...`.
impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.name(), self.0, self.description())
    }
}

/// `ErrorCode(NAME)` for known codes; `ErrorCode(<number>)` for unknown ones, so the value is
/// not lost.
impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.info() {
            Some(info) => write!(f, "ErrorCode({})", info.name),
            None => write!(f, "ErrorCode({})", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn table_is_sorted_by_code_without_duplicates() {
        for pair in ERROR_CODES.windows(2) {
            assert!(
                pair[0].code < pair[1].code,
                "{:?} must come before {:?}",
                pair[0].code,
                pair[1].code
            );
        }
    }

    #[test]
    fn names_are_unique_and_upper_snake() {
        let mut seen = HashSet::new();
        for info in ERROR_CODES {
            assert!(seen.insert(info.name), "duplicate name {}", info.name);
            assert!(
                info.name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "{} is not UPPER_SNAKE",
                info.name
            );
            assert_ne!(info.name, UNKNOWN_ERROR_CODE_NAME);
        }
    }

    #[test]
    fn covers_every_code_from_minus_one_to_129() {
        assert_eq!(ERROR_CODES.len(), 131);
        assert_eq!(ERROR_CODES.first().map(|i| i.code), Some(ErrorCode(-1)));
        assert_eq!(ERROR_CODES.last().map(|i| i.code), Some(ErrorCode(129)));
        for code in -1..=129 {
            assert!(ErrorCode(code).is_known(), "code {code} is missing");
        }
    }

    #[test]
    fn descriptions_are_single_non_empty_lines() {
        for info in ERROR_CODES {
            assert!(
                !info.description.is_empty(),
                "{} has no description",
                info.name
            );
            assert!(
                !info.description.contains('\n'),
                "{} spans lines",
                info.name
            );
            assert!(info.description.ends_with('.'), "{}", info.name);
        }
    }

    #[test]
    fn every_row_is_found_by_lookup() {
        for info in ERROR_CODES {
            assert_eq!(info.code.info(), Some(info));
            assert_eq!(info.code.name(), info.name);
            assert_eq!(info.code.is_retriable(), info.retriable);
            assert_eq!(info.code.description(), info.description);
        }
    }

    #[test]
    fn spot_checks() {
        let e = ErrorCode::from(3);
        assert_eq!(e, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
        assert_eq!(e.name(), "UNKNOWN_TOPIC_OR_PARTITION");
        assert!(e.is_retriable());

        let e = ErrorCode::from(6);
        assert_eq!(e, ErrorCode::NOT_LEADER_OR_FOLLOWER);
        assert_eq!(e.name(), "NOT_LEADER_OR_FOLLOWER");
        assert!(e.is_retriable());

        let e = ErrorCode::from(35);
        assert_eq!(e, ErrorCode::UNSUPPORTED_VERSION);
        assert_eq!(e.name(), "UNSUPPORTED_VERSION");
        assert!(!e.is_retriable());

        let e = ErrorCode::from(58);
        assert_eq!(e, ErrorCode::SASL_AUTHENTICATION_FAILED);
        assert_eq!(e.name(), "SASL_AUTHENTICATION_FAILED");
        assert!(!e.is_retriable());

        let e = ErrorCode::from(79);
        assert_eq!(e, ErrorCode::MEMBER_ID_REQUIRED);
        assert_eq!(e.name(), "MEMBER_ID_REQUIRED");
        assert!(!e.is_retriable());

        assert_eq!(ErrorCode::UNKNOWN_SERVER_ERROR.code(), -1);
        assert!(!ErrorCode::UNKNOWN_SERVER_ERROR.is_retriable());
        assert_eq!(ErrorCode::REBOOTSTRAP_REQUIRED.code(), 129);
    }

    #[test]
    fn retriable_codes_match_kafka() {
        // The codes whose Kafka exception extends RetriableException (Kafka 4.0.0).
        let expected: HashSet<i16> = [
            2, 3, 5, 6, 7, 9, 13, 14, 15, 16, 19, 20, 41, 51, 56, 70, 71, 72, 74, 75, 78, 80, 83,
            84, 88, 89, 100, 103, 106, 122, 123,
        ]
        .into_iter()
        .collect();
        let actual: HashSet<i16> = ERROR_CODES
            .iter()
            .filter(|info| info.retriable)
            .map(|info| info.code.0)
            .collect();
        assert_eq!(actual, expected);

        for e in [
            ErrorCode::NOT_LEADER_OR_FOLLOWER,
            ErrorCode::LEADER_NOT_AVAILABLE,
            ErrorCode::REQUEST_TIMED_OUT,
            ErrorCode::NETWORK_EXCEPTION,
            ErrorCode::COORDINATOR_NOT_AVAILABLE,
            ErrorCode::NOT_COORDINATOR,
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            ErrorCode::NOT_ENOUGH_REPLICAS,
        ] {
            assert!(e.is_retriable(), "{e:?} should be retriable");
        }
    }

    #[test]
    fn none_is_ok_and_everything_else_is_err() {
        assert!(ErrorCode::NONE.is_ok());
        assert!(!ErrorCode::NONE.is_err());
        assert!(!ErrorCode::NONE.is_retriable());
        assert_eq!(ErrorCode::NONE.name(), "NONE");
        assert!(ErrorCode::UNKNOWN_SERVER_ERROR.is_err());
        assert!(ErrorCode::from(30000).is_err());
    }

    #[test]
    fn unknown_codes_are_named_and_not_retriable() {
        for code in [30000, 1000, -2, i16::MIN, i16::MAX] {
            let e = ErrorCode::from(code);
            assert!(!e.is_known());
            assert_eq!(e.info(), None);
            assert_eq!(e.name(), "UNKNOWN_ERROR_CODE");
            assert!(!e.is_retriable());
            assert!(!e.description().is_empty());
            assert_eq!(e.code(), code);
        }
    }

    #[test]
    fn conversions_round_trip() {
        for code in [-1i16, 0, 42, 129, 30000] {
            assert_eq!(i16::from(ErrorCode::from(code)), code);
            assert_eq!(ErrorCode::from_i16(code), ErrorCode(code));
        }
    }

    #[test]
    fn display_and_debug_formats() {
        let e = ErrorCode::UNSUPPORTED_VERSION;
        assert_eq!(
            e.to_string(),
            format!("UNSUPPORTED_VERSION (35): {}", e.description())
        );
        assert_eq!(format!("{e:?}"), "ErrorCode(UNSUPPORTED_VERSION)");
        assert_eq!(
            format!("{:?}", ErrorCode::UNKNOWN_SERVER_ERROR),
            "ErrorCode(UNKNOWN_SERVER_ERROR)"
        );

        let unknown = ErrorCode::from(30000);
        assert!(unknown
            .to_string()
            .starts_with("UNKNOWN_ERROR_CODE (30000): "));
        assert_eq!(format!("{unknown:?}"), "ErrorCode(30000)");
    }
}
