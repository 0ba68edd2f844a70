//! Corrective actions carried over to a later visit (issue 14, item 1), through the
//! app's service against the real server: an action raised in an earlier inspection of
//! the trust is taken while online, checked with the server gone (judged by core's rules
//! first: a note over the limit and an action of the visit itself are refused, and
//! nothing is kept), kept across a restart of the app, and sent when the server is back,
//! where it stands as the inspector's `check` step, once; while it waits it is counted
//! (`pending_checks`, never "synced") and sign-out is refused. A check the server refuses
//! (the visit it was carried to submitted from another device meanwhile) is kept as
//! refused with the server's words, still listed, never sent again, and nothing of it is
//! on the server.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;
use wardcheck_app_lib::error::ErrorCode;
use wardcheck_app_lib::service::App;
use wardcheck_app_lib::service::actions::CheckState;
use wardcheck_core::actions::Outcome;
use wardcheck_core::inspection::Answer;

use crate::support::{self, AppDirs, PASSWORD, Server, Worker, wait_for};
use crate::{SYNC_LIMIT, compliance_items, post_status, sign_in_and_fetch};

/// An earlier RJ1 inspection of ann's, its first item answered "not met" by the app and
/// submitted; rita raises an action from that item. Returns (inspection, action).
async fn earlier_with_action(server: &Server, app: &App) -> (Uuid, Uuid) {
    let earlier = server.create_inspection("RJ1", "ann");
    app.sync_now();
    wait_for(SYNC_LIMIT, "the earlier inspection fetched", || {
        let app = app.clone();
        async move {
            app.list_inspections()
                .ok()?
                .iter()
                .any(|s| s.id == earlier)
                .then_some(())
        }
    })
    .await;
    let item = compliance_items(app, earlier)[0].clone();
    app.set_answer(earlier, &item, Answer::NotMet).unwrap();
    let ann = support::token(server, "ann").await;
    wait_for(SYNC_LIMIT, "the answer on the server", || {
        let (ann, item) = (ann.clone(), item.clone());
        async move {
            let d =
                support::get_json(server, &ann, &format!("/api/v1/inspections/{earlier}")).await;
            (!d["inspection"]["responses"][&item].is_null()).then_some(())
        }
    })
    .await;
    for state in ["in_progress", "submitted"] {
        let path = format!("/api/v1/inspections/{earlier}/state");
        assert_eq!(
            post_status(server, &ann, &path, json!({ "state": state })).await,
            200,
            "{state}"
        );
    }
    (earlier, raise(server, earlier, &item).await)
}

