//! Persons: validation, search-before-create, search and scope, history,
//! the duplicate queue, and merges that undo exactly.

use mapce::domain::role::Role;
use serde_json::{json, Value};

use crate::helpers::{Caller, Resp, TestApp};

async fn create(app: &TestApp, caller: &Caller, body: Value) -> Resp {
    app.call("POST", "/api/v1/persons", Some(&caller.token), Some(&body))
        .await
}

async fn patch(app: &TestApp, caller: &Caller, path: &str, if_match: &str, body: Value) -> Resp {
    let req = app
        .request("PATCH", path)
        .await
        .insert_header(("Authorization", format!("Bearer {}", caller.token)))
        .insert_header(("If-Match", if_match.to_owned()))
        .insert_header(("Content-Type", "application/json"));
    app.send(req, Some(body.to_string().into_bytes())).await
}

fn jose(dni: Option<&str>) -> Value {
    let mut body = json!({ "given_names": "José", "first_surname": "Pérez", "second_surname": "Quispe",
                           "birth_date": "1985-03-04", "sex": "male", "phone": "+39 333 123 4567" });
    if let Some(dni) = dni {
        body["documents"] = json!([{ "type": "dni", "number": dni }]);
    }
    body
}

#[actix_web::test]
async fn registration_validates_every_field_at_once() {
    let app = TestApp::spawn().await;
    let officer = app.caller("off.it", Role::Officer, Some("IT-MILAN"));
    let bad = json!({ "given_names": "  ", "first_surname": "P3rez", "birth_date": "2999-01-01", "sex": "male",
                      "email": "not-an-email", "phone": "12", "nationalities": ["XX"],
                      "documents": [{ "type": "dni", "number": "1234" }] });
    let problem = create(&app, &officer, bad)
        .await
        .assert_problem(422, "validation_failed");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for field in [
        "body.given_names",
        "body.first_surname",
        "body.birth_date",
        "body.email",
        "body.phone",
        "body.nationalities[0]",
        "body.documents[0].number",
    ] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
    let old = json!({ "given_names": "Ana", "first_surname": "Vieja", "birth_date": "1890-01-01", "sex": "female" });
    assert_eq!(
        create(&app, &officer, old)
            .await
            .assert_problem(422, "validation_failed")["errors"][0]["field"],
        "body.birth_date"
    );
    let sex = json!({ "given_names": "Ana", "first_surname": "X", "sex": "unknown" });
    create(&app, &officer, sex)
        .await
        .assert_problem(422, "validation_failed");

    let ok = create(&app, &officer, jose(Some("45.678.912"))).await;
    assert_eq!(ok.status, 201, "{:?}", ok.json());
    let body = ok.json();
    assert_eq!(body["documents"][0]["number"], "45678912");
    assert_eq!(body["documents"][0]["issuing_country"], "PE");
    assert_eq!(body["nationalities"], json!(["PE"]));
    assert_eq!(body["phone"], "+393331234567");
}

