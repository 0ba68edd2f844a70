//! The admin command line, run as a real process.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn server(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wardcheck-server"))
        .args(args)
        .output()
        .expect("the wardcheck-server binary runs")
}

fn shipped(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../checklists")
        .join(file)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_accepts_the_shipped_checklists() {
    let files: Vec<PathBuf> = [
        "dspt-ndg.toml",
        "windows10-endpoint.toml",
        "firewall-boundary.toml",
        "cqc-onsite-cyber.toml",
    ]
    .into_iter()
    .map(shipped)
    .collect();
    let args: Vec<&str> = ["checklist", "validate"]
        .into_iter()
        .chain(files.iter().map(|f| f.to_str().unwrap()))
        .collect();
    let out = server(&args);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "exit 0 for valid files:\n{stdout}\n{}",
        text(&out.stderr)
    );
    let ok_lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("ok  ")).collect();
    assert_eq!(ok_lines.len(), 4, "one ok line per file:\n{stdout}");
    let template = ok_lines
        .iter()
        .find(|l| l.contains("cqc-onsite-cyber@2025.1"))
        .unwrap();
    assert!(
        template.contains(" sections, ") && template.contains(" items  sha256 "),
        "{template}"
    );
    let hash = template.rsplit(' ').next().unwrap();
    assert_eq!(hash.len(), 64, "a hex SHA-256: {hash}");
}

#[test]
fn validate_reports_every_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "id = \"bad\"\nversion = \"1\"\ntitle = \"Bad\"\napplies_to = [\"acute\", \"hospice\"]\n\n[[sections]]\nid = \"s\"\ntitle = \"S\"\n",
    )
    .unwrap();
    // A valid file alongside: it still gets its ok line, but the run fails.
    let out = server(&[
        "checklist",
        "validate",
        shipped("dspt-ndg.toml").to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "non-zero exit when any file fails");
    assert!(
        stdout.contains("ok  ") && stdout.contains("dspt-ndg@2025.1"),
        "{stdout}"
    );
    let name = bad.display().to_string();
    assert!(
        stderr.contains(&format!(
            "{name}:4: applies_to: unknown organisation type 'hospice'"
        )),
        "the bad org type on line 4:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("{name}:6: sections[s].items: empty section")),
        "the empty section on line 6:\n{stderr}"
    );
}

#[test]
fn version_and_missing_arguments() {
    let out = server(&["--version"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).starts_with("wardcheck-server "),
        "{}",
        text(&out.stdout)
    );
    let out = server(&["checklist", "validate"]);
    assert!(!out.status.success(), "at least one file is required");
}
