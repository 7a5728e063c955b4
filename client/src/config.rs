//! Settings as Kafka clients take them: one map of `key=value` properties with the Java client's
//! (and librdkafka's) names, read by every component that has settings — connection, cluster,
//! producer, consumer, group — each into its own typed configuration with Java's defaults.
//!
//! One map serves them all: a component reads the keys it knows and leaves the others' alone, so
//! a producer, a consumer and an admin client (and the event bus, and the CLI's `-X` options)
//! can be built from the same [`Properties`]. A key that no component knows is an error naming it
//! (a typo must not be silently ignored); a value that cannot be read is an error naming the key.
//!
//! ```
//! use kbus_client::config::{Properties, Settings};
//! use kbus_client::consumer::ConsumerConfig;
//! use kbus_client::producer::{Acks, ProducerConfig};
//! # fn main() -> kbus_client::Result<()> {
//! let props = Properties::from([
//!     ("bootstrap.servers", "k1:9092"),
//!     ("acks", "1"),
//!     ("group.id", "billing"),
//! ]);
//! let producer = ProducerConfig::from_properties(&props)?; // group.id is the consumer's
//! let consumer = ConsumerConfig::from_properties(&props)?; // acks is the producer's
//! assert_eq!(producer.acks, Acks::Leader);
//! assert_eq!(consumer.group.group_id, "billing");
//! assert!(ProducerConfig::from_properties(&Properties::from([("ack", "1")])).is_err());
//! # Ok(()) }
//! ```

use std::time::Duration;

use crate::error::{Error, Result};

/// Client properties: `key=value` settings with the Java client's names, in the order given (a
/// key set twice keeps its last value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    entries: Vec<(String, String)>,
}

impl Properties {
    /// No properties.
    pub fn new() -> Self {
        Properties::default()
    }

    /// Sets `key` to `value` (replacing an earlier value); keys and values are trimmed.
    pub fn set(&mut self, key: impl AsRef<str>, value: impl AsRef<str>) -> &mut Self {
        let key = key.as_ref().trim();
        let value = value.as_ref().trim().to_owned();
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key.to_owned(), value)),
        }
        self
    }

    /// `self` with `key` set to `value`.
    pub fn with(mut self, key: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.set(key, value);
        self
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every key and value, in the order they were first set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Reads a Java `.properties`-style text: one `key=value` (or `key: value`) per line; blank
    /// lines and lines starting with `#` or `!` are skipped. A line without a separator is an
    /// error naming its number.
    pub fn parse(text: &str) -> Result<Properties> {
        let mut props = Properties::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some(at) = line.find(['=', ':']) else {
                return Err(Error::Config {
                    message: format!("line {}: {line:?} is not key=value", n + 1),
                });
            };
            props.set(&line[..at], &line[at + 1..]);
        }
        Ok(props)
    }

    /// Fails, naming the key, when a key is read by none of the client's components: a typo, or
    /// a setting kbus does not have.
    pub fn check_known(&self) -> Result<()> {
        self.check_known_also(&[])
    }

    /// Like [`check_known`](Self::check_known), with more components that read keys (the event
    /// bus's settings, say).
    pub fn check_known_also(&self, more: &[fn(&str) -> bool]) -> Result<()> {
        for (key, _) in self.iter() {
            if !crate::reads_key(key) && !more.iter().any(|reads| reads(key)) {
                return Err(Error::Config {
                    message: format!("{key}: no kbus component has this setting"),
                });
            }
        }
        Ok(())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Properties {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut props = Properties::new();
        for (k, v) in iter {
            props.set(k, v);
        }
        props
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> From<[(K, V); N]> for Properties {
    fn from(entries: [(K, V); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> From<Vec<(K, V)>> for Properties {
    fn from(entries: Vec<(K, V)>) -> Self {
        entries.into_iter().collect()
    }
}

impl From<&Properties> for Properties {
    fn from(props: &Properties) -> Self {
        props.clone()
    }
}

/// A component's typed settings, read from [`Properties`].
pub trait Settings: Default {
    /// Applies one property. `Ok(false)` when this component has no such setting (nothing
    /// changed); an error names the key when the value cannot be read.
    fn set_property(&mut self, key: &str, value: &str) -> Result<bool>;

    /// Completes and checks the settings once every property is applied: settings that only make
    /// sense together, values within bounds.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }

    /// The settings in `properties` this component has, over its defaults. Keys of other
    /// components are left alone; a key no component knows is an error.
    fn from_properties(properties: impl Into<Properties>) -> Result<Self> {
        let properties = properties.into();
        properties.check_known()?;
        Self::read(&properties)
    }

    /// Like [`from_properties`](Self::from_properties), without the check for unknown keys (for
    /// a caller that checks them itself, knowing more components).
    fn read(properties: &Properties) -> Result<Self> {
        let mut settings = Self::default();
        for (key, value) in properties.iter() {
            settings.set_property(key, value)?;
        }
        settings.finish()?;
        Ok(settings)
    }

    /// True when this component has the setting `key`.
    fn reads(key: &str) -> bool {
        // A setting is recognised by its key alone: reading a placeholder value either works or
        // fails to parse, and both mean the key is this component's.
        !matches!(Self::default().set_property(key, ""), Ok(false))
    }
}

/// Milliseconds, for the `*.ms` settings.
pub(crate) fn millis(key: &str, value: &str) -> Result<Duration> {
    number::<u64>(key, value).map(Duration::from_millis)
}

/// A whole number of the type asked.
pub(crate) fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, "a whole number in range"))
}

/// `true` or `false`.
pub(crate) fn boolean(key: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "true or false")),
    }
}

/// A text setting where empty means unset.
pub(crate) fn optional(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// The error for a value that cannot be read.
pub(crate) fn invalid(key: &str, value: &str, expected: &str) -> Error {
    Error::Config {
        message: format!("{key} {value:?}: expected {expected}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_values_win_and_order_is_kept() {
        let mut p = Properties::from([("a", "1"), ("b", "2")]);
        p.set(" a ", " 3 ");
        assert_eq!(p.get("a"), Some("3"));
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![("a", "3"), ("b", "2")]);
    }

    #[test]
    fn properties_files_parse() {
        let p = Properties::parse(
            "# a comment\n! another\n\nbootstrap.servers = k1:9092\nclient.id: svc\nsasl.password=a=b\n",
        )
        .unwrap();
        assert_eq!(p.get("bootstrap.servers"), Some("k1:9092"));
        assert_eq!(p.get("client.id"), Some("svc"));
        assert_eq!(p.get("sasl.password"), Some("a=b"));
        let err = Properties::parse("ok=1\njust words\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn unknown_keys_are_named_known_ones_pass() {
        let p = Properties::from([("bootstrap.servers", "x:1"), ("acks", "all")]);
        p.check_known().unwrap();
        let err = Properties::from([("bootstrap.server", "x:1")])
            .check_known()
            .unwrap_err();
        assert!(err.to_string().contains("bootstrap.server:"), "{err}");
        let extra = |k: &str| k == "bus.topic";
        Properties::from([("bus.topic", "t")])
            .check_known_also(&[extra])
            .unwrap();
    }
}