/// Rita raises an action from `item` of `earlier`; returns its id.
async fn raise(server: &Server, earlier: Uuid, item: &str) -> Uuid {
    let rita = support::token(server, "rita").await;
    let res: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/inspections/{earlier}/actions",
            server.url()
        ))
        .header("authorization", format!("Bearer {rita}"))
        .json(
            &json!({ "source": { "kind": "item", "item": item }, "what": "Fix it",
            "due": (chrono::Utc::now() + chrono::Duration::days(30)).date_naive() }),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    res["id"].as_str().expect("an action").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_action_is_checked_offline_and_reaches_the_server() {
    let scratch = tempfile::tempdir().unwrap();
    let server_data = scratch.path().join("server");
    let mut server = Server::start_on(&server_data, "127.0.0.1:0");
    server.add_inspector("ann");
    server.cli(
        &["user", "add", "rita", "--role", "reviewer"],
        &format!("{PASSWORD}\n"),
    );
    let first = server.create_inspection("RJ2", "ann");

    let dirs = AppDirs::new();
    let app = dirs.open();
    let worker = Worker::start(&app);
    sign_in_and_fetch(&app, &server, "ann", first).await;
    let (earlier, action) = earlier_with_action(&server, &app).await;

    // The next visit to RJ1: the app takes the trust's open actions with the list.
    let later = server.create_inspection("RJ1", "ann");
    app.sync_now();
    let carried = wait_for(
        SYNC_LIMIT,
        "the open action carried to the later visit",
        || {
            let app = app.clone();
            async move {
                let c = app.carried_actions(later).ok()?;
                c.actions.iter().any(|a| a.action.id == action).then_some(c)
            }
        },
    )
    .await;
    assert!(carried.taken_at.is_some());
    assert_eq!(carried.actions.len(), 1, "the one open action");
    assert!(
        app.carried_actions(earlier).unwrap().actions.is_empty(),
        "an action is not carried to the inspection it was raised in"
    );

    // The network goes.
    let addr = server.addr.clone();
    server.kill();
    wait_for(SYNC_LIMIT, "offline", || {
        let app = app.clone();
        async move {
            (app.sync_status().state == wardcheck_app_lib::service::status::SyncState::Offline)
                .then_some(())
        }
    })
    .await;

    // Core's rules first: nothing is kept of a refused check.
    let e = app
        .check_action(later, action, Outcome::Partly, &"x".repeat(20_001))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Invalid, "{e:?}");
    let e = app
        .check_action(earlier, action, Outcome::Done, "Seen")
        .unwrap_err();
    assert_eq!(
        e.code,
        ErrorCode::Invalid,
        "checked on a visit not yet submitted only: {e:?}"
    );
    let e = app
        .check_action(later, Uuid::new_v4(), Outcome::Done, "Seen")
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound, "no such action carried: {e:?}");
    assert!(
        app.carried_actions(later).unwrap().actions[0]
            .check
            .is_none()
    );

    let c = app
        .check_action(later, action, Outcome::Partly, "Two of three doors fitted")
        .unwrap();
    let check = c.actions[0].check.clone().expect("kept");
    assert_eq!(check.state, CheckState::Waiting);
    assert_eq!(
        app.sync_status().pending_checks,
        1,
        "counted as not yet on the server"
    );
    let e = app.sign_out(false).unwrap_err();
    assert_eq!(
        e.code,
        ErrorCode::Invalid,
        "no sign-out over a waiting check: {e:?}"
    );
    assert!(e.message.contains("1 check"), "{}", e.message);

    // The app is closed and opened again, still offline: the check is still there.
    worker.kill().await;
    drop(app);
    let app = dirs.open();
    let c = app.carried_actions(later).unwrap();
    assert_eq!(
        c.actions[0].check.as_ref().unwrap().state,
        CheckState::Waiting
    );
    assert_eq!(
        app.sync_status().pending_checks,
        1,
        "still counted after a restart"
    );
    assert_eq!(
        c.actions[0].check.as_ref().unwrap().note,
        "Two of three doors fitted"
    );

    // The server comes back: the check is sent, and stands on the server as ann's.
    let worker = Worker::start(&app);
    let server = Server::start_on(&server_data, &addr);
    wait_for(SYNC_LIMIT, "the check sent", || {
        let app = app.clone();
        async move {
            let c = app.carried_actions(later).ok()?;
            (c.actions[0].check.as_ref()?.state == CheckState::Sent).then_some(())
        }
    })
    .await;
    let rita = support::token(&server, "rita").await;
    let a = support::get_json(&server, &rita, &format!("/api/v1/actions/{action}")).await;
    let steps = a["steps"].as_array().unwrap();
    let last = steps.last().unwrap();
    assert_eq!(last["step"], "check", "{a}");
    assert_eq!(last["by"], "ann");
    assert_eq!(last["outcome"], "partly");
    assert_eq!(last["note"], "Two of three doors fitted");
    assert_eq!(a["status"], "raised", "a check leaves the status");
    assert_eq!(
        steps.iter().filter(|s| s["step"] == "check").count(),
        1,
        "sent once"
    );

    // Sent once only: another refresh sends nothing more.
    app.sync_now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a = support::get_json(&server, &rita, &format!("/api/v1/actions/{action}")).await;
    assert_eq!(
        a["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["step"] == "check")
            .count(),
        1
    );

    // A check the server refuses: an action of bob's earlier visit, carried to ann's
    // visit, which was then submitted from another device while this one was offline, so
    // the action no longer carries to ann. The refusal is kept with the server's words,
    // and the check is not sent again.
    server.add_inspector("bob");
    let bobs = server.create_inspection("RJ1", "bob");
    let bob_dirs = AppDirs::new();
    let bob_app = bob_dirs.open();
    let bob_worker = Worker::start(&bob_app);
    sign_in_and_fetch(&bob_app, &server, "bob", bobs).await;
    let item = compliance_items(&bob_app, bobs)[0].clone();
    bob_app.set_answer(bobs, &item, Answer::NotMet).unwrap();
    let bob = support::token(&server, "bob").await;
    wait_for(SYNC_LIMIT, "bob's answer on the server", || {
        let (bob, item, server) = (bob.clone(), item.clone(), &server);
        async move {
            let d = support::get_json(server, &bob, &format!("/api/v1/inspections/{bobs}")).await;
            (!d["inspection"]["responses"][&item].is_null()).then_some(())
        }
    })
    .await;
    bob_worker.kill().await;
    for state in ["in_progress", "submitted"] {
        let path = format!("/api/v1/inspections/{bobs}/state");
        assert_eq!(
            post_status(&server, &bob, &path, json!({ "state": state })).await,
            200
        );
    }
    let second = raise(&server, bobs, &item).await;
    // Ann's next visit, after bob's.
    let later = server.create_inspection("RJ1", "ann");
    app.sync_now();
    wait_for(SYNC_LIMIT, "bob's action carried to ann's visit", || {
        let app = app.clone();
        async move {
            let c = app.carried_actions(later).ok()?;
            c.actions
                .iter()
                .any(|a| a.action.id == second)
                .then_some(())
        }
    })
    .await;
    let addr = server.addr.clone();
    drop(server);
    app.check_action(later, second, Outcome::NotDone, "Nothing fitted")
        .unwrap();
    let db = rusqlite::Connection::open(server_data.join("wardcheck.db")).unwrap();
    let changed = db
        .execute(
            "UPDATE inspections SET state = 'submitted' WHERE id = ?1",
            [later.to_string()],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(db);
    let server = Server::start_on(&server_data, &addr);
    app.sync_now();
    let refused = wait_for(SYNC_LIMIT, "the check refused", || {
        let app = app.clone();
        async move {
            let c = app.carried_actions(later).ok()?;
            let check = c
                .actions
                .iter()
                .find(|a| a.action.id == second)?
                .check
                .clone()?;
            (check.state == CheckState::Refused).then_some(check)
        }
    })
    .await;
    assert!(
        refused.message.as_deref().is_some_and(|m| !m.is_empty()),
        "the server's words are kept: {refused:?}"
    );
    assert_eq!(
        app.sync_status().pending_checks,
        0,
        "nothing waits any more"
    );
    let a = support::get_json(&server, &rita, &format!("/api/v1/actions/{second}")).await;
    assert!(
        a["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["step"] != "check"),
        "nothing kept on the server: {a}"
    );
    worker.kill().await;
}
