//! Cases: intake, attentions, protocols and deadlines, the workflow,
//! concurrency (ETags) and retries (Idempotency-Key).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use mapce::db::schema::cases as cases_table;
use mapce::domain::role::Role;
use serde_json::{json, Value};

use crate::helpers::{Caller, Resp, TestApp};

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

async fn open_case(app: &TestApp, officer: &Caller, person: mapce::db::Id, extra: Value) -> Resp {
    let mut body = json!({ "person_id": person, "channel": "ventanilla del consulado", "requester": { "kind": "self" }, "summary": "Needs help" });
    if let Value::Object(m) = extra {
        for (k, v) in m {
            body[k] = v;
        }
    }
    app.call("POST", "/api/v1/cases", Some(&officer.token), Some(&body))
        .await
}

async fn with_headers(
    app: &TestApp,
    method: &str,
    path: &str,
    caller: &Caller,
    headers: &[(&str, String)],
    body: &Value,
) -> Resp {
    let mut req = app
        .request(method, path)
        .await
        .insert_header(("Authorization", format!("Bearer {}", caller.token)))
        .insert_header(("Content-Type", "application/json"));
    for (k, v) in headers {
        req = req.insert_header((*k, v.clone()));
    }
    app.send(req, Some(body.to_string().into_bytes())).await
}

struct Fixture {
    app: TestApp,
    officer: Caller,
    person: mapce::db::Id,
}

async fn fixture() -> Fixture {
    let app = TestApp::spawn().await;
    let officer = app.caller("off.it", Role::Officer, Some("IT-MILAN"));
    let person = app
        .register_person(
            &officer,
            json!({ "given_names": "Luz", "first_surname": "Mamani", "sex": "female" }),
        )
        .await;
    Fixture {
        app,
        officer,
        person,
    }
}

