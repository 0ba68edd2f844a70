//! `scripts/setup` on a machine without the toolchains (issue 15, item 1): run with
//! rustup's folder off `PATH` and out of `HOME`, and with Node.js asked for from the
//! registry (`WARDCHECK_OWN_NODE=1`, as on a machine whose Node.js is too old), it brings
//! Debian's Rust and Node.js 22 with npm, and what it brings works: the versions meet
//! the minimums, a small crate builds and runs, and the dashboard builds with that Node.js.
//! Not the whole workspace a second time (CI builds it once with rustup's toolchain).
//!
//! It installs Debian packages (rustc-web, cargo-web), so it needs root or password-less
//! sudo: CI runs as root; elsewhere without either it says so and checks nothing.

use std::path::Path;
use std::process::Command;

use wardcheck_tests::workspace_root;

/// The system's folders, without rustup's `~/.cargo/bin` or any user tool folder.
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `program args` in `dir` with the scratch environment; (success, stdout, stderr).
fn run(env: &[(&str, String)], dir: &Path, program: &str, args: &[&str]) -> (bool, String, String) {
    let mut c = Command::new(program);
    c.args(args).current_dir(dir);
    // Nothing of the test's own toolchain leaks in.
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO")
            || k.starts_with("RUSTUP")
            || k.starts_with("RUSTC")
            || k.starts_with("npm_")
        {
            c.env_remove(k);
        }
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap_or_else(|e| panic!("{program}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `1.96.0` from `cargo 1.96.0 (…)` or `v22.23.5`.
fn version(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .map(|w| w.trim_start_matches('v'))
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .unwrap_or("0")
        .split(['.', '-', '+'])
        .take(3)
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

#[test]
fn setup_brings_rust_and_node_where_there_are_none() {
    let root = workspace_root();
    let is_root = run(&[], &root, "id", &["-u"]).1.trim() == "0";
    let sudo = !is_root
        && Command::new("sudo")
            .args(["-n", "true"])
            .status()
            .is_ok_and(|s| s.success());
    if !is_root && !sudo {
        eprintln!("setup test: not root and no password-less sudo: cannot install packages here");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let home = scratch.path().join("home");
    let tools = scratch.path().join("tools");
    // tauri-driver is the one tool setup builds with cargo: lent from this machine, so
    // that the test does not build it again.
    std::fs::create_dir_all(home.join(".cargo/bin")).unwrap();
    let real_home = std::env::var("HOME").unwrap_or_default();
    let driver = Path::new(&real_home).join(".cargo/bin/tauri-driver");
    if driver.exists() {
        std::os::unix::fs::symlink(&driver, home.join(".cargo/bin/tauri-driver")).unwrap();
    }
    let env = vec![
        ("PATH", SYSTEM_PATH.to_string()),
        ("HOME", home.display().to_string()),
        ("WARDCHECK_TOOLS", tools.display().to_string()),
        ("WARDCHECK_OWN_NODE", "1".to_string()),
    ];

    let (ok, out, err) = run(&env, &root, "bash", &["scripts/setup"]);
    assert!(ok, "setup failed:\n{out}\n{err}");
    assert!(
        out.contains("without rustup"),
        "it uses a Rust that is not rustup's:\n{out}"
    );
    assert!(out.contains("Node.js v22."), "{out}");

    // What it brought, on the PATH scripts/env makes.
    let with_node = {
        let mut e = env.clone();
        e[0].1 = format!("{}:{SYSTEM_PATH}", tools.join("node/bin").display());
        e
    };
    let (ok, node, _) = run(&with_node, &root, "node", &["--version"]);
    assert!(ok && version(&node) >= vec![20, 19, 0], "node {node}");
    let (ok, npm, err) = run(&with_node, &root, "npm", &["--version"]);
    assert!(ok && version(&npm) >= vec![10, 0, 0], "npm {npm} {err}");
    let (ok, cargo, _) = run(&env, &root, "cargo", &["--version"]);
    assert!(ok && version(&cargo) >= vec![1, 95, 0], "cargo {cargo}");

    // A small crate builds and runs with it.
    let (ok, _, err) = run(
        &env,
        scratch.path(),
        "cargo",
        &["new", "--vcs", "none", "hello"],
    );
    assert!(ok, "{err}");
    let (ok, hello, err) = run(
        &env,
        &scratch.path().join("hello"),
        "cargo",
        &["run", "--offline", "--quiet"],
    );
    assert!(ok && hello.contains("Hello, world!"), "{hello}{err}");

    // The dashboard builds with its Node.js.
    let dist = scratch.path().join("dist");
    let (ok, _, err) = run(
        &with_node,
        &root.join("ui"),
        "node",
        &[
            "node_modules/vite/bin/vite.js",
            "build",
            "--outDir",
            dist.to_str().unwrap(),
            "--emptyOutDir",
        ],
    );
    assert!(ok, "the dashboard's build: {err}");
    assert!(dist.join("index.html").exists());

    // Again: nothing to do, quickly.
    let (ok, out, err) = run(&env, &root, "bash", &["scripts/setup"]);
    assert!(ok, "{err}");
    assert!(
        !out.contains("installing"),
        "a second run installs nothing:\n{out}"
    );
}
