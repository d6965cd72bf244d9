//! The attention-type catalogue: one type per meaning, every spelling
//! resolving to it, merges that keep history, versioned protocols.

use mapce::domain::role::Role;
use serde_json::{json, Value};

use crate::helpers::{Caller, Resp, TestApp};

async fn resolve(app: &TestApp, caller: &Caller, label: &str) -> Resp {
    let q: String = form_urlencoded::byte_serialize(label.as_bytes()).collect();
    app.call(
        "GET",
        &format!("/api/v1/attention-types/resolve?label={q}"),
        Some(&caller.token),
        None,
    )
    .await
}

fn new_type(code: &str, name_es: &str, name_en: &str) -> Value {
    json!({ "code": code, "name_es": name_es, "name_en": name_en, "category": "legal", "kind": "legal",
            "description_es": "d", "description_en": "d", "who_may_ask_es": "w", "who_may_ask_en": "w",
            "requirements_es": "r", "requirements_en": "r" })
}

#[actix_web::test]
async fn the_seeded_catalogue_covers_the_reported_work() {
    let app = TestApp::spawn().await;
    let officer = app.caller("off.a", Role::Officer, Some("AR-BUENOS-AIRES"));
    let list = app
        .call(
            "GET",
            "/api/v1/attention-types?limit=200",
            Some(&officer.token),
            None,
        )
        .await
        .json();
    assert!(
        list["total"].as_i64().unwrap_or(0) >= 30,
        "{}",
        list["total"]
    );
    let codes: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|t| t["code"].as_str())
        .collect();
    for code in [
        "legal_orientation",
        "consular_fees_destitute",
        "migration_orientation",
        "detainee_visit",
        "detainee_economic_aid",
        "repatriation",
        "economic_subsidy",
        "gender_violence",
        "trafficking_in_persons",
        "smuggling_of_migrants",
        "forced_labour",
        "humanitarian_assistance",
        "search_and_location",
        "transfer_of_remains",
        "hospitalised_or_sick",
        "minors_at_risk",
        "return_assistance",
    ] {
        assert!(codes.contains(&code), "{code} missing");
    }
    let categories: std::collections::BTreeSet<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|t| t["category"].as_str())
        .collect();
    assert_eq!(categories.len(), 11, "{categories:?}");
    let gv = app
        .call(
            "GET",
            "/api/v1/attention-types/gender_violence",
            Some(&officer.token),
            None,
        )
        .await
        .json();
    assert_eq!(gv["protected_by_default"], true);
    let by_category = app
        .call(
            "GET",
            "/api/v1/attention-types?category=detention",
            Some(&officer.token),
            None,
        )
        .await
        .json();
    assert!(by_category["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|t| t["category"] == "detention"));
}

#[actix_web::test]
async fn twenty_messy_spellings_resolve_to_one_type() {
    let app = TestApp::spawn().await;
    let officer = app.caller("off.a", Role::Officer, Some("AR-BUENOS-AIRES"));
    let spellings = [
        "Orientación legal",
        "orientacion legal",
        "ORIENTACION LEGAL",
        "ORIENTACIÓN LEGAL",
        "Orientación  legal",
        "  orientación legal  ",
        "Orientación legal.",
        "orientacion legal;",
        "Orientación-legal",
        "Legal orientation",
        "LEGAL ORIENTATION",
        "legal orientation.",
        "legal_orientation",
        "LEGAL_ORIENTATION",
        "Asesoría legal",
        "asesoria legal",
        "ASESORIA LEGAL.",
        "Orientacion juridica",
        "orientación jurídica",
        "Consulta legal",
    ];
    assert_eq!(spellings.len(), 20);
    for label in spellings {
        let resp = resolve(&app, &officer, label).await;
        assert_eq!(resp.status, 200, "`{label}`: {:?}", resp.json());
        assert_eq!(resp.json()["code"], "legal_orientation", "`{label}`");
    }
}

#[actix_web::test]
async fn unknown_labels_get_404_with_close_suggestions() {
    let app = TestApp::spawn().await;
    let officer = app.caller("off.a", Role::Officer, Some("AR-BUENOS-AIRES"));
    let resp = resolve(&app, &officer, "orientacion legl").await;
    let problem = resp.assert_problem(404, "unknown_label");
    let suggestions = problem["suggestions"].as_array().expect("suggestions");
    assert!(!suggestions.is_empty() && suggestions.len() <= 5);
    assert_eq!(suggestions[0]["code"], "legal_orientation", "{problem}");
    assert!(
        suggestions
            .windows(2)
            .all(|w| w[0]["score"].as_f64() >= w[1]["score"].as_f64()),
        "best first"
    );
    app.call(
        "GET",
        "/api/v1/attention-types/resolve?label=...",
        Some(&officer.token),
        None,
    )
    .await
    .assert_problem(400, "invalid_query");
}

#[actix_web::test]
async fn a_colliding_name_or_alias_is_refused_naming_the_existing_type() {
    let app = TestApp::spawn().await;
    let admin = app.caller("root.admin", Role::Admin, None);
    let resp = app
        .call(
            "POST",
            "/api/v1/attention-types",
            Some(&admin.token),
            Some(&new_type(
                "legal_orientation_2",
                "ORIENTACION  LEGAL.",
                "Legal advice 2",
            )),
        )
        .await;
    let problem = resp.assert_problem(409, "duplicate_label");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("legal_orientation")),
        "{problem}"
    );
    assert_eq!(problem["errors"][0]["field"], "body.name_es");
    // Nothing of the refused type was written.
    let none = app
        .call(
            "GET",
            "/api/v1/attention-types/legal_orientation_2",
            Some(&admin.token),
            None,
        )
        .await;
    none.assert_problem(404, "not_found");

    let alias = json!({ "label": "Subvención económica" });
    let problem = app
        .call(
            "POST",
            "/api/v1/attention-types/legal_orientation/aliases",
            Some(&admin.token),
            Some(&alias),
        )
        .await
        .assert_problem(409, "duplicate_label");
    assert!(problem["detail"]
        .as_str()
        .is_some_and(|d| d.contains("economic_subsidy")));

    let rename = app
        .call(
            "PATCH",
            "/api/v1/attention-types/repatriation",
            Some(&admin.token),
            Some(&json!({ "name_es": "orientacion legal" })),
        )
        .await;
    rename.assert_problem(428, "precondition_required");
}

