//! The audit log: written with every write, chained, and tamper-evident.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use mapce::audit::{verify, Verdict};
use mapce::db::schema::audit_log;
use mapce::domain::role::Role;
use serde_json::{json, Value};

use crate::helpers::{TestApp, TEST_AUDIT_KEY, TEST_PASSWORD};

/// Someone with full rights on the database: the append-only triggers are
/// out of the way (dropped on SQLite, disabled on PostgreSQL).
fn as_database_owner(conn: &mut mapce::db::DbConn) {
    let sql = match conn {
        mapce::db::DbConn::Pg(_) => {
            "ALTER TABLE audit_log DISABLE TRIGGER USER; ALTER TABLE audit_head DISABLE TRIGGER USER;"
        }
        mapce::db::DbConn::Sqlite(_) => {
            "DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete;
             DROP TRIGGER IF EXISTS audit_head_no_delete; DROP TRIGGER IF EXISTS audit_head_forward_only;"
        }
    };
    conn.batch_execute(sql).expect("triggers out of the way");
}

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
    as_database_owner(&mut conn);
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
    as_database_owner(&mut conn);
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
    as_database_owner(&mut conn);
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
            .env(
                "MAPCE_AUDIT_KEY",
                std::str::from_utf8(TEST_AUDIT_KEY).expect("text key"),
            )
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
    as_database_owner(&mut conn);
    diesel::update(audit_log::table.filter(audit_log::seq.eq(2)))
        .set(audit_log::details.eq("{}"))
        .execute(&mut conn)
        .expect("tamper");
    let broken = run();
    assert_eq!(broken.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("row 2"), "{stderr}");
}

async fn some_writes(app: &TestApp, token: &str, prefix: &str, n: usize) {
    for i in 0..n {
        let body = json!({ "username": format!("{prefix}.{i}"), "display_name": "X", "role": "planner", "password": "a long enough passphrase" });
        let resp = app
            .call("POST", "/api/v1/users", Some(token), Some(&body))
            .await;
        assert_eq!(resp.status, 201);
    }
}

#[actix_web::test]
async fn the_database_itself_refuses_to_change_or_remove_audit_rows() {
    let app = TestApp::spawn().await;
    let admin = app.caller("aud.admin", Role::Admin, None);
    some_writes(&app, &admin.token, "db", 2).await;
    let mut conn = app.db.connect();
    let attempts = [
        "UPDATE audit_log SET action = 'user.read' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 2",
        "DELETE FROM audit_head",
        "UPDATE audit_head SET seq = seq - 1",
        "UPDATE audit_head SET seq = seq + 5",
        "UPDATE audit_head SET keyed_from = NULL",
    ];
    for sql in attempts {
        let refused = conn.batch_execute(sql);
        assert!(refused.is_err(), "{sql} was allowed");
    }
    if matches!(conn, mapce::db::DbConn::Pg(_)) {
        assert!(
            conn.batch_execute("TRUNCATE audit_log").is_err(),
            "TRUNCATE allowed"
        );
    }
    assert!(matches!(
        verify(&mut conn).expect("verify"),
        Verdict::Intact { .. }
    ));
}

/// Rows are re-chained from row 3 on with the public hash function, as a
/// database owner without the audit key could; `keyed` keeps a MAC column
/// (copied, hence stale) or clears every MAC and the head's keying.
fn rechain(conn: &mut mapce::db::DbConn, from: i64, keyed: bool) {
    use mapce::audit::{row_hash, AuditRow};
    use mapce::db::schema::audit_head;
    as_database_owner(conn);
    let rows: Vec<AuditRow> = audit_log::table
        .order(audit_log::seq)
        .select(AuditRow::as_select())
        .load(conn)
        .expect("rows");
    let mut prev = mapce::audit::GENESIS_HASH.to_owned();
    for mut row in rows {
        if row.seq >= from {
            if row.seq == from {
                row.details = r#"{"forged":true}"#.to_owned();
            }
            row.prev_hash = prev.clone();
            row.hash = row_hash(&row);
        }
        if !keyed {
            row.mac = None;
        }
        diesel::update(audit_log::table.filter(audit_log::seq.eq(row.seq)))
            .set((
                audit_log::details.eq(&row.details),
                audit_log::prev_hash.eq(&row.prev_hash),
                audit_log::hash.eq(&row.hash),
                audit_log::mac.eq(&row.mac),
            ))
            .execute(conn)
            .expect("rewrite");
        prev = row.hash;
    }
    let head = diesel::update(audit_head::table).set(audit_head::hash.eq(&prev));
    if keyed {
        head.execute(conn).expect("head");
    } else {
        diesel::update(audit_head::table)
            .set((
                audit_head::hash.eq(&prev),
                audit_head::keyed_from.eq(None::<i64>),
                audit_head::mac.eq(None::<String>),
            ))
            .execute(conn)
            .expect("head");
    }
}

