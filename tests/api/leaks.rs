//! The protected-person leak test: users of a second consulate play random
//! sequences of calls — registrations, searches by name and document, cases
//! with any flags on any person id they have seen, corrections, histories,
//! lists, tasks, referrals, payments, access requests and exports — against a
//! person protected by a first consulate. No answer they get may carry an
//! identifying field of that person or a word of the first consulate's free
//! text. The sequences come from a seeded generator; a failure names the
//! seed and the call, so it replays exactly.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::helpers::{Caller, TestApp};
use mapce::domain::role::Role;

/// What the first consulate wrote about the protected person. None of it may
/// reach the second consulate, in any form (names also not as initials with
/// exact letter counts).
const SECRETS: &[&str] = &[
    "Zoraida",
    "Xiomara",
    "Quilcaccuro",
    "Wanchaqui",
    "Z****** X******",
    "Q**********",
    "W********",
    "73918264",
    "PX55501234",
    "1990-07-19",
    "351 772 9911",
    "3517729911",
    "zoraida.q@",
    "Via Segreta",
    "SECRET-A",
];

struct World {
    app: TestApp,
    /// Officer and supervisor of ES-MADRID.
    b: Vec<Caller>,
    protected_person: String,
    /// Ids the second consulate may learn one way or another.
    known_persons: Vec<String>,
    a_cases: Vec<String>,
    a_payment: String,
    b_cases: Vec<String>,
    /// Persons the second consulate registered itself.
    b_persons: Vec<String>,
    organisation: String,
}

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

async fn ok(app: &TestApp, caller: &Caller, method: &str, path: &str, body: Value) -> Value {
    let resp = app
        .call(method, path, Some(&caller.token), Some(&body))
        .await;
    let v = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    assert!(
        (200..300).contains(&resp.status),
        "{method} {path}: {} {v}",
        resp.status
    );
    v
}

/// Consulate A (IT-MILAN) protects Zoraida: a gender-violence case with
/// attentions, a note, a task, a referral and a payment, and a second,
/// unprotected case.
async fn world() -> World {
    let app = TestApp::spawn().await;
    let a = app.caller("off.milan", Role::Officer, Some("IT-MILAN"));
    let admin = app.caller("root.admin", Role::Admin, None);
    let person = ok(&app, &a, "POST", "/api/v1/persons", json!({
        "given_names": "Zoraida Xiomara", "first_surname": "Quilcaccuro", "second_surname": "Wanchaqui",
        "birth_date": "1990-07-19", "sex": "female", "phone": "+39 351 772 9911",
        "email": "zoraida.q@example.it", "address_abroad": "Casa refugio, Via Segreta 17, Milano",
        "documents": [{ "type": "dni", "number": "73918264" }, { "type": "passport", "number": "PX55501234" }]
    }))
    .await;
    let pid = person["id"].as_str().expect("id").to_owned();
    let protected_case = ok(&app, &a, "POST", "/api/v1/cases", json!({
        "person_id": pid, "channel": "phone", "flags": ["gender_violence_victim"],
        "requester": { "kind": "relative", "name": "SECRET-A sister", "relationship": "sister", "contact": "SECRET-A +39 02 1234" },
        "summary": "SECRET-A-SUMMARY beaten by partner, now in shelter",
        "attentions": [{ "attention_type": "legal_orientation", "date": today(), "description": "SECRET-A-ATTENTION restraining order" }]
    }))
    .await;
    let case_a = protected_case["id"].as_str().expect("id").to_owned();
    let plain_case = ok(&app, &a, "POST", "/api/v1/cases", json!({
        "person_id": pid, "channel": "phone", "requester": { "kind": "self" },
        "summary": "SECRET-A-PLAIN renewal of documents",
        "attentions": [{ "attention_type": "legal_orientation", "date": today(), "description": "SECRET-A-PLAIN-ATTENTION" }]
    }))
    .await;
    let case_a2 = plain_case["id"].as_str().expect("id").to_owned();
    ok(
        &app,
        &a,
        "POST",
        &format!("/api/v1/cases/{case_a}/notes"),
        json!({ "text": "SECRET-A-NOTE she fears him" }),
    )
    .await;
    ok(
        &app,
        &a,
        "POST",
        &format!("/api/v1/cases/{case_a}/tasks"),
        json!({ "title": "SECRET-A-TASK call the shelter" }),
    )
    .await;
    let org = ok(
        &app,
        &admin,
        "POST",
        "/api/v1/organisations",
        json!({ "name": "Casa de acogida", "kind": "ngo", "country": "IT", "public": true }),
    )
    .await;
    let org_id = org["id"].as_str().expect("id").to_owned();
    ok(
        &app,
        &a,
        "POST",
        &format!("/api/v1/cases/{case_a}/referrals"),
        json!({ "organisation_id": org_id, "reason": "SECRET-A-REFERRAL safe housing" }),
    )
    .await;
    ok(
        &app,
        &admin,
        "PUT",
        &format!("/api/v1/exchange-rates/EUR/{}", today()),
        json!({ "pen_per_unit": "4.05", "usd_per_unit": "1.08", "source": "SBS" }),
    )
    .await;
    let pay = ok(&app, &a, "POST", &format!("/api/v1/cases/{case_a}/payments"), json!({
        "kind": "economic_subsidy", "amount": "300.00", "currency": "EUR", "budget_line": "PP 0062", "description": "SECRET-A-PAYMENT shelter rent" })).await;
    let b = vec![
        app.caller("off.madrid", Role::Officer, Some("ES-MADRID")),
        app.caller("sup.madrid", Role::Supervisor, Some("ES-MADRID")),
    ];
    World {
        app,
        b,
        protected_person: pid.clone(),
        known_persons: vec![pid],
        a_cases: vec![case_a, case_a2],
        a_payment: pay["id"].as_str().expect("id").to_owned(),
        b_cases: Vec::new(),
        b_persons: Vec::new(),
        organisation: org_id,
    }
}

