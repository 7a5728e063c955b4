//! Control records: the transaction markers a transaction coordinator writes into partitions.
//!
//! A control record's key is `version i16 | type i16` (0 = abort, 1 = commit); its value is
//! `version i16 | coordinator_epoch i32`. Consumers skip them; read-committed consumers use them to end
//! aborted transactions.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{ProtocolError, Result};

/// The kind of a control record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRecordType {
    /// The transaction was aborted (0).
    Abort,
    /// The transaction was committed (1).
    Commit,
    /// A type this crate does not know; kept so it can be skipped, not misread.
    Unknown(i16),
}

/// A decoded control record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlRecord {
    /// The key's version.
    pub version: i16,
    /// Abort or commit.
    pub kind: ControlRecordType,
    /// The coordinator epoch from the value, if the value was present.
    pub coordinator_epoch: Option<i32>,
}

impl ControlRecord {
    /// Reads a control record from a record's key and value.
    pub fn parse(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Self> {
        let mut key = key.ok_or(ProtocolError::UnexpectedNull {
            what: "ControlRecord.key",
        })?;
        if key.len() < 4 {
            return Err(ProtocolError::truncated("ControlRecord.key", 4, key.len()));
        }
        let version = key.get_i16();
        let kind = match key.get_i16() {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            other => ControlRecordType::Unknown(other),
        };
        let coordinator_epoch = match value {
            Some(mut v) if v.len() >= 6 => {
                v.get_i16();
                Some(v.get_i32())
            }
            _ => None,
        };
        Ok(ControlRecord {
            version,
            kind,
            coordinator_epoch,
        })
    }

    /// The record key and value that encode this control record.
    pub fn to_key_value(&self) -> (Bytes, Bytes) {
        let mut key = BytesMut::with_capacity(4);
        key.put_i16(self.version);
        key.put_i16(match self.kind {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Unknown(t) => t,
        });
        let mut value = BytesMut::with_capacity(6);
        value.put_i16(0);
        value.put_i32(self.coordinator_epoch.unwrap_or(0));
        (key.freeze(), value.freeze())
    }
}