#[actix_web::test]
async fn intake_records_attentions_by_any_spelling_and_fills_the_history() {
    let Fixture {
        app,
        officer,
        person,
    } = fixture().await;
    let resp = open_case(&app, &officer, person, json!({ "attentions": [
        { "attention_type": "ASESORIA LEGAL.", "date": today(), "description": "Orientation on a rental dispute" },
        { "attention_type": "migration_orientation", "date": today(), "channel": "phone", "description": "Residence permit" },
    ] }))
    .await;
    assert_eq!(resp.status, 201, "{:?}", resp.json());
    let case = resp.json();
    assert_eq!(case["channel"], "consulate_window");
    assert_eq!(case["status"], "open");
    assert_eq!(case["attentions"].as_array().map(Vec::len), Some(2));
    assert_eq!(case["attentions"][1]["channel"], "phone");
    assert_eq!(case["country"], "IT", "the consulate's country by default");

    let history = app
        .call(
            "GET",
            &format!("/api/v1/persons/{person}/history"),
            Some(&officer.token),
            None,
        )
        .await
        .json();
    let kinds: Vec<&str> = history["events"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "person.registered",
            "case.opened",
            "attention.recorded",
            "attention.recorded"
        ]
    );
    assert_eq!(
        history["summary"]["attentions_by_type"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    let admin = app.caller("root.admin", Role::Admin, None);
    let subsidy = app
        .call(
            "GET",
            "/api/v1/attention-types/economic_subsidy",
            Some(&admin.token),
            None,
        )
        .await
        .json();
    let by_id = open_case(&app, &officer, person, json!({ "attentions": [{ "attention_type": subsidy["id"], "date": today(), "description": "by id" }] })).await;
    assert_eq!(
        by_id.json()["attentions"][0]["attention_type_id"],
        subsidy["id"],
        "a type can be named by its id"
    );
    let bad = open_case(&app, &officer, person, json!({ "channel": "pigeon" }))
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(bad["errors"][0]["field"], "body.channel");
    let future = open_case(&app, &officer, person, json!({ "attentions": [{ "attention_type": "legal_orientation", "date": "2999-01-01", "description": "x" }] })).await;
    assert_eq!(
        future.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "body.attentions[0].date"
    );
    let early = open_case(&app, &officer, person, json!({ "attentions": [{ "attention_type": "legal_orientation", "date": "2020-01-01", "description": "x" }] })).await;
    early.assert_problem(422, "validation_failed");
    let late = open_case(&app, &officer, person, json!({ "attentions": [{ "attention_type": "legal_orientation", "date": "2020-01-01", "description": "x", "late_registration": true }] })).await;
    assert_eq!(late.status, 201, "late registration allows an earlier date");
    let unknown = open_case(&app, &officer, person, json!({ "attentions": [{ "attention_type": "tarot reading", "date": today(), "description": "x" }] })).await;
    assert_eq!(
        unknown.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "body.attentions[0].attention_type"
    );
}

#[actix_web::test]
async fn a_detention_without_first_contact_in_24_hours_is_overdue() {
    let Fixture {
        app,
        officer,
        person,
    } = fixture().await;
    let case = open_case(&app, &officer, person, json!({ "flags": ["detained"], "attentions": [
        { "attention_type": "visita a penal", "date": today(), "description": "Arrest notified" } ] }))
    .await
    .json();
    let first = &case["steps"][0];
    assert_eq!(
        first["title_en"],
        "First consular contact with the detainee"
    );
    assert_eq!(first["overdue"], false);
    let opened: chrono::DateTime<chrono::Utc> = case["opened_at"]
        .as_str()
        .expect("opened")
        .parse()
        .expect("time");
    let due: chrono::DateTime<chrono::Utc> = first["due_at"]
        .as_str()
        .expect("due")
        .parse()
        .expect("time");
    assert_eq!(
        due - opened,
        chrono::Duration::hours(24),
        "due 24 hours after opening"
    );
    assert_eq!(case["deadline_breaches"], 0);
    // The case was opened 30 hours ago and nobody made contact.
    let id: uuid::Uuid = case["id"].as_str().expect("id").parse().expect("uuid");
    let mut conn = app.db.connect();
    let opened = mapce::db::Ts(chrono::Utc::now() - chrono::Duration::hours(30));
    diesel::update(cases_table::table.find(mapce::db::Id(id)))
        .set(cases_table::opened_at.eq(opened))
        .execute(&mut conn)
        .expect("backdate");
    diesel::update(
        mapce::db::schema::case_steps::table
            .filter(mapce::db::schema::case_steps::case_id.eq(mapce::db::Id(id))),
    )
    .set(
        mapce::db::schema::case_steps::due_at
            .eq(mapce::db::Ts(opened.0 + chrono::Duration::hours(24))),
    )
    .filter(mapce::db::schema::case_steps::position.eq(1))
    .execute(&mut conn)
    .expect("backdate step");
    let now = app
        .call(
            "GET",
            &format!("/api/v1/cases/{id}"),
            Some(&officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(now["deadline_breaches"], 1);
    assert_eq!(
        now["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["position"] == 1)
            .expect("step")["overdue"],
        true
    );
}

#[actix_web::test]
async fn closing_needs_required_steps_done_or_waived() {
    let Fixture {
        app,
        officer,
        person,
    } = fixture().await;
    let case = open_case(
        &app,
        &officer,
        person,
        json!({ "attentions": [
        { "attention_type": "detainee_visit", "date": today(), "description": "Visit" } ] }),
    )
    .await
    .json();
    let id = case["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/cases/{id}/transitions");
    let bad = with_headers(
        &app,
        "POST",
        &path,
        &officer,
        &[("If-Match", "\"1\"".into())],
        &json!({ "to": "closed", "outcome": "resolved" }),
    )
    .await;
    let problem = bad.assert_problem(409, "invalid_transition");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("in_progress")),
        "names the allowed: {problem}"
    );
    let progress = with_headers(
        &app,
        "POST",
        &path,
        &officer,
        &[("If-Match", "\"1\"".into())],
        &json!({ "to": "in_progress" }),
    )
    .await;
    assert_eq!(progress.status, 200, "{:?}", progress.json());
    let pending = with_headers(
        &app,
        "POST",
        &path,
        &officer,
        &[("If-Match", "\"2\"".into())],
        &json!({ "to": "closed", "outcome": "resolved" }),
    )
    .await;
    pending.assert_problem(409, "protocol_steps_pending");
    let no_outcome = with_headers(
        &app,
        "POST",
        &path,
        &officer,
        &[("If-Match", "\"2\"".into())],
        &json!({ "to": "closed" }),
    )
    .await;
    no_outcome.assert_problem(422, "validation_failed");

    let mut version = 2;
    let steps = progress.json()["steps"].as_array().expect("steps").clone();
    for step in steps.iter().filter(|s| s["required_to_close"] == true) {
        let step_path = format!(
            "/api/v1/cases/{id}/steps/{}",
            step["id"].as_str().expect("id")
        );
        let no_reason = with_headers(
            &app,
            "POST",
            &step_path,
            &officer,
            &[("If-Match", format!("\"{version}\""))],
            &json!({ "status": "waived" }),
        )
        .await;
        no_reason.assert_problem(422, "validation_failed");
        let waived = with_headers(
            &app,
            "POST",
            &step_path,
            &officer,
            &[("If-Match", format!("\"{version}\""))],
            &json!({ "status": "waived", "reason": "released before we could act" }),
        )
        .await;
        assert_eq!(waived.status, 200, "{:?}", waived.json());
        version += 1;
    }
    let closed = with_headers(
        &app,
        "POST",
        &path,
        &officer,
        &[("If-Match", format!("\"{version}\""))],
        &json!({ "to": "closed", "outcome": "resolved" }),
    )
    .await;
    assert_eq!(closed.status, 200, "{:?}", closed.json());
    assert_eq!(closed.json()["status"], "closed");
    assert_eq!(closed.json()["outcome"], "resolved");
    let reopen = with_headers(
        &app,
        "POST",
        &path,
        &officer,
        &[("If-Match", format!("\"{}\"", version + 1))],
        &json!({ "to": "reopened" }),
    )
    .await;
    reopen.assert_problem(422, "validation_failed");
}

#[actix_web::test]
async fn fifty_concurrent_updates_with_one_etag_make_one_change() {
    let Fixture {
        app,
        officer,
        person,
    } = fixture().await;
    let case = open_case(&app, &officer, person, json!({})).await.json();
    let id = case["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/cases/{id}/transitions");
    let headers = [("If-Match", "\"1\"".to_owned())];
    let body = json!({ "to": "in_progress" });
    let calls = (0..50).map(|_| with_headers(&app, "POST", &path, &officer, &headers, &body));
    let results = futures_util::future::join_all(calls).await;
    let ok = results.iter().filter(|r| r.status == 200).count();
    let stale = results.iter().filter(|r| r.status == 412).count();
    assert_eq!(
        (ok, stale),
        (1, 49),
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let history = app
        .call(
            "GET",
            &format!("/api/v1/persons/{person}/history?kind=case.status_changed"),
            Some(&officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(
        history["events"]["total"], 1,
        "the timeline shows one change"
    );
    let missing = with_headers(
        &app,
        "POST",
        &path,
        &officer,
        &[],
        &json!({ "to": "on_hold" }),
    )
    .await;
    missing.assert_problem(428, "precondition_required");
}

#[actix_web::test]
async fn twenty_concurrent_creations_with_one_key_make_one_case() {
    let Fixture {
        app,
        officer,
        person,
    } = fixture().await;
    let body = json!({ "person_id": person, "channel": "phone", "requester": { "kind": "relative", "name": "Rosa", "relationship": "madre" }, "summary": "Lost contact" });
    let headers = [("Idempotency-Key", "intake-42".to_owned())];
    let calls =
        (0..20).map(|_| with_headers(&app, "POST", "/api/v1/cases", &officer, &headers, &body));
    let results = futures_util::future::join_all(calls).await;
    assert!(
        results.iter().all(|r| [201, 409].contains(&r.status)),
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let list = app
        .call(
            "GET",
            &format!("/api/v1/cases?person={person}"),
            Some(&officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(list["total"], 1, "one case whatever the retries");
    // A retry after the first finished gets the first answer.
    let replay = with_headers(
        &app,
        "POST",
        "/api/v1/cases",
        &officer,
        &[("Idempotency-Key", "intake-42".into())],
        &body,
    )
    .await;
    assert_eq!(replay.status, 201);
    assert_eq!(
        replay.header("idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(replay.json()["id"], list["items"][0]["id"]);
    let mut other = body.clone();
    other["summary"] = json!("Something else");
    let reused = with_headers(
        &app,
        "POST",
        "/api/v1/cases",
        &officer,
        &[("Idempotency-Key", "intake-42".into())],
        &other,
    )
    .await;
    reused.assert_problem(422, "validation_failed");
}

#[actix_web::test]
async fn voided_attentions_stay_in_the_history() {
    let Fixture {
        app,
        officer,
        person,
    } = fixture().await;
    let case = open_case(&app, &officer, person, json!({ "attentions": [{ "attention_type": "legal_orientation", "date": today(), "description": "x" }] })).await.json();
    let id = case["id"].as_str().expect("id");
    let aid = case["attentions"][0]["id"].as_str().expect("attention");
    let path = format!("/api/v1/cases/{id}/attentions/{aid}/void");
    app.call(
        "POST",
        &path,
        Some(&officer.token),
        Some(&json!({ "reason": "" })),
    )
    .await
    .assert_problem(422, "validation_failed");
    let voided = app
        .call(
            "POST",
            &path,
            Some(&officer.token),
            Some(&json!({ "reason": "recorded on the wrong person" })),
        )
        .await;
    assert_eq!(voided.status, 200);
    assert_eq!(voided.json()["attentions"][0]["voided"], true);
    app.call(
        "POST",
        &path,
        Some(&officer.token),
        Some(&json!({ "reason": "again" })),
    )
    .await
    .assert_problem(409, "already_voided");
    let kinds = app.history_kinds(&officer, person, "").await;
    assert!(
        kinds.iter().any(|k| k == "attention.recorded")
            && kinds.iter().any(|k| k == "attention.voided"),
        "{kinds:?}"
    );
}

#[actix_web::test]
async fn protected_cases_hide_identity_outside_their_consulate() {
    let Fixture {
        app,
        officer,
        person,
    } = fixture().await;
    let case = open_case(&app, &officer, person, json!({ "flags": ["gender_violence_victim"], "requester": { "kind": "self", "contact": "+39 333 000" } })).await.json();
    assert_eq!(case["protected"], true);
    assert_eq!(case["person"]["name"], "Luz Mamani");
    let id = case["id"].as_str().expect("id");
    let hq = app.caller("hq.one", Role::HqAnalyst, None);
    let seen = app
        .call("GET", &format!("/api/v1/cases/{id}"), Some(&hq.token), None)
        .await
        .json();
    assert_eq!(seen["person"]["name"], "L*** M***");
    assert!(seen["requester"].is_null());
    let typed = open_case(&app, &officer, person, json!({ "attentions": [{ "attention_type": "trata de personas", "date": today(), "description": "x" }] })).await.json();
    assert_eq!(
        typed["protected"], true,
        "a protected attention type protects the case"
    );
}

#[actix_web::test]
async fn merging_attention_types_recodes_their_attentions() {
    let Fixture {
        app,
        officer,
        person,
    } = fixture().await;
    let admin = app.caller("root.admin", Role::Admin, None);
    let dup = json!({ "code": "apoyo_economico_x", "name_es": "Apoyo económico X", "name_en": "Economic support X", "category": "economic_aid", "kind": "humanitarian",
                      "description_es": "d", "description_en": "d", "who_may_ask_es": "w", "who_may_ask_en": "w", "requirements_es": "r", "requirements_en": "r" });
    assert_eq!(
        app.call(
            "POST",
            "/api/v1/attention-types",
            Some(&admin.token),
            Some(&dup)
        )
        .await
        .status,
        201
    );
    let case = open_case(&app, &officer, person, json!({ "attentions": [{ "attention_type": "apoyo economico x", "date": today(), "description": "x" }] })).await.json();
    let merge = app
        .call(
            "POST",
            "/api/v1/attention-types/apoyo_economico_x/merge",
            Some(&admin.token),
            Some(&json!({ "into": "economic_subsidy", "reason": "duplicate label" })),
        )
        .await
        .json();
    assert_eq!(merge["attentions_moved"], 1);
    let survivor = app
        .call(
            "GET",
            "/api/v1/attention-types/economic_subsidy",
            Some(&admin.token),
            None,
        )
        .await
        .json();
    let after = app
        .call(
            "GET",
            &format!("/api/v1/cases/{}", case["id"].as_str().expect("id")),
            Some(&officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(
        after["attentions"][0]["attention_type_id"], survivor["id"],
        "the survivor carries the attention"
    );
    let by_type = app
        .call(
            "GET",
            "/api/v1/cases?attention_type=apoyo%20economico%20x",
            Some(&officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(by_type["total"], 1, "old spellings find the recoded cases");
}

#[actix_web::test]
async fn another_consulate_takes_on_a_person_only_through_a_granted_request() {
    let Fixture {
        app,
        officer,
        person,
    } = fixture().await;
    let madrid = app.caller("off.es", Role::Officer, Some("ES-MADRID"));
    app.call(
        "GET",
        &format!("/api/v1/persons/{person}"),
        Some(&madrid.token),
        None,
    )
    .await
    .assert_problem(404, "not_found");
    // A case is no way in: the person reads as absent, exactly like an id
    // that does not exist.
    let pretext = open_case(&app, &madrid, person, json!({ "flags": ["minor"] }))
        .await
        .assert_problem(422, "validation_failed");
    let missing = open_case(&app, &madrid, mapce::db::Id::new(), json!({}))
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(pretext["errors"], missing["errors"]);
    // Asked and granted by a supervisor of the consulate that holds her.
    let asked = app
        .call(
            "POST",
            &format!("/api/v1/persons/{person}/access-requests"),
            Some(&madrid.token),
            Some(&json!({ "reason": "moved to Madrid, asks for a new passport" })),
        )
        .await;
    assert_eq!(asked.status, 201, "{:?}", asked.json());
    let request = asked.json()["id"].as_str().expect("id").to_owned();
    let decide = |who: &Caller| {
        let path = format!("/api/v1/access-requests/{request}/decision");
        let token = who.token.clone();
        let app = &app;
        async move {
            app.call(
                "POST",
                &path,
                Some(&token),
                Some(&json!({ "decision": "grant", "reason": "she wrote to us about the move" })),
            )
            .await
        }
    };
    let madrid_sup = app.caller("sup.es", Role::Supervisor, Some("ES-MADRID"));
    decide(&madrid_sup).await.assert_problem(404, "not_found");
    let milan_sup = app.caller("sup.it", Role::Supervisor, Some("IT-MILAN"));
    let queue = app
        .call(
            "GET",
            "/api/v1/access-requests",
            Some(&milan_sup.token),
            None,
        )
        .await
        .json();
    assert_eq!(
        queue["total"], 1,
        "the holder's supervisor sees it: {queue}"
    );
    let granted = decide(&milan_sup).await;
    assert_eq!(granted.status, 200, "{:?}", granted.json());
    assert_eq!(granted.json()["status"], "granted");
    decide(&milan_sup)
        .await
        .assert_problem(409, "already_decided");

    let person_now = app
        .call(
            "GET",
            &format!("/api/v1/persons/{person}"),
            Some(&madrid.token),
            None,
        )
        .await;
    assert_eq!(person_now.status, 200);
    assert_eq!(person_now.json()["view"], "full");
    let case = open_case(&app, &madrid, person, json!({})).await;
    assert_eq!(case.status, 201, "{:?}", case.json());
    let milan_case = app
        .call(
            "GET",
            &format!("/api/v1/cases/{}", case.json()["id"].as_str().expect("id")),
            Some(&officer.token),
            None,
        )
        .await;
    milan_case.assert_problem(404, "not_found");
    let admin = app.caller("root.admin", Role::Admin, None);
    let audit = app
        .call(
            "GET",
            &format!("/api/v1/audit?subject={person}&action=person_access.decision"),
            Some(&admin.token),
            None,
        )
        .await
        .json();
    assert_eq!(audit["total"], 1, "the grant is audited: {audit}");
}

#[actix_web::test]
async fn corrections_and_reassignment_are_kept_field_by_field() {
    let Fixture {
        app,
        officer,
        person,
    } = fixture().await;
    let colleague = app.caller("off.it.2", Role::Officer, Some("IT-MILAN"));
    let case = open_case(&app, &officer, person, json!({})).await.json();
    let id = case["id"].as_str().expect("id");
    let path = format!("/api/v1/cases/{id}");
    let moved = with_headers(
        &app,
        "PATCH",
        &path,
        &officer,
        &[("If-Match", "\"1\"".into())],
        &json!({ "assigned_officer_id": colleague.user_id }),
    )
    .await;
    assert_eq!(moved.status, 200, "{:?}", moved.json());
    let flags = with_headers(
        &app,
        "PATCH",
        &path,
        &officer,
        &[("If-Match", "\"2\"".into())],
        &json!({ "flags": ["minor"], "summary": "A minor alone" }),
    )
    .await
    .json();
    assert_eq!(flags["protected"], true);
    let cleared = with_headers(
        &app,
        "PATCH",
        &path,
        &officer,
        &[("If-Match", "\"3\"".into())],
        &json!({ "flags": [] }),
    )
    .await
    .json();
    assert_eq!(
        cleared["protected"], true,
        "protection is never silently cleared"
    );
    let madrid = app.caller("off.es", Role::Officer, Some("ES-MADRID"));
    let foreign = with_headers(
        &app,
        "PATCH",
        &path,
        &officer,
        &[("If-Match", "\"4\"".into())],
        &json!({ "assigned_officer_id": madrid.user_id }),
    )
    .await;
    foreign.assert_problem(422, "validation_failed");
    let history = app
        .call(
            "GET",
            &format!("/api/v1/persons/{person}/history"),
            Some(&officer.token),
            None,
        )
        .await
        .json();
    let events = history["events"]["items"].as_array().expect("items");
    let reassigned = events
        .iter()
        .find(|e| e["kind"] == "case.reassigned")
        .expect("reassignment event");
    assert_eq!(
        reassigned["payload"]["changes"]["assigned_officer_id"]["to"],
        colleague.user_id.to_string()
    );
    let updated = events
        .iter()
        .find(|e| e["kind"] == "case.updated")
        .expect("update event");
    assert_eq!(
        updated["payload"]["changes"]["summary"]["from"],
        "Needs help"
    );
    assert_eq!(
        updated["payload"]["changes"]["summary"]["to"],
        "A minor alone"
    );
}

#[actix_web::test]
async fn tasks_come_from_protocols_and_show_up_overdue() {
    let Fixture {
        app,
        officer,
        person,
    } = fixture().await;
    let case = open_case(&app, &officer, person, json!({ "attentions": [{ "attention_type": "detainee_visit", "date": today(), "description": "x" }] })).await.json();
    let id = case["id"].as_str().expect("id");
    let tasks = app
        .call(
            "GET",
            &format!("/api/v1/tasks?case={id}"),
            Some(&officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(
        tasks["total"], 2,
        "the two deadline steps of the detention protocol: {tasks}"
    );
    let manual = app
        .call(
            "POST",
            &format!("/api/v1/cases/{id}/tasks"),
            Some(&officer.token),
            Some(&json!({ "title": "Call the family", "due_at": "2020-01-01T00:00:00Z" })),
        )
        .await;
    assert_eq!(manual.status, 201, "{:?}", manual.json());
    let overdue = app
        .call(
            "GET",
            "/api/v1/tasks?overdue=true",
            Some(&officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(overdue["total"], 1);
    assert_eq!(overdue["items"][0]["title"], "Call the family");
    let by_officer = app
        .call(
            "GET",
            &format!("/api/v1/tasks?overdue=true&officer={}", officer.user_id),
            Some(&officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(by_officer["total"], 1, "assigned to the case's officer");
    let task_id = manual.json()["id"].as_str().expect("task").to_owned();
    assert_eq!(
        app.call(
            "POST",
            &format!("/api/v1/tasks/{task_id}/done"),
            Some(&officer.token),
            None
        )
        .await
        .status,
        200
    );
    app.call(
        "POST",
        &format!("/api/v1/tasks/{task_id}/done"),
        Some(&officer.token),
        None,
    )
    .await
    .assert_problem(409, "already_done");
    let madrid = app.caller("off.es", Role::Officer, Some("ES-MADRID"));
    let none = app
        .call("GET", "/api/v1/tasks", Some(&madrid.token), None)
        .await
        .json();
    assert_eq!(none["total"], 0, "tasks stay with their consulate");
}

#[actix_web::test]
async fn a_transfer_moves_access_when_the_receiving_supervisor_accepts() {
    let Fixture {
        app,
        officer,
        person,
    } = fixture().await;
    let rome_officer = app.caller("off.rm", Role::Officer, Some("IT-ROMA"));
    let rome_supervisor = app.caller("sup.rm", Role::Supervisor, Some("IT-ROMA"));
    let case = open_case(&app, &officer, person, json!({})).await.json();
    let id = case["id"].as_str().expect("id");
    let asked = app
        .call(
            "POST",
            &format!("/api/v1/cases/{id}/transfers"),
            Some(&officer.token),
            Some(&json!({ "to": "IT-ROMA", "reason": "moved to Rome" })),
        )
        .await;
    assert_eq!(asked.status, 201, "{:?}", asked.json());
    app.call(
        "POST",
        &format!("/api/v1/cases/{id}/transfers"),
        Some(&officer.token),
        Some(&json!({ "to": "IT-ROMA", "reason": "again" })),
    )
    .await
    .assert_problem(409, "transfer_pending");
    let transfer = asked.json()["id"].as_str().expect("transfer").to_owned();
    // Rome cannot see the case before accepting; its officer cannot accept.
    app.call(
        "GET",
        &format!("/api/v1/cases/{id}"),
        Some(&rome_officer.token),
        None,
    )
    .await
    .assert_problem(404, "not_found");
    app.call(
        "POST",
        &format!("/api/v1/transfers/{transfer}/decision"),
        Some(&rome_officer.token),
        Some(&json!({ "decision": "accept" })),
    )
    .await
    .assert_problem(403, "forbidden");
    let incoming = app
        .call(
            "GET",
            "/api/v1/transfers",
            Some(&rome_supervisor.token),
            None,
        )
        .await
        .json();
    assert_eq!(incoming["total"], 1);
    let accepted = app
        .call(
            "POST",
            &format!("/api/v1/transfers/{transfer}/decision"),
            Some(&rome_supervisor.token),
            Some(&json!({ "decision": "accept" })),
        )
        .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.json());
    assert_eq!(
        app.call(
            "GET",
            &format!("/api/v1/cases/{id}"),
            Some(&rome_officer.token),
            None
        )
        .await
        .status,
        200
    );
    app.call(
        "GET",
        &format!("/api/v1/cases/{id}"),
        Some(&officer.token),
        None,
    )
    .await
    .assert_problem(404, "not_found");
    let history = app
        .call(
            "GET",
            &format!("/api/v1/persons/{person}/history?kind=case.transferred"),
            Some(&rome_officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(history["events"]["total"], 1);
}

#[actix_web::test]
async fn overdue_cases_are_the_ones_with_a_step_or_task_past_its_deadline() {
    let Fixture {
        app,
        officer,
        person,
    } = fixture().await;
    let late = open_case(&app, &officer, person, json!({})).await.json();
    let on_time = open_case(&app, &officer, person, json!({})).await.json();
    for (case, due) in [
        (&late, "2020-01-01T00:00:00Z"),
        (&on_time, "2099-01-01T00:00:00Z"),
    ] {
        let task = app
            .call(
                "POST",
                &format!("/api/v1/cases/{}/tasks", case["id"].as_str().expect("id")),
                Some(&officer.token),
                Some(&json!({ "title": "Call the family", "due_at": due })),
            )
            .await;
        assert_eq!(task.status, 201, "{:?}", task.json());
    }
    let overdue = app
        .call(
            "GET",
            "/api/v1/cases?overdue=true",
            Some(&officer.token),
            None,
        )
        .await;
    assert_eq!(overdue.status, 200, "{:?}", overdue.json());
    let overdue = overdue.json();
    assert_eq!(overdue["total"], 1, "{overdue}");
    assert_eq!(overdue["items"][0]["id"], late["id"]);
    let all = app
        .call(
            "GET",
            "/api/v1/cases?overdue=false",
            Some(&officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(all["total"], 2);
}

/// A status the workflow does not know (a hand-edited or damaged database)
/// is an error, never read as some default: the transition fails, nothing
/// is written, and reading the case fails the same way.
#[actix_web::test]
async fn an_unknown_stored_status_is_an_error_not_open() {
    let Fixture {
        app,
        officer,
        person,
    } = fixture().await;
    let case = open_case(&app, &officer, person, json!({})).await.json();
    let id: uuid::Uuid = case["id"].as_str().expect("id").parse().expect("uuid");
    let mut conn = app.db.connect();
    // The column is CHECK-constrained: step around it the way a damaged
    // database would have.
    match &mut conn {
        mapce::db::DbConn::Sqlite(c) => c
            .batch_execute("PRAGMA ignore_check_constraints = ON;")
            .expect("pragma"),
        mapce::db::DbConn::Pg(c) => c
            .batch_execute(
                "DO $$ DECLARE n text; BEGIN
                   FOR n IN SELECT conname FROM pg_constraint
                            WHERE conrelid = 'cases'::regclass AND contype = 'c'
                              AND pg_get_constraintdef(oid) LIKE '%status%' LOOP
                     EXECUTE 'ALTER TABLE cases DROP CONSTRAINT ' || quote_ident(n);
                   END LOOP; END $$;",
            )
            .expect("drop check"),
    }
    diesel::update(cases_table::table.find(mapce::db::Id(id)))
        .set(cases_table::status.eq("archived"))
        .execute(&mut conn)
        .expect("damage");
    // As `open`, this transition would be allowed.
    let moved = with_headers(
        &app,
        "POST",
        &format!("/api/v1/cases/{id}/transitions"),
        &officer,
        &[("If-Match", "\"1\"".into())],
        &json!({ "to": "in_progress" }),
    )
    .await;
    moved.assert_problem(500, "internal_error");
    let status: String = cases_table::table
        .find(mapce::db::Id(id))
        .select(cases_table::status)
        .first(&mut conn)
        .expect("read");
    assert_eq!(status, "archived", "nothing was written");
    app.call(
        "GET",
        &format!("/api/v1/cases/{id}"),
        Some(&officer.token),
        None,
    )
    .await
    .assert_problem(500, "internal_error");
}
