//! Runs `scripts/kubectl-test.sh` (the real kubectl against a kruise-local) as a test.
//! Needs a built kruise-local: `cargo build -p kruise-local`, then
//! `cargo test -p kruise-apiserver --test kubectl_script -- --ignored`
//! (`KRUISE_LOCAL_BIN` overrides the binary path; the member CRDs are used when present).

use std::path::PathBuf;
use std::process::Command;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn kruise_local() -> PathBuf {
    if let Ok(path) = std::env::var("KRUISE_LOCAL_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    target.join("debug").join("kruise-local")
}

#[test]
#[ignore = "needs kubectl and a built kruise-local binary"]
fn kubectl_script_passes() {
    let bin = kruise_local();
    assert!(
        bin.exists(),
        "{} not built (cargo build -p kruise-local)",
        bin.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/kubectl-test.sh");
    let mut command = Command::new("bash");
    command.arg(&script).arg(&bin);
    let crds = workspace_root().join("charts/kruise-agent/crds");
    if crds.is_dir() {
        command.arg(&crds);
    }
    let output = command.output().expect("run kubectl-test.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "kubectl-test.sh failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("checks pass"), "{stdout}");
}
