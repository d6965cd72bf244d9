//! Test harness: a fresh database per test (a temporary SQLite file, or a
//! freshly created PostgreSQL database when `TEST_DATABASE_URL` is set), and
//! the real app served on 127.0.0.1 port 0 by the real HTTP server.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use actix_web::http::header::HeaderMap;
use actix_web::HttpServer;
use diesel::prelude::*;
use mapce::auth::jwt::JwtKeys;
use mapce::auth::password::HashCost;
use mapce::db::pool::build_pool;
use mapce::db::{Backend, DatabaseUrl, DbConn, PoolSettings};
use mapce::domain::role::Role;
use mapce::AppState;
use serde_json::Value;

/// The signing key of test servers (tests forge tokens with it and others).
pub const TEST_JWT_SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

/// A database that exists for one test and is removed afterwards.
pub struct TestDb {
    pub url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
    pg_admin: Option<(String, String)>,
}

/// The audit key of every test server and database in this process.
pub const TEST_AUDIT_KEY: &[u8] = b"test audit key, at least thirty-two bytes long";

pub fn install_test_audit_key() {
    mapce::audit::install_key(TEST_AUDIT_KEY);
}

impl TestDb {
    /// The backend this test run uses: PostgreSQL when `TEST_DATABASE_URL`
    /// is set, SQLite otherwise.
    pub fn new() -> TestDb {
        match pg_admin_url() {
            Some(admin) => TestDb::postgres(&admin),
            None => TestDb::sqlite(),
        }
    }

    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path: PathBuf = dir.path().join("test.sqlite3");
        TestDb {
            url: DatabaseUrl::Sqlite(path),
            _dir: Some(dir),
            pg_admin: None,
        }
    }

    /// Creates a uniquely named database next to the admin URL's database.
    pub fn postgres(admin_url: &str) -> TestDb {
        let name = format!("mapce_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = PgConnection::establish(admin_url).expect("TEST_DATABASE_URL connects");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create test database");
        let url = DatabaseUrl::Postgres(replace_database(admin_url, &name));
        TestDb {
            url,
            _dir: None,
            pg_admin: Some((admin_url.to_owned(), name)),
        }
    }

    /// A database the test does not own (nothing is dropped afterwards).
    pub fn unmanaged(url: DatabaseUrl) -> TestDb {
        TestDb {
            url,
            _dir: None,
            pg_admin: None,
        }
    }

    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    pub fn connect(&self) -> DbConn {
        install_test_audit_key();
        self.url.connect().expect("test database connects")
    }

    /// A migrated database with reference data.
    pub fn migrated() -> TestDb {
        let db = TestDb::new();
        mapce::services::setup::migrate(&mut db.connect()).expect("migrations apply");
        db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.pg_admin {
            if let Ok(mut admin) = PgConnection::establish(admin_url) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin);
            }
        }
    }
}

pub fn pg_admin_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// `postgres://u@h:p/olddb?x=y` with the database replaced.
pub fn replace_database(url: &str, database: &str) -> String {
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    format!("{}/{}{}", &base[..host_end], database, query)
}

/// A response, read whole.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: actix_web::web::Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// Asserts an RFC 9457 problem with this status and code; returns it.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json"),
            "problem content type"
        );
        let body = self.json();
        assert_eq!(body["status"], status);
        assert_eq!(body["code"], code, "{body}");
        assert!(
            body["title"].is_string() && body["detail"].is_string(),
            "{body}"
        );
        assert_eq!(body["type"], format!("urn:mapce:problem:{code}"));
        let request_id = self.header("x-request-id").expect("X-Request-Id header");
        assert_eq!(
            body["request_id"],
            request_id.as_str(),
            "body carries the request id"
        );
        body
    }
}

/// The real app on a real socket.
pub struct TestApp {
    pub base: String,
    // Dropped last: the database outlives the server.
    pub db: TestDb,
}

impl TestApp {
    /// A server over a migrated database of the run's backend.
    pub async fn spawn() -> TestApp {
        Self::spawn_on(
            TestDb::migrated(),
            PoolSettings {
                max_size: 4,
                ..PoolSettings::default()
            },
        )
    }

    pub fn spawn_on(db: TestDb, settings: PoolSettings) -> TestApp {
        Self::spawn_configured(db, settings, |state| state)
    }

    /// A server whose state `configure` adjusts (trusted proxies, limits).
    pub fn spawn_configured(
        db: TestDb,
        settings: PoolSettings,
        configure: impl FnOnce(AppState) -> AppState,
    ) -> TestApp {
        install_test_audit_key();
        let pool = build_pool(&db.url, &settings);
        let state = AppState::new(
            pool,
            db.backend(),
            JwtKeys::new(TEST_JWT_SECRET).expect("test key"),
            HashCost::TESTING,
            Duration::from_secs(2),
        );
        let state = configure(state);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let addr = listener.local_addr().expect("local address");
        let server = HttpServer::new(move || mapce::app(state.clone()))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener)
            .expect("listen")
            .run();
        actix_web::rt::spawn(server);
        TestApp {
            base: format!("http://{addr}"),
            db,
        }
    }

    pub fn client(&self) -> awc::Client {
        awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish()
    }

    pub async fn send(&self, req: awc::ClientRequest, body: Option<Vec<u8>>) -> Resp {
        let result = match body {
            Some(body) => req.send_body(body).await,
            None => req.send().await,
        };
        let mut response = result.expect("request reaches the server");
        let body = response
            .body()
            .limit(16 * 1024 * 1024)
            .await
            .expect("response body");
        Resp {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        let req = self.client().get(format!("{}{}", self.base, path));
        self.send(req, None).await
    }

    pub async fn request(&self, method: &str, path: &str) -> awc::ClientRequest {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).expect("method");
        self.client()
            .request(method, format!("{}{}", self.base, path))
    }
}

