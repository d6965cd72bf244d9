//! Login, tokens, sessions, throttling and the second factor.

use base64::Engine;
use diesel::prelude::*;
use mapce::db::schema::sessions;
use mapce::domain::role::Role;
use serde_json::{json, Value};

use crate::helpers::{totp_code, TestApp, TEST_JWT_SECRET, TEST_PASSWORD};

fn session_token(body: &Value) -> String {
    body["session"]["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

#[actix_web::test]
async fn login_returns_tokens_and_me_names_the_user() {
    let app = TestApp::spawn().await;
    app.create_user("ana.quispe", Role::Officer, Some("AR-BUENOS-AIRES"));
    let resp = app.login("Ana.Quispe", TEST_PASSWORD).await;
    assert_eq!(resp.status, 200, "{:?}", resp.json());
    let body = resp.json();
    assert_eq!(body["status"], "authenticated");
    assert_eq!(body["session"]["token_type"], "Bearer");
    assert!(body["session"]["expires_in"].as_i64().unwrap_or(0) <= 900);
    let refresh = body["session"]["refresh_token"].as_str().expect("refresh");
    assert!(refresh.len() >= 43, "at least 256 bits");
    let me = app
        .call("GET", "/api/v1/auth/me", Some(&session_token(&body)), None)
        .await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["username"], "ana.quispe");
    assert_eq!(me.json()["role"], "officer");
}

#[actix_web::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let app = TestApp::spawn().await;
    app.create_user("ana.quispe", Role::Officer, Some("AR-BUENOS-AIRES"));
    let wrong = app
        .login("ana.quispe", "not the password at all")
        .await
        .assert_problem(401, "invalid_credentials");
    let unknown = app
        .login("nobody.here", "not the password at all")
        .await
        .assert_problem(401, "invalid_credentials");
    for field in ["type", "title", "status", "detail", "code"] {
        assert_eq!(wrong[field], unknown[field], "{field}");
    }
}

/// Builds a token by hand: header and claims as given, signed with `key`
/// using HS256 (or unsigned for `alg: none`).
fn forge(header: Value, claims: Value, key: Option<&[u8]>) -> String {
    use hmac::{Hmac, Mac};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signing_input = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let signature = match key {
        Some(key) => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("key");
            mac.update(signing_input.as_bytes());
            b64.encode(mac.finalize().into_bytes())
        }
        None => String::new(),
    };
    format!("{signing_input}.{signature}")
}

#[actix_web::test]
async fn hostile_and_malformed_tokens_are_401() {
    let app = TestApp::spawn().await;
    let caller = app.caller("ana.quispe", Role::Officer, Some("AR-BUENOS-AIRES"));
    // The real token works…
    assert_eq!(
        app.call("GET", "/api/v1/auth/me", Some(&caller.token), None)
            .await
            .status,
        200
    );
    // …and its claims are the base for every forgery.
    let payload = caller.token.split('.').nth(1).expect("payload");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims: Value = serde_json::from_slice(&b64.decode(payload).expect("b64")).expect("json");
    let now = chrono::Utc::now().timestamp();
    let with = |k: &str, v: Value| {
        let mut c = claims.clone();
        c[k] = v;
        c
    };
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            forge(json!({"alg": "none", "typ": "JWT"}), claims.clone(), None),
        ),
        (
            "alg HS512",
            forge(
                json!({"alg": "HS512", "typ": "JWT"}),
                claims.clone(),
                Some(TEST_JWT_SECRET),
            ),
        ),
        (
            "wrong key",
            forge(
                hs256.clone(),
                claims.clone(),
                Some(b"another-secret-another-secret-another"),
            ),
        ),
        (
            "expired",
            forge(
                hs256.clone(),
                with("exp", json!(now - 120)),
                Some(TEST_JWT_SECRET),
            ),
        ),
        (
            "future nbf",
            forge(
                hs256.clone(),
                with("nbf", json!(now + 600)),
                Some(TEST_JWT_SECRET),
            ),
        ),
        (
            "wrong iss",
            forge(
                hs256.clone(),
                with("iss", json!("someone-else")),
                Some(TEST_JWT_SECRET),
            ),
        ),
        (
            "wrong aud",
            forge(
                hs256.clone(),
                with("aud", json!("another-api")),
                Some(TEST_JWT_SECRET),
            ),
        ),
        (
            "second-factor challenge",
            forge(
                hs256.clone(),
                with("typ", json!("second_factor")),
                Some(TEST_JWT_SECRET),
            ),
        ),
        ("no exp", {
            let mut c = claims.clone();
            c.as_object_mut().expect("object").remove("exp");
            forge(hs256.clone(), c, Some(TEST_JWT_SECRET))
        }),
        (
            "refresh token as access token",
            caller.refresh_token.clone(),
        ),
        ("garbage", "not.a.token".to_owned()),
        ("empty", String::new()),
    ];
    for (name, token) in cases {
        let resp = app.call("GET", "/api/v1/auth/me", Some(&token), None).await;
        assert_eq!(resp.status, 401, "{name}");
        resp.assert_problem(401, resp.json()["code"].as_str().unwrap_or("?"));
        assert!(
            resp.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Bearer")),
            "{name}"
        );
    }
    app.call("GET", "/api/v1/auth/me", None, None)
        .await
        .assert_problem(401, "unauthenticated");
}