#[actix_web::test]
async fn the_same_dni_is_refused_and_spelling_variants_are_proposed_as_one_person() {
    let app = TestApp::spawn().await;
    let officer = app.caller("off.it", Role::Officer, Some("IT-MILAN"));
    let first = create(&app, &officer, jose(Some("45678912"))).await.json();
    let first_id = first["id"].as_str().expect("id").to_owned();

    // Same DNI, whatever the name: 409 with the existing person's id.
    let mut same_dni = json!({ "given_names": "Juan", "first_surname": "Otro", "sex": "male", "documents": [{ "type": "dni", "number": "45678912" }] });
    let problem = create(&app, &officer, same_dni.clone())
        .await
        .assert_problem(409, "already_exists");
    assert_eq!(problem["existing_id"], first_id.as_str());
    assert_eq!(problem["errors"][0]["field"], "body.documents[0].number");

    // New document, but the same person spelt differently.
    for variant in [
        json!({ "given_names": "JOSE", "first_surname": "PEREZ", "second_surname": "QUISPE", "birth_date": "1985-03-04", "sex": "male" }),
        json!({ "given_names": "Quispe Jose", "first_surname": "Perez", "birth_date": "1985-03-04", "sex": "male" }),
        json!({ "given_names": "Jose", "first_surname": "Peres", "second_surname": "Quispe", "birth_date": "1985-04-03", "sex": "male" }),
    ] {
        let problem = create(&app, &officer, variant.clone())
            .await
            .assert_problem(409, "possible_duplicates");
        let candidates = problem["candidates"].as_array().expect("candidates");
        assert_eq!(candidates[0]["id"], first_id.as_str(), "{variant}");
        assert_eq!(candidates[0]["masked_name"], "J*** P*** Q***");
        assert!(candidates[0]["reasons"]
            .as_array()
            .is_some_and(|r| !r.is_empty()));
    }
    // Confirmed as a different person: registered, and the pair queued.
    same_dni["documents"] = json!([]);
    let confirmed = json!({ "given_names": "José", "first_surname": "Pérez", "second_surname": "Quispe", "birth_date": "1985-03-04",
                            "sex": "male", "confirm_new_person": { "reason": "different father, checked by phone" } });
    let resp = create(&app, &officer, confirmed).await;
    assert_eq!(resp.status, 201, "{:?}", resp.json());
    let hq = app.caller("hq.one", Role::HqAnalyst, None);
    let queue = app
        .call("GET", "/api/v1/duplicates", Some(&hq.token), None)
        .await
        .json();
    assert_eq!(queue["total"], 1);
    assert_eq!(queue["items"][0]["source"], "intake");
}

#[actix_web::test]
async fn search_by_document_reaches_other_consulates_but_names_stay_local() {
    let app = TestApp::spawn().await;
    let milan = app.caller("off.it", Role::Officer, Some("IT-MILAN"));
    let madrid = app.caller("off.es", Role::Officer, Some("ES-MADRID"));
    let id = app.register_person(&milan, jose(Some("45678912"))).await;

    for q in [
        "perez",
        "P%C3%89REZ%20quispe",
        "quispe%20jose%20perez",
        "Perez%20Quispe%2C%20Jose",
    ] {
        let found = app
            .call(
                "GET",
                &format!("/api/v1/persons?q={q}"),
                Some(&milan.token),
                None,
            )
            .await
            .json();
        assert_eq!(found["total"], 1, "q={q}");
    }
    let elsewhere = app
        .call("GET", "/api/v1/persons?q=perez", Some(&madrid.token), None)
        .await
        .json();
    assert_eq!(
        elsewhere["total"], 0,
        "names do not browse other consulates"
    );
    let by_doc = app
        .call(
            "GET",
            "/api/v1/persons?document=45678912",
            Some(&madrid.token),
            None,
        )
        .await
        .json();
    assert_eq!(by_doc["total"], 1, "an exact document does");
    assert_eq!(by_doc["items"][0]["id"], id.to_string());
    app.call(
        "GET",
        &format!("/api/v1/persons/{id}"),
        Some(&madrid.token),
        None,
    )
    .await
    .assert_problem(404, "not_found");
    let hq = app.caller("hq.one", Role::HqAnalyst, None);
    assert_eq!(
        app.call(
            "GET",
            &format!("/api/v1/persons/{id}"),
            Some(&hq.token),
            None
        )
        .await
        .status,
        200
    );
    let planner = app.caller("plan.one", Role::Planner, None);
    app.call("GET", "/api/v1/persons?q=perez", Some(&planner.token), None)
        .await
        .assert_problem(403, "forbidden");
}

