//! A username and password, kept out of `Debug` and `Display` output.

use std::fmt;

/// A SASL username and password (`sasl.username` / `sasl.password`).
///
/// The password never appears in `Debug` or `Display` output, so a `Credentials` (or a config
/// holding one) can be logged safely. It is only reachable through [`Credentials::password`].
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    password: String,
}

impl Credentials {
    /// Credentials for `username` with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The username, as given (unescaped).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password. Secret: never log it.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &format_args!("<redacted>"))
            .finish()
    }
}

/// Shows the username only.
impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.username)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_password() {
        let c = Credentials::new("alice", "hunter2-secret");
        for shown in [format!("{c:?}"), format!("{c:#?}"), format!("{c}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("alice"), "{shown}");
        }
        assert!(format!("{c:?}").contains("<redacted>"));
        assert_eq!(c.password(), "hunter2-secret");
    }
}