/// Every string id found anywhere in an answer, so later calls can use
/// what the second consulate learnt (candidate ids, existing ids, case ids).
fn harvest(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if uuid::Uuid::parse_str(s).is_ok() && !out.contains(s) => {
            out.push(s.clone());
        }
        Value::Array(a) => a.iter().for_each(|x| harvest(x, out)),
        Value::Object(m) => m.values().for_each(|x| harvest(x, out)),
        _ => {}
    }
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> Option<&'a T> {
    (!items.is_empty()).then(|| &items[rng.random_range(0..items.len())])
}

/// One random call by a user of the second consulate: (method, path, body).
fn next_call(rng: &mut StdRng, w: &World) -> (String, String, Option<Value>) {
    const FLAGS: &[&str] = &[
        "minor",
        "gender_violence_victim",
        "trafficking_victim",
        "detained",
        "destitute",
    ];
    let person = match rng.random_range(0..3) {
        0 => Some(w.protected_person.clone()),
        1 => pick(rng, &w.b_persons).cloned(),
        _ => pick(rng, &w.known_persons).cloned(),
    }
    .unwrap_or_else(|| w.protected_person.clone());
    let any_case = {
        let mut all = w.a_cases.clone();
        all.extend(w.b_cases.iter().cloned());
        pick(rng, &all).cloned().unwrap_or_default()
    };
    let get = |p: String| ("GET".to_owned(), p, None);
    match rng.random_range(0..24) {
        // registrations that look like her (same names in capitals, a day
        // apart), with and without confirmation, or with her DNI
        0 => (
            "POST".into(),
            "/api/v1/persons".into(),
            Some(json!({
            "given_names": "ZORAIDA XIOMARA", "first_surname": "QUILCACCURO", "second_surname": "WANCHAQUI",
            "birth_date": "1990-07-20", "sex": "female" })),
        ),
        1 => (
            "POST".into(),
            "/api/v1/persons".into(),
            Some(json!({
            "given_names": "ZORAIDA XIOMARA", "first_surname": "QUILCACCURO", "birth_date": "1990-07-20", "sex": "female",
            "confirm_new_person": { "reason": "another woman, checked" } })),
        ),
        2 => (
            "POST".into(),
            "/api/v1/persons".into(),
            Some(json!({
            "given_names": "ANA", "first_surname": "ROJAS", "sex": "female",
            "documents": [if rng.random_bool(0.5) { json!({ "type": "dni", "number": "73918264" }) } else { json!({ "type": "passport", "number": "PX55501234" }) }] })),
        ),
        3 => get("/api/v1/persons?q=ZORAIDA%20QUILCACCURO".into()),
        4 => get("/api/v1/persons?q=zoraida".into()),
        5 => get(format!(
            "/api/v1/persons?document={}",
            if rng.random_bool(0.5) {
                "73918264"
            } else {
                "px55501234"
            }
        )),
        6 => get(format!("/api/v1/persons/{person}")),
        7 => get(format!("/api/v1/persons/{person}/history")),
        8 => (
            "PATCH".into(),
            format!("/api/v1/persons/{person}"),
            Some(if rng.random_bool(0.5) {
                json!({})
            } else {
                json!({ "phone": "+34 600 000 000", "address_abroad": "Calle Mayor 1" })
            }),
        ),
        9 | 10 => {
            let mut flags: Vec<&str> = FLAGS
                .iter()
                .copied()
                .filter(|_| rng.random_bool(0.3))
                .collect();
            flags.dedup();
            let mut body = json!({ "person_id": person, "channel": "phone", "requester": { "kind": "self" },
                                   "summary": "Madrid case", "flags": flags });
            if rng.random_bool(0.5) {
                body["attentions"] = json!([{ "attention_type": if rng.random_bool(0.5) { "legal_orientation" } else { "gender_violence" }, "date": today(), "description": "Madrid attention" }]);
            }
            ("POST".into(), "/api/v1/cases".into(), Some(body))
        }
        11 => get(format!("/api/v1/cases?person={person}")),
        12 => get("/api/v1/cases".into()),
        13 => get(format!("/api/v1/cases/{any_case}")),
        14 => get("/api/v1/tasks".into()),
        15 => get("/api/v1/referrals".into()),
        16 => get(if rng.random_bool(0.5) {
            "/api/v1/payments".into()
        } else {
            format!("/api/v1/payments/{}", w.a_payment)
        }),
        17 => get(if rng.random_bool(0.5) {
            "/api/v1/detentions".into()
        } else {
            format!("/api/v1/cases/{any_case}/detention")
        }),
        18 => get(format!("/api/v1/cases/{any_case}/repatriations")),
        19 => (
            "POST".into(),
            format!("/api/v1/cases/{any_case}/notes"),
            Some(json!({ "text": "Madrid note" })),
        ),
        20 => (
            "POST".into(),
            format!("/api/v1/cases/{any_case}/referrals"),
            Some(json!({ "organisation_id": w.organisation, "reason": "Madrid referral" })),
        ),
        21 => (
            "POST".into(),
            format!("/api/v1/persons/{person}/access-requests"),
            Some(json!({ "reason": "she came to our window asking for help" })),
        ),
        22 => get(if rng.random_bool(0.5) {
            "/api/v1/exports/oei05.csv".into()
        } else {
            "/api/v1/duplicates".into()
        }),
        _ => get(format!(
            "/api/v1/persons/{person}/history?kind=attention.recorded"
        )),
    }
}

