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
        .find(|l| l.contains("cqc-onsite-cyber@2026.1"))
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
        stdout.contains("ok  ") && stdout.contains("dspt-ndg@2026.1"),
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

// ---------------------------------------------------------------------------------
// The admin commands on a data folder (no server running: the CLI opens the folder
// itself). Those that need a signed-in device are in `tests/tests/auth.rs`.

const PASSWORD: &str = "correct horse battery staple";

/// A fresh data folder and a way to run the CLI on it with some standard input.
struct Data {
    dir: tempfile::TempDir,
}

/// What one run gave: exit status, stdout, stderr.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Data {
    fn new() -> Data {
        Data {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str], stdin: &str) -> Run {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = Command::new(env!("CARGO_BIN_EXE_wardcheck-server"))
            .arg("--data")
            .arg(self.dir.path().join("data"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the wardcheck-server binary runs");
        // A command that fails before reading stdin closes it early: ignore that.
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        let out = child.wait_with_output().unwrap();
        Run {
            ok: out.status.success(),
            stdout: text(&out.stdout),
            stderr: text(&out.stderr),
        }
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let r = self.run(args, stdin);
        assert!(
            r.ok,
            "wardcheck-server {args:?} should succeed:\n{}{}",
            r.stdout, r.stderr
        );
        r.stdout
    }

    /// Runs a command that must fail with a one-line `error: ...` containing `expect`;
    /// returns that line.
    fn fails(&self, args: &[&str], stdin: &str, expect: &str) -> String {
        let r = self.run(args, stdin);
        assert!(
            !r.ok,
            "wardcheck-server {args:?} should fail, but printed:\n{}",
            r.stdout
        );
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{args:?}: a failure is one line on stderr, got:\n{}",
            r.stderr
        );
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(expect),
            "{args:?}: the error should say {expect:?}, got: {}",
            lines[0]
        );
        lines[0].to_owned()
    }

    fn add_user(&self, name: &str, role: &str, trust: Option<&str>) -> String {
        let mut args = vec!["user", "add", name, "--role", role];
        if let Some(t) = trust {
            args.extend(["--trust", t]);
        }
        self.ok(&args, &format!("{PASSWORD}\n"))
    }

    /// `user list` as rows of tab-separated fields.
    fn users(&self) -> Vec<Vec<String>> {
        self.ok(&["user", "list"], "")
            .lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect()
    }

    fn db_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for f in ["wardcheck.db", "wardcheck.db-wal"] {
            if let Ok(b) = std::fs::read(self.dir.path().join("data").join(f)) {
                all.extend(b);
            }
        }
        all
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn user_add_takes_the_password_from_stdin_never_an_argument() {
    let d = Data::new();
    let help = d.ok(&["user", "add", "--help"], "");
    assert!(
        !help.contains("--password") && !help.contains("-p,") && !help.contains("--pass"),
        "`user add` must offer no password option (arguments show in `ps`):\n{help}"
    );
    let r = d.run(
        &[
            "user",
            "add",
            "ann",
            "--role",
            "inspector",
            "--password",
            PASSWORD,
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        !r.ok,
        "a --password argument must be refused, not ignored: {}",
        r.stdout
    );
    assert!(d.users().is_empty(), "no user was added by the refused run");

    let out = d.add_user("ann", "inspector", None);
    assert!(
        out.starts_with("user ann added (id ") && out.contains("role inspector"),
        "{out}"
    );
    assert!(
        !out.contains(PASSWORD),
        "the CLI never echoes the password: {out}"
    );
    let db = d.db_bytes();
    assert!(
        !db.is_empty() && !contains(&db, PASSWORD.as_bytes()),
        "the database holds a hash, never the password"
    );
}

#[test]
fn user_add_refuses_short_passwords() {
    let d = Data::new();
    for (stdin, why) in [
        ("short pass1\n", "11 characters"),
        ("\n", "an empty line"),
        ("", "no input at all"),
    ] {
        d.fails(
            &["user", "add", "ann", "--role", "inspector"],
            stdin,
            "at least 12 characters",
        );
        assert!(
            d.users().is_empty(),
            "no user is added with {why} as the password"
        );
    }
    // Twelve characters, counted as characters not bytes, is enough.
    d.ok(
        &["user", "add", "ann", "--role", "inspector"],
        "ééééééééééé1\n",
    );
    assert_eq!(d.users().len(), 1);
}

#[test]
fn trust_leads_need_a_well_formed_trust_and_only_they_take_one() {
    let d = Data::new();
    d.fails(
        &["user", "add", "tina", "--role", "trust-lead"],
        &format!("{PASSWORD}\n"),
        "a trust lead needs --trust",
    );
    for bad in ["rj1", "RJ", "RJ1X", "1J1", "R J", "RJ1\n"] {
        let line = d.fails(
            &[
                "user",
                "add",
                "tina",
                "--role",
                "trust-lead",
                "--trust",
                bad,
            ],
            &format!("{PASSWORD}\n"),
            "",
        );
        assert!(
            line.to_lowercase().contains("ods") || line.contains("code"),
            "a malformed ODS code {bad:?} is named as such: {line}"
        );
    }
    d.fails(
        &[
            "user",
            "add",
            "ivan",
            "--role",
            "inspector",
            "--trust",
            "RJ1",
        ],
        &format!("{PASSWORD}\n"),
        "--trust is only for trust leads",
    );
    assert!(d.users().is_empty(), "none of the refused users was added");
    d.add_user("tina", "trust-lead", Some("RJ1"));
    assert_eq!(
        d.users(),
        vec![vec!["tina", "trust-lead", "RJ1", "tina", "active"]]
    );
}

#[test]
fn user_names_and_display_names_are_one_printable_field() {
    let d = Data::new();
    for bad in [
        "",
        " ",
        "ann smith",
        "ann\tsmith",
        "ann\nsmith",
        &"a".repeat(101),
        // The server's own names: a user by either could pass for the server or claim
        // the actors of old documents.
        "@server",
        "@legacy",
    ] {
        d.fails(
            &["user", "add", bad, "--role", "inspector"],
            &format!("{PASSWORD}\n"),
            "a user name is 1 to 100 characters",
        );
    }
    for bad in ["", "Ann\nroot\tadmin", "Ann\tSmith", &"A".repeat(101)] {
        d.fails(
            &[
                "user",
                "add",
                "ann",
                "--role",
                "inspector",
                "--display-name",
                bad,
            ],
            &format!("{PASSWORD}\n"),
            "a display name is 1 to 100 characters",
        );
    }
    assert!(d.users().is_empty(), "none of the refused users was added");
    d.ok(
        &[
            "user",
            "add",
            "ann",
            "--role",
            "inspector",
            "--display-name",
            "Ann Smith",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(d.users()[0][3], "Ann Smith");
}

#[test]
fn a_duplicate_user_is_refused_before_a_password_is_asked_for() {
    let d = Data::new();
    d.add_user("ann", "inspector", None);
    // No password on stdin: the refusal must come from the name, not the password.
    d.fails(
        &["user", "add", "ann", "--role", "reviewer"],
        "",
        "user \"ann\" already exists",
    );
    let users = d.users();
    assert_eq!(users.len(), 1, "still one ann");
    assert_eq!(users[0][1], "inspector", "the first ann is unchanged");
}

#[test]
fn user_list_shows_roles_and_trusts_and_never_a_hash() {
    let d = Data::new();
    d.add_user("ivan", "inspector", None);
    d.add_user("rita", "reviewer", None);
    d.add_user("tina", "trust-lead", Some("RJ1"));
    d.add_user("adam", "admin", None);
    let list = d.ok(&["user", "list"], "");
    assert!(
        !list.contains("$argon2") && !list.contains(PASSWORD),
        "user list shows no password hash and no password:\n{list}"
    );
    assert_eq!(
        d.users(),
        vec![
            vec!["adam", "admin", "-", "adam", "active"],
            vec!["ivan", "inspector", "-", "ivan", "active"],
            vec!["rita", "reviewer", "-", "rita", "active"],
            vec!["tina", "trust-lead", "RJ1", "tina", "active"],
        ],
        "name, role, trust, display name, state; sorted by name"
    );
    d.ok(&["user", "disable", "ivan"], "");
    assert_eq!(d.users()[1][4], "disabled", "a disabled user is shown so");
    d.fails(
        &["user", "disable", "nobody"],
        "",
        "user \"nobody\" not found",
    );
}

#[test]
fn devices_unknown_to_the_server_cannot_be_revoked() {
    let d = Data::new();
    assert_eq!(
        d.ok(&["device", "list"], ""),
        "",
        "no devices before anyone signs in"
    );
    d.fails(&["device", "revoke", "42"], "", "device 42 not found");
    let r = d.run(&["device", "revoke", "not-a-number"], "");
    assert!(!r.ok, "a device id is a number");
}

#[test]
fn inspections_are_created_assigned_shared_and_listed() {
    let d = Data::new();
    d.add_user("ivan", "inspector", None);
    d.add_user("ines", "inspector", None);
    d.fails(
        &[
            "inspection",
            "create",
            "--trust",
            "RJ1",
            "--assign",
            "nobody",
        ],
        "",
        "no user \"nobody\" to assign",
    );
    d.fails(&["inspection", "create", "--trust", "rj1"], "", "rj1");
    d.fails(
        &["inspection", "create", "--trust", "RJ1", "--site", "RXX01"],
        "",
        "RXX01",
    );
    d.fails(
        &[
            "inspection",
            "create",
            "--trust",
            "RJ1",
            "--checklist",
            "no-such-list",
        ],
        "",
        "no checklist \"no-such-list\"",
    );
    assert_eq!(
        d.ok(&["inspection", "list"], ""),
        "",
        "refused creations leave nothing behind"
    );

    let id = d
        .ok(
            &[
                "inspection",
                "create",
                "--trust",
                "RJ1",
                "--site",
                "RJ121",
                "--assign",
                "ivan",
            ],
            "",
        )
        .trim()
        .to_owned();
    let id: uuid::Uuid = id.parse().expect("inspection create prints a uuid");
    let row = |list: &str| -> Vec<String> {
        let line = list
            .lines()
            .find(|l| l.starts_with(&id.to_string()))
            .unwrap_or_else(|| panic!("inspection list shows {id}:\n{list}"));
        line.split('\t').map(str::to_owned).collect()
    };
    let r = row(&d.ok(&["inspection", "list"], ""));
    assert_eq!(r[1], "RJ1", "trust");
    assert_eq!(r[2], "Draft", "a new inspection is a draft");
    assert!(r[3].starts_with("cqc-onsite-cyber@"), "default checklist");
    assert_eq!(r[4], "ivan", "assignees");
    assert_eq!(r[5], "-", "not shared yet");

    d.ok(&["inspection", "assign", &id.to_string(), "ines"], "");
    d.fails(
        &["inspection", "assign", &id.to_string(), "nobody"],
        "",
        "no user \"nobody\"",
    );
    let other = uuid::Uuid::new_v4().to_string();
    d.fails(&["inspection", "assign", &other, "ines"], "", "not found");
    d.fails(&["inspection", "share", &other], "", "not found");
    d.ok(&["inspection", "share", &id.to_string()], "");
    let r = row(&d.ok(&["inspection", "list"], ""));
    assert_eq!(r[4], "ines,ivan", "both assignees, sorted");
    assert_eq!(r[5], "shared", "shared with its trust");
}

/// Copies the shipped CQC template and the files it includes into `dir`, with the
/// template's version replaced.
fn cqc_copy(dir: &Path, version: &str) -> PathBuf {
    for f in [
        "dspt-ndg.toml",
        "windows10-endpoint.toml",
        "firewall-boundary.toml",
        "trust-governance.toml",
    ] {
        std::fs::copy(shipped(f), dir.join(f)).unwrap();
    }
    let template = std::fs::read_to_string(shipped("cqc-onsite-cyber.toml")).unwrap();
    assert!(template.contains("version = \"2026.1\""));
    let path = dir.join("cqc-onsite-cyber.toml");
    std::fs::write(
        &path,
        template.replacen(
            "version = \"2026.1\"",
            &format!("version = \"{version}\""),
            1,
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_published_checklist_can_be_pinned_by_new_inspections() {
    let d = Data::new();
    let shipped_cqc = shipped("cqc-onsite-cyber.toml");
    let out = d.ok(&["checklist", "publish", shipped_cqc.to_str().unwrap()], "");
    assert!(
        out.starts_with("published cqc-onsite-cyber@2026.1 sha256 "),
        "{out}"
    );
    d.fails(
        &["checklist", "publish", shipped_cqc.to_str().unwrap()],
        "",
        "checklist cqc-onsite-cyber@2026.1 already exists",
    );
    let id = d
        .ok(
            &[
                "inspection",
                "create",
                "--trust",
                "RJ1",
                "--checklist",
                "cqc-onsite-cyber@2026.1",
            ],
            "",
        )
        .trim()
        .to_owned();
    let list = d.ok(&["inspection", "list"], "");
    assert!(
        list.lines()
            .any(|l| l.starts_with(&id) && l.contains("\tcqc-onsite-cyber@2026.1\t")),
        "the inspection pins the published version:\n{list}"
    );

    // A version that exists only because it was published (no build bundles it).
    let scratch = tempfile::tempdir().unwrap();
    let newer = cqc_copy(scratch.path(), "2099.1");
    let pin = ["inspection", "create", "--trust", "RJ1", "--checklist"];
    let args: Vec<&str> = pin
        .iter()
        .copied()
        .chain(["cqc-onsite-cyber@2099.1"])
        .collect();
    d.fails(&args, "", "no checklist \"cqc-onsite-cyber@2099.1\"");
    let out = d.ok(&["checklist", "publish", newer.to_str().unwrap()], "");
    assert!(
        out.starts_with("published cqc-onsite-cyber@2099.1 sha256 "),
        "{out}"
    );
    let id = d.ok(&args, "").trim().to_owned();
    let list = d.ok(&["inspection", "list"], "");
    assert!(
        list.lines()
            .any(|l| l.starts_with(&id) && l.contains("\tcqc-onsite-cyber@2099.1\t")),
        "the inspection pins the newly published version:\n{list}"
    );

    // A broken file is refused, in one line that points to `validate`, and nothing
    // is stored.
    let broken = scratch.path().join("broken.toml");
    std::fs::write(&broken, "id = \"broken\"\nversion = \"1\"\n").unwrap();
    let line = d.fails(
        &["checklist", "publish", broken.to_str().unwrap()],
        "",
        "has 3 problem(s), so it was not published",
    );
    assert!(
        line.contains("title: missing required field") && line.contains("checklist validate"),
        "the first problem, and where to see the rest: {line}"
    );
    d.fails(
        &[
            "inspection",
            "create",
            "--trust",
            "RJ1",
            "--checklist",
            "broken@1",
        ],
        "",
        "no checklist",
    );
}

#[test]
fn admin_actions_are_audited_and_tail_shows_the_newest_in_order() {
    let d = Data::new();
    assert_eq!(
        d.ok(&["audit", "tail"], ""),
        "",
        "an empty log prints nothing"
    );
    d.add_user("ivan", "inspector", None);
    d.add_user("ines", "inspector", None);
    d.ok(&["user", "disable", "ines"], "");
    let id = d
        .ok(&["inspection", "create", "--trust", "RJ1"], "")
        .trim()
        .to_owned();
    d.ok(&["inspection", "assign", &id, "ivan"], "");
    d.ok(&["inspection", "share", &id], "");

    let all = d.ok(&["audit", "tail", "-n", "100"], "");
    let actions: Vec<(String, String)> = all
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 7, "seven tab-separated fields: {l:?}");
            let at = chrono::DateTime::parse_from_rfc3339(f[0])
                .unwrap_or_else(|e| panic!("{:?} is RFC 3339: {e}", f[0]));
            assert_eq!(at.offset().local_minus_utc(), 0, "times are UTC: {}", f[0]);
            assert!(f[1].starts_with("cli:"), "who ran it: {l}");
            assert_eq!(f[5], "cli", "where from: {l}");
            assert_eq!(f[6], "ok", "outcome: {l}");
            (f[3].to_owned(), f[4].to_owned())
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("user_add", "ivan".to_owned()),
        ("user_add", "ines".to_owned()),
        ("user_disable", "ines".to_owned()),
        ("inspection_create", id.clone()),
        ("inspection_assign", format!("{id} ivan")),
        ("inspection_share", id.clone()),
    ]
    .into_iter()
    .map(|(a, t)| (a.to_owned(), t))
    .collect();
    assert_eq!(actions, expected, "every admin action, oldest first");

    let last2 = d.ok(&["audit", "tail", "-n", "2"], "");
    let last2: Vec<&str> = last2.lines().collect();
    assert_eq!(last2.len(), 2, "-n 2 shows two events");
    assert!(
        last2[0].contains("\tinspection_assign\t") && last2[1].contains("\tinspection_share\t"),
        "the two newest, oldest first: {last2:?}"
    );
    assert!(
        !all.contains(PASSWORD) && !contains(&d.db_bytes(), PASSWORD.as_bytes()),
        "the password is in neither the audit output nor the database"
    );
}

/// The audit log is a chain: each row linked to the one before. `audit verify` walks it;
/// a row changed in the database, or one removed, is named; the rows before it hold.
#[test]
fn the_audit_log_is_a_chain_and_a_row_changed_or_removed_is_named() {
    let d = Data::new();
    for name in ["ann", "bob", "cat", "dan"] {
        d.ok(
            &["user", "add", name, "--role", "inspector"],
            &format!("{PASSWORD}\n"),
        );
    }
    let out = d.ok(&["audit", "verify"], "");
    assert!(
        out.contains("the audit log holds: 4 rows"),
        "four user_add rows, linked: {out}"
    );

    let db = rusqlite::Connection::open(d.dir.path().join("data/wardcheck.db")).unwrap();
    let target: String = db
        .query_row("SELECT target FROM audit WHERE seq = 2", [], |r| r.get(0))
        .unwrap();
    assert_eq!(target, "bob");
    // Someone with the database rewrites who a row says was added.
    db.execute("UPDATE audit SET target = 'mallory' WHERE seq = 2", [])
        .unwrap();
    let err = d.fails(&["audit", "verify"], "", "the audit log is broken at row 2");
    assert!(err.contains("1 rows before it hold"), "{err}");
    db.execute("UPDATE audit SET target = 'bob' WHERE seq = 2", [])
        .unwrap();
    d.ok(&["audit", "verify"], "");

    // A row removed: the next one names the gap.
    db.execute("DELETE FROM audit WHERE seq = 3", []).unwrap();
    let err = d.fails(&["audit", "verify"], "", "the audit log is broken at row 4");
    assert!(err.contains("the rows between are gone"), "{err}");
    // Renumbering to hide the gap breaks the links instead.
    db.execute("UPDATE audit SET seq = 3 WHERE seq = 4", [])
        .unwrap();
    d.fails(&["audit", "verify"], "", "the audit log is broken at row 3");
}

/// Rows from before the log was a chain are linked once, when the folder is first
/// opened; a link cleared afterwards is never made anew.
#[test]
fn audit_rows_from_before_the_chain_are_linked_once() {
    let d = Data::new();
    for name in ["ann", "bob"] {
        d.ok(
            &["user", "add", name, "--role", "inspector"],
            &format!("{PASSWORD}\n"),
        );
    }
    let db = rusqlite::Connection::open(d.dir.path().join("data/wardcheck.db")).unwrap();
    // As a folder from before: no links, and not linked yet.
    db.execute_batch("UPDATE audit SET hash = NULL; DELETE FROM audit_linked;")
        .unwrap();
    let out = d.ok(&["audit", "verify"], "");
    assert!(out.contains("the audit log holds: 2 rows"), "{out}");
    // Clearing a link afterwards (to rewrite a row) shows.
    db.execute(
        "UPDATE audit SET hash = NULL, target = 'mallory' WHERE seq = 1",
        [],
    )
    .unwrap();
    d.fails(&["audit", "verify"], "", "the audit log is broken at row 1");
}

/// A bundled checklist is stored the first time an inspection pins it, so the pin still
/// resolves after an upgrade ships another version of the file: publishing the same
/// version afterwards finds it already there.
#[test]
fn a_bundled_checklist_is_kept_when_an_inspection_first_pins_it() {
    let d = Data::new();
    d.ok(
        &[
            "inspection",
            "create",
            "--trust",
            "RJ1",
            "--checklist",
            "cqc-onsite-cyber",
        ],
        "",
    );
    let shipped_cqc = shipped("cqc-onsite-cyber.toml");
    d.fails(
        &["checklist", "publish", shipped_cqc.to_str().unwrap()],
        "",
        "checklist cqc-onsite-cyber@2026.1 already exists",
    );
    // A second inspection finds it stored and pins the same bytes.
    d.ok(
        &[
            "inspection",
            "create",
            "--trust",
            "RJ1",
            "--checklist",
            "cqc-onsite-cyber@2026.1",
        ],
        "",
    );
}
