//! The audit log: written with every write, chained, and tamper-evident.

use diesel::prelude::*;
use mapce::audit::{verify, Verdict};
use mapce::db::schema::audit_log;
use mapce::domain::role::Role;
use serde_json::{json, Value};

use crate::helpers::{TestApp, TEST_PASSWORD};

async fn audit_rows(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let resp = app
        .call(
            "GET",
            &format!("/api/v1/audit?limit=200&{query}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(resp.status, 200, "{:?}", resp.json());
    resp.json()["items"].as_array().expect("items").clone()
}

#[actix_web::test]
async fn logins_refusals_and_user_administration_are_audited() {
    let app = TestApp::spawn().await;
    let admin = app.caller("aud.admin", Role::Admin, None);
    app.create_user("ana.quispe", Role::Officer, Some("AR-BUENOS-AIRES"));
    assert_eq!(app.login("ana.quispe", TEST_PASSWORD).await.status, 200);
    assert_eq!(
        app.login("ana.quispe", "a wrong password here")
            .await
            .status,
        401
    );
    assert_eq!(
        app.call("GET", "/api/v1/audit", Some("garbage"), None)
            .await
            .status,
        401
    );
    let created = app
        .call(
            "POST",
            "/api/v1/users",
            Some(&admin.token),
            Some(&json!({ "username": "luis.soto", "display_name": "Luis Soto", "role": "planner", "password": "a long enough passphrase" })),
        )
        .await;
    assert_eq!(created.status, 201);
    let request_id = created.header("x-request-id").expect("request id");

    let rows = audit_rows(&app, &admin.token, "").await;
    let find = |action: &str, outcome: &str| {
        rows.iter()
            .find(|r| r["action"] == action && r["outcome"] == outcome)
            .cloned()
    };
    let ok = find("auth.login", "success").expect("successful login audited");
    assert_eq!(ok["actor_username"], "ana.quispe");
    assert_eq!(ok["client_addr"], "127.0.0.1");
    let failed = find("auth.login", "failure").expect("failed login audited");
    assert_eq!(failed["details"]["username"], "ana.quispe");
    assert!(failed["actor_id"].is_null());
    let refused = find("access.denied", "denied").expect("401 audited");
    assert_eq!(refused["details"]["status"], 401);
    let create = find("user.create", "success").expect("user creation audited");
    assert_eq!(create["actor_username"], "aud.admin");
    assert_eq!(create["request_id"], request_id.as_str());
    assert_eq!(create["resource_id"], created.json()["id"]);
    // Passwords never reach the log.
    let all = serde_json::to_string(&rows).expect("json");
    assert!(!all.contains(TEST_PASSWORD) && !all.contains("a long enough passphrase"));

    let filtered = audit_rows(&app, &admin.token, &format!("actor={}", admin.user_id)).await;
    assert!(
        !filtered.is_empty()
            && filtered
                .iter()
                .all(|r| r["actor_id"] == admin.user_id.to_string())
    );
    let by_action = audit_rows(&app, &admin.token, "action=user.create&resource_type=user").await;
    assert!(by_action.iter().all(|r| r["action"] == "user.create"));
    app.call(
        "GET",
        "/api/v1/audit?from=yesterday",
        Some(&admin.token),
        None,
    )
    .await
    .assert_problem(400, "invalid_query");
}

#[actix_web::test]
async fn the_chain_verifies_and_names_an_altered_row() {
    let app = TestApp::spawn().await;
    let admin = app.caller("aud.admin", Role::Admin, None);
    for i in 0..5 {
        let body = json!({ "username": format!("user.{i}"), "display_name": "X", "role": "planner", "password": "a long enough passphrase" });
        assert_eq!(
            app.call("POST", "/api/v1/users", Some(&admin.token), Some(&body))
                .await
                .status,
            201
        );
    }
    let mut conn = app.db.connect();
    let rows = match verify(&mut conn).expect("verify") {
        Verdict::Intact { rows } => rows,
        broken => panic!("fresh log broken: {broken:?}"),
    };
    assert!(rows >= 6, "{rows}");

    // Someone edits row 3 directly in the database.
    diesel::update(audit_log::table.filter(audit_log::seq.eq(3)))
        .set(audit_log::action.eq("user.read"))
        .execute(&mut conn)
        .expect("tamper");
    match verify(&mut conn).expect("verify") {
        Verdict::Broken { seq, .. } => assert_eq!(seq, 3),
        other => panic!("tampering not detected: {other:?}"),
    }
}

#[actix_web::test]
async fn deleting_audit_rows_is_detected() {
    let app = TestApp::spawn().await;
    let admin = app.caller("aud.admin", Role::Admin, None);
    for i in 0..4 {
        let body = json!({ "username": format!("user.{i}"), "display_name": "X", "role": "planner", "password": "a long enough passphrase" });
        assert_eq!(
            app.call("POST", "/api/v1/users", Some(&admin.token), Some(&body))
                .await
                .status,
            201
        );
    }
    let mut conn = app.db.connect();
    let Verdict::Intact { rows } = verify(&mut conn).expect("verify") else {
        panic!("broken before tampering")
    };
    // From the middle…
    diesel::delete(audit_log::table.filter(audit_log::seq.eq(2)))
        .execute(&mut conn)
        .expect("delete");
    assert!(matches!(
        verify(&mut conn).expect("verify"),
        Verdict::Broken { seq: 2, .. }
    ));
    // …and from the end, in a fresh database.
    let app = TestApp::spawn().await;
    let admin = app.caller("aud.admin", Role::Admin, None);
    let body = json!({ "username": "one.more", "display_name": "X", "role": "planner", "password": "a long enough passphrase" });
    assert_eq!(
        app.call("POST", "/api/v1/users", Some(&admin.token), Some(&body))
            .await
            .status,
        201
    );
    let mut conn = app.db.connect();
    let Verdict::Intact { rows: n } = verify(&mut conn).expect("verify") else {
        panic!("broken")
    };
    diesel::delete(audit_log::table.filter(audit_log::seq.eq(n)))
        .execute(&mut conn)
        .expect("delete last");
    assert!(
        matches!(verify(&mut conn).expect("verify"), Verdict::Broken { .. }),
        "truncation detected"
    );
    assert!(rows > 0);
}

#[actix_web::test]
async fn concurrent_writes_keep_one_unbroken_chain() {
    let app = TestApp::spawn().await;
    let admin = app.caller("aud.admin", Role::Admin, None);
    let calls = (0..16).map(|i| {
        let body = json!({ "username": format!("par.{i}"), "display_name": "X", "role": "planner", "password": "a long enough passphrase" });
        let app = &app;
        let token = admin.token.clone();
        async move { app.call("POST", "/api/v1/users", Some(&token), Some(&body)).await.status }
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let mut conn = app.db.connect();
    match verify(&mut conn).expect("verify") {
        Verdict::Intact { rows } => assert!(rows >= 17),
        broken => panic!("{broken:?}"),
    }
}

#[actix_web::test]
async fn the_audit_verify_command_names_the_altered_row() {
    let app = TestApp::spawn().await;
    let admin = app.caller("aud.admin", Role::Admin, None);
    for i in 0..3 {
        let body = json!({ "username": format!("cli.{i}"), "display_name": "X", "role": "planner", "password": "a long enough passphrase" });
        assert_eq!(
            app.call("POST", "/api/v1/users", Some(&admin.token), Some(&body))
                .await
                .status,
            201
        );
    }
    let url = app.db.url.clone();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_mapce"))
            .args(["audit", "verify"])
            .env(
                "MAPCE_DATABASE_URL",
                match &url {
                    mapce::db::DatabaseUrl::Postgres(u) => u.clone(),
                    mapce::db::DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
                },
            )
            .env("RUST_LOG", "error")
            .output()
            .expect("mapce runs")
    };
    let ok = run();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("intact"));

    let mut conn = app.db.connect();
    diesel::update(audit_log::table.filter(audit_log::seq.eq(2)))
        .set(audit_log::details.eq("{}"))
        .execute(&mut conn)
        .expect("tamper");
    let broken = run();
    assert_eq!(broken.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("row 2"), "{stderr}");
}
