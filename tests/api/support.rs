//! The support-network directory (staleness, scope) and referrals (workflow,
//! case view, person history).

use diesel::prelude::*;
use mapce::db::schema::organisations;
use mapce::db::{Id, Ts};
use mapce::domain::role::Role;
use serde_json::{json, Value};

use crate::helpers::{Caller, TestApp};

pub async fn open_case(app: &TestApp, officer: &Caller, person: Id) -> String {
    let body = json!({ "person_id": person, "channel": "phone", "requester": { "kind": "self" }, "summary": "Needs support" });
    let resp = app
        .call("POST", "/api/v1/cases", Some(&officer.token), Some(&body))
        .await;
    assert_eq!(resp.status, 201, "{:?}", resp.json());
    resp.json()["id"].as_str().expect("case id").to_owned()
}

async fn create_org(app: &TestApp, caller: &Caller, body: Value) -> Value {
    let resp = app
        .call(
            "POST",
            "/api/v1/organisations",
            Some(&caller.token),
            Some(&body),
        )
        .await;
    assert_eq!(resp.status, 201, "{:?}", resp.json());
    resp.json()
}

fn backdate_verification(app: &TestApp, org: &str, months: u32) {
    let id = Id(uuid::Uuid::parse_str(org).expect("uuid"));
    let when = chrono::Utc::now()
        .checked_sub_months(chrono::Months::new(months))
        .expect("date");
    let mut conn = app.db.connect();
    diesel::update(organisations::table.find(id))
        .set(organisations::verified_at.eq(Some(Ts(when))))
        .execute(&mut conn)
        .expect("backdate");
}

#[actix_web::test]
async fn an_entry_unverified_for_twelve_months_is_flagged_stale_until_verified() {
    let app = TestApp::spawn().await;
    let sup = app.caller("sup.es", Role::Supervisor, Some("ES-MADRID"));
    let fresh = create_org(&app, &sup, json!({ "name": "Cáritas Madrid", "kind": "ngo", "country": "ES", "city": "Madrid", "attention_categories": ["humanitarian"], "languages": ["es"] })).await;
    let old = create_org(&app, &sup, json!({ "name": "Abogados Solidarios", "kind": "legal_aid", "country": "ESP", "attention_categories": ["legal", "detention"], "languages": ["es", "EN"] })).await;
    assert_eq!(fresh["stale"], false);
    assert_eq!(old["languages"], json!(["es", "en"]));
    backdate_verification(&app, old["id"].as_str().expect("id"), 13);
    backdate_verification(&app, fresh["id"].as_str().expect("id"), 11);

    let list = app
        .call("GET", "/api/v1/organisations", Some(&sup.token), None)
        .await
        .json();
    let stale_of = |name: &str| {
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|o| o["name"] == name)
            .map(|o| o["stale"].clone())
    };
    assert_eq!(stale_of("Abogados Solidarios"), Some(json!(true)));
    assert_eq!(stale_of("Cáritas Madrid"), Some(json!(false)));
    let stale_only = app
        .call(
            "GET",
            "/api/v1/organisations?stale=true",
            Some(&sup.token),
            None,
        )
        .await
        .json();
    assert_eq!(stale_only["total"], 1);
    assert_eq!(stale_only["items"][0]["name"], "Abogados Solidarios");
    let by_words = app
        .call(
            "GET",
            "/api/v1/organisations?q=caritas&category=humanitarian",
            Some(&sup.token),
            None,
        )
        .await
        .json();
    assert_eq!(by_words["total"], 1, "{by_words}");

    let path = format!(
        "/api/v1/organisations/{}/verification",
        old["id"].as_str().expect("id")
    );
    let verified = app.call("POST", &path, Some(&sup.token), None).await;
    assert_eq!(verified.status, 200, "{:?}", verified.json());
    assert_eq!(verified.json()["stale"], false);
    let stale_only = app
        .call(
            "GET",
            "/api/v1/organisations?stale=true",
            Some(&sup.token),
            None,
        )
        .await
        .json();
    assert_eq!(stale_only["total"], 0);
}

#[actix_web::test]
async fn officers_see_their_consulates_and_public_entries_and_supervisors_write_only_theirs() {
    let app = TestApp::spawn().await;
    let sup_es = app.caller("sup.es", Role::Supervisor, Some("ES-MADRID"));
    let sup_it = app.caller("sup.it", Role::Supervisor, Some("IT-MILAN"));
    let officer_it = app.caller("off.it", Role::Officer, Some("IT-MILAN"));
    let admin = app.caller("admin.org", Role::Admin, None);
    let private_es = create_org(
        &app,
        &sup_es,
        json!({ "name": "Albergue Madrid", "kind": "shelter", "country": "ES" }),
    )
    .await;
    create_org(&app, &admin, json!({ "name": "OIM", "kind": "international_organisation", "country": "CH", "public": true })).await;
    create_org(
        &app,
        &sup_it,
        json!({ "name": "Patronato Milano", "kind": "legal_aid", "country": "IT" }),
    )
    .await;

    let seen = app
        .call(
            "GET",
            "/api/v1/organisations",
            Some(&officer_it.token),
            None,
        )
        .await
        .json();
    let mut names: Vec<&str> = seen["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["OIM", "Patronato Milano"]);
    let id = private_es["id"].as_str().expect("id");
    app.call(
        "GET",
        &format!("/api/v1/organisations/{id}"),
        Some(&officer_it.token),
        None,
    )
    .await
    .assert_problem(404, "not_found");

    // a supervisor may not make an entry for another consulate
    let resp = app
        .call(
            "POST",
            "/api/v1/organisations",
            Some(&sup_it.token),
            Some(&json!({ "name": "X", "kind": "ngo", "country": "IT", "consulates": ["ES-MADRID"] })),
        )
        .await;
    resp.assert_problem(403, "forbidden");
    // bad input names the field
    let resp = app
        .call(
            "POST",
            "/api/v1/organisations",
            Some(&sup_it.token),
            Some(&json!({ "name": "X", "kind": "ngo", "country": "IT", "languages": ["español"], "email": "nope" })),
        )
        .await;
    let problem = resp.assert_problem(422, "validation_failed");
    assert_eq!(
        problem["errors"][0]["field"], "body.languages[0]",
        "{problem}"
    );

    // updates need If-Match and are audited with what changed
    let path = format!("/api/v1/organisations/{id}");
    let patch = json!({ "phone": "+34 91 000 0000" });
    app.call("PATCH", &path, Some(&sup_es.token), Some(&patch))
        .await
        .assert_problem(428, "precondition_required");
    let mut req = app
        .request("PATCH", &path)
        .await
        .insert_header(("Authorization", format!("Bearer {}", sup_es.token)))
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("If-Match", "\"1\""));
    let resp = app.send(req, Some(patch.to_string().into_bytes())).await;
    assert_eq!(resp.status, 200, "{:?}", resp.json());
    assert_eq!(resp.json()["phone"], "+34 91 000 0000");
    assert_eq!(resp.json()["version"], 2);
    req = app
        .request("PATCH", &path)
        .await
        .insert_header(("Authorization", format!("Bearer {}", sup_es.token)))
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("If-Match", "\"1\""));
    app.send(req, Some(patch.to_string().into_bytes()))
        .await
        .assert_problem(412, "stale_version");
}

