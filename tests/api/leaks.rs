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

/// `text` carries none of the first consulate's secrets.
fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} carries `{secret}`: {text}");
    }
}

async fn get(app: &TestApp, caller: &Caller, path: &str) -> crate::helpers::Resp {
    app.call("GET", path, Some(&caller.token), None).await
}

/// Finding 1: the ids a second consulate learns (a 409's `existing_id`, a
/// candidate, a document search) open nothing, and a case with a protective
/// flag on such an id is refused exactly like one on an unknown id.
#[actix_web::test]
async fn a_pretext_case_on_a_learnt_id_opens_nothing() {
    let w = world().await;
    let (app, b) = (&w.app, &w.b[0]);
    let pid = &w.protected_person;
    let dni = app
        .call(
            "POST",
            "/api/v1/persons",
            Some(&b.token),
            Some(&json!({
            "given_names": "Ana", "first_surname": "Rojas", "sex": "female",
            "documents": [{ "type": "dni", "number": "73918264" }] })),
        )
        .await;
    let problem = dni.assert_problem(409, "already_exists");
    assert_eq!(problem["existing_id"], pid.as_str());
    assert_clean("the 409", &String::from_utf8_lossy(&dni.body));
    for flags in [
        json!(["minor"]),
        json!(["gender_violence_victim"]),
        json!([]),
    ] {
        let body = json!({ "person_id": pid, "channel": "phone", "requester": { "kind": "self" }, "summary": "pretext", "flags": flags });
        let pretext = app
            .call("POST", "/api/v1/cases", Some(&b.token), Some(&body))
            .await;
        assert_clean("the pretext case", &String::from_utf8_lossy(&pretext.body));
        pretext.assert_problem(422, "validation_failed");
    }
    get(app, b, &format!("/api/v1/persons/{pid}"))
        .await
        .assert_problem(404, "not_found");
    get(app, b, &format!("/api/v1/persons/{pid}/history"))
        .await
        .assert_problem(404, "not_found");
}

/// Finding 2: a consulate that holds a person protected elsewhere sees
/// them masked, and can neither read them unmasked through a correction
/// nor rewrite their contact data.
#[actix_web::test]
async fn a_holder_that_does_not_protect_cannot_read_or_rewrite_through_a_correction() {
    let w = world().await;
    let (app, b) = (&w.app, &w.b[0]);
    let pid = &w.protected_person;
    app.take_on(b, mapce::db::Id(uuid::Uuid::parse_str(pid).expect("uuid")))
        .await;
    let seen = get(app, b, &format!("/api/v1/persons/{pid}")).await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.json()["view"], "masked");
    assert_clean("the masked person", &String::from_utf8_lossy(&seen.body));
    let etag = seen.header("etag").expect("etag");
    for body in [
        json!({}),
        json!({ "phone": "+34 600 000 000", "address_abroad": "Calle Mayor 1" }),
    ] {
        let patch = app
            .send(
                app.request("PATCH", &format!("/api/v1/persons/{pid}"))
                    .await
                    .insert_header(("Authorization", format!("Bearer {}", b.token)))
                    .insert_header(("If-Match", etag.clone()))
                    .insert_header(("Content-Type", "application/json")),
                Some(serde_json::to_vec(&body).expect("json")),
            )
            .await;
        assert_clean("the correction", &String::from_utf8_lossy(&patch.body));
        patch.assert_problem(403, "protected_person");
    }
    // The history a holder sees has nothing of the protected case: not its
    // events, not its attention types, not its id.
    let history = get(app, b, &format!("/api/v1/persons/{pid}/history")).await;
    assert_eq!(history.status, 200);
    let text = String::from_utf8_lossy(&history.body).into_owned();
    assert_clean("the history", &text);
    assert!(
        !text.contains(&w.a_cases[0]),
        "the protected case's id: {text}"
    );
    let gv = get(app, b, "/api/v1/attention-types/legal_orientation")
        .await
        .json();
    assert!(
        !text.contains(gv["id"].as_str().expect("id")),
        "the protected case's attention types: {text}"
    );
}

