//! Test support: real peers started on free loopback ports and torn down on drop.
#![allow(dead_code)]

pub mod mock_cluster;
pub mod stunnel;
pub mod tansu;
