//! The client properties a command line stands for: `-b` (or `KBUS_BROKERS`), then the `-F`
//! file, then each `-X` (a later one wins).

use std::path::Path;

use crate::args::Global;
use crate::failure::Failure;

/// The properties, in order; the library's settings layer checks them (unknown keys are errors
/// naming the key).
pub fn properties(global: &Global) -> Result<Vec<(String, String)>, Failure> {
    let mut out = vec![("bootstrap.servers".to_owned(), global.brokers.clone())];
    if let Some(file) = &global.properties_file {
        out.extend(read_file(file)?);
    }
    for p in &global.property {
        out.push(key_value(p, "-X")?);
    }
    Ok(out)
}

/// `key=value`, both sides trimmed; `what` names where it came from in the error.
pub fn key_value(text: &str, what: &str) -> Result<(String, String), Failure> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(Failure::usage(format!(
            "{what} {}: expected KEY=VALUE",
            redact(text)
        ))),
    }
}

/// A properties file: `key=value` lines; blank lines and `#` or `!` comments skipped.
fn read_file(path: &Path) -> Result<Vec<(String, String)>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("-F {}: {e}", path.display())))?;
    parse_file(&text).map_err(|(line, e)| {
        Failure::usage(format!("-F {} line {line}: {}", path.display(), e.message))
    })
}

fn parse_file(text: &str) -> Result<Vec<(String, String)>, (usize, Failure)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        out.push(key_value(line, "property").map_err(|e| (i + 1, e))?);
    }
    Ok(out)
}

/// What of a malformed `key=value` may be repeated in an error: its key part, never a value (it
/// may be a password).
fn redact(text: &str) -> String {
    if text.contains("password") || text.contains("secret") {
        "(value withheld)".into()
    } else {
        format!("{text:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(property: &[&str]) -> Global {
        Global {
            brokers: "k1:9092".into(),
            property: property.iter().map(|s| s.to_string()).collect(),
            properties_file: None,
            verbose: 0,
        }
    }

    #[test]
    fn brokers_come_first_and_later_properties_win() {
        let p = properties(&global(&["acks=1", " linger.ms = 5 "])).unwrap();
        assert_eq!(
            p,
            [
                ("bootstrap.servers".to_string(), "k1:9092".to_string()),
                ("acks".into(), "1".into()),
                ("linger.ms".into(), "5".into()),
            ]
        );
        assert!(properties(&global(&["nonsense"])).is_err());
        assert!(properties(&global(&["=x"])).is_err());
    }

    #[test]
    fn a_properties_file_skips_comments_and_names_a_bad_line() {
        let text = "# SASL\nsecurity.protocol=SASL_SSL\n\n! other comment\nsasl.password=s3=cret\n";
        assert_eq!(
            parse_file(text).unwrap(),
            [
                ("security.protocol".to_string(), "SASL_SSL".to_string()),
                ("sasl.password".into(), "s3=cret".into()),
            ]
        );
        let (line, e) = parse_file("a=1\nsasl.password\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(!e.message.contains("sasl.password\""), "{}", e.message);
    }
}