#[actix_web::test]
async fn renames_keep_the_old_name_as_a_spelling_and_deprecation_stops_new_use() {
    let app = TestApp::spawn().await;
    let admin = app.caller("root.admin", Role::Admin, None);
    let req = app
        .request("PATCH", "/api/v1/attention-types/stranded_nationals")
        .await
        .insert_header(("Authorization", format!("Bearer {}", admin.token)))
        .insert_header(("If-Match", "\"1\""))
        .insert_header(("Content-Type", "application/json"));
    let resp = app.send(req, Some(json!({ "name_es": "Connacionales varados en el exterior", "status": "deprecated" }).to_string().into_bytes())).await;
    assert_eq!(resp.status, 200, "{:?}", resp.json());
    assert_eq!(resp.json()["status"], "deprecated");
    assert_eq!(
        resolve(&app, &admin, "Connacionales varados").await.json()["code"],
        "stranded_nationals",
        "old name still resolves"
    );
    assert_eq!(
        resolve(&app, &admin, "connacionales varados en el exterior")
            .await
            .json()["code"],
        "stranded_nationals"
    );
    let public = app
        .call("GET", "/api/v1/public/attention-types", None, None)
        .await
        .json();
    assert!(
        !public["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|t| t["code"] == "stranded_nationals"),
        "deprecated types are not offered"
    );
}

#[actix_web::test]
async fn merging_folds_names_and_code_into_the_survivor_and_keeps_a_record() {
    let app = TestApp::spawn().await;
    let admin = app.caller("root.admin", Role::Admin, None);
    // A duplicate made the MAPCE way: another label for the same work.
    let created = app
        .call("POST", "/api/v1/attention-types", Some(&admin.token), Some(&json!({
            "code": "ayuda_economica_urgente", "name_es": "Ayuda económica urgente", "name_en": "Urgent economic help",
            "category": "economic_aid", "kind": "humanitarian", "description_es": "d", "description_en": "d",
            "who_may_ask_es": "w", "who_may_ask_en": "w", "requirements_es": "r", "requirements_en": "r",
            "aliases": ["AEU"] })))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.json());
    let merge = app
        .call(
            "POST",
            "/api/v1/attention-types/ayuda_economica_urgente/merge",
            Some(&admin.token),
            Some(&json!({ "into": "economic_subsidy", "reason": "same service under two labels" })),
        )
        .await;
    assert_eq!(merge.status, 200, "{:?}", merge.json());
    let record = merge.json();
    assert_eq!(record["survivor"]["code"], "economic_subsidy");
    assert_eq!(record["duplicate"]["code"], "ayuda_economica_urgente");
    let moved: Vec<String> =
        serde_json::from_value(record["labels_moved"].clone()).expect("labels");
    assert!(
        moved.contains(&"Ayuda económica urgente".to_owned()) && moved.contains(&"AEU".to_owned()),
        "{moved:?}"
    );

    for label in [
        "ayuda economica urgente",
        "AEU",
        "ayuda_economica_urgente",
        "Urgent economic help",
    ] {
        assert_eq!(
            resolve(&app, &admin, label).await.json()["code"],
            "economic_subsidy",
            "`{label}`"
        );
    }
    let old = app
        .call(
            "GET",
            "/api/v1/attention-types/ayuda_economica_urgente",
            Some(&admin.token),
            None,
        )
        .await
        .json();
    assert_eq!(
        old["status"], "merged",
        "the duplicate is kept, not deleted"
    );
    assert_eq!(old["merged_into"], record["survivor"]["id"]);
    let merges = app
        .call(
            "GET",
            "/api/v1/attention-types/merges",
            Some(&admin.token),
            None,
        )
        .await
        .json();
    assert_eq!(merges["total"], 1);
    assert_eq!(
        merges["items"][0]["reason"],
        "same service under two labels"
    );
    // A second merge of the same duplicate is refused.
    app.call(
        "POST",
        "/api/v1/attention-types/ayuda_economica_urgente/merge",
        Some(&admin.token),
        Some(&json!({ "into": "economic_subsidy", "reason": "again" })),
    )
    .await
    .assert_problem(409, "already_merged");
    let audit = app
        .call(
            "GET",
            "/api/v1/audit?action=attention_type.merge",
            Some(&admin.token),
            None,
        )
        .await
        .json();
    assert_eq!(audit["total"], 1);
}