#[actix_web::test]
async fn logout_ends_the_session_at_once() {
    let app = TestApp::spawn().await;
    let caller = app.caller("ana.quispe", Role::Officer, Some("AR-BUENOS-AIRES"));
    assert_eq!(
        app.call("GET", "/api/v1/auth/me", Some(&caller.token), None)
            .await
            .status,
        200
    );
    assert_eq!(
        app.call("POST", "/api/v1/auth/logout", Some(&caller.token), None)
            .await
            .status,
        204
    );
    app.call("GET", "/api/v1/auth/me", Some(&caller.token), None)
        .await
        .assert_problem(401, "session_ended");
    let refresh = json!({ "refresh_token": caller.refresh_token });
    app.call("POST", "/api/v1/auth/refresh", None, Some(&refresh))
        .await
        .assert_problem(401, "session_ended");
}

#[actix_web::test]
async fn deactivation_password_change_and_role_change_end_sessions() {
    let app = TestApp::spawn().await;
    let admin = app.caller("root.admin", Role::Admin, None);
    // deactivation
    let a = app.caller("ana.quispe", Role::Officer, Some("AR-BUENOS-AIRES"));
    let patch = json!({ "active": false });
    let path = format!("/api/v1/users/{}", a.user_id);
    let etag = app
        .call("GET", &path, Some(&admin.token), None)
        .await
        .header("etag")
        .expect("etag");
    let req = app.request("PATCH", &path).await;
    let resp = app
        .send(
            req.insert_header(("Authorization", format!("Bearer {}", admin.token)))
                .insert_header(("If-Match", etag))
                .insert_header(("Content-Type", "application/json")),
            Some(patch.to_string().into_bytes()),
        )
        .await;
    assert_eq!(resp.status, 200, "{:?}", resp.json());
    app.call("GET", "/api/v1/auth/me", Some(&a.token), None)
        .await
        .assert_problem(401, "session_ended");
    app.login("ana.quispe", TEST_PASSWORD)
        .await
        .assert_problem(401, "invalid_credentials");

    // own password change
    let b = app.caller("beto.diaz", Role::Planner, None);
    let change =
        json!({ "current_password": TEST_PASSWORD, "new_password": "another long password 77" });
    assert_eq!(
        app.call(
            "POST",
            "/api/v1/auth/password",
            Some(&b.token),
            Some(&change)
        )
        .await
        .status,
        204
    );
    app.call("GET", "/api/v1/auth/me", Some(&b.token), None)
        .await
        .assert_problem(401, "session_ended");
    assert_eq!(
        app.login("beto.diaz", "another long password 77")
            .await
            .status,
        200
    );
    app.login("beto.diaz", TEST_PASSWORD)
        .await
        .assert_problem(401, "invalid_credentials");

    // role change by an admin
    let c = app.caller("carla.rojas", Role::Officer, Some("AR-BUENOS-AIRES"));
    let path = format!("/api/v1/users/{}", c.user_id);
    let req = app.request("PATCH", &path).await;
    let resp = app
        .send(
            req.insert_header(("Authorization", format!("Bearer {}", admin.token)))
                .insert_header(("If-Match", "\"1\""))
                .insert_header(("Content-Type", "application/json")),
            Some(json!({ "role": "supervisor" }).to_string().into_bytes()),
        )
        .await;
    assert_eq!(resp.status, 200, "{:?}", resp.json());
    assert_eq!(resp.json()["role"], "supervisor");
    app.call("GET", "/api/v1/auth/me", Some(&c.token), None)
        .await
        .assert_problem(401, "session_ended");
}

