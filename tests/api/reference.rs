//! Reference data: regions, countries and consulates, loaded idempotently.

use std::collections::BTreeSet;

use diesel::prelude::*;
use serde_json::Value;

use crate::helpers::{TestApp, TestDb};

fn items(body: &Value) -> &Vec<Value> {
    body["items"].as_array().expect("items array")
}

fn codes(body: &Value, field: &str) -> Vec<String> {
    items(body)
        .iter()
        .map(|i| i[field].as_str().expect("string").to_owned())
        .collect()
}

#[actix_web::test]
async fn regions_are_the_reports_five_in_order() {
    let app = TestApp::spawn().await;
    let body = app.get("/api/v1/regions").await.json();
    assert_eq!(
        codes(&body, "code"),
        ["africa", "america", "asia", "europa", "oceania"]
    );
    assert_eq!(items(&body)[0]["name_es"], "África");
    assert_eq!(body["total"], 5);
}

#[actix_web::test]
async fn countries_cover_iso_3166_and_paginate() {
    let app = TestApp::spawn().await;
    let mut seen = BTreeSet::new();
    let mut path = "/api/v1/countries?limit=100".to_owned();
    let mut pages = 0;
    loop {
        let body = app.get(&path).await.json();
        assert_eq!(body["total"], 249);
        for code in codes(&body, "alpha2") {
            assert!(seen.insert(code.clone()), "{code} twice across pages");
        }
        pages += 1;
        match body["next"].as_str() {
            Some(next) => path = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 249);
    let first = app.get("/api/v1/countries").await.json();
    assert_eq!(first["limit"], 50, "default page size");
    assert_eq!(items(&first).len(), 50);
}

#[actix_web::test]
async fn countries_filter_by_region_code_or_name() {
    let app = TestApp::spawn().await;
    for region in ["europa", "Europa", "EUROPE"] {
        let body = app
            .get(&format!("/api/v1/countries?region={region}&limit=200"))
            .await
            .json();
        assert_eq!(body["total"], 51, "{region}");
        assert!(items(&body).iter().all(|c| c["region"] == "europa"));
        assert!(codes(&body, "alpha2").contains(&"IT".to_owned()));
    }
    let africa = app
        .get("/api/v1/countries?region=%C3%81frica&limit=200")
        .await
        .json();
    assert!(items(&africa).iter().all(|c| c["region"] == "africa"));
    assert!(codes(&africa, "alpha2").contains(&"MA".to_owned()));
    let oceania = app
        .get("/api/v1/countries?region=oceania&limit=200")
        .await
        .json();
    assert!(codes(&oceania, "alpha2").contains(&"AU".to_owned()));
}

#[actix_web::test]
async fn country_search_ignores_accents_and_case() {
    let app = TestApp::spawn().await;
    for (q, expected) in [
        ("peru", "PE"),
        ("PER%C3%9A", "PE"),
        ("Per%C3%BA", "PE"),
        ("espana", "ES"),
        ("ESPA%C3%91A", "ES"),
        ("spain", "ES"),
        ("cote%20d%27ivoire", "CI"),
        ("japon", "JP"),
        ("JPN", "JP"),
    ] {
        let body = app.get(&format!("/api/v1/countries?q={q}")).await.json();
        assert!(
            codes(&body, "alpha2").contains(&expected.to_owned()),
            "q={q}: {body}"
        );
    }
    let none = app.get("/api/v1/countries?q=atlantida").await.json();
    assert_eq!(none["total"], 0);
    // Wildcards or punctuation alone find nothing (not everything); a
    // blank query is refused.
    for q in ["%25", "_", "...", "%C2%BF%3F"] {
        let body = app.get(&format!("/api/v1/countries?q={q}")).await.json();
        assert_eq!(body["total"], 0, "q={q}: {body}");
        assert_eq!(body["items"].as_array().map(Vec::len), Some(0), "q={q}");
    }
    for q in ["%20", "%09%C2%A0"] {
        let body = app
            .get(&format!("/api/v1/countries?q={q}"))
            .await
            .assert_problem(400, "invalid_query");
        assert_eq!(body["errors"][0]["field"], "query.q");
    }
}

#[actix_web::test]
async fn consulates_cover_the_countries_with_most_assistance() {
    let app = TestApp::spawn().await;
    // The report's largest countries by people assisted.
    for country in [
        "AR", "CL", "BR", "US", "ES", "IT", "JP", "CN", "BO", "EC", "VE", "MX", "CO", "FR", "DE",
    ] {
        let body = app
            .get(&format!("/api/v1/consulates?country={country}"))
            .await
            .json();
        assert!(
            body["total"].as_i64().unwrap_or(0) >= 1,
            "no consulate in {country}"
        );
        assert!(items(&body)
            .iter()
            .all(|c| c["country"]["alpha2"] == country));
    }
    let argentina = app.get("/api/v1/consulates?country=ARG").await.json();
    assert!(codes(&argentina, "code").contains(&"AR-BUENOS-AIRES".to_owned()));
}

#[actix_web::test]
async fn consulates_filter_by_region_and_jurisdiction() {
    let app = TestApp::spawn().await;
    let europe = app
        .get("/api/v1/consulates?region=europa&limit=200")
        .await
        .json();
    assert!(europe["total"].as_i64().unwrap_or(0) >= 10);
    assert!(items(&europe).iter().all(|c| c["region"] == "europa"));
    // San Marino is served from Rome.
    let sm = app.get("/api/v1/consulates?jurisdiction=SM").await.json();
    assert_eq!(codes(&sm, "code"), ["IT-ROMA"]);
    let inactive = app.get("/api/v1/consulates?active=false").await.json();
    assert_eq!(inactive["total"], 0);
}

#[actix_web::test]
async fn a_consulate_reads_by_id_or_code_with_an_etag() {
    let app = TestApp::spawn().await;
    let by_code = app.get("/api/v1/consulates/it-milan").await;
    assert_eq!(by_code.status, 200);
    assert_eq!(by_code.header("etag").as_deref(), Some("\"1\""));
    let body = by_code.json();
    assert_eq!(body["code"], "IT-MILAN");
    assert_eq!(body["kind"], "consulate_general");
    assert_eq!(body["name_es"], "Consulado General del Perú en Milán");
    assert_eq!(body["city"], "Milán");
    assert_eq!(body["jurisdiction"], serde_json::json!(["IT"]));
    let id = body["id"].as_str().expect("id");
    let by_id = app.get(&format!("/api/v1/consulates/{id}")).await.json();
    assert_eq!(by_id, body);
    app.get("/api/v1/consulates/XX-NOWHERE")
        .await
        .assert_problem(404, "not_found");
    app.get("/api/v1/consulates/01900000-0000-7000-8000-000000000000")
        .await
        .assert_problem(404, "not_found");
}

#[test]
fn reference_data_loads_idempotently_and_keeps_edits() {
    use mapce::db::schema::{consulates, countries, regions};
    let db = TestDb::migrated();
    let mut conn = db.connect();
    diesel::update(consulates::table.filter(consulates::code.eq("IT-MILAN")))
        .set(consulates::city.eq("Milano"))
        .execute(&mut conn)
        .expect("edit");
    let count = |conn: &mut mapce::db::DbConn| -> (i64, i64, i64) {
        (
            regions::table.count().get_result(conn).expect("count"),
            countries::table.count().get_result(conn).expect("count"),
            consulates::table.count().get_result(conn).expect("count"),
        )
    };
    let before = count(&mut conn);
    let applied = mapce::services::setup::migrate(&mut conn).expect("second run");
    assert!(applied.is_empty(), "nothing left to apply: {applied:?}");
    assert_eq!(count(&mut conn), before);
    assert_eq!(before.0, 5);
    assert_eq!(before.1, 249);
    let city: String = consulates::table
        .filter(consulates::code.eq("IT-MILAN"))
        .select(consulates::city)
        .first(&mut conn)
        .expect("row");
    assert_eq!(city, "Milano", "an administrator's edit survives reloading");
}