/// Finding 3: a document search or a duplicate check by another consulate
/// says a record exists and how to ask for it: the same answer whether the
/// person is protected or not, with no consulate, sex, initials or year.
#[actix_web::test]
async fn lookups_from_another_consulate_do_not_say_who_is_protected() {
    let w = world().await;
    let (app, b) = (&w.app, &w.b[0]);
    let a = app.caller("off.milan.2", Role::Officer, Some("IT-MILAN"));
    let plain = app
        .register_person(
            &a,
            json!({ "given_names": "Zoila", "first_surname": "Huaman", "sex": "female",
            "birth_date": "1991-01-01", "documents": [{ "type": "dni", "number": "73918265" }] }),
        )
        .await;
    let shape = |v: &Value| {
        let mut item = v["items"][0].clone();
        item["id"] = json!("…");
        item
    };
    let protected = get(app, b, "/api/v1/persons?document=73918264")
        .await
        .json();
    let unprotected = get(app, b, "/api/v1/persons?document=73918265")
        .await
        .json();
    assert_eq!(protected["total"], 1);
    assert_eq!(
        shape(&protected),
        shape(&unprotected),
        "protected and not look alike"
    );
    assert_eq!(protected["items"][0]["view"], "not_held");
    assert!(protected["items"][0]["registered_consulate_id"].is_null());
    assert_eq!(unprotected["items"][0]["id"], plain.to_string().as_str());
    let candidates = app
        .call("POST", "/api/v1/persons", Some(&b.token), Some(&json!({
            "given_names": "ZORAIDA XIOMARA", "first_surname": "QUILCACCURO", "second_surname": "WANCHAQUI",
            "birth_date": "1990-07-20", "sex": "female" })))
        .await
        .assert_problem(409, "possible_duplicates");
    let c = &candidates["candidates"][0];
    assert_eq!(c["id"], w.protected_person.as_str());
    assert!(
        c["birth_year"].is_null() && c["masked_name"].is_null(),
        "{c}"
    );
}

/// Finding 4: headquarters without a justification reads no protected
/// free text and no protected person's name, whatever the route.
#[actix_web::test]
async fn headquarters_reads_no_protected_text_without_a_justification() {
    let w = world().await;
    let app = &w.app;
    let hq = app.caller("hq.reader", Role::HqAnalyst, None);
    let pid = &w.protected_person;
    for path in [
        format!("/api/v1/cases/{}", w.a_cases[0]),
        format!("/api/v1/cases/{}", w.a_cases[1]),
        format!("/api/v1/cases?person={pid}"),
        format!("/api/v1/persons/{pid}"),
        format!("/api/v1/persons/{pid}/history"),
        "/api/v1/referrals".to_owned(),
        "/api/v1/tasks".to_owned(),
        "/api/v1/payments".to_owned(),
        format!("/api/v1/payments/{}", w.a_payment),
    ] {
        let resp = get(app, &hq, &path).await;
        assert_eq!(resp.status, 200, "{path}");
        let text = String::from_utf8_lossy(&resp.body).into_owned();
        // Everything but the unprotected case's own text.
        let protected_texts = [
            "SECRET-A-SUMMARY",
            "SECRET-A-ATTENTION",
            "SECRET-A-NOTE",
            "SECRET-A-TASK",
            "SECRET-A-REFERRAL",
            "SECRET-A-PAYMENT",
            "SECRET-A sister",
            "SECRET-A +39",
        ];
        let identity = SECRETS.iter().filter(|s| !s.starts_with("SECRET-A"));
        for secret in identity.chain(protected_texts.iter()) {
            assert!(!text.contains(secret), "{path} carries `{secret}`: {text}");
        }
    }
    // The unprotected case's own text stays readable: only the name is masked.
    let plain = get(app, &hq, &format!("/api/v1/cases/{}", w.a_cases[1]))
        .await
        .json();
    assert_eq!(plain["summary"], "SECRET-A-PLAIN renewal of documents");
    assert_eq!(plain["person"]["name"], "Z*** X*** Q*** W***");
    // With a justification, headquarters sees the protected case's events.
    let history = get(
        app,
        &hq,
        &format!("/api/v1/persons/{pid}/history?justification=court%20order%2017%20of%202026"),
    )
    .await;
    assert!(String::from_utf8_lossy(&history.body).contains(&w.a_cases[0]));
}

