//! Faults against the real server process (the `mapce` binary), on the
//! run's backend: `kill -9` during concurrent case creation, and SIGTERM
//! under load. `MAPCE_FAULT_ROUNDS` repeats each (1 by default; `.ci/run`
//! asks for 10).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use mapce::db::schema::{audit_log, cases, timeline_events};
use mapce::db::DatabaseUrl;
use mapce::domain::role::Role;
use serde_json::{json, Value};

use crate::helpers::*;

fn rounds() -> usize {
    std::env::var("MAPCE_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn url_of(db: &TestDb) -> String {
    match &db.url {
        DatabaseUrl::Postgres(url) => url.clone(),
        DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
    }
}

/// `mapce serve` on 127.0.0.1:port, signing tokens with the tests' key.
fn start(db: &TestDb, dir: &Path, port: u16) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .expect("log file");
    Command::new(env!("CARGO_BIN_EXE_mapce"))
        .arg("serve")
        .env("MAPCE_DATABASE_URL", url_of(db))
        .env("MAPCE_DATA_DIR", dir)
        .env(
            "MAPCE_AUDIT_KEY",
            std::str::from_utf8(TEST_AUDIT_KEY).expect("ascii key"),
        )
        .env("MAPCE_BIND", format!("127.0.0.1:{port}"))
        .env(
            "MAPCE_JWT_SECRET",
            std::str::from_utf8(TEST_JWT_SECRET).expect("ascii key"),
        )
        .env("MAPCE_ADMIN_PASSWORD", "fault test admin password")
        .env("MAPCE_DB_POOL_SIZE", "8")
        .env("MAPCE_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("mapce serve starts")
}

async fn wait_ready(app: &TestApp, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = app
            .client()
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .map(|r| r.status().as_u16() == 200)
            .unwrap_or(false);
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "server not ready: {}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// POST /api/v1/cases with an Idempotency-Key; `None` when the connection
/// failed (no answer: the client cannot know whether it was created).
async fn create_case(app: &TestApp, token: &str, key: &str, body: &Value) -> Option<(u16, Value)> {
    let mut resp = app
        .client()
        .post(format!("{}/api/v1/cases", app.base))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .insert_header(("Idempotency-Key", key))
        .insert_header(("Content-Type", "application/json"))
        .send_body(serde_json::to_vec(body).expect("json"))
        .await
        .ok()?;
    let status = resp.status().as_u16();
    let bytes = resp.body().await.ok()?;
    Some((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

fn case_body(person: mapce::db::Id) -> Value {
    json!({
        "person_id": person,
        "channel": "phone",
        "requester": { "kind": "self" },
        "summary": "Needs help",
        "attentions": [{
            "attention_type": "legal_orientation",
            "date": chrono::Utc::now().date_naive(),
            "description": "Orientation"
        }]
    })
}

#[actix_web::test]
async fn every_acknowledged_case_survives_kill_9_exactly_once() {
    for round in 0..rounds() {
        crash_round(round).await;
    }
}

async fn crash_round(round: usize) {
    let dir = tempfile::tempdir().expect("dir");
    let mut app = TestApp {
        base: String::new(),
        db: TestDb::migrated(),
    };
    let port = free_port();
    app.base = format!("http://127.0.0.1:{port}");
    let mut server = start(&app.db, dir.path(), port);
    wait_ready(&app, dir.path()).await;
    let officer = app.caller("crash.officer", Role::Officer, Some("AR-BUENOS-AIRES"));
    let person = app
        .register_person(
            &officer,
            json!({ "given_names": "Crash", "first_surname": "Test", "sex": "female" }),
        )
        .await;
    let body = case_body(person);

    // 8 clients create cases until the server dies under them
    let acked: Rc<RefCell<HashMap<String, String>>> = Rc::default();
    let unacked: Rc<RefCell<Vec<String>>> = Rc::default();
    let app = Rc::new(app);
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (app, acked, unacked, body, token) = (
            app.clone(),
            acked.clone(),
            unacked.clone(),
            body.clone(),
            officer.token.clone(),
        );
        clients.push(actix_web::rt::spawn(async move {
            loop {
                let key = uuid::Uuid::now_v7().to_string();
                match create_case(&app, &token, &key, &body).await {
                    Some((201, v)) => {
                        let id = v["id"].as_str().expect("case id").to_owned();
                        acked.borrow_mut().insert(key, id);
                    }
                    // refused or cut off: not acknowledged, retried later
                    Some(_) | None => {
                        unacked.borrow_mut().push(key);
                        return;
                    }
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.borrow().len() < 40 {
        assert!(
            Instant::now() < deadline,
            "round {round}: too few cases created"
        );
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().expect("kill -9");
    server.wait().expect("reaped");
    for c in clients {
        c.await.expect("client task");
    }

    // restart on the same database; retry what was not acknowledged
    let port = free_port();
    let mut app = Rc::try_unwrap(app).unwrap_or_else(|_| panic!("clients finished"));
    app.base = format!("http://127.0.0.1:{port}");
    let mut server = start(&app.db, dir.path(), port);
    wait_ready(&app, dir.path()).await;
    let mut retried: HashMap<String, String> = HashMap::new();
    let unacked = unacked.borrow().clone();
    for key in unacked.iter() {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match create_case(&app, &officer.token, key, &body).await {
                Some((201, v)) => {
                    retried.insert(key.clone(), v["id"].as_str().expect("id").to_owned());
                    break;
                }
                // the dead request's marker, until its lease runs out
                Some((409, _)) if Instant::now() < deadline => {
                    actix_web::rt::time::sleep(Duration::from_millis(200)).await
                }
                other => panic!("round {round}: retry of {key} answered {other:?}"),
            }
        }
    }
    // an acknowledged key replays its first answer
    let acked = acked.borrow().clone();
    for (key, id) in acked.iter().take(3) {
        let (status, v) = create_case(&app, &officer.token, key, &body)
            .await
            .expect("replay answers");
        assert_eq!((status, v["id"].as_str()), (201, Some(id.as_str())));
    }

    let mut conn = app.db.connect();
    let total: i64 = cases::table.count().get_result(&mut conn).expect("count");
    assert_eq!(
        total as usize,
        acked.len() + retried.len(),
        "round {round}: one case per key, none lost, none doubled ({} acknowledged, {} retried)",
        acked.len(),
        retried.len()
    );
    for id in acked.values().chain(retried.values()) {
        let n: i64 = cases::table
            .filter(cases::id.eq(mapce::db::Id(uuid::Uuid::parse_str(id).expect("uuid"))))
            .count()
            .get_result(&mut conn)
            .expect("case");
        assert_eq!(n, 1, "round {round}: case {id}");
        let audited: i64 = audit_log::table
            .filter(audit_log::action.eq("case.create"))
            .filter(audit_log::resource_id.eq(id))
            .count()
            .get_result(&mut conn)
            .expect("audit");
        assert_eq!(audited, 1, "round {round}: audit row of {id}");
        let opened: i64 = timeline_events::table
            .filter(timeline_events::kind.eq("case.opened"))
            .filter(
                timeline_events::case_id
                    .eq(mapce::db::Id(uuid::Uuid::parse_str(id).expect("uuid"))),
            )
            .count()
            .get_result(&mut conn)
            .expect("events");
        assert_eq!(opened, 1, "round {round}: timeline event of {id}");
    }
    // the audit chain survived the crash intact
    let verify = Command::new(env!("CARGO_BIN_EXE_mapce"))
        .args(["audit", "verify"])
        .env("MAPCE_DATABASE_URL", url_of(&app.db))
        .env("MAPCE_DATA_DIR", dir.path())
        .env(
            "MAPCE_AUDIT_KEY",
            std::str::from_utf8(TEST_AUDIT_KEY).expect("ascii key"),
        )
        .env("RUST_LOG", "error")
        .output()
        .expect("audit verify runs");
    assert!(
        verify.status.success(),
        "round {round}: {} {}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    eprintln!(
        "kill -9 round {round}: {} cases acknowledged, {} cut off and retried",
        acked.len(),
        retried.len()
    );
    server.kill().expect("stop");
    server.wait().expect("reaped");
}

#[actix_web::test]
async fn sigterm_under_load_finishes_in_flight_requests_and_exits_0() {
    for round in 0..rounds() {
        sigterm_round(round).await;
    }
}

async fn sigterm_round(round: usize) {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let app = TestApp {
        base: format!("http://127.0.0.1:{port}"),
        db: TestDb::migrated(),
    };
    let mut server = start(&app.db, dir.path(), port);
    wait_ready(&app, dir.path()).await;
    let officer = app.caller("term.officer", Role::Officer, Some("AR-BUENOS-AIRES"));
    let person = app
        .register_person(
            &officer,
            json!({ "given_names": "Term", "first_surname": "Test", "sex": "male" }),
        )
        .await;
    let body = case_body(person);
    let app = Rc::new(app);
    let answered: Rc<RefCell<Vec<u16>>> = Rc::default();
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (app, answered, body, token) = (
            app.clone(),
            answered.clone(),
            body.clone(),
            officer.token.clone(),
        );
        clients.push(actix_web::rt::spawn(async move {
            // after the stop, new connections are refused: that ends a client
            while let Some((status, _)) =
                create_case(&app, &token, &uuid::Uuid::now_v7().to_string(), &body).await
            {
                answered.borrow_mut().push(status);
            }
        }));
    }
    while answered.borrow().len() < 20 {
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = server.id().to_string();
    // the shell's own `kill`: no dependency on a kill binary being installed
    let term = Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "round {round}: still running 30 s after SIGTERM"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    };
    for c in clients {
        c.await.expect("client task");
    }
    assert_eq!(status.code(), Some(0), "round {round}: exit status");
    let answered = answered.borrow();
    assert!(
        answered.iter().all(|s| *s == 201),
        "round {round}: every answered request succeeded: {answered:?}"
    );
    // no request was cut off after its work: what was stored was answered
    let mut conn = app.db.connect();
    let total: i64 = cases::table.count().get_result(&mut conn).expect("count");
    assert_eq!(
        total as usize,
        answered.len(),
        "round {round}: every case stored was answered, every answer stored"
    );
}

/// What a crash leaves behind is cleaned at the next start: upload jobs
/// still `running` end as failed, their files are swept, and the data
/// folder and the SQLite files are private.
#[actix_web::test]
async fn a_restart_fails_interrupted_upload_jobs_and_keeps_files_private() {
    use mapce::db::schema::imports;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let mut app = TestApp {
        base: String::new(),
        db: TestDb::migrated(),
    };
    let admin = app.create_user("crash.admin", Role::Admin, None);
    let job = mapce::db::Id::new();
    {
        let mut conn = app.db.connect();
        diesel::insert_into(imports::table)
            .values((
                imports::id.eq(job),
                imports::source_name.eq("extract.csv"),
                imports::format.eq("csv"),
                imports::dry_run.eq(false),
                imports::atomic.eq(false),
                imports::status.eq("running"),
                imports::rows_read.eq(10_i64),
                imports::rows_imported.eq(0_i64),
                imports::rows_skipped.eq(0_i64),
                imports::rows_rejected.eq(0_i64),
                imports::created_by.eq(Some(admin)),
                imports::created_at.eq(mapce::db::Ts::now()),
            ))
            .execute(&mut conn)
            .expect("a job the crash interrupted");
    }
    let uploads = dir.path().join("uploads");
    std::fs::create_dir_all(&uploads).expect("uploads");
    std::fs::write(
        uploads.join(format!("mapce-import-{job}")),
        b"fecha,consulado\n",
    )
    .expect("leftover");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let port = free_port();
    app.base = format!("http://127.0.0.1:{port}");
    let mut server = start(&app.db, dir.path(), port);
    wait_ready(&app, dir.path()).await;
    let (status, error): (String, Option<String>) = imports::table
        .find(job)
        .select((imports::status, imports::error))
        .first(&mut app.db.connect())
        .expect("job");
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(status, "failed");
    assert!(error.is_some_and(|e| e.contains("interrupted")));
    assert_eq!(
        std::fs::read_dir(&uploads).expect("uploads").count(),
        0,
        "swept"
    );
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(dir.path()), 0o700, "data folder");
    assert_eq!(mode(&uploads), 0o700, "uploads folder");
    if let DatabaseUrl::Sqlite(path) = &app.db.url {
        assert_eq!(mode(path), 0o600, "database file");
    }
}
