//! The committed OpenAPI document follows the code and is what the server serves.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::TestApp;

fn committed() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
        .unwrap_or_default()
}

#[test]
fn committed_spec_is_up_to_date() {
    let generated = mapce::openapi::spec_json();
    assert!(
        committed() == generated,
        "openapi/openapi.json is stale: regenerate it with `cargo run -- openapi`"
    );
}

#[actix_web::test]
async fn served_spec_equals_committed_spec() {
    let app = TestApp::spawn().await;
    let served = app.get("/api/openapi.json").await;
    assert_eq!(served.status, 200);
    let committed: Value = serde_json::from_str(&committed()).expect("committed spec is JSON");
    assert_eq!(served.json(), committed);
    assert_eq!(committed["openapi"], "3.1.0");
}

#[actix_web::test]
async fn swagger_ui_is_served_without_internet() {
    let app = TestApp::spawn().await;
    let page = app.get("/docs/").await;
    assert_eq!(page.status, 200);
    assert!(
        String::from_utf8_lossy(&page.body).contains("swagger"),
        "Swagger UI page"
    );
    let script = app.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(script.status, 200, "vendored assets are embedded");
}

#[test]
fn every_operation_has_a_unique_id_a_tag_and_problem_responses() {
    let spec: Value = serde_json::from_str(&mapce::openapi::spec_json()).expect("JSON");
    let mut ids = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(ids.insert(id.to_owned()), "{id} used twice");
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{id}: no tag"
            );
            if path.starts_with("/api/v1") {
                let responses = op["responses"].as_object().expect("responses");
                assert!(
                    responses
                        .keys()
                        .any(|s| s.starts_with('4') || s.starts_with('5')),
                    "{id}: no error response documented"
                );
            }
        }
    }
    assert!(ids.contains("list_countries") && ids.contains("get_consulate"));
}

#[test]
fn every_link_names_an_existing_operation_by_operation_id() {
    let spec: Value = serde_json::from_str(&mapce::openapi::spec_json()).expect("JSON");
    let mut ids = BTreeSet::new();
    for item in spec["paths"].as_object().expect("paths").values() {
        for op in item.as_object().expect("path item").values() {
            if let Some(id) = op["operationId"].as_str() {
                ids.insert(id.to_owned());
            }
        }
    }
    let mut links = 0;
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for op in item.as_object().expect("path item").values() {
            let Some(responses) = op["responses"].as_object() else {
                continue;
            };
            for response in responses.values() {
                let Some(found) = response["links"].as_object() else {
                    continue;
                };
                for (name, link) in found {
                    links += 1;
                    let target = link["operationId"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{path} → {name}: no operationId in {link}"));
                    assert!(
                        ids.contains(target),
                        "{path} → {name}: no operation {target}"
                    );
                    assert!(
                        link.get("operation_id").is_none(),
                        "{path} → {name}: snake case"
                    );
                    assert!(
                        link["parameters"]
                            .as_object()
                            .is_some_and(|p| !p.is_empty()),
                        "{path} → {name}: no parameters"
                    );
                }
            }
        }
    }
    assert!(
        links >= 20,
        "creations link to their reads and updates ({links} links)"
    );
}