#[actix_web::test]
async fn protocols_are_versioned() {
    let app = TestApp::spawn().await;
    let admin = app.caller("root.admin", Role::Admin, None);
    let v1 = app
        .call(
            "GET",
            "/api/v1/attention-types/detainee_visit/protocol",
            Some(&admin.token),
            None,
        )
        .await
        .json();
    assert_eq!(v1["version"], 1);
    assert_eq!(
        v1["steps"][0]["deadline_hours"], 24,
        "first consular contact within 24 hours"
    );
    assert_eq!(v1["steps"][0]["required_to_close"], true);
    let body = json!({ "steps": [
        { "title_es": "Primer contacto consular", "title_en": "First consular contact", "required_to_close": true, "deadline_hours": 12 },
        { "title_es": "Visita", "title_en": "Visit", "required_to_close": true, "deadline_hours": null },
    ] });
    let v2 = app
        .call(
            "PUT",
            "/api/v1/attention-types/detainee_visit/protocol",
            Some(&admin.token),
            Some(&body),
        )
        .await;
    assert_eq!(v2.status, 201, "{:?}", v2.json());
    assert_eq!(v2.json()["version"], 2);
    let current = app
        .call(
            "GET",
            "/api/v1/attention-types/detainee_visit/protocol",
            Some(&admin.token),
            None,
        )
        .await
        .json();
    assert_eq!(current["version"], 2);
    assert_eq!(current["steps"].as_array().map(Vec::len), Some(2));
    let old = app
        .call(
            "GET",
            "/api/v1/attention-types/detainee_visit/protocol?version=1",
            Some(&admin.token),
            None,
        )
        .await
        .json();
    assert_eq!(
        old["steps"][0]["deadline_hours"], 24,
        "past versions stay as they were"
    );
    let bad = json!({ "steps": [{ "title_es": "", "title_en": "x", "required_to_close": true, "deadline_hours": 0 }] });
    let problem = app
        .call(
            "PUT",
            "/api/v1/attention-types/detainee_visit/protocol",
            Some(&admin.token),
            Some(&bad),
        )
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "body.steps[0].title_es");
}