/// Finding 5: every read of personal data leaves an audit row naming its
/// data subjects.
#[actix_web::test]
async fn every_personal_read_is_audited_with_its_subjects() {
    let w = world().await;
    let app = &w.app;
    let a = app.caller("off.milan.3", Role::Officer, Some("IT-MILAN"));
    let case = &w.a_cases[1];
    let detention = app
        .call("POST", &format!("/api/v1/cases/{case}/detention"), Some(&a.token), Some(&json!({
            "place": "San Vittore", "arrested_on": today(), "notified_at": chrono::Utc::now().to_rfc3339() })))
        .await;
    assert_eq!(detention.status, 201, "{:?}", detention.json());
    let repatriation = app
        .call(
            "POST",
            &format!("/api/v1/cases/{case}/repatriations"),
            Some(&a.token),
            Some(&json!({
            "kind": "return_assistance", "destination": "Lima" })),
        )
        .await;
    assert_eq!(repatriation.status, 201, "{:?}", repatriation.json());
    let rid = repatriation.json()["id"].as_str().expect("id").to_owned();
    let hq = app.caller("hq.audited", Role::HqAnalyst, None);
    let admin = app.caller("root.admin.2", Role::Admin, None);
    let pid = &w.protected_person;
    let count = |subject: Option<&str>| {
        use diesel::prelude::*;
        use mapce::db::schema::audit_log;
        let mut conn = app.db.connect();
        let mut q = audit_log::table.into_boxed();
        if let Some(s) = subject {
            q = q.filter(
                audit_log::details
                    .like(format!("%{s}%"))
                    .or(audit_log::subject_person_id
                        .eq(mapce::db::Id(uuid::Uuid::parse_str(s).expect("uuid")))),
            );
        }
        q.count().get_result::<i64>(&mut conn).expect("count")
    };
    for (caller, path, names_subject) in [
        (&hq, "/api/v1/detentions".to_owned(), true),
        (&hq, format!("/api/v1/cases/{case}/detention"), true),
        (&hq, format!("/api/v1/repatriations/{rid}"), true),
        (&hq, format!("/api/v1/cases/{case}/repatriations"), true),
        (&hq, "/api/v1/payments".to_owned(), true),
        (&hq, format!("/api/v1/payments/{}", w.a_payment), true),
        (&hq, "/api/v1/referrals".to_owned(), true),
        (&hq, "/api/v1/tasks".to_owned(), true),
        (&hq, format!("/api/v1/cases?person={pid}"), true),
        (&hq, "/api/v1/duplicates?status=all".to_owned(), false),
        (&hq, "/api/v1/data-quality".to_owned(), false),
        (&admin, "/api/v1/audit".to_owned(), false),
    ] {
        let (all, theirs) = (count(None), count(Some(pid)));
        let resp = get(app, caller, &path).await;
        assert_eq!(resp.status, 200, "{path}: {:?}", resp.json());
        assert_eq!(count(None), all + 1, "{path} leaves one audit row");
        if names_subject {
            assert_eq!(count(Some(pid)), theirs + 1, "{path} names the person");
        }
    }
}

