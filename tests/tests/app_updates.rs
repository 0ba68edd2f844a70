//! App updates, the server's side (issue 15, item 4): `app-update publish` keeps a
//! package only when its signature (made by the Tauri CLI) verifies under the public key
//! given and binds the version published, and the file is the platform's kind of
//! package; every refusal is audited and keeps nothing. The update endpoint answers 204
//! when nothing is newer, else the Tauri updater's JSON, whose package downloads byte for
//! byte with its hash; no token, 401; a withdrawn package is offered to no one. Runs on SQLite and on PostgreSQL
//! (`WARDCHECK_TEST_BACKEND`).
//!
//! The app's side (the signature checked against the key compiled into the app, a
//! package signed with another key refused, a right one installed) is in
//! `package_deb.rs`, through the installed app.

mod api_support;

use api_support::*;
use reqwest::StatusCode;
use wardcheck_tests::server::Server;
use wardcheck_tests::updates::{Keys, tiny_deb};

const PLATFORM: &str = "linux-x86_64-deb";

fn publish(
    s: &Server,
    version: &str,
    file: &std::path::Path,
    sig: &std::path::Path,
    key: &std::path::Path,
) -> (bool, String, String) {
    s.try_cli(
        &[
            "app-update",
            "publish",
            "--platform",
            PLATFORM,
            "--version",
            version,
            "--file",
            file.to_str().unwrap(),
            "--signature",
            sig.to_str().unwrap(),
            "--public-key",
            key.to_str().unwrap(),
            "--notes",
            "Fixes the photo upload",
        ],
        "",
    )
}