#[actix_web::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_session() {
    let app = TestApp::spawn().await;
    let caller = app.caller("ana.quispe", Role::Officer, Some("AR-BUENOS-AIRES"));
    let first = json!({ "refresh_token": caller.refresh_token });
    let rotated = app
        .call("POST", "/api/v1/auth/refresh", None, Some(&first))
        .await;
    assert_eq!(rotated.status, 200);
    let rotated = rotated.json();
    assert_ne!(rotated["refresh_token"], first["refresh_token"]);
    let new_access = rotated["access_token"].as_str().expect("access").to_owned();
    assert_eq!(
        app.call("GET", "/api/v1/auth/me", Some(&new_access), None)
            .await
            .status,
        200
    );

    // The first token again: theft assumed, the whole session ends.
    app.call("POST", "/api/v1/auth/refresh", None, Some(&first))
        .await
        .assert_problem(401, "refresh_token_reused");
    app.call("GET", "/api/v1/auth/me", Some(&new_access), None)
        .await
        .assert_problem(401, "session_ended");
    // The newest refresh token of the revoked session is dead too.
    let second = json!({ "refresh_token": rotated["refresh_token"] });
    app.call("POST", "/api/v1/auth/refresh", None, Some(&second))
        .await
        .assert_problem(401, "session_ended");
    let unknown = json!({ "refresh_token": "nope" });
    app.call("POST", "/api/v1/auth/refresh", None, Some(&unknown))
        .await
        .assert_problem(401, "invalid_token");
}

#[actix_web::test]
async fn idle_sessions_cannot_refresh() {
    let app = TestApp::spawn().await;
    let caller = app.caller("ana.quispe", Role::Officer, Some("AR-BUENOS-AIRES"));
    let mut conn = app.db.connect();
    let stale = mapce::db::Ts(chrono::Utc::now() - chrono::Duration::minutes(31));
    diesel::update(sessions::table.filter(sessions::user_id.eq(caller.user_id)))
        .set(sessions::last_refresh_at.eq(stale))
        .execute(&mut conn)
        .expect("backdate");
    let body = json!({ "refresh_token": caller.refresh_token });
    app.call("POST", "/api/v1/auth/refresh", None, Some(&body))
        .await
        .assert_problem(401, "session_ended");
}

#[actix_web::test]
async fn eleventh_failed_login_is_throttled_whether_or_not_the_account_exists() {
    let app = TestApp::spawn().await;
    app.create_user("ana.quispe", Role::Officer, Some("AR-BUENOS-AIRES"));
    for username in ["ana.quispe", "ghost.user"] {
        for attempt in 1..=10 {
            let resp = app.login(username, "wrong password, long enough").await;
            assert_eq!(resp.status, 401, "{username} attempt {attempt}");
        }
        let eleventh = app.login(username, "wrong password, long enough").await;
        let body = eleventh.assert_problem(429, "too_many_requests");
        let retry: u64 = eleventh
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .expect("seconds");
        assert!((1..=900).contains(&retry), "{retry}");
        assert!(body["detail"].is_string());
    }
    // Even the right password waits until the window passes.
    app.login("ana.quispe", TEST_PASSWORD)
        .await
        .assert_problem(429, "too_many_requests");
}

#[actix_web::test]
async fn a_successful_login_resets_the_account_counter() {
    let app = TestApp::spawn().await;
    app.create_user("ana.quispe", Role::Officer, Some("AR-BUENOS-AIRES"));
    for _ in 0..9 {
        assert_eq!(
            app.login("ana.quispe", "wrong password, long enough")
                .await
                .status,
            401
        );
    }
    assert_eq!(app.login("ana.quispe", TEST_PASSWORD).await.status, 200);
    for _ in 0..9 {
        assert_eq!(
            app.login("ana.quispe", "wrong password, long enough")
                .await
                .status,
            401
        );
    }
    assert_eq!(
        app.login("ana.quispe", TEST_PASSWORD).await.status,
        200,
        "counter was reset"
    );
}