async fn play(seed: u64, steps: usize) {
    let mut w = world().await;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut answered: std::collections::BTreeMap<String, usize> = Default::default();
    for step in 0..steps {
        let caller = w.b[rng.random_range(0..w.b.len())].clone();
        let (method, path, body) = next_call(&mut rng, &w);
        let mut req = w
            .app
            .request(&method, &path)
            .await
            .insert_header(("Authorization", format!("Bearer {}", caller.token)));
        if method == "PATCH" {
            // Whatever ETag the second consulate can see, or a guess.
            req = req.insert_header(("If-Match", "\"1\""));
        }
        let resp = match &body {
            Some(b) => {
                let req = req.insert_header(("Content-Type", "application/json"));
                w.app
                    .send(req, Some(serde_json::to_vec(b).expect("json")))
                    .await
            }
            None => w.app.send(req, None).await,
        };
        let text = String::from_utf8_lossy(&resp.body).into_owned();
        let route = path
            .split('?')
            .next()
            .unwrap_or_default()
            .split('/')
            .take(4)
            .collect::<Vec<_>>()
            .join("/");
        *answered
            .entry(format!("{method} {route} {}", resp.status))
            .or_default() += 1;
        assert!(
            resp.status < 500,
            "seed {seed} step {step}: {method} {path} answered {}: {text}",
            resp.status
        );
        for secret in SECRETS {
            assert!(
                !text.contains(secret),
                "seed {seed} step {step}: {method} {path} {body:?} answered {} with `{secret}` of the other consulate's protected person: {text}",
                resp.status
            );
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&resp.body) {
            if method == "POST" && resp.status == 201 {
                if let Some(id) = v["id"].as_str() {
                    match path.as_str() {
                        "/api/v1/cases" => w.b_cases.push(id.to_owned()),
                        "/api/v1/persons" => w.b_persons.push(id.to_owned()),
                        _ => {}
                    }
                }
            }
            harvest(&v, &mut w.known_persons);
        }
    }
    // The sequence must have reached the server's working paths, not only
    // its refusals: the second consulate registers and searches, and opens
    // cases on persons of its own.
    let ok = |prefix: &str| {
        answered.iter().any(|(k, n)| {
            k.starts_with(prefix) && (k.ends_with(" 200") || k.ends_with(" 201")) && *n > 0
        })
    };
    for expected in [
        "POST /api/v1/persons",
        "GET /api/v1/persons",
        "POST /api/v1/cases",
        "GET /api/v1/tasks",
    ] {
        assert!(
            ok(expected),
            "seed {seed}: no successful `{expected}` in {answered:#?}"
        );
    }
    eprintln!("seed {seed}: {answered:?}");
}

#[actix_web::test]
async fn a_second_consulate_never_sees_a_protected_person_of_the_first() {
    let seeds: u64 = std::env::var("MAPCE_LEAK_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    for seed in 0..seeds {
        play(seed, 150).await;
    }
}
