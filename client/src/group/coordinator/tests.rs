//! Tests of [`super`].

use super::*;

#[test]
fn a_dropped_revoke_ack_acknowledges() {
    let (tx, mut rx) = oneshot::channel();
    drop(RevokeAck(Some(tx)));
    assert_eq!(rx.try_recv(), Ok(()));
    let (tx, mut rx) = oneshot::channel();
    RevokeAck(Some(tx)).ack();
    assert_eq!(rx.try_recv(), Ok(()));
}
