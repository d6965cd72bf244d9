//! The financial assistance ledger: four eyes, immutability of paid
//! entries, exact amounts and totals.

use mapce::domain::role::Role;
use serde_json::{json, Value};

use crate::helpers::{Caller, Resp, TestApp};
use crate::support::open_case;

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

async fn put_rate(app: &TestApp, planner: &Caller, currency: &str, pen: &str, usd: &str) {
    let resp = app
        .call(
            "PUT",
            &format!("/api/v1/exchange-rates/{currency}/{}", today()),
            Some(&planner.token),
            Some(&json!({ "pen_per_unit": pen, "usd_per_unit": usd, "source": "SBS" })),
        )
        .await;
    assert_eq!(resp.status, 200, "{:?}", resp.json());
}

struct Ledger {
    app: TestApp,
    officer: Caller,
    sup_a: Caller,
    sup_b: Caller,
    case: String,
}

async fn ledger() -> Ledger {
    let app = TestApp::spawn().await;
    let planner = app.caller("plan", Role::Planner, None);
    put_rate(&app, &planner, "EUR", "4.0512", "1.0811").await;
    put_rate(&app, &planner, "PEN", "1", "0.2667").await;
    put_rate(&app, &planner, "USD", "3.7493", "1").await;
    put_rate(&app, &planner, "JPY", "0.025137", "0.006702").await;
    put_rate(&app, &planner, "KWD", "12.2", "3.25").await;
    let officer = app.caller("off.es", Role::Officer, Some("ES-MADRID"));
    let sup_a = app.caller("sup.a", Role::Supervisor, Some("ES-MADRID"));
    let sup_b = app.caller("sup.b", Role::Supervisor, Some("ES-MADRID"));
    let person = app
        .register_person(
            &officer,
            json!({ "given_names": "Rosa", "first_surname": "Huamán", "sex": "female" }),
        )
        .await;
    let case = open_case(&app, &officer, person).await;
    Ledger {
        app,
        officer,
        sup_a,
        sup_b,
        case,
    }
}

async fn request(l: &Ledger, caller: &Caller, body: Value) -> Resp {
    l.app
        .call(
            "POST",
            &format!("/api/v1/cases/{}/payments", l.case),
            Some(&caller.token),
            Some(&body),
        )
        .await
}

fn subsidy(amount: Value, currency: &str) -> Value {
    json!({ "kind": "economic_subsidy", "amount": amount, "currency": currency, "budget_line": "PP 0062", "description": "Subsidy for rent" })
}

async fn post(l: &Ledger, caller: &Caller, path: &str, body: Value) -> Resp {
    l.app
        .call("POST", path, Some(&caller.token), Some(&body))
        .await
}

#[actix_web::test]
async fn the_approver_is_another_supervisor_of_the_consulate_never_the_requester() {
    let l = ledger().await;
    let own = request(&l, &l.sup_a, subsidy(json!("250.00"), "EUR")).await;
    assert_eq!(own.status, 201, "{:?}", own.json());
    let own = own.json();
    assert_eq!(own["status"], "requested");
    assert_eq!(own["amount_pen"], "1012.80", "250 × 4.0512");
    let decision = format!(
        "/api/v1/payments/{}/decision",
        own["id"].as_str().expect("id")
    );

    post(&l, &l.sup_a, &decision, json!({ "decision": "approve" }))
        .await
        .assert_problem(403, "four_eyes");
    post(&l, &l.officer, &decision, json!({ "decision": "approve" }))
        .await
        .assert_problem(403, "forbidden");
    let other_consulate = l.app.caller("sup.it", Role::Supervisor, Some("IT-MILAN"));
    post(
        &l,
        &other_consulate,
        &decision,
        json!({ "decision": "approve" }),
    )
    .await
    .assert_problem(404, "not_found");
    let approved = post(&l, &l.sup_b, &decision, json!({ "decision": "approve" })).await;
    assert_eq!(approved.status, 200, "{:?}", approved.json());
    assert_eq!(approved.json()["status"], "approved");
    assert_eq!(approved.json()["decided_by"], json!(l.sup_b.user_id));
    post(
        &l,
        &l.sup_b,
        &decision,
        json!({ "decision": "reject", "note": "late" }),
    )
    .await
    .assert_problem(409, "payment_decided");

    // a rejection needs a reason
    let other = request(&l, &l.officer, subsidy(json!("10"), "PEN"))
        .await
        .json();
    let decision = format!(
        "/api/v1/payments/{}/decision",
        other["id"].as_str().expect("id")
    );
    post(&l, &l.sup_a, &decision, json!({ "decision": "reject" }))
        .await
        .assert_problem(422, "validation_failed");
    let rejected = post(
        &l,
        &l.sup_a,
        &decision,
        json!({ "decision": "reject", "note": "not destitute" }),
    )
    .await;
    assert_eq!(rejected.json()["status"], "rejected");
    // an approved-but-unpaid entry cannot be reversed, only paid
    let reversal = format!(
        "/api/v1/payments/{}/reversal",
        own["id"].as_str().expect("id")
    );
    post(&l, &l.sup_a, &reversal, json!({ "reason": "x" }))
        .await
        .assert_problem(409, "payment_not_paid");
}