#[actix_web::test]
async fn a_rechained_log_fails_its_macs_and_a_rebuilt_one_its_checkpoint() {
    let app = TestApp::spawn().await;
    let admin = app.caller("aud.admin", Role::Admin, None);
    some_writes(&app, &admin.token, "mac", 4).await;
    let mut conn = app.db.connect();
    let checkpoint = mapce::audit::checkpoint(&mut conn).expect("checkpoint");
    assert!(matches!(
        mapce::audit::verify_against(&mut conn, Some(&checkpoint)).expect("verify"),
        Verdict::Intact { .. }
    ));
    // Re-chained from row 3 with the hash function alone: the MACs give it away.
    rechain(&mut conn, 3, true);
    match verify(&mut conn).expect("verify") {
        Verdict::Broken { seq, reason } => {
            assert_eq!(seq, 3, "{reason}");
            assert!(reason.contains("MAC"), "{reason}");
        }
        intact => panic!("re-chaining not detected: {intact:?}"),
    }
    // Rebuilt whole without MACs, as if never keyed: consistent in itself,
    // but not what the checkpoint kept.
    rechain(&mut conn, 3, false);
    match mapce::audit::verify_against(&mut conn, Some(&checkpoint)).expect("verify") {
        Verdict::Broken { reason, .. } => assert!(reason.contains("re-chained"), "{reason}"),
        intact => panic!("rebuilt log not detected: {intact:?}"),
    }
    // A checkpoint not signed with this key is refused.
    let mut forged = checkpoint.clone();
    forged.hash = "0".repeat(64);
    assert!(matches!(
        mapce::audit::verify_against(&mut conn, Some(&forged)).expect("verify"),
        Verdict::Broken { .. }
    ));
}

#[actix_web::test]
async fn a_log_cut_back_to_an_older_head_fails_a_later_checkpoint() {
    use mapce::db::schema::audit_head;
    let app = TestApp::spawn().await;
    let admin = app.caller("aud.admin", Role::Admin, None);
    some_writes(&app, &admin.token, "cut", 2).await;
    let mut conn = app.db.connect();
    // The intruder keeps a copy of the head as it is now…
    let (seq, hash, keyed_from, mac): (i64, String, Option<i64>, Option<String>) =
        audit_head::table
            .select((
                audit_head::seq,
                audit_head::hash,
                audit_head::keyed_from,
                audit_head::mac,
            ))
            .first(&mut conn)
            .expect("head");
    some_writes(&app, &admin.token, "later", 3).await;
    // …the operator keeps a checkpoint elsewhere (through the command)…
    let url = match &app.db.url {
        mapce::db::DatabaseUrl::Postgres(u) => u.clone(),
        mapce::db::DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
    };
    let mapce = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mapce"))
            .args(args)
            .env("MAPCE_DATABASE_URL", &url)
            .env("RUST_LOG", "error")
            .env(
                "MAPCE_AUDIT_KEY",
                std::str::from_utf8(TEST_AUDIT_KEY).expect("text key"),
            )
            .output()
            .expect("mapce runs")
    };
    let cp = mapce(&["audit", "checkpoint"]);
    assert!(
        cp.status.success(),
        "{}",
        String::from_utf8_lossy(&cp.stderr)
    );
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("checkpoint.json");
    std::fs::write(&file, &cp.stdout).expect("write");
    let file = file.to_str().expect("path").to_owned();
    // …then the intruder removes the later rows and puts the old head back:
    // a log consistent in itself, and verify alone cannot tell.
    as_database_owner(&mut conn);
    diesel::delete(audit_log::table.filter(audit_log::seq.gt(seq)))
        .execute(&mut conn)
        .expect("truncate");
    diesel::update(audit_head::table)
        .set((
            audit_head::seq.eq(seq),
            audit_head::hash.eq(&hash),
            audit_head::keyed_from.eq(keyed_from),
            audit_head::mac.eq(&mac),
        ))
        .execute(&mut conn)
        .expect("old head");
    let alone = mapce(&["audit", "verify"]);
    assert!(
        alone.status.success(),
        "{}",
        String::from_utf8_lossy(&alone.stderr)
    );
    let with_checkpoint = mapce(&["audit", "verify", "--checkpoint", &file]);
    assert_eq!(with_checkpoint.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&with_checkpoint.stderr);
    assert!(stderr.contains("truncated"), "{stderr}");
}

#[actix_web::test]
async fn unauthenticated_refusals_cost_one_row_per_address_and_minute() {
    let app = TestApp::spawn().await;
    let long = format!("/api/v1/persons/{}", "x".repeat(8000));
    for i in 0..60 {
        let path = if i % 2 == 0 {
            long.as_str()
        } else {
            "/api/v1/cases"
        };
        let resp = app.call("GET", path, Some("not-a-token"), None).await;
        assert_eq!(resp.status, 401);
    }
    let mut conn = app.db.connect();
    let rows: Vec<(String, String)> = audit_log::table
        .filter(audit_log::action.like("access.denied%"))
        .select((audit_log::action, audit_log::details))
        .load(&mut conn)
        .expect("rows");
    // One row for the first refusal of the minute (two if the loop crossed
    // a minute, plus that minute's burst row).
    assert!(!rows.is_empty() && rows.len() <= 3, "{rows:?}");
    assert!(
        rows.iter().all(|(_, d)| !d.contains("xxxxxxxx")),
        "raw paths are not stored: {rows:?}"
    );
    assert!(rows[0].1.contains("\"status\":401"), "{rows:?}");
}