#[actix_web::test]
async fn admins_must_enrol_totp_and_then_log_in_with_it() {
    let app = TestApp::spawn().await;
    app.create_user("root.admin", Role::Admin, None);
    let login = app.login("root.admin", TEST_PASSWORD).await.json();
    assert_eq!(login["session"]["second_factor_enrolment_required"], true);
    let token = session_token(&login);
    // Nothing but enrolment until then.
    app.call("GET", "/api/v1/users", Some(&token), None)
        .await
        .assert_problem(403, "second_factor_enrolment_required");
    let enrol = app
        .call("POST", "/api/v1/auth/totp/enrol", Some(&token), None)
        .await
        .json();
    let secret = enrol["secret"].as_str().expect("secret").to_owned();
    // Stored sealed: the database never holds the secret itself.
    let stored: Option<String> = mapce::db::schema::users::table
        .filter(mapce::db::schema::users::username.eq("root.admin"))
        .select(mapce::db::schema::users::totp_secret)
        .first(&mut app.db.connect())
        .expect("user");
    let stored = stored.expect("a secret is stored");
    assert!(
        stored.starts_with("sealed:v1:") && !stored.contains(&secret),
        "{stored}"
    );
    assert!(enrol["otpauth_uri"]
        .as_str()
        .is_some_and(|u| u.starts_with("otpauth://totp/")));
    let wrong = json!({ "code": "000000" });
    if totp_code(&secret, 0) != "000000" {
        app.call(
            "POST",
            "/api/v1/auth/totp/confirm",
            Some(&token),
            Some(&wrong),
        )
        .await
        .assert_problem(422, "validation_failed");
    }
    let confirm = app
        .call(
            "POST",
            "/api/v1/auth/totp/confirm",
            Some(&token),
            Some(&json!({ "code": totp_code(&secret, 0) })),
        )
        .await;
    assert_eq!(confirm.status, 200, "{:?}", confirm.json());
    let recovery: Vec<String> =
        serde_json::from_value(confirm.json()["recovery_codes"].clone()).expect("codes");
    assert_eq!(recovery.len(), 10);
    assert_eq!(
        app.call("GET", "/api/v1/users", Some(&token), None)
            .await
            .status,
        200,
        "this session passed it"
    );

    // A new login now needs the second factor.
    let login = app.login("root.admin", TEST_PASSWORD).await.json();
    assert_eq!(login["status"], "second_factor_required");
    assert!(
        login["session"].is_null(),
        "no tokens before the second factor"
    );
    let challenge = login["challenge_token"]
        .as_str()
        .expect("challenge")
        .to_owned();
    // The challenge is no access token.
    app.call("GET", "/api/v1/auth/me", Some(&challenge), None)
        .await
        .assert_problem(401, "invalid_token");
    let bad = json!({ "challenge_token": challenge, "code": "12345x" });
    app.call("POST", "/api/v1/auth/login/second-factor", None, Some(&bad))
        .await
        .assert_problem(401, "invalid_second_factor");
    // The code used to confirm cannot be replayed; the next step's can.
    let good = json!({ "challenge_token": challenge, "code": totp_code(&secret, 1) });
    let done = app
        .call(
            "POST",
            "/api/v1/auth/login/second-factor",
            None,
            Some(&good),
        )
        .await;
    assert_eq!(done.status, 200, "{:?}", done.json());
    assert_eq!(
        app.call(
            "GET",
            "/api/v1/users",
            Some(&session_token(&done.json())),
            None
        )
        .await
        .status,
        200
    );
    let replay = app
        .call(
            "POST",
            "/api/v1/auth/login/second-factor",
            None,
            Some(&good),
        )
        .await;
    // A challenge opens one session: used once, it is spent, whatever code
    // comes with it.
    replay.assert_problem(401, "invalid_token");
    let spent =
        json!({ "challenge_token": challenge, "recovery_code": recovery[1].to_lowercase() });
    app.call(
        "POST",
        "/api/v1/auth/login/second-factor",
        None,
        Some(&spent),
    )
    .await
    .assert_problem(401, "invalid_token");

    // A recovery code works once.
    let fresh = || async {
        app.login("root.admin", TEST_PASSWORD).await.json()["challenge_token"]
            .as_str()
            .expect("challenge")
            .to_owned()
    };
    let with_recovery =
        json!({ "challenge_token": fresh().await, "recovery_code": recovery[0].to_lowercase() });
    assert_eq!(
        app.call(
            "POST",
            "/api/v1/auth/login/second-factor",
            None,
            Some(&with_recovery)
        )
        .await
        .status,
        200
    );
    let again =
        json!({ "challenge_token": fresh().await, "recovery_code": recovery[0].to_lowercase() });
    app.call(
        "POST",
        "/api/v1/auth/login/second-factor",
        None,
        Some(&again),
    )
    .await
    .assert_problem(401, "invalid_second_factor");
}