#[actix_web::test]
async fn corrections_need_the_current_etag_and_land_in_the_history() {
    let app = TestApp::spawn().await;
    let officer = app.caller("off.it", Role::Officer, Some("IT-MILAN"));
    let id = app.register_person(&officer, jose(None)).await;
    let path = format!("/api/v1/persons/{id}");
    let ok = patch(
        &app,
        &officer,
        &path,
        "\"1\"",
        json!({ "birth_date": "1985-03-05", "email": "jose@example.it" }),
    )
    .await;
    assert_eq!(ok.status, 200, "{:?}", ok.json());
    assert_eq!(ok.header("etag").as_deref(), Some("\"2\""));
    patch(&app, &officer, &path, "\"1\"", json!({ "sex": "female" }))
        .await
        .assert_problem(412, "stale_version");
    let problem = patch(&app, &officer, &path, "\"2\"", json!({ "email": "bad" }))
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "body.email");

    let history = app
        .call(
            "GET",
            &format!("{path}/history"),
            Some(&officer.token),
            None,
        )
        .await
        .json();
    let events = history["events"]["items"].as_array().expect("events");
    assert_eq!(events[0]["kind"], "person.registered");
    let update = events
        .iter()
        .find(|e| e["kind"] == "person.updated")
        .expect("update event");
    assert_eq!(
        update["payload"]["changes"]["birth_date"]["from"],
        "1985-03-04"
    );
    assert_eq!(
        update["payload"]["changes"]["birth_date"]["to"],
        "1985-03-05"
    );
    assert!(history["summary"]["first_contact"].is_string());
    assert_eq!(history["summary"]["events"], 2);

    let admin = app.caller("root.admin", Role::Admin, None);
    let audit = app
        .call(
            "GET",
            &format!("/api/v1/audit?subject={id}&action=person.history"),
            Some(&admin.token),
            None,
        )
        .await
        .json();
    assert_eq!(
        audit["total"], 1,
        "the history read is audited with the person as subject"
    );
}

async fn full_state(app: &TestApp, hq: &Caller, ids: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for id in ids {
        out.push(
            app.call(
                "GET",
                &format!("/api/v1/persons/{id}"),
                Some(&hq.token),
                None,
            )
            .await
            .json(),
        );
        let mut history = app
            .call(
                "GET",
                &format!("/api/v1/persons/{id}/history?limit=200"),
                Some(&hq.token),
                None,
            )
            .await
            .json();
        history["events"]["next"] = Value::Null;
        out.push(history);
    }
    out
}

#[actix_web::test]
async fn merge_then_undo_restores_everything_exactly() {
    let app = TestApp::spawn().await;
    let milan = app.caller("off.it", Role::Officer, Some("IT-MILAN"));
    let madrid = app.caller("off.es", Role::Officer, Some("ES-MADRID"));
    let hq = app.caller("hq.one", Role::HqAnalyst, None);
    let a = app
        .register_person(&milan, jose(Some("45678912")))
        .await
        .to_string();
    let b_body = json!({ "given_names": "Jose", "first_surname": "Perez", "second_surname": "Quispe", "sex": "male",
                         "email": "jose@example.es", "documents": [{ "type": "passport", "number": "AB123456", "issuing_country": "PER" }],
                         "confirm_new_person": { "reason": "could not check" } });
    let b = app.register_person(&madrid, b_body).await.to_string();
    let before = full_state(&app, &hq, &[a.clone(), b.clone()]).await;

    let merge = app
        .call(
            "POST",
            &format!("/api/v1/persons/{b}/merge"),
            Some(&hq.token),
            Some(&json!({ "into": a, "reason": "same passport holder" })),
        )
        .await;
    assert_eq!(merge.status, 200, "{:?}", merge.json());
    let merge_id = merge.json()["id"].as_str().expect("id").to_owned();
    let survivor = app
        .call(
            "GET",
            &format!("/api/v1/persons/{a}"),
            Some(&hq.token),
            None,
        )
        .await
        .json();
    assert_eq!(
        survivor["documents"].as_array().map(Vec::len),
        Some(2),
        "documents moved"
    );
    assert_eq!(
        survivor["email"], "jose@example.es",
        "contact the survivor lacked moved"
    );
    let tomb = app
        .call(
            "GET",
            &format!("/api/v1/persons/{b}"),
            Some(&hq.token),
            None,
        )
        .await
        .json();
    assert_eq!(
        tomb["merged_into"],
        a.as_str(),
        "the tombstone says where it went"
    );
    let survivor_id = mapce::db::Id(uuid::Uuid::parse_str(&a).expect("uuid"));
    let kinds = app.history_kinds(&hq, survivor_id, "").await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "person.registered").count(),
        2,
        "both histories: {kinds:?}"
    );
    assert!(kinds.iter().any(|k| k == "person.merged"));
    let pair = app
        .call(
            "GET",
            "/api/v1/duplicates?status=merged",
            Some(&hq.token),
            None,
        )
        .await
        .json();
    assert_eq!(pair["total"], 1);

    let undo = app
        .call(
            "POST",
            &format!("/api/v1/merges/{merge_id}/undo"),
            Some(&hq.token),
            None,
        )
        .await;
    assert_eq!(undo.status, 200, "{:?}", undo.json());
    let after = full_state(&app, &hq, &[a.clone(), b.clone()]).await;
    assert_eq!(before, after, "merge + undo is the identity");
    let open = app
        .call(
            "GET",
            "/api/v1/duplicates?status=open",
            Some(&hq.token),
            None,
        )
        .await
        .json();
    assert_eq!(open["total"], 1, "the pair is open again");
    app.call(
        "POST",
        &format!("/api/v1/merges/{merge_id}/undo"),
        Some(&hq.token),
        None,
    )
    .await
    .assert_problem(409, "already_undone");
}

