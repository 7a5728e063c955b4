//! The testkit's own programs (`mock-cluster`, `bus-member`), built by cargo on demand in the
//! profile of the executable that asks (`release` for `cargo bench`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Builds the testkit binary `name` in the calling executable's profile (a no-op when fresh) and
/// returns the path cargo reports.
pub fn testkit_binary(name: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives inside the workspace");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--quiet", "--message-format=json"])
        .args(["-p", "kbus-testkit", "--bin", name]);
    match profile() {
        Some(p) if p == "debug" => {}
        Some(p) if p == "release" => {
            command.arg("--release");
        }
        Some(p) => {
            command.args(["--profile", &p]);
        }
        None => {}
    }
    let out = command
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {name}: {e}"));
    assert!(
        out.status.success(),
        "cargo build of {name} failed ({})",
        out.status
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(r#""reason":"compiler-artifact""#))
        .filter(|l| l.contains(&format!(r#""name":"{name}""#)))
        .find_map(executable_path)
        .unwrap_or_else(|| panic!("cargo did not report where it put {name}"))
}

/// The profile directory (`debug`, `release`, ...) the running executable sits in, if it sits in
/// `.../<profile>/deps/` (tests, benches), `.../<profile>/examples/` or `.../<profile>/`
/// (binaries).
fn profile() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?;
    if dir.file_name()? == "deps" || dir.file_name()? == "examples" {
        dir = dir.parent()?;
    }
    Some(dir.file_name()?.to_str()?.to_owned())
}

/// The `"executable":"..."` field of one JSON message from cargo (paths with `"` or `\` in them
/// are not expected in a target directory).
fn executable_path(line: &str) -> Option<PathBuf> {
    const KEY: &str = r#""executable":""#;
    let start = line.find(KEY)? + KEY.len();
    let len = line[start..].find('"')?;
    Some(PathBuf::from(&line[start..start + len]))
}
