//! Detention follow-up (the 24-hour first contact, visits, hearings, the
//! detainee list) and repatriation (steps, card, costs).

use chrono::{Duration, Utc};
use mapce::domain::role::Role;
use serde_json::{json, Value};

use crate::helpers::{Caller, Resp, TestApp};
use crate::support::open_case;

fn hours_ago(h: i64) -> String {
    (Utc::now() - Duration::hours(h)).to_rfc3339()
}

fn days_ago(d: i64) -> String {
    (Utc::now() - Duration::days(d)).date_naive().to_string()
}

async fn detainee_case(app: &TestApp, officer: &Caller, name: &str) -> String {
    let person = app
        .register_person(
            officer,
            json!({ "given_names": name, "first_surname": "Condori", "sex": "male" }),
        )
        .await;
    open_case(app, officer, person).await
}

async fn open_detention(app: &TestApp, officer: &Caller, case: &str, body: Value) -> Resp {
    app.call(
        "POST",
        &format!("/api/v1/cases/{case}/detention"),
        Some(&officer.token),
        Some(&body),
    )
    .await
}

#[actix_web::test]
async fn a_first_contact_thirty_hours_after_notification_is_a_breach() {
    let app = TestApp::spawn().await;
    let officer = app.caller("off.us", Role::Officer, Some("US-NUEVA-YORK"));
    let late = detainee_case(&app, &officer, "Late").await;
    let resp = open_detention(
        &app,
        &officer,
        &late,
        json!({
            "place": "Rikers Island", "arrested_on": days_ago(3),
            "notified_at": hours_ago(48), "first_contact_at": hours_ago(18),
        }),
    )
    .await;
    assert_eq!(resp.status, 201, "{:?}", resp.json());
    let d = resp.json();
    assert_eq!(d["first_contact"]["breach"], true, "{d}");
    assert_eq!(d["first_contact"]["hours_after_notification"], 30.0);

    let on_time = detainee_case(&app, &officer, "OnTime").await;
    let d = open_detention(
        &app,
        &officer,
        &on_time,
        json!({
            "place": "MDC Brooklyn", "arrested_on": days_ago(3),
            "notified_at": hours_ago(48), "first_contact_at": hours_ago(28),
        }),
    )
    .await
    .json();
    assert_eq!(
        d["first_contact"]["breach"], false,
        "20 hours is within the limit: {d}"
    );

    // no contact yet: a breach once 24 hours have passed, and the first
    // visit becomes the first contact
    let pending = detainee_case(&app, &officer, "Pending").await;
    let d = open_detention(
        &app,
        &officer,
        &pending,
        json!({
            "place": "Queens Detention", "arrested_on": days_ago(2), "notified_at": hours_ago(26),
        }),
    )
    .await
    .json();
    assert_eq!(d["first_contact"]["pending"], true);
    assert_eq!(d["first_contact"]["breach"], true);
    let visited = app
        .call("POST", &format!("/api/v1/cases/{pending}/detention/visits"), Some(&officer.token),
            Some(&json!({ "visited_at": hours_ago(1), "kind": "in_person", "notes": "In good health" })))
        .await;
    assert_eq!(visited.status, 201, "{:?}", visited.json());
    let v = visited.json();
    assert_eq!(v["first_contact"]["pending"], false);
    assert_eq!(
        v["first_contact"]["breach"], true,
        "25 hours after notification"
    );
    assert_eq!(v["visits"].as_array().map(Vec::len), Some(1));

    // the breach is in the person's history and a second record is refused
    open_detention(
        &app,
        &officer,
        &late,
        json!({ "place": "x", "arrested_on": days_ago(1), "notified_at": hours_ago(2) }),
    )
    .await
    .assert_problem(409, "detention_exists");
    // dates out of order are refused by field
    let odd = detainee_case(&app, &officer, "Odd").await;
    let problem = open_detention(
        &app,
        &officer,
        &odd,
        json!({ "place": "x", "arrested_on": days_ago(1), "notified_at": hours_ago(72) }),
    )
    .await
    .assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "body.notified_at");
}