#[actix_web::test]
async fn concurrent_merges_of_one_person_cannot_both_win() {
    let app = TestApp::spawn().await;
    let milan = app.caller("off.it", Role::Officer, Some("IT-MILAN"));
    let hq = app.caller("hq.one", Role::HqAnalyst, None);
    let dup = app.register_person(&milan, json!({ "given_names": "Ana", "first_surname": "Doble", "sex": "female", "documents": [{ "type": "dni", "number": "11111111" }] })).await;
    let x = app
        .register_person(
            &milan,
            json!({ "given_names": "Berta", "first_surname": "Uno", "sex": "female" }),
        )
        .await;
    let y = app
        .register_person(
            &milan,
            json!({ "given_names": "Carla", "first_surname": "Dos", "sex": "female" }),
        )
        .await;
    let into = |target: mapce::db::Id| json!({ "into": target.to_string(), "reason": "race" });
    let (r1, r2) = futures_util::future::join(
        app.call(
            "POST",
            &format!("/api/v1/persons/{dup}/merge"),
            Some(&hq.token),
            Some(&into(x)),
        ),
        app.call(
            "POST",
            &format!("/api/v1/persons/{dup}/merge"),
            Some(&hq.token),
            Some(&into(y)),
        ),
    )
    .await;
    let mut statuses = [r1.status, r2.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{:?} {:?}", r1.json(), r2.json());
    let by_doc = app
        .call(
            "GET",
            "/api/v1/persons?document=11111111",
            Some(&hq.token),
            None,
        )
        .await
        .json();
    assert_eq!(by_doc["total"], 1, "the document exists exactly once");
}

#[actix_web::test]
async fn a_pair_decided_not_duplicate_never_comes_back() {
    let app = TestApp::spawn().await;
    let milan = app.caller("off.it", Role::Officer, Some("IT-MILAN"));
    let hq = app.caller("hq.one", Role::HqAnalyst, None);
    app.register_person(&milan, jose(None)).await;
    // Registered twice by confirming: one open pair.
    let mut second = jose(None);
    second["confirm_new_person"] = json!({ "reason": "twins" });
    app.register_person(&milan, second).await;
    let queue = app
        .call("GET", "/api/v1/duplicates", Some(&hq.token), None)
        .await
        .json();
    let pair_id = queue["items"][0]["id"].as_str().expect("pair").to_owned();
    let decided = app
        .call(
            "POST",
            &format!("/api/v1/duplicates/{pair_id}/decision"),
            Some(&hq.token),
            Some(&json!({ "decision": "not_duplicate", "reason": "twins, checked" })),
        )
        .await;
    assert_eq!(decided.status, 200);
    assert_eq!(decided.json()["status"], "not_duplicate");

    // The whole-database scan finds the pair again but does not re-queue it.
    let url = match &app.db.url {
        mapce::db::DatabaseUrl::Postgres(u) => u.clone(),
        mapce::db::DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
    };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mapce"))
        .args(["dedup", "scan"])
        .env("MAPCE_DATABASE_URL", url)
        .env("RUST_LOG", "error")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 likely pairs, 0 newly queued"), "{text}");
    let open = app
        .call("GET", "/api/v1/duplicates", Some(&hq.token), None)
        .await
        .json();
    assert_eq!(open["total"], 0);
}

#[actix_web::test]
async fn the_scan_queues_likely_pairs_it_finds() {
    let app = TestApp::spawn().await;
    let milan = app.caller("off.it", Role::Officer, Some("IT-MILAN"));
    app.register_person(&milan, jose(None)).await;
    // Madrid registers a look-alike without a birth date but with the same phone.
    let madrid = app.caller("off.es", Role::Officer, Some("ES-MADRID"));
    let resp = create(&app, &madrid, json!({ "given_names": "Jose", "first_surname": "Perez", "sex": "male", "phone": "3331234567" })).await;
    assert_eq!(resp.status, 409, "proposed at intake: {:?}", resp.json());
    let mut conn = app.db.connect();
    let report = mapce::services::persons::scan(&mut conn).expect("scan");
    assert_eq!(
        report.queued, 0,
        "nothing to queue yet: the look-alike was not registered"
    );
    let confirmed = json!({ "given_names": "Jose", "first_surname": "Perez", "sex": "male", "phone": "3331234567", "confirm_new_person": { "reason": "unsure" } });
    assert_eq!(create(&app, &madrid, confirmed).await.status, 201);
    let report = mapce::services::persons::scan(&mut conn).expect("scan");
    assert_eq!(
        (report.persons, report.likely_pairs, report.queued),
        (2, 1, 0),
        "intake already queued it"
    );
}

#[actix_web::test]
async fn protected_persons_are_masked_outside_their_consulate_and_unmasked_only_with_a_reason() {
    let app = TestApp::spawn().await;
    let milan = app.caller("off.it", Role::Officer, Some("IT-MILAN"));
    let id = app.register_person(&milan, jose(Some("45678912"))).await;
    let case = json!({ "person_id": id, "channel": "phone", "requester": { "kind": "self" }, "summary": "x", "flags": ["trafficking_victim"] });
    assert_eq!(
        app.call("POST", "/api/v1/cases", Some(&milan.token), Some(&case))
            .await
            .status,
        201
    );

    let own = app
        .call(
            "GET",
            &format!("/api/v1/persons/{id}"),
            Some(&milan.token),
            None,
        )
        .await
        .json();
    assert_eq!(own["given_names"], "José");
    assert_eq!(own["masked"], false);

    let hq = app.caller("hq.one", Role::HqAnalyst, None);
    let seen = app
        .call(
            "GET",
            &format!("/api/v1/persons/{id}"),
            Some(&hq.token),
            None,
        )
        .await
        .json();
    assert_eq!(seen["masked"], true);
    assert_eq!(seen["given_names"], "J***");
    assert!(seen["birth_date"].is_null() && seen["phone"].is_null());
    assert_eq!(seen["documents"][0]["number"], "********");
    let madrid = app.caller("off.es", Role::Officer, Some("ES-MADRID"));
    let by_doc = app
        .call(
            "GET",
            "/api/v1/persons?document=45678912",
            Some(&madrid.token),
            None,
        )
        .await
        .json();
    assert_eq!(
        by_doc["items"][0]["masked"], true,
        "found by document, still masked"
    );

    app.call(
        "GET",
        &format!("/api/v1/persons/{id}?justification=short"),
        Some(&hq.token),
        None,
    )
    .await
    .assert_problem(400, "invalid_query");
    let reason = "court%20order%202026-117%20requires%20identification";
    let unmasked = app
        .call(
            "GET",
            &format!("/api/v1/persons/{id}?justification={reason}"),
            Some(&hq.token),
            None,
        )
        .await
        .json();
    assert_eq!(unmasked["given_names"], "José");
    assert_eq!(unmasked["masked"], false);
    let history = app
        .call(
            "GET",
            &format!("/api/v1/persons/{id}/history"),
            Some(&hq.token),
            None,
        )
        .await
        .json();
    assert!(history["events"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|e| e["payload"]["masked"] == true));

    let admin = app.caller("root.admin", Role::Admin, None);
    let audit = app
        .call(
            "GET",
            &format!("/api/v1/audit?action=person.unmask&subject={id}"),
            Some(&admin.token),
            None,
        )
        .await
        .json();
    assert_eq!(audit["total"], 1);
    assert_eq!(
        audit["items"][0]["details"]["justification"],
        "court order 2026-117 requires identification"
    );
    // At the owning consulate nothing is masked, so nothing is unmasked or audited.
    assert_eq!(
        app.call(
            "GET",
            &format!("/api/v1/persons/{id}?justification={reason}"),
            Some(&milan.token),
            None
        )
        .await
        .status,
        200
    );
    let audit = app
        .call(
            "GET",
            &format!("/api/v1/audit?action=person.unmask&subject={id}"),
            Some(&admin.token),
            None,
        )
        .await
        .json();
    assert_eq!(audit["total"], 1);
    let officer_try = app
        .call(
            "GET",
            &format!("/api/v1/persons?document=45678912&justification={reason}"),
            Some(&madrid.token),
            None,
        )
        .await;
    officer_try.assert_problem(400, "invalid_query");
}

#[actix_web::test]
async fn a_history_across_three_consulates_and_three_years_is_complete_and_in_order() {
    let app = TestApp::spawn().await;
    let milan = app.caller("off.it", Role::Officer, Some("IT-MILAN"));
    let madrid = app.caller("off.es", Role::Officer, Some("ES-MADRID"));
    let santiago = app.caller("off.cl", Role::Officer, Some("CL-SANTIAGO"));
    let id = app.register_person(&milan, jose(Some("45678912"))).await;
    app.take_on(&madrid, id).await;
    app.take_on(&santiago, id).await;
    let this_year = chrono::Datelike::year(&chrono::Utc::now().date_naive());
    // Recorded out of order: the newest first.
    for (officer, year, label) in [
        (&milan, this_year, "orientación legal"),
        (&santiago, this_year - 2, "visita a penal"),
        (&madrid, this_year - 1, "subvención económica"),
    ] {
        let date = if year == this_year {
            chrono::Utc::now().date_naive().to_string()
        } else {
            format!("{year}-06-15")
        };
        let body = json!({ "person_id": id, "channel": "phone", "requester": { "kind": "self" }, "summary": "x",
                           "attentions": [{ "attention_type": label, "date": date, "description": "x", "late_registration": year != this_year }] });
        let resp = app
            .call("POST", "/api/v1/cases", Some(&officer.token), Some(&body))
            .await;
        assert_eq!(resp.status, 201, "{:?}", resp.json());
    }
    let hq = app.caller("hq.one", Role::HqAnalyst, None);
    let history = app
        .call(
            "GET",
            &format!("/api/v1/persons/{id}/history?kind=attention.recorded"),
            Some(&hq.token),
            None,
        )
        .await
        .json();
    let items = history["events"]["items"].as_array().expect("items");
    let years: Vec<String> = items
        .iter()
        .map(|e| e["at"].as_str().expect("at")[..4].to_owned())
        .collect();
    assert_eq!(
        years,
        [
            (this_year - 2).to_string(),
            (this_year - 1).to_string(),
            this_year.to_string()
        ],
        "in time order"
    );
    let all = app
        .call(
            "GET",
            &format!("/api/v1/persons/{id}/history"),
            Some(&hq.token),
            None,
        )
        .await
        .json();
    assert_eq!(
        all["summary"]["consulates"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(
        all["summary"]["attentions_by_type"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert_eq!(
        all["events"]["total"], 7,
        "registration, three cases opened, three attentions"
    );
    let admin = app.caller("root.admin", Role::Admin, None);
    let audit = app
        .call(
            "GET",
            &format!("/api/v1/audit?action=person.history&subject={id}"),
            Some(&admin.token),
            None,
        )
        .await
        .json();
    assert_eq!(audit["total"], 2, "both reads audited");
}