fn kept(s: &Server) -> u64 {
    s.sql_row("SELECT COUNT(*) FROM app_updates")
        .and_then(|row| row.into_iter().next().flatten())
        .expect("a count")
        .parse()
        .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_packages_signed_for_their_version_are_kept_and_offered() {
    let s = Server::start();
    s.add_user("ann", "inspector");
    s.add_user("rita", "reviewer");
    let dir = tempfile::tempdir().unwrap();
    let release = Keys::generate(dir.path(), "release");
    let other = Keys::generate(dir.path(), "other");
    let deb = tiny_deb(dir.path(), "wardcheck", "0.2.0");

    // Signed with another key than the one named: refused, audited, nothing kept.
    let sig = other.sign(&deb, "0.2.0");
    let (ok, _, err) = publish(&s, "0.2.0", &deb, &sig, &release.public);
    assert!(!ok, "another key's signature is refused");
    assert!(err.contains("does not verify"), "{err}");
    assert_eq!(kept(&s), 0, "nothing kept");

    // Signed by the right key, but for another version: refused.
    let sig = release.sign(&deb, "0.1.9");
    let (ok, _, err) = publish(&s, "0.2.0", &deb, &sig, &release.public);
    assert!(!ok && err.contains("for version 0.1.9, not 0.2.0"), "{err}");

    // A signature of other bytes (the package changed after it was signed): refused.
    let sig = release.sign(&deb, "0.2.0");
    let mut tampered = std::fs::read(&deb).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let tampered_path = dir.path().join("tampered.deb");
    std::fs::write(&tampered_path, &tampered).unwrap();
    let (ok, _, err) = publish(&s, "0.2.0", &tampered_path, &sig, &release.public);
    assert!(!ok && err.contains("does not verify"), "{err}");

    // Not a .deb (a shell script signed properly): refused for what it is.
    let script = dir.path().join("install.sh");
    std::fs::write(&script, "#!/bin/sh\necho owned\n").unwrap();
    let script_sig = release.sign(&script, "0.2.0");
    let (ok, _, err) = publish(&s, "0.2.0", &script, &script_sig, &release.public);
    assert!(!ok && err.contains("not a .deb package"), "{err}");

    // A version that is not semantic, and a platform that does not exist.
    let (ok, _, err) = publish(&s, "latest", &deb, &sig, &release.public);
    assert!(!ok && err.contains("not a semantic version"), "{err}");
    let (ok, _, err) = s.try_cli(
        &[
            "app-update",
            "publish",
            "--platform",
            "linux-x86_64-snap",
            "--version",
            "0.2.0",
            "--file",
            deb.to_str().unwrap(),
            "--public-key",
            release.public.to_str().unwrap(),
        ],
        "",
    );
    assert!(!ok && err.contains("unknown platform"), "{err}");
    assert_eq!(kept(&s), 0, "nothing of the refused ones kept");
    let audit = s.cli(&["audit", "tail", "-n", "50"], "");
    let refused = audit
        .lines()
        .filter(|l| l.contains("app_update_publish") && l.contains("refused"))
        .count();
    assert_eq!(refused, 6, "every refusal audited:\n{audit}");

    // No token: 401, before anything is published or not.
    let c = client();
    let res = c
        .get(s.url("/api/v1/app/updates/linux/x86_64/deb/0.1.0"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Nothing published yet: 204.
    let ann = token(&c, &s, "ann").await;
    let res = c
        .get(s.url("/api/v1/app/updates/linux/x86_64/deb/0.1.0"))
        .bearer_auth(&ann)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // The right one (the default signature path, FILE.sig): kept, audited with its hash.
    let (ok, out, err) = s.try_cli(
        &[
            "app-update",
            "publish",
            "--platform",
            PLATFORM,
            "--version",
            "0.2.0",
            "--file",
            deb.to_str().unwrap(),
            "--public-key",
            release.public.to_str().unwrap(),
            "--notes",
            "Fixes the photo upload",
        ],
        "",
    );
    assert!(ok, "the release-signed package is published: {err}");
    let bytes = std::fs::read(&deb).unwrap();
    let sha = sha256(&bytes);
    assert!(out.contains(&sha), "{out}");
    assert_eq!(kept(&s), 1);
    let audit = s.cli(&["audit", "tail", "-n", "5"], "");
    assert!(
        audit
            .lines()
            .any(|l| l.contains("app_update_publish") && l.contains(&sha) && l.contains("ok")),
        "{audit}"
    );
    // The same platform and version again: refused (a version is published once).
    let (ok, _, err) = publish(&s, "0.2.0", &deb, &sig, &release.public);
    assert!(!ok && err.contains("already published"), "{err}");
    assert_eq!(kept(&s), 1);

    // Offered to an older version, in the updater's format, to any signed-in role.
    for user in ["ann", "rita"] {
        let t = token(&c, &s, user).await;
        let m = json_ok(
            c.get(s.url("/api/v1/app/updates/linux/x86_64/deb/0.1.0"))
                .bearer_auth(&t)
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
            "the update",
        )
        .await;
        assert_eq!(m["version"], "0.2.0");
        assert_eq!(m["notes"], "Fixes the photo upload");
        assert_eq!(m["sha256"], sha.as_str());
        assert_eq!(
            m["signature"].as_str().unwrap(),
            std::fs::read_to_string(&sig).unwrap().trim(),
            "the signature exactly as the CLI wrote it"
        );
        let url = m["url"].as_str().unwrap();
        assert_eq!(url, s.url(&format!("/api/v1/app/packages/{sha}")));
        chrono::DateTime::parse_from_rfc3339(m["pub_date"].as_str().unwrap())
            .expect("pub_date is RFC 3339");
        // The package, byte for byte, with its hash.
        let res = c.get(url).bearer_auth(&t).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()["x-content-sha256"].to_str().unwrap(),
            sha.as_str()
        );
        assert_eq!(res.bytes().await.unwrap().as_ref(), bytes.as_slice());
    }
    // Not to the same or a newer version, nor another platform.
    for path in [
        "/api/v1/app/updates/linux/x86_64/deb/0.2.0",
        "/api/v1/app/updates/linux/x86_64/deb/0.10.0",
        "/api/v1/app/updates/windows/x86_64/msi/0.1.0",
    ] {
        let res = c.get(s.url(path)).bearer_auth(&ann).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT, "{path}");
    }
    // Garbage in the path: clear 400s, and a package that is not there: 404.
    let (code, _) = error(
        c.get(s.url("/api/v1/app/updates/linux/x86_64/deb/newest"))
            .bearer_auth(&ann)
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "a version that is not semantic",
    )
    .await;
    assert_eq!(code, "invalid_field");
    let (code, _) = error(
        c.get(s.url("/api/v1/app/updates/linux/x86_64/exe/0.1.0"))
            .bearer_auth(&ann)
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "an unknown bundle",
    )
    .await;
    assert_eq!(code, "unknown_platform");
    for bad in ["0".repeat(64), "g".repeat(64), sha.to_uppercase()] {
        let res = c
            .get(s.url(&format!("/api/v1/app/packages/{bad}")))
            .bearer_auth(&ann)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{bad}");
    }

    // `list` shows it.
    let listed = s.cli(&["app-update", "list"], "");
    assert!(
        listed.contains(PLATFORM) && listed.contains("0.2.0") && listed.contains(&sha),
        "{listed}"
    );

    // A newer package signed (properly) with another key than the one kept: refused
    // unless the key was rotated on purpose (--new-key).
    let newer = tiny_deb(dir.path(), "wardcheck", "0.3.0");
    let newer_sig = other.sign(&newer, "0.3.0");
    let (ok, _, err) = publish(&s, "0.3.0", &newer, &newer_sig, &other.public);
    assert!(!ok && err.contains("publish with --new-key"), "{err}");
    assert_eq!(kept(&s), 1);

    // Withdrawn (a leaked key, a bad release): offered to no one, its package gone;
    // audited; withdrawing what is not there says so.
    s.cli(
        &[
            "app-update",
            "withdraw",
            "--platform",
            PLATFORM,
            "--version",
            "0.2.0",
        ],
        "",
    );
    assert_eq!(kept(&s), 0);
    let res = c
        .get(s.url("/api/v1/app/updates/linux/x86_64/deb/0.1.0"))
        .bearer_auth(&ann)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT, "no longer offered");
    let res = c
        .get(s.url(&format!("/api/v1/app/packages/{sha}")))
        .bearer_auth(&ann)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "its package gone");
    let audit = s.cli(&["audit", "tail", "-n", "3"], "");
    assert!(audit.contains("app_update_withdraw"), "{audit}");
    let (ok, _, err) = s.try_cli(
        &[
            "app-update",
            "withdraw",
            "--platform",
            PLATFORM,
            "--version",
            "0.2.0",
        ],
        "",
    );
    assert!(!ok && err.contains("no such package"), "{err}");
}
