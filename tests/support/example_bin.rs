//! Builds an example once, with the test binary's profile and target dir, and
//! returns its path (examples have no `CARGO_BIN_EXE_*`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The compiled example `name`.
pub fn build(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let target_dir = profile_dir.parent().unwrap();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--example", name, "--target-dir"])
        .arg(target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    assert!(
        cmd.status().unwrap().success(),
        "cargo build --example {name}"
    );
    profile_dir.join("examples").join(name)
}
