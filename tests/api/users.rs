//! User administration and consulate writes.

use mapce::domain::role::Role;
use serde_json::json;

use crate::helpers::{Resp, TestApp};

async fn patch(
    app: &TestApp,
    path: &str,
    token: &str,
    if_match: Option<&str>,
    body: serde_json::Value,
) -> Resp {
    let mut req = app
        .request("PATCH", path)
        .await
        .insert_header(("Authorization", format!("Bearer {token}")))
        .insert_header(("Content-Type", "application/json"));
    if let Some(tag) = if_match {
        req = req.insert_header(("If-Match", tag.to_owned()));
    }
    app.send(req, Some(body.to_string().into_bytes())).await
}

#[actix_web::test]
async fn admins_create_users_with_validation_and_conflicts() {
    let app = TestApp::spawn().await;
    let admin = app.caller("root.admin", Role::Admin, None);
    let create = |body: serde_json::Value| {
        let token = admin.token.clone();
        let app = &app;
        async move {
            app.call("POST", "/api/v1/users", Some(&token), Some(&body))
                .await
        }
    };
    let ok = create(json!({ "username": "Ana.Quispe", "display_name": "  Ana   Quispe ", "role": "officer", "consulate": "ar-buenos-aires", "password": "a long enough passphrase" })).await;
    assert_eq!(ok.status, 201, "{:?}", ok.json());
    let body = ok.json();
    assert_eq!(body["username"], "ana.quispe");
    assert_eq!(body["display_name"], "Ana Quispe");
    assert_eq!(body["consulate_code"], "AR-BUENOS-AIRES");
    assert_eq!(ok.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(
        ok.header("location"),
        Some(format!(
            "/api/v1/users/{}",
            body["id"].as_str().unwrap_or_default()
        ))
    );

    let dup = create(json!({ "username": "ana.quispe", "display_name": "X", "role": "planner", "password": "a long enough passphrase" })).await;
    assert_eq!(
        dup.assert_problem(409, "already_exists")["errors"][0]["field"],
        "body.username"
    );

    for (body, field) in [
        (
            json!({ "username": "x", "display_name": "X", "role": "planner", "password": "a long enough passphrase" }),
            "body.username",
        ),
        (
            json!({ "username": "officer.one", "display_name": "X", "role": "officer", "password": "a long enough passphrase" }),
            "body.consulate",
        ),
        (
            json!({ "username": "planner.one", "display_name": "X", "role": "planner", "consulate": "AR-BUENOS-AIRES", "password": "a long enough passphrase" }),
            "body.consulate",
        ),
        (
            json!({ "username": "officer.two", "display_name": "X", "role": "officer", "consulate": "XX-NOWHERE", "password": "a long enough passphrase" }),
            "body.consulate",
        ),
        (
            json!({ "username": "planner.two", "display_name": "", "role": "planner", "password": "a long enough passphrase" }),
            "body.display_name",
        ),
        (
            json!({ "username": "planner.three", "display_name": "X", "role": "planner", "password": "qwertyuiop123" }),
            "body.password",
        ),
        (
            json!({ "username": "planner.four", "display_name": "X", "role": "chief", "password": "a long enough passphrase" }),
            "body.role",
        ),
    ] {
        let problem = create(body.clone())
            .await
            .assert_problem(422, "validation_failed");
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
}

#[actix_web::test]
async fn updates_need_a_current_etag_and_nobody_changes_their_own_role() {
    let app = TestApp::spawn().await;
    let admin = app.caller("root.admin", Role::Admin, None);
    let target = app.create_user("ana.quispe", Role::Officer, Some("AR-BUENOS-AIRES"));
    let path = format!("/api/v1/users/{target}");
    patch(
        &app,
        &path,
        &admin.token,
        None,
        json!({ "display_name": "Ana" }),
    )
    .await
    .assert_problem(428, "precondition_required");
    patch(
        &app,
        &path,
        &admin.token,
        Some("\"7\""),
        json!({ "display_name": "Ana" }),
    )
    .await
    .assert_problem(412, "stale_version");
    let ok = patch(
        &app,
        &path,
        &admin.token,
        Some("\"1\""),
        json!({ "display_name": "Ana Q." }),
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("etag").as_deref(), Some("\"2\""));
    // The same stale tag again loses nothing: 412 and the name stays.
    patch(
        &app,
        &path,
        &admin.token,
        Some("\"1\""),
        json!({ "display_name": "Other" }),
    )
    .await
    .assert_problem(412, "stale_version");
    assert_eq!(
        app.call("GET", &path, Some(&admin.token), None)
            .await
            .json()["display_name"],
        "Ana Q."
    );
    // Role and consulate must stay consistent.
    patch(
        &app,
        &path,
        &admin.token,
        Some("\"2\""),
        json!({ "role": "planner" }),
    )
    .await
    .assert_problem(422, "validation_failed");
    let moved = patch(
        &app,
        &path,
        &admin.token,
        Some("\"2\""),
        json!({ "role": "planner", "consulate": null }),
    )
    .await;
    assert_eq!(moved.status, 200, "{:?}", moved.json());
    assert!(moved.json()["consulate_id"].is_null());

    let own = format!("/api/v1/users/{}", admin.user_id);
    patch(
        &app,
        &own,
        &admin.token,
        Some("\"1\""),
        json!({ "role": "planner" }),
    )
    .await
    .assert_problem(403, "own_role");
    patch(
        &app,
        &own,
        &admin.token,
        Some("\"1\""),
        json!({ "active": false }),
    )
    .await
    .assert_problem(403, "own_account");
    patch(
        &app,
        &path,
        &admin.token,
        Some("\"3\""),
        json!({ "nickname": "x" }),
    )
    .await
    .assert_problem(422, "validation_failed");
}

#[actix_web::test]
async fn supervisors_read_only_their_consulates_users() {
    let app = TestApp::spawn().await;
    let supervisor = app.caller("sup.ar", Role::Supervisor, Some("AR-BUENOS-AIRES"));
    app.create_user("off.ar", Role::Officer, Some("AR-BUENOS-AIRES"));
    app.create_user("off.cl", Role::Officer, Some("CL-SANTIAGO"));
    let list = app
        .call("GET", "/api/v1/users", Some(&supervisor.token), None)
        .await
        .json();
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["off.ar", "sup.ar"]);
    let other = app
        .call(
            "GET",
            "/api/v1/users?consulate=CL-SANTIAGO",
            Some(&supervisor.token),
            None,
        )
        .await
        .json();
    assert_eq!(other["total"], 0);
}

#[actix_web::test]
async fn admins_reset_passwords_and_second_factors() {
    let app = TestApp::spawn().await;
    let admin = app.caller("root.admin", Role::Admin, None);
    let user = app.caller("ana.quispe", Role::Officer, Some("AR-BUENOS-AIRES"));
    let body = json!({ "new_password": "brand new passphrase 9", "reset_second_factor": true });
    let resp = app
        .call(
            "POST",
            &format!("/api/v1/users/{}/password", user.user_id),
            Some(&admin.token),
            Some(&body),
        )
        .await;
    assert_eq!(resp.status, 204);
    app.call("GET", "/api/v1/auth/me", Some(&user.token), None)
        .await
        .assert_problem(401, "session_ended");
    assert_eq!(
        app.login("ana.quispe", "brand new passphrase 9")
            .await
            .status,
        200
    );
}

#[actix_web::test]
async fn admins_add_and_correct_consulates() {
    let app = TestApp::spawn().await;
    let admin = app.caller("root.admin", Role::Admin, None);
    let body = json!({ "code": "es-valencia", "kind": "consulate_general", "country": "ESP", "city": "Valencia", "jurisdiction": ["AD"] });
    let created = app
        .call(
            "POST",
            "/api/v1/consulates",
            Some(&admin.token),
            Some(&body),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.json());
    let c = created.json();
    assert_eq!(c["code"], "ES-VALENCIA");
    assert_eq!(c["name_es"], "Consulado General del Perú en Valencia");
    assert_eq!(c["jurisdiction"], json!(["AD", "ES"]));
    app.call(
        "POST",
        "/api/v1/consulates",
        Some(&admin.token),
        Some(&body),
    )
    .await
    .assert_problem(409, "already_exists");
    let wrong_prefix =
        json!({ "code": "FR-VALENCIA", "kind": "consulate", "country": "ES", "city": "Valencia" });
    let p = app
        .call(
            "POST",
            "/api/v1/consulates",
            Some(&admin.token),
            Some(&wrong_prefix),
        )
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["field"], "body.code");
    let bad_country = json!({ "code": "ES-X", "kind": "consulate", "country": "ES", "city": "X", "jurisdiction": ["ZZ"] });
    let p = app
        .call(
            "POST",
            "/api/v1/consulates",
            Some(&admin.token),
            Some(&bad_country),
        )
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["field"], "body.jurisdiction[0]");

    let path = "/api/v1/consulates/ES-VALENCIA";
    let updated = patch(
        &app,
        path,
        &admin.token,
        Some("\"1\""),
        json!({ "active": false, "jurisdiction": [] }),
    )
    .await;
    assert_eq!(updated.status, 200, "{:?}", updated.json());
    assert_eq!(updated.json()["active"], false);
    assert_eq!(updated.json()["jurisdiction"], json!(["ES"]));
    patch(
        &app,
        path,
        &admin.token,
        Some("\"1\""),
        json!({ "active": true }),
    )
    .await
    .assert_problem(412, "stale_version");
    // Inactive consulates take no new users.
    let user = json!({ "username": "new.officer", "display_name": "X", "role": "officer", "consulate": "ES-VALENCIA", "password": "a long enough passphrase" });
    app.call("POST", "/api/v1/users", Some(&admin.token), Some(&user))
        .await
        .assert_problem(422, "validation_failed");
    let audit = app
        .call(
            "GET",
            "/api/v1/audit?resource_type=consulate",
            Some(&admin.token),
            None,
        )
        .await
        .json();
    assert_eq!(audit["total"], 2, "create and update audited: {audit}");
}
