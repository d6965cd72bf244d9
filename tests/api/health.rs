//! Liveness, readiness, and behaviour while the database is away.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::RunQueryDsl;
use mapce::db::{DatabaseUrl, PoolSettings};

use crate::helpers::{pg_admin_url, TestApp, TestDb};

#[actix_web::test]
async fn healthz_and_readyz_answer() {
    let app = TestApp::spawn().await;
    let alive = app.get("/healthz").await;
    assert_eq!(alive.status, 200);
    assert_eq!(alive.json()["status"], "alive");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["database"], app.db.backend().name());
}

fn fast_pool() -> PoolSettings {
    PoolSettings {
        max_size: 2,
        checkout_timeout: Duration::from_millis(1500),
    }
}

/// An unreachable PostgreSQL: readiness and API calls answer 503 with
/// Retry-After within 2 s, never hang.
#[actix_web::test]
async fn unreachable_database_gives_503_within_two_seconds() {
    // Port 1 on loopback: nothing listens, connections are refused.
    let db = TestDb::unmanaged(DatabaseUrl::Postgres(
        "postgres://mapce@127.0.0.1:1/mapce".into(),
    ));
    let app = TestApp::spawn_on(db, fast_pool());
    for path in [
        "/readyz",
        "/api/v1/countries",
        "/api/v1/consulates/AR-BUENOS-AIRES",
    ] {
        let started = Instant::now();
        let resp = app.get(path).await;
        let elapsed = started.elapsed();
        resp.assert_problem(503, "service_unavailable");
        assert!(resp.header("retry-after").is_some(), "{path}: Retry-After");
        assert!(elapsed < Duration::from_secs(2), "{path} took {elapsed:?}");
    }
    assert_eq!(
        app.get("/healthz").await.status,
        200,
        "liveness does not need the database"
    );
}

/// A TCP relay in front of PostgreSQL that can be cut and restored, as if
/// the server stopped and came back.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay binds");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (up2, open2) = (up.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                for s in [&client, &server] {
                    if let Ok(c) = s.try_clone() {
                        open2.lock().expect("lock").push(c);
                    }
                }
                pipe(
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                pipe(server, client);
            }
        });
        Relay { port, up, open }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.open.lock().expect("lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

async fn wait_for_status(app: &TestApp, path: &str, status: u16, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let resp = app.get(path).await;
        if resp.status == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{path} did not reach {status} within {within:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// PostgreSQL goes away under a running server and comes back: 503s
/// meanwhile, then service again without a restart.
#[actix_web::test]
#[cfg_attr(
    not(pg_tests),
    ignore = "needs TEST_DATABASE_URL (a PostgreSQL server)"
)]
async fn service_recovers_when_postgres_returns() {
    let admin = pg_admin_url().expect("TEST_DATABASE_URL");
    let real = TestDb::postgres(&admin);
    mapce::services::setup::migrate(&mut real.connect()).expect("migrate");
    let DatabaseUrl::Postgres(url) = &real.url else {
        unreachable!("postgres")
    };
    let host = url
        .split('@')
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("host:port");
    let relay = Relay::start(host.to_owned());
    let relayed = url.replacen(host, &format!("127.0.0.1:{}", relay.port), 1);
    let app = TestApp::spawn_on(
        TestDb::unmanaged(DatabaseUrl::Postgres(relayed)),
        fast_pool(),
    );
    assert_eq!(app.get("/api/v1/regions").await.status, 200);

    relay.cut();
    let started = Instant::now();
    let resp = app.get("/api/v1/regions").await;
    resp.assert_problem(503, "service_unavailable");
    assert!(resp.header("retry-after").is_some());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "503 took {:?}",
        started.elapsed()
    );
    assert_eq!(app.get("/readyz").await.status, 503);

    relay.restore();
    let took = wait_for_status(&app, "/api/v1/regions", 200, Duration::from_secs(10)).await;
    assert_eq!(app.get("/readyz").await.status, 200);
    eprintln!("served again {took:?} after PostgreSQL returned");
}

/// A SQLite database locked by another writer past the busy timeout answers
/// 503 with Retry-After (not 500), and serves again once the lock is gone.
#[actix_web::test]
async fn locked_sqlite_gives_503_then_recovers() {
    let db = TestDb::sqlite();
    mapce::services::setup::migrate(&mut db.connect()).expect("migrate");
    let mut locker = db.connect();
    let app = TestApp::spawn_on(db, fast_pool());
    // Writing needs the write lock; reading /readyz does not. Readiness
    // must still pass while a writer holds the lock (WAL lets readers on).
    locker
        .batch_execute("BEGIN IMMEDIATE; UPDATE regions SET sort_order = sort_order;")
        .expect("lock");
    assert_eq!(app.get("/readyz").await.status, 200);
    let mut writer = app.db.connect();
    writer
        .batch_execute("PRAGMA busy_timeout = 100;")
        .expect("pragma");
    let err = diesel::sql_query("UPDATE regions SET sort_order = sort_order")
        .execute(&mut writer)
        .expect_err("locked");
    let app_error = mapce::error::AppError::from(err);
    assert_eq!(app_error.code(), "service_unavailable");
    locker.batch_execute("COMMIT;").expect("unlock");
    diesel::sql_query("UPDATE regions SET sort_order = sort_order")
        .execute(&mut writer)
        .expect("unlocked");
}