#[actix_web::test]
async fn wrong_passwords_and_codes_of_a_signed_in_user_are_throttled() {
    let app = TestApp::spawn().await;
    let caller = app.caller("ana.guess", Role::Officer, Some("AR-BUENOS-AIRES"));
    let wrong = json!({ "current_password": "not the password at all", "new_password": "a brand new passphrase" });
    for _ in 0..10 {
        app.call(
            "POST",
            "/api/v1/auth/password",
            Some(&caller.token),
            Some(&wrong),
        )
        .await
        .assert_problem(422, "validation_failed");
    }
    // The eleventh guess is not even checked, the right password neither.
    let right =
        json!({ "current_password": TEST_PASSWORD, "new_password": "a brand new passphrase" });
    app.call(
        "POST",
        "/api/v1/auth/password",
        Some(&caller.token),
        Some(&right),
    )
    .await
    .assert_problem(429, "too_many_requests");
    app.call(
        "POST",
        "/api/v1/auth/totp/disable",
        Some(&caller.token),
        Some(&json!({ "password": TEST_PASSWORD })),
    )
    .await
    .assert_problem(429, "too_many_requests");
    // Wrong enrolment codes count too.
    let other = app.caller("luis.guess", Role::Officer, Some("AR-BUENOS-AIRES"));
    let enrolled = app
        .call("POST", "/api/v1/auth/totp/enrol", Some(&other.token), None)
        .await;
    assert_eq!(enrolled.status, 200);
    for _ in 0..10 {
        app.call(
            "POST",
            "/api/v1/auth/totp/confirm",
            Some(&other.token),
            Some(&json!({ "code": "000000" })),
        )
        .await;
    }
    app.call(
        "POST",
        "/api/v1/auth/totp/confirm",
        Some(&other.token),
        Some(&json!({ "code": "000000" })),
    )
    .await
    .assert_problem(429, "too_many_requests");
}

#[actix_web::test]
async fn new_passwords_follow_the_rules() {
    let app = TestApp::spawn().await;
    let caller = app.caller("ana.quispe", Role::Officer, Some("AR-BUENOS-AIRES"));
    for (new, reason_part) in [
        ("short", "at least 12"),
        ("password1234", "commonly used"),
        ("ana.quispe", "at least 12"),
    ] {
        let body = json!({ "current_password": TEST_PASSWORD, "new_password": new });
        let problem = app
            .call(
                "POST",
                "/api/v1/auth/password",
                Some(&caller.token),
                Some(&body),
            )
            .await
            .assert_problem(422, "validation_failed");
        assert_eq!(problem["errors"][0]["field"], "body.new_password");
        assert!(
            problem["errors"][0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains(reason_part)),
            "{problem}"
        );
    }
    let wrong_current = json!({ "current_password": "not my password at all", "new_password": "a fine new passphrase" });
    let problem = app
        .call(
            "POST",
            "/api/v1/auth/password",
            Some(&caller.token),
            Some(&wrong_current),
        )
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "body.current_password");
}

#[actix_web::test]
async fn stored_hashes_are_argon2id_phc_strings() {
    let app = TestApp::spawn().await;
    let id = app.create_user("ana.quispe", Role::Officer, Some("AR-BUENOS-AIRES"));
    let mut conn = app.db.connect();
    let user = mapce::models::users::find_user(&mut conn, id)
        .expect("query")
        .expect("user");
    assert!(
        user.password_hash.starts_with("$argon2id$v=19$"),
        "{}",
        user.password_hash
    );
    assert!(!user.password_hash.contains(TEST_PASSWORD));
}

#[actix_web::test]
async fn bad_login_bodies_are_problems_not_crashes() {
    let app = TestApp::spawn().await;
    let req = app.request("POST", "/api/v1/auth/login").await;
    app.send(req, Some(b"{}".to_vec()))
        .await
        .assert_problem(415, "unsupported_media_type");
    let resp = app
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(&json!({ "username": "a" })),
        )
        .await;
    let body = resp.assert_problem(422, "validation_failed");
    assert!(body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("password")));
    let big = json!({ "username": "x".repeat(300 * 1024), "password": "y" });
    app.call("POST", "/api/v1/auth/login", None, Some(&big))
        .await
        .assert_problem(413, "payload_too_large");
}

async fn login_from(app: &TestApp, addr: &str, username: &str, password: &str) -> u16 {
    let body = json!({ "username": username, "password": password });
    let req = app
        .request("POST", "/api/v1/auth/login")
        .await
        .insert_header(("X-Forwarded-For", format!("198.18.0.1, {addr}")))
        .insert_header(("Content-Type", "application/json"));
    app.send(req, Some(serde_json::to_vec(&body).expect("json")))
        .await
        .status
}