#[actix_web::test]
async fn visits_hearings_and_the_detainee_list_keep_the_follow_up_going() {
    let app = TestApp::spawn().await;
    let officer = app.caller("off.us", Role::Officer, Some("US-NUEVA-YORK"));
    let other = app.caller("off.it", Role::Officer, Some("IT-MILAN"));
    let case = detainee_case(&app, &officer, "Visited").await;
    let never = detainee_case(&app, &officer, "Never").await;
    let next_visit = (Utc::now() + Duration::days(14)).date_naive().to_string();
    let d = open_detention(&app, &officer, &case, json!({
        "place": "Rikers Island", "arrested_on": days_ago(40), "notified_at": hours_ago(24 * 39),
        "first_contact_at": hours_ago(24 * 39 - 5), "legal_situation": "pre_trial_detention",
        "lawyer": { "kind": "public_defender", "name": "J. Smith" }, "next_visit_due": days_ago(2),
    })).await.json();
    let task = d["next_visit_task_id"]
        .as_str()
        .expect("visit task")
        .to_owned();
    open_detention(&app, &officer, &never, json!({ "place": "MDC", "arrested_on": days_ago(5), "notified_at": hours_ago(100), "first_contact_at": hours_ago(99) })).await;

    let overdue = app
        .call(
            "GET",
            "/api/v1/tasks?overdue=true",
            Some(&officer.token),
            None,
        )
        .await
        .json();
    assert!(
        overdue["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|t| t["id"] == task.as_str()),
        "{overdue}"
    );

    let v = app
        .call("POST", &format!("/api/v1/cases/{case}/detention/visits"), Some(&officer.token),
            Some(&json!({ "visited_at": hours_ago(24 * 10), "kind": "in_person", "next_visit_due": next_visit })))
        .await
        .json();
    assert_eq!(v["days_since_last_visit"], 10, "{v}");
    assert_eq!(v["next_visit_due"], next_visit.as_str());
    assert_ne!(
        v["next_visit_task_id"],
        task.as_str(),
        "the old task is done, a new one is due"
    );
    let h = app
        .call("POST", &format!("/api/v1/cases/{case}/detention/hearings"), Some(&officer.token),
            Some(&json!({ "held_on": days_ago(3), "court": "Bronx Criminal Court", "outcome": "Adjourned", "next_hearing_on": next_visit })))
        .await;
    assert_eq!(h.status, 201, "{:?}", h.json());
    assert_eq!(h.json()["hearings"][0]["outcome"], "Adjourned");

    let list = app
        .call("GET", "/api/v1/detentions", Some(&officer.token), None)
        .await
        .json();
    assert_eq!(list["total"], 2, "{list}");
    assert_eq!(
        list["items"][0]["name"], "Never Condori",
        "never visited comes first"
    );
    assert!(list["items"][0]["days_since_last_visit"].is_null());
    assert_eq!(list["items"][1]["days_since_last_visit"], 10);
    assert_eq!(list["items"][1]["days_detained"], 40);
    let elsewhere = app
        .call("GET", "/api/v1/detentions", Some(&other.token), None)
        .await
        .json();
    assert_eq!(elsewhere["total"], 0);

    // release ends the follow-up and clears the visit task
    let version = h.json()["version"].as_i64().expect("version");
    let req = app
        .request("PATCH", &format!("/api/v1/cases/{case}/detention"))
        .await
        .insert_header(("Authorization", format!("Bearer {}", officer.token)))
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("If-Match", format!("\"{version}\"")));
    let released = app
        .send(
            req,
            Some(
                json!({ "legal_situation": "released" })
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(released.status, 200, "{:?}", released.json());
    assert!(released.json()["released_on"].is_string());
    assert!(released.json()["next_visit_task_id"].is_null());
    let list = app
        .call("GET", "/api/v1/detentions", Some(&officer.token), None)
        .await
        .json();
    assert_eq!(list["total"], 1);
    let person = released.json()["case_id"].clone();
    let case_view = app
        .call(
            "GET",
            &format!("/api/v1/cases/{}", person.as_str().expect("id")),
            Some(&officer.token),
            None,
        )
        .await
        .json();
    let person_id = mapce::db::Id(
        uuid::Uuid::parse_str(case_view["person"]["id"].as_str().expect("id")).expect("uuid"),
    );
    let kinds = app.history_kinds(&officer, person_id, "").await;
    for k in [
        "detention.opened",
        "detention.visit",
        "detention.hearing",
        "detention.updated",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
}

#[actix_web::test]
async fn repatriation_steps_card_costs_and_completion() {
    let app = TestApp::spawn().await;
    let officer = app.caller("off.cl", Role::Officer, Some("CL-SANTIAGO"));
    let sup = app.caller("sup.cl", Role::Supervisor, Some("CL-SANTIAGO"));
    let planner = app.caller("plan", Role::Planner, None);
    let today = Utc::now().date_naive().to_string();
    app.call(
        "PUT",
        &format!("/api/v1/exchange-rates/CLP/{today}"),
        Some(&planner.token),
        Some(&json!({ "pen_per_unit": "0.0041", "usd_per_unit": "0.0011", "source": "SBS" })),
    )
    .await;
    let case = detainee_case(&app, &officer, "Retorno").await;

    let r = app
        .call(
            "POST",
            &format!("/api/v1/cases/{case}/repatriations"),
            Some(&officer.token),
            Some(&json!({ "kind": "return_assistance", "destination": "Tacna" })),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json());
    let r = r.json();
    let steps: Vec<&str> = r["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["step"].as_str())
        .collect();
    assert_eq!(steps, ["travel_document", "ticket", "escort", "arrival"]);
    let id = r["id"].as_str().expect("id").to_owned();

    // a cost linked to it, paid through the ledger
    let p = app
        .call("POST", &format!("/api/v1/cases/{case}/payments"), Some(&officer.token),
            Some(&json!({ "kind": "repatriation_cost", "amount": "250000", "currency": "CLP", "budget_line": "PP 0062", "description": "Bus ticket Santiago–Tacna", "repatriation_id": id })))
        .await;
    assert_eq!(p.status, 201, "{:?}", p.json());
    let pid = p.json()["id"].as_str().expect("id").to_owned();
    app.call(
        "POST",
        &format!("/api/v1/payments/{pid}/decision"),
        Some(&sup.token),
        Some(&json!({ "decision": "approve" })),
    )
    .await;
    app.call(
        "POST",
        &format!("/api/v1/payments/{pid}/paid"),
        Some(&officer.token),
        Some(&json!({ "reference": "B-1" })),
    )
    .await;

    let step = |name: &str, body: Value| {
        let app = &app;
        let officer = &officer;
        let path = format!("/api/v1/repatriations/{id}/steps/{name}");
        async move {
            app.call("POST", &path, Some(&officer.token), Some(&body))
                .await
        }
    };
    let s = step("travel_document", json!({ "status": "done" })).await;
    assert_eq!(s.status, 200, "{:?}", s.json());
    assert_eq!(s.json()["status"], "in_progress");
    step("escort", json!({ "status": "not_needed" })).await;
    step("arrival", json!({ "status": "not_needed" }))
        .await
        .assert_problem(422, "validation_failed");
    step("embalming", json!({ "status": "done" }))
        .await
        .assert_problem(404, "not_found");

    let patch = |body: Value, version: i64| {
        let app = &app;
        let officer = &officer;
        let path = format!("/api/v1/repatriations/{id}");
        async move {
            let req = app
                .request("PATCH", &path)
                .await
                .insert_header(("Authorization", format!("Bearer {}", officer.token)))
                .insert_header(("Content-Type", "application/json"))
                .insert_header(("If-Match", format!("\"{version}\"")));
            app.send(req, Some(body.to_string().into_bytes())).await
        }
    };
    let current = app
        .call(
            "GET",
            &format!("/api/v1/repatriations/{id}"),
            Some(&officer.token),
            None,
        )
        .await
        .json();
    let v = current["version"].as_i64().expect("version");
    assert_eq!(
        current["paid_pen"], "1025.00",
        "250000 CLP × 0.0041: {current}"
    );
    patch(json!({ "status": "completed", "return_date": today }), v)
        .await
        .assert_problem(409, "steps_pending");
    step("ticket", json!({ "status": "done" })).await;
    let arrived = step("arrival", json!({ "status": "done" })).await.json();
    let v = arrived["version"].as_i64().expect("version");
    patch(json!({ "status": "completed" }), v)
        .await
        .assert_problem(422, "validation_failed");
    let done = patch(
        json!({ "status": "completed", "return_date": today, "migrant_card_issued": true }),
        v,
    )
    .await;
    assert_eq!(done.status, 200, "{:?}", done.json());
    let done = done.json();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["migrant_card_issued"], true);
    assert_eq!(done["migrant_card_issued_on"], today.as_str());
    assert_eq!(done["costs"][0]["status"], "paid");

    // the card belongs to return assistance; remains have their own steps
    let remains = app
        .call(
            "POST",
            &format!("/api/v1/cases/{case}/repatriations"),
            Some(&officer.token),
            Some(&json!({ "kind": "remains_transfer", "destination": "Arequipa" })),
        )
        .await
        .json();
    let steps: Vec<&str> = remains["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["step"].as_str())
        .collect();
    assert_eq!(
        steps,
        [
            "death_certificate",
            "local_permits",
            "embalming",
            "transport",
            "reception_in_peru"
        ]
    );
    let req = app
        .request(
            "PATCH",
            &format!(
                "/api/v1/repatriations/{}",
                remains["id"].as_str().expect("id")
            ),
        )
        .await
        .insert_header(("Authorization", format!("Bearer {}", officer.token)))
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("If-Match", "\"1\""));
    let problem = app
        .send(
            req,
            Some(
                json!({ "migrant_card_issued": true })
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "body.migrant_card_issued");
    let listed = app
        .call(
            "GET",
            &format!("/api/v1/cases/{case}/repatriations"),
            Some(&officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
}