#[actix_web::test]
async fn referrals_follow_their_workflow_and_show_on_the_case_and_in_the_history() {
    let app = TestApp::spawn().await;
    let sup = app.caller("sup.ar", Role::Supervisor, Some("AR-BUENOS-AIRES"));
    let officer = app.caller("off.ar", Role::Officer, Some("AR-BUENOS-AIRES"));
    let sup_cl = app.caller("sup.cl", Role::Supervisor, Some("CL-SANTIAGO"));
    let org = create_org(
        &app,
        &sup,
        json!({ "name": "Defensoría General", "kind": "legal_aid", "country": "AR" }),
    )
    .await;
    let foreign = create_org(
        &app,
        &sup_cl,
        json!({ "name": "Clínica Jurídica", "kind": "legal_aid", "country": "CL" }),
    )
    .await;
    let person = app
        .register_person(
            &officer,
            json!({ "given_names": "Ana", "first_surname": "Quispe", "sex": "female" }),
        )
        .await;
    let case = open_case(&app, &officer, person).await;
    let path = format!("/api/v1/cases/{case}/referrals");

    // an organisation that does not serve this consulate is refused by field
    let resp = app
        .call(
            "POST",
            &path,
            Some(&officer.token),
            Some(&json!({ "organisation_id": foreign["id"], "reason": "defensa" })),
        )
        .await;
    let problem = resp.assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "body.organisation_id");

    let resp = app
        .call(
            "POST",
            &path,
            Some(&officer.token),
            Some(&json!({ "organisation_id": org["id"], "reason": "Defensa penal gratuita" })),
        )
        .await;
    assert_eq!(resp.status, 201, "{:?}", resp.json());
    let referral = resp.json();
    assert_eq!(referral["status"], "sent");
    assert_eq!(referral["organisation"]["name"], "Defensoría General");
    let status_path = format!(
        "/api/v1/referrals/{}/status",
        referral["id"].as_str().expect("id")
    );

    app.call(
        "POST",
        &status_path,
        Some(&officer.token),
        Some(&json!({ "status": "completed", "outcome": "x" })),
    )
    .await
    .assert_problem(409, "invalid_transition");
    let accepted = app
        .call(
            "POST",
            &status_path,
            Some(&officer.token),
            Some(&json!({ "status": "accepted" })),
        )
        .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.json());
    assert!(accepted.json()["responded_on"].is_string());
    app.call(
        "POST",
        &status_path,
        Some(&officer.token),
        Some(&json!({ "status": "completed" })),
    )
    .await
    .assert_problem(422, "validation_failed");
    let done = app
        .call(
            "POST",
            &status_path,
            Some(&officer.token),
            Some(&json!({ "status": "completed", "outcome": "Lawyer assigned; hearing won" })),
        )
        .await;
    assert_eq!(done.status, 200, "{:?}", done.json());
    assert_eq!(done.json()["status"], "completed");
    // another consulate cannot touch it
    app.call(
        "POST",
        &status_path,
        Some(&sup_cl.token),
        Some(&json!({ "status": "declined" })),
    )
    .await
    .assert_problem(404, "not_found");

    let case_view = app
        .call(
            "GET",
            &format!("/api/v1/cases/{case}"),
            Some(&officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(
        case_view["referrals"][0]["status"], "completed",
        "{case_view}"
    );
    assert_eq!(
        case_view["referrals"][0]["outcome"],
        "Lawyer assigned; hearing won"
    );

    let kinds = app.history_kinds(&officer, person, "").await;
    let referral_events: Vec<&String> = kinds
        .iter()
        .filter(|k| k.starts_with("referral."))
        .collect();
    assert_eq!(
        referral_events,
        [
            "referral.sent",
            "referral.status_changed",
            "referral.status_changed"
        ],
        "{kinds:?}"
    );
    let listed = app
        .call(
            "GET",
            "/api/v1/referrals?status=completed",
            Some(&officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(listed["total"], 1);
    let other_view = app
        .call("GET", "/api/v1/referrals", Some(&sup_cl.token), None)
        .await
        .json();
    assert_eq!(other_view["total"], 0, "other consulates do not see them");
}