/// A user of a test and a live access token for them.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: mapce::db::Id,
    pub token: String,
    pub refresh_token: String,
}

pub const TEST_PASSWORD: &str = "a long test password 42";

impl TestApp {
    /// Creates a user directly (as `mapce users create` does).
    pub fn create_user(
        &self,
        username: &str,
        role: Role,
        consulate: Option<&str>,
    ) -> mapce::db::Id {
        let mut conn = self.db.connect();
        mapce::services::users::create(
            &mut conn,
            HashCost::TESTING,
            mapce::services::users::NewAccount {
                username: username.to_owned(),
                display_name: username.to_owned(),
                role,
                consulate: consulate.map(str::to_owned),
                password: TEST_PASSWORD.to_owned(),
            },
            mapce::domain::audit::AuditAction::UserCreateCli,
        )
        .expect("user created")
    }

    /// Opens a session for a user the way a completed login does (second
    /// factor passed), without going through the login endpoints.
    pub fn session_for(&self, user_id: mapce::db::Id) -> Caller {
        let mut conn = self.db.connect();
        let user = mapce::models::users::find_user(&mut conn, user_id)
            .expect("query")
            .expect("user exists");
        let keys = JwtKeys::new(TEST_JWT_SECRET).expect("key");
        let (_, tokens) =
            mapce::auth::session::open(&mut conn, &keys, &user, true, None).expect("session");
        Caller {
            user_id,
            token: tokens.access_token,
            refresh_token: tokens.refresh_token,
        }
    }

    /// A new user with a live session.
    /// Polls an import job until it ends (`succeeded` or `failed`).
    pub async fn import_ended(&self, admin: &Caller, id: &str) -> Value {
        for _ in 0..600 {
            let r = self
                .call(
                    "GET",
                    &format!("/api/v1/imports/{id}"),
                    Some(&admin.token),
                    None,
                )
                .await;
            assert_eq!(r.status, 200, "{:?}", r.json());
            let body = r.json();
            if body["status"] == "succeeded" || body["status"] == "failed" {
                return body;
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("import {id} did not end");
    }

    pub fn caller(&self, username: &str, role: Role, consulate: Option<&str>) -> Caller {
        let id = self.create_user(username, role, consulate);
        self.session_for(id)
    }

    /// Sends `method path` with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let mut req = self.request(method, path).await;
        if let Some(token) = token {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        match body {
            Some(body) => {
                let req = req.insert_header(("Content-Type", "application/json"));
                self.send(req, Some(serde_json::to_vec(body).expect("json")))
                    .await
            }
            None => self.send(req, None).await,
        }
    }

    /// Registers a person through the API as `caller`; returns the id.
    pub async fn register_person(&self, caller: &Caller, body: Value) -> mapce::db::Id {
        let resp = self
            .call("POST", "/api/v1/persons", Some(&caller.token), Some(&body))
            .await;
        assert_eq!(resp.status, 201, "person registered: {:?}", resp.json());
        let id = resp.json()["id"].as_str().expect("id").to_owned();
        mapce::db::Id(uuid::Uuid::parse_str(&id).expect("uuid"))
    }

    /// Lets `caller`'s consulate take on a person known at another one, the
    /// way it is done for real: its staff ask, headquarters grants.
    pub async fn take_on(&self, caller: &Caller, person: mapce::db::Id) -> String {
        let body = serde_json::json!({ "reason": "the person moved here and came to our window" });
        let asked = self
            .call(
                "POST",
                &format!("/api/v1/persons/{person}/access-requests"),
                Some(&caller.token),
                Some(&body),
            )
            .await;
        assert_eq!(asked.status, 201, "access asked: {:?}", asked.json());
        let hq = self.caller(
            &format!("hq.{}", uuid::Uuid::now_v7().simple()),
            Role::HqAnalyst,
            None,
        );
        let decision = serde_json::json!({ "decision": "grant", "reason": "checked with the registering consulate" });
        let granted = self
            .call(
                "POST",
                &format!(
                    "/api/v1/access-requests/{}/decision",
                    asked.json()["id"].as_str().expect("request id")
                ),
                Some(&hq.token),
                Some(&decision),
            )
            .await;
        assert_eq!(granted.status, 200, "access granted: {:?}", granted.json());
        granted.json()["id"].as_str().expect("grant id").to_owned()
    }

    /// The kinds of a person's history events, oldest first.
    pub async fn history_kinds(
        &self,
        caller: &Caller,
        person: mapce::db::Id,
        query: &str,
    ) -> Vec<String> {
        let history = self
            .call(
                "GET",
                &format!("/api/v1/persons/{person}/history{query}"),
                Some(&caller.token),
                None,
            )
            .await
            .json();
        history["events"]["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|e| e["kind"].as_str().map(str::to_owned))
            .collect()
    }

    /// Logs in through the API with username and password.
    pub async fn login(&self, username: &str, password: &str) -> Resp {
        let body = serde_json::json!({ "username": username, "password": password });
        self.call("POST", "/api/v1/auth/login", None, Some(&body))
            .await
    }
}

/// The current TOTP code of a base32 secret, `offset` steps from now.
pub fn totp_code(secret: &str, offset: i64) -> String {
    let step = mapce::auth::totp::step_of(chrono::Utc::now().timestamp()) + offset;
    format!(
        "{:06}",
        mapce::auth::totp::code_at(secret, step).expect("valid secret")
    )
}