#[actix_web::test]
async fn the_public_listing_needs_no_token_and_shows_no_internal_field() {
    let app = TestApp::spawn().await;
    let es = app
        .call("GET", "/api/v1/public/attention-types", None, None)
        .await;
    assert_eq!(es.status, 200);
    assert_eq!(es.header("content-language").as_deref(), Some("es"));
    let body = es.json();
    assert_eq!(body["lang"], "es");
    let items = body["items"].as_array().expect("items");
    assert!(items.len() >= 30);
    let allowed = [
        "code",
        "name",
        "category",
        "description",
        "who_may_ask",
        "requirements",
        "channels",
    ];
    for item in items {
        for key in item.as_object().expect("object").keys() {
            assert!(
                allowed.contains(&key.as_str()),
                "internal field `{key}` exposed"
            );
        }
    }
    let legal = items
        .iter()
        .find(|t| t["code"] == "legal_orientation")
        .expect("legal orientation");
    assert_eq!(legal["name"], "Orientación legal");
    assert_eq!(legal["channels"].as_array().map(Vec::len), Some(5));

    let req = app
        .request("GET", "/api/v1/public/attention-types")
        .await
        .insert_header(("Accept-Language", "en-GB,en;q=0.9"));
    let en = app.send(req, None).await.json();
    assert_eq!(en["lang"], "en");
    assert!(en["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|t| t["name"] == "Legal orientation"));
    let forced = app
        .call("GET", "/api/v1/public/attention-types?lang=en", None, None)
        .await
        .json();
    assert_eq!(forced["lang"], "en");
    app.call("GET", "/api/v1/public/attention-types?lang=fr", None, None)
        .await
        .assert_problem(400, "invalid_query");
}

/// A spelling the type already has changes nothing: the answer is the
/// type, and no second audit row claims a change.
#[actix_web::test]
async fn adding_a_spelling_the_type_has_is_answered_and_not_audited_twice() {
    let app = TestApp::spawn().await;
    let admin = app.caller("cat.admin", Role::Admin, None);
    let alias = json!({ "label": "Orientación en trámites locales" });
    for _ in 0..2 {
        let added = app
            .call(
                "POST",
                "/api/v1/attention-types/legal_orientation/aliases",
                Some(&admin.token),
                Some(&alias),
            )
            .await;
        assert_eq!(added.status, 201, "{:?}", added.json());
        assert!(added.json()["aliases"].as_array().is_some_and(|a| a
            .iter()
            .any(|l| l["label"] == "Orientación en trámites locales")));
    }
    let audited = app
        .call(
            "GET",
            "/api/v1/audit?limit=200&action=attention_type.alias_add",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(audited.status, 200, "{:?}", audited.json());
    assert_eq!(
        audited.json()["items"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        audited.json()
    );
}