#[actix_web::test]
async fn a_paid_entry_is_immutable_and_corrected_only_by_a_reversal() {
    let l = ledger().await;
    let p = request(&l, &l.officer, subsidy(json!("99.99"), "USD"))
        .await
        .json();
    let id = p["id"].as_str().expect("id").to_owned();
    post(
        &l,
        &l.sup_a,
        &format!("/api/v1/payments/{id}/decision"),
        json!({ "decision": "approve" }),
    )
    .await;
    let paid = post(
        &l,
        &l.officer,
        &format!("/api/v1/payments/{id}/paid"),
        json!({ "reference": "TRX-778" }),
    )
    .await;
    assert_eq!(paid.status, 200, "{:?}", paid.json());
    assert_eq!(paid.json()["status"], "paid");

    let patch = json!({ "amount": "9.99" });
    let req = l
        .app
        .request("PATCH", &format!("/api/v1/payments/{id}"))
        .await
        .insert_header(("Authorization", format!("Bearer {}", l.officer.token)))
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("If-Match", format!("\"{}\"", paid.json()["version"])));
    l.app
        .send(req, Some(patch.to_string().into_bytes()))
        .await
        .assert_problem(409, "payment_immutable");
    post(
        &l,
        &l.officer,
        &format!("/api/v1/payments/{id}/paid"),
        json!({ "reference": "again" }),
    )
    .await
    .assert_problem(409, "payment_not_approved");

    // officers may not reverse; a supervisor does, once
    post(
        &l,
        &l.officer,
        &format!("/api/v1/payments/{id}/reversal"),
        json!({ "reason": "duplicate" }),
    )
    .await
    .assert_problem(403, "forbidden");
    let reversal = post(
        &l,
        &l.sup_b,
        &format!("/api/v1/payments/{id}/reversal"),
        json!({ "reason": "paid twice" }),
    )
    .await;
    assert_eq!(reversal.status, 201, "{:?}", reversal.json());
    let r = reversal.json();
    assert_eq!(r["status"], "reversed");
    assert_eq!(r["amount"], "-99.99");
    assert_eq!(
        r["amount_pen"],
        format!("-{}", paid.json()["amount_pen"].as_str().expect("pen"))
    );
    assert_eq!(r["reverses_id"], id.as_str());
    post(
        &l,
        &l.sup_b,
        &format!("/api/v1/payments/{id}/reversal"),
        json!({ "reason": "again" }),
    )
    .await
    .assert_problem(409, "already_reversed");

    let original = l
        .app
        .call(
            "GET",
            &format!("/api/v1/payments/{id}"),
            Some(&l.officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(
        original["status"], "paid",
        "the paid entry itself never changes"
    );
    assert_eq!(original["amount"], "99.99");
    assert_eq!(original["reversed_by_id"], r["id"]);
    let totals = l
        .app
        .call(
            "GET",
            "/api/v1/payments/totals",
            Some(&l.officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(totals["total_pen"], "0.00", "{totals}");
    assert_eq!(totals["entries"], 2);

    let kinds = l
        .app
        .call(
            "GET",
            &format!("/api/v1/payments?case={}", l.case),
            Some(&l.officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(kinds["total"], 2);
}

#[actix_web::test]
async fn bad_amounts_and_currencies_are_refused_by_field() {
    let l = ledger().await;
    let cases: &[(Value, &str, &str)] = &[
        (json!("-5.00"), "EUR", "body.amount"),
        (json!(-5), "EUR", "body.amount"),
        (json!("0"), "EUR", "body.amount"),
        (json!("10.123"), "EUR", "body.amount"),
        (json!(10.123), "USD", "body.amount"),
        (json!("1000.5"), "JPY", "body.amount"),
        (json!("1.0001"), "KWD", "body.amount"),
        (json!("12,50"), "EUR", "body.amount"),
        (json!("1e3"), "EUR", "body.amount"),
        (json!("10.00"), "XYZ", "body.currency"),
        (json!("10.00"), "XAU", "body.currency"),
        (json!("10.00"), "GBP", "body.value_date"),
        (json!(true), "EUR", "body.amount"),
    ];
    for (amount, currency, field) in cases {
        let resp = request(&l, &l.officer, subsidy(amount.clone(), currency)).await;
        assert_eq!(
            resp.status,
            422,
            "{amount} {currency}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        let problem = resp.json();
        assert_eq!(
            problem["errors"][0]["field"], *field,
            "{amount} {currency}: {problem}"
        );
    }
    // what is right is taken exactly
    for (amount, currency, shown) in [
        (json!("1000"), "JPY", "1000"),
        (json!("1.005"), "KWD", "1.005"),
        (json!(150.5), "EUR", "150.50"),
        (json!("0.01"), "PEN", "0.01"),
    ] {
        let resp = request(&l, &l.officer, subsidy(amount.clone(), currency)).await;
        assert_eq!(resp.status, 201, "{amount} {currency}: {:?}", resp.json());
        assert_eq!(resp.json()["amount"], shown);
    }
    let listed = l
        .app
        .call("GET", "/api/v1/payments", Some(&l.officer.token), None)
        .await
        .json();
    assert_eq!(
        listed["total"], 4,
        "nothing was written by a refused request"
    );
}

/// "123.45" → 12345 (cents); exact, no float.
fn cents(s: &str) -> i128 {
    let neg = s.starts_with('-');
    let s = s.trim_start_matches('-');
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    let v =
        i.parse::<i128>().expect("int") * 100 + format!("{f:0<2}").parse::<i128>().expect("frac");
    if neg {
        -v
    } else {
        v
    }
}

#[actix_web::test]
async fn totals_add_up_to_the_sum_of_entries_to_the_cent() {
    let l = ledger().await;
    let amounts = [
        ("33.33", "EUR"),
        ("0.01", "EUR"),
        ("1234.57", "EUR"),
        ("17", "JPY"),
        ("3", "JPY"),
        ("0.333", "KWD"),
        ("10.10", "PEN"),
        ("19.99", "USD"),
        ("0.07", "USD"),
        ("500", "EUR"),
    ];
    let mut ids = Vec::new();
    for (i, (amount, currency)) in amounts.iter().enumerate() {
        let kind = if i % 2 == 0 {
            "economic_subsidy"
        } else {
            "consular_fees_destitute"
        };
        let body = json!({ "kind": kind, "amount": amount, "currency": currency, "budget_line": "PP 0062", "description": "assistance" });
        let p = request(&l, &l.officer, body).await;
        assert_eq!(p.status, 201, "{:?}", p.json());
        let id = p.json()["id"].as_str().expect("id").to_owned();
        post(
            &l,
            &l.sup_a,
            &format!("/api/v1/payments/{id}/decision"),
            json!({ "decision": "approve" }),
        )
        .await;
        let paid = post(
            &l,
            &l.officer,
            &format!("/api/v1/payments/{id}/paid"),
            json!({ "reference": format!("R{i}") }),
        )
        .await;
        assert_eq!(paid.status, 200);
        ids.push(id);
    }
    // one reversal and one entry left unpaid (excluded from paid totals)
    post(
        &l,
        &l.sup_a,
        &format!("/api/v1/payments/{}/reversal", ids[2]),
        json!({ "reason": "wrong amount" }),
    )
    .await;
    request(&l, &l.officer, subsidy(json!("77.77"), "EUR")).await;

    let entries = l
        .app
        .call(
            "GET",
            "/api/v1/payments?limit=200",
            Some(&l.officer.token),
            None,
        )
        .await
        .json();
    let counted: Vec<&Value> = entries["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|p| p["status"] == "paid" || p["status"] == "reversed")
        .collect();
    assert_eq!(counted.len(), 11);
    let sum = |field: &str| {
        counted
            .iter()
            .map(|p| cents(p[field].as_str().expect("amount")))
            .sum::<i128>()
    };
    let totals = l
        .app
        .call(
            "GET",
            &format!("/api/v1/payments/totals?year={}", &today()[..4]),
            Some(&l.officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(totals["entries"], 11, "{totals}");
    assert_eq!(
        cents(totals["total_pen"].as_str().expect("pen")),
        sum("amount_pen")
    );
    assert_eq!(
        cents(totals["total_usd"].as_str().expect("usd")),
        sum("amount_usd")
    );
    let groups = totals["groups"].as_array().expect("groups");
    let group_pen: i128 = groups
        .iter()
        .map(|g| cents(g["amount_pen"].as_str().expect("pen")))
        .sum();
    assert_eq!(group_pen, sum("amount_pen"), "groups add up to the total");
    let eur = totals["by_currency"]
        .as_array()
        .expect("by currency")
        .iter()
        .find(|c| c["currency"] == "EUR")
        .expect("EUR")
        .clone();
    // 33.33 + 0.01 + 1234.57 − 1234.57 + 500
    assert_eq!(eur["amount"], "533.34");
    let jpy = groups
        .iter()
        .filter(|g| g["currency"] == "JPY")
        .map(|g| {
            g["amount"]
                .as_str()
                .expect("amount")
                .parse::<i64>()
                .expect("yen")
        })
        .sum::<i64>();
    assert_eq!(jpy, 20);
    let planner = l.app.caller("plan.read", Role::Planner, None);
    let planner_view = l
        .app
        .call("GET", "/api/v1/payments/totals", Some(&planner.token), None)
        .await;
    assert_eq!(planner_view.status, 200);
    assert_eq!(planner_view.json()["total_pen"], totals["total_pen"]);
    let approved_only = l
        .app
        .call(
            "GET",
            "/api/v1/payments/totals?status=requested",
            Some(&l.officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(approved_only["entries"], 1);
    assert_eq!(approved_only["by_currency"][0]["amount"], "77.77");
}

#[actix_web::test]
async fn a_retried_payment_request_with_the_same_key_asks_only_once() {
    let l = ledger().await;
    let body = subsidy(json!("120.00"), "EUR");
    let mut answers = Vec::new();
    for _ in 0..2 {
        let req = l
            .app
            .request("POST", &format!("/api/v1/cases/{}/payments", l.case))
            .await
            .insert_header(("Authorization", format!("Bearer {}", l.officer.token)))
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("Idempotency-Key", "pay-rent-nov"));
        let resp = l.app.send(req, Some(body.to_string().into_bytes())).await;
        assert_eq!(resp.status, 201, "{:?}", resp.json());
        answers.push(resp.json()["id"].clone());
    }
    assert_eq!(answers[0], answers[1], "the retry gets the first answer");
    let listed = l
        .app
        .call("GET", "/api/v1/payments", Some(&l.officer.token), None)
        .await
        .json();
    assert_eq!(listed["total"], 1);
}

#[actix_web::test]
async fn unsettled_payments_follow_a_transferred_case() {
    let l = ledger().await;
    let asked = request(&l, &l.officer, subsidy(json!("100.00"), "EUR")).await;
    assert_eq!(asked.status, 201, "{:?}", asked.json());
    let decision = format!(
        "/api/v1/payments/{}/decision",
        asked.json()["id"].as_str().expect("id")
    );
    let transfer = post(
        &l,
        &l.officer,
        &format!("/api/v1/cases/{}/transfers", l.case),
        json!({ "to": "ES-BARCELONA", "reason": "moved to Barcelona" }),
    )
    .await;
    assert_eq!(transfer.status, 201, "{:?}", transfer.json());
    let receiving = l
        .app
        .caller("sup.bcn", Role::Supervisor, Some("ES-BARCELONA"));
    let accepted = post(
        &l,
        &receiving,
        &format!(
            "/api/v1/transfers/{}/decision",
            transfer.json()["id"].as_str().expect("id")
        ),
        json!({ "decision": "accept" }),
    )
    .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.json());
    // The consulate that handed the case over no longer approves its money…
    post(&l, &l.sup_a, &decision, json!({ "decision": "approve" }))
        .await
        .assert_problem(404, "not_found");
    // …the one that took it does.
    let approved = post(&l, &receiving, &decision, json!({ "decision": "approve" })).await;
    assert_eq!(approved.status, 200, "{:?}", approved.json());
}