/// Finding 9: document searches reach beyond the consulate, so each user
/// has an hourly budget of them, and admins see the volume per user.
#[actix_web::test]
async fn document_lookups_are_budgeted_per_user_and_visible_to_admins() {
    let w = world().await;
    let (app, b) = (&w.app, &w.b[0]);
    let limit = mapce::config::DEFAULT_LOOKUP_LIMIT as usize;
    for i in 0..limit {
        let resp = get(
            app,
            b,
            &format!("/api/v1/persons?document={}", 10_000_000 + i),
        )
        .await;
        assert_eq!(resp.status, 200, "lookup {i}");
    }
    let refused = get(app, b, "/api/v1/persons?document=73918264").await;
    assert_clean("the refusal", &String::from_utf8_lossy(&refused.body));
    refused.assert_problem(429, "too_many_requests");
    assert!(refused.header("retry-after").is_some());
    // Name searches stay within the consulate and are not budgeted.
    assert_eq!(get(app, b, "/api/v1/persons?q=rojas").await.status, 200);
    let admin = app.caller("root.lookups", Role::Admin, None);
    let report = get(app, &admin, "/api/v1/lookups?hours=1").await.json();
    let mine = report["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["user_id"] == b.user_id.to_string().as_str())
        .cloned()
        .expect("the searching officer is listed");
    assert_eq!(mine["lookups"], limit as i64, "{report}");
    assert_eq!(mine["throttled"], 1, "{report}");
    assert_eq!(report["limit_per_hour"], limit as i64);
}

/// A name search of a thousand words is a clear 400, not a 500 (each word
/// was one more condition in one SQL expression).
#[actix_web::test]
async fn a_name_search_of_a_thousand_words_is_refused_clearly() {
    let w = world().await;
    let words: Vec<String> = (0..1000).map(|i| format!("w{i}")).collect();
    let resp = get(
        &w.app,
        &w.b[0],
        &format!("/api/v1/persons?q={}", words.join("%20")),
    )
    .await;
    let problem = resp.assert_problem(400, "invalid_query");
    assert_eq!(problem["errors"][0]["field"], "query.q");
    let few = get(
        &w.app,
        &w.b[0],
        "/api/v1/persons?q=ana%20ana%20rojas%20ROJAS",
    )
    .await;
    assert_eq!(few.status, 200, "repeated words count once");
    // The longest search allowed, 66 different words, is answered.
    let words: Vec<String> = (0..66u8)
        .map(|i| format!("{}{}", char::from(b'a' + i / 26), char::from(b'a' + i % 26)))
        .collect();
    let most = get(
        &w.app,
        &w.b[0],
        &format!("/api/v1/persons?q={}", words.join(".")),
    )
    .await;
    assert_eq!(most.status, 200, "{:?}", most.json());
}

/// A grant can be ended; the consulate then reads the person as absent
/// again (it opened no case of its own meanwhile).
#[actix_web::test]
async fn a_revoked_grant_closes_the_person_again() {
    let w = world().await;
    let (app, b) = (&w.app, &w.b[0]);
    let pid = mapce::db::Id(uuid::Uuid::parse_str(&w.protected_person).expect("uuid"));
    let grant = app.take_on(b, pid).await;
    assert_eq!(
        get(app, b, &format!("/api/v1/persons/{pid}")).await.status,
        200
    );
    let hq = app.caller("hq.revoker", Role::HqAnalyst, None);
    let path = format!("/api/v1/access-requests/{grant}/revocation");
    let body = json!({ "reason": "she went back to Milan" });
    // The officer who holds it cannot end it; headquarters can, once.
    app.call("POST", &path, Some(&b.token), Some(&body))
        .await
        .assert_problem(403, "forbidden");
    let revoked = app.call("POST", &path, Some(&hq.token), Some(&body)).await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.json());
    assert_eq!(revoked.json()["status"], "revoked");
    app.call("POST", &path, Some(&hq.token), Some(&body))
        .await
        .assert_problem(409, "not_granted");
    get(app, b, &format!("/api/v1/persons/{pid}"))
        .await
        .assert_problem(404, "not_found");
}

/// Two consulates that do not protect a person cannot hand each other the
/// protection: a protected case opened by one that holds the person only
/// as a holder, transferred to another, leaves the other masked too.
#[actix_web::test]
async fn a_transfer_passes_on_no_more_protection_than_the_sender_had() {
    let w = world().await;
    let (app, b) = (&w.app, &w.b[0]);
    let pid = mapce::db::Id(uuid::Uuid::parse_str(&w.protected_person).expect("uuid"));
    app.take_on(b, pid).await;
    let case = app
        .call(
            "POST",
            "/api/v1/cases",
            Some(&b.token),
            Some(&json!({
            "person_id": pid, "channel": "phone", "requester": { "kind": "self" },
            "summary": "Madrid case", "flags": ["minor"] })),
        )
        .await;
    assert_eq!(case.status, 201, "{:?}", case.json());
    assert_clean(
        "Madrid's own protected case",
        &String::from_utf8_lossy(&case.body),
    );
    let transfer = app
        .call(
            "POST",
            &format!(
                "/api/v1/cases/{}/transfers",
                case.json()["id"].as_str().expect("id")
            ),
            Some(&b.token),
            Some(&json!({ "to": "ES-BARCELONA", "reason": "moved to Barcelona" })),
        )
        .await;
    assert_eq!(transfer.status, 201, "{:?}", transfer.json());
    let bcn = app.caller("sup.bcn.leak", Role::Supervisor, Some("ES-BARCELONA"));
    let accepted = app
        .call(
            "POST",
            &format!(
                "/api/v1/transfers/{}/decision",
                transfer.json()["id"].as_str().expect("id")
            ),
            Some(&bcn.token),
            Some(&json!({ "decision": "accept" })),
        )
        .await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.json());
    let seen = get(app, &bcn, &format!("/api/v1/persons/{pid}")).await;
    assert_eq!(seen.status, 200, "Barcelona holds the case now");
    assert_eq!(seen.json()["view"], "masked");
    assert_clean(
        "the person at Barcelona",
        &String::from_utf8_lossy(&seen.body),
    );
    let history = get(app, &bcn, &format!("/api/v1/persons/{pid}/history")).await;
    assert_clean(
        "the history at Barcelona",
        &String::from_utf8_lossy(&history.body),
    );
}