#[actix_web::test]
async fn strangers_cannot_lock_a_user_out_and_a_trusted_proxy_names_each_client() {
    let app = TestApp::spawn_configured(
        crate::helpers::TestDb::migrated(),
        mapce::db::PoolSettings {
            max_size: 4,
            ..mapce::db::PoolSettings::default()
        },
        |state| state.with_trusted_proxies(vec!["127.0.0.1".parse().expect("ip")]),
    );
    app.create_user("ana.target", Role::Officer, Some("AR-BUENOS-AIRES"));
    // Ana logs in from her office: a known address from then on.
    assert_eq!(
        login_from(&app, "198.51.100.2", "ana.target", TEST_PASSWORD).await,
        200
    );
    // A stranger guesses from one address: that address is stopped…
    for _ in 0..10 {
        assert_eq!(
            login_from(&app, "203.0.113.7", "ana.target", "guess guess guess").await,
            401
        );
    }
    assert_eq!(
        login_from(&app, "203.0.113.7", "ana.target", TEST_PASSWORD).await,
        429
    );
    // …Ana is not, even from a new address.
    assert_eq!(
        login_from(&app, "198.51.100.9", "ana.target", TEST_PASSWORD).await,
        200
    );
    // From many addresses: past 100 failures only known addresses may try.
    for i in 0..100 {
        let addr = format!("203.0.114.{}", i / 9);
        login_from(&app, &addr, "ana.target", "guess guess guess").await;
    }
    assert_eq!(
        login_from(&app, "192.0.2.77", "ana.target", TEST_PASSWORD).await,
        429
    );
    assert_eq!(
        login_from(&app, "198.51.100.2", "ana.target", TEST_PASSWORD).await,
        200
    );
    // The audit names the client behind the proxy, never the proxy itself.
    let mut conn = app.db.connect();
    use mapce::db::schema::audit_log;
    let addrs: Vec<Option<String>> = audit_log::table
        .filter(audit_log::action.eq("auth.login"))
        .select(audit_log::client_addr)
        .load(&mut conn)
        .expect("rows");
    assert!(addrs.iter().any(|a| a.as_deref() == Some("203.0.113.7")));
    assert!(!addrs.iter().any(|a| a.as_deref() == Some("127.0.0.1")));
}

#[actix_web::test]
async fn forwarded_addresses_from_an_untrusted_peer_are_ignored() {
    let app = TestApp::spawn().await;
    app.create_user("luis.direct", Role::Officer, Some("AR-BUENOS-AIRES"));
    assert_eq!(
        login_from(&app, "203.0.113.99", "luis.direct", TEST_PASSWORD).await,
        200
    );
    let mut conn = app.db.connect();
    use mapce::db::schema::audit_log;
    let addr: Option<String> = audit_log::table
        .filter(audit_log::action.eq("auth.login"))
        .select(audit_log::client_addr)
        .first(&mut conn)
        .expect("row");
    assert_eq!(addr.as_deref(), Some("127.0.0.1"));
}

#[actix_web::test]
async fn totp_secrets_stored_in_clear_by_older_versions_are_sealed_and_still_work() {
    let app = TestApp::spawn().await;
    let id = app.create_user("old.admin", Role::Admin, None);
    let secret = "JBSWY3DPEHPK3PXP";
    let mut conn = app.db.connect();
    diesel::update(mapce::db::schema::users::table.find(id))
        .set((
            mapce::db::schema::users::totp_secret.eq(Some(secret)),
            mapce::db::schema::users::totp_enabled.eq(true),
        ))
        .execute(&mut conn)
        .expect("an old row");
    assert_eq!(
        mapce::services::users::seal_clear_totp_secrets(&mut conn).expect("seal"),
        1
    );
    assert_eq!(
        mapce::services::users::seal_clear_totp_secrets(&mut conn).expect("again"),
        0,
        "sealed ones are left alone"
    );
    let challenge = app.login("old.admin", TEST_PASSWORD).await.json()["challenge_token"]
        .as_str()
        .expect("challenge")
        .to_owned();
    let done = app
        .call(
            "POST",
            "/api/v1/auth/login/second-factor",
            None,
            Some(&json!({ "challenge_token": challenge, "code": totp_code(secret, 0) })),
        )
        .await;
    assert_eq!(done.status, 200, "{:?}", done.json());
}
