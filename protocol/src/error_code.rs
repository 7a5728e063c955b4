//! PLACEHOLDER: the Kafka error table is being written.
