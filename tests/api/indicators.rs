//! OEI.05 on a dataset whose truth is known: counting rules, targets,
//! closing a year and its drift, exports, and the operational figures.

use mapce::db::Id;
use mapce::domain::role::Role;
use serde_json::{json, Value};

use crate::helpers::{Caller, TestApp};

/// A case with attentions recorded late (dates in 2025); returns its id.
async fn case_with(
    app: &TestApp,
    officer: &Caller,
    person: Id,
    country: Option<&str>,
    attentions: &[(&str, &str)],
) -> String {
    let mut body = json!({
        "person_id": person, "channel": "consulate_window", "requester": { "kind": "self" },
        "summary": "known dataset",
        "attentions": attentions.iter().map(|(t, d)| json!({ "attention_type": t, "date": d, "description": "x", "late_registration": true })).collect::<Vec<_>>(),
    });
    if let Some(c) = country {
        body["country"] = json!(c);
    }
    let resp = app
        .call("POST", "/api/v1/cases", Some(&officer.token), Some(&body))
        .await;
    assert_eq!(resp.status, 201, "{:?}", resp.json());
    resp.json()["id"].as_str().expect("case").to_owned()
}

fn breakdown<'a>(figures: &'a Value, name: &str) -> &'a Value {
    figures["breakdowns"]
        .as_array()
        .expect("breakdowns")
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("breakdown {name}"))
}

fn persons_in(figures: &Value, name: &str, key: &str) -> i64 {
    breakdown(figures, name)["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["key"] == key)
        .map(|g| g["persons"].as_i64().expect("persons"))
        .unwrap_or(0)
}

struct Known {
    app: TestApp,
    planner: Caller,
    hq: Caller,
    admin: Caller,
    ar: Caller,
    ids: Vec<Id>,
}

/// Four records, three people in 2025:
/// - Rosa (female, born 1990): three attentions of two types in Argentina
///   and Chile (two consulates);
/// - Marco (male, no birth date): one attention in Italy;
/// - Nadia (sex not recorded, born 2010): one attention in Argentina, one
///   voided, one in 2024;
/// - "R. Mamani" (a duplicate of Rosa, merged into her): one attention.
async fn known() -> Known {
    let app = TestApp::spawn().await;
    let ar = app.caller("off.ar", Role::Officer, Some("AR-BUENOS-AIRES"));
    let cl = app.caller("off.cl", Role::Officer, Some("CL-SANTIAGO"));
    let it = app.caller("off.it", Role::Officer, Some("IT-MILAN"));
    let hq = app.caller("hq.analyst", Role::HqAnalyst, None);
    let planner = app.caller("planner.one", Role::Planner, None);
    let admin = app.caller("admin.one", Role::Admin, None);
    let rosa = app
        .register_person(&ar, json!({ "given_names": "Rosa", "first_surname": "Mamani", "sex": "female", "birth_date": "1990-04-02" }))
        .await;
    let marco = app
        .register_person(
            &it,
            json!({ "given_names": "Marco", "first_surname": "Salas", "sex": "male" }),
        )
        .await;
    let nadia = app
        .register_person(&ar, json!({ "given_names": "Nadia", "first_surname": "Torres", "sex": "not_recorded", "birth_date": "2010-08-15" }))
        .await;
    let dup = app
        .register_person(
            &cl,
            json!({ "given_names": "Rosalía", "first_surname": "Ccori", "sex": "female" }),
        )
        .await;
    case_with(
        &app,
        &ar,
        rosa,
        None,
        &[
            ("orientación legal", "2025-03-01"),
            ("orientación legal", "2025-04-01"),
        ],
    )
    .await;
    app.take_on(&cl, rosa).await;
    case_with(
        &app,
        &cl,
        rosa,
        None,
        &[("orientación migratoria", "2025-05-01")],
    )
    .await;
    case_with(
        &app,
        &it,
        marco,
        None,
        &[("orientación legal", "2025-06-01")],
    )
    .await;
    let nadia_case = case_with(
        &app,
        &ar,
        nadia,
        None,
        &[
            ("orientación migratoria", "2025-02-01"),
            ("orientación legal", "2025-02-02"),
        ],
    )
    .await;
    case_with(
        &app,
        &ar,
        nadia,
        None,
        &[("orientación legal", "2024-12-31")],
    )
    .await;
    case_with(&app, &cl, dup, None, &[("orientación legal", "2025-07-01")]).await;
    // void Nadia's second attention
    let case = app
        .call(
            "GET",
            &format!("/api/v1/cases/{nadia_case}"),
            Some(&ar.token),
            None,
        )
        .await
        .json();
    let voided = case["attentions"]
        .as_array()
        .expect("attentions")
        .iter()
        .find(|a| a["date"] == "2025-02-02")
        .expect("attention")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let v = app
        .call(
            "POST",
            &format!("/api/v1/cases/{nadia_case}/attentions/{voided}/void"),
            Some(&ar.token),
            Some(&json!({ "reason": "typed twice" })),
        )
        .await;
    assert_eq!(v.status, 200, "{:?}", v.json());
    let merged = app
        .call(
            "POST",
            &format!("/api/v1/persons/{dup}/merge"),
            Some(&hq.token),
            Some(&json!({ "into": rosa, "reason": "same person" })),
        )
        .await;
    assert_eq!(merged.status, 200, "{:?}", merged.json());
    Known {
        app,
        planner,
        hq,
        admin,
        ar,
        ids: vec![rosa, marco, nadia, dup],
    }
}

async fn oei05(k: &Known, query: &str) -> Value {
    let resp = k
        .app
        .call(
            "GET",
            &format!("/api/v1/indicators/oei05?{query}"),
            Some(&k.planner.token),
            None,
        )
        .await;
    assert_eq!(resp.status, 200, "{:?}", resp.json());
    resp.json()
}

#[actix_web::test]
async fn every_figure_matches_a_dataset_whose_truth_is_known() {
    let k = known().await;
    let r = oei05(&k, "year=2025").await;
    let f = &r["figures"];
    assert_eq!(
        f["persons"], 3,
        "Rosa (and her merged duplicate), Marco, Nadia: {f}"
    );
    assert_eq!(
        f["attentions"], 6,
        "3 + 1 (merged) + 1 + 1; the voided and the 2024 ones are out"
    );
    assert_eq!(persons_in(f, "sex", "female"), 1);
    assert_eq!(persons_in(f, "sex", "male"), 1);
    assert_eq!(persons_in(f, "sex", "not_recorded"), 1);
    // Rosa counts once in Argentina and once in Chile
    assert_eq!(persons_in(f, "country", "AR"), 2);
    assert_eq!(persons_in(f, "country", "CL"), 1);
    assert_eq!(persons_in(f, "country", "IT"), 1);
    assert_eq!(breakdown(f, "country")["sum_of_groups"], 4);
    assert_eq!(breakdown(f, "country")["groups_exceed_total"], true);
    assert_eq!(breakdown(f, "sex")["groups_exceed_total"], false);
    assert_eq!(persons_in(f, "region", "america"), 2);
    assert_eq!(persons_in(f, "region", "europa"), 1);
    assert_eq!(persons_in(f, "consulate", "AR-BUENOS-AIRES"), 2);
    assert_eq!(persons_in(f, "consulate", "CL-SANTIAGO"), 1);
    let types = breakdown(f, "attention_type")["groups"]
        .as_array()
        .expect("groups")
        .clone();
    let legal = types
        .iter()
        .find(|g| g["key"] == "legal_orientation")
        .expect("legal");
    assert_eq!(
        (legal["persons"].as_i64(), legal["attentions"].as_i64()),
        (Some(2), Some(4)),
        "Rosa 3 (with the merged one), Marco 1"
    );
    let migration = types
        .iter()
        .find(|g| g["key"] == "migration_orientation")
        .expect("migration");
    assert_eq!(
        (
            migration["persons"].as_i64(),
            migration["attentions"].as_i64()
        ),
        (Some(2), Some(2))
    );
    // age at the first attention of the period: Rosa 34, Nadia 14, Marco unknown
    assert_eq!(persons_in(f, "age_group", "30-44"), 1);
    assert_eq!(persons_in(f, "age_group", "0-17"), 1);
    assert_eq!(persons_in(f, "age_group", "unknown"), 1);
    assert_eq!(persons_in(f, "channel", "consulate_window"), 3);
    // Table 13: America row 2 persons: 1 female (50 %), 0 male, 1 not recorded
    let america = f["region_by_sex"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["region"] == "america")
        .expect("america")
        .clone();
    assert_eq!(america["total"], 2);
    assert_eq!(america["female"]["persons"], 1);
    assert_eq!(america["female"]["percent"], 50.0);
    assert_eq!(america["not_recorded"]["persons"], 1);
    let total = f["region_by_sex"]
        .as_array()
        .expect("rows")
        .last()
        .expect("total")
        .clone();
    assert_eq!(total["total"], 3);
    assert!(f["counting_rules"].as_array().is_some_and(|r| r.len() >= 5));

    // top 1 folds the rest into others, counting their persons once
    let r = oei05(&k, "year=2025&top=1").await;
    let country = breakdown(&r["figures"], "country");
    assert_eq!(country["groups"].as_array().map(Vec::len), Some(1));
    assert_eq!(country["others"]["groups"], 2);
    assert_eq!(country["others"]["persons"], 2, "Rosa (CL) and Marco (IT)");
    // monthly series inside the year
    let r = oei05(&k, "year=2025&period=quarter").await;
    let q1 = r["figures"]["series"]
        .as_array()
        .expect("series")
        .iter()
        .find(|p| p["period"] == "2025-Q1")
        .expect("Q1")
        .clone();
    assert_eq!(
        (q1["persons"].as_i64(), q1["attentions"].as_i64()),
        (Some(2), Some(2))
    );
    // a free period
    let r = oei05(&k, "from=2024-12-01&to=2025-02-28").await;
    assert_eq!(r["figures"]["persons"], 1, "only Nadia");
    assert_eq!(r["figures"]["attentions"], 2);

    // planners get aggregates only: none of the persons' ids
    let text = serde_json::to_string(&oei05(&k, "year=2025&period=month").await).expect("json");
    for id in &k.ids {
        assert!(
            !text.contains(&id.to_string()),
            "a person id reached the planner"
        );
    }
    // bad periods are refused by field
    let bad = k
        .app
        .call(
            "GET",
            "/api/v1/indicators/oei05?year=2025&from=2025-01-01",
            Some(&k.planner.token),
            None,
        )
        .await;
    assert_eq!(
        bad.assert_problem(400, "invalid_query")["errors"][0]["field"],
        "query.year"
    );
    k.app
        .call(
            "GET",
            "/api/v1/indicators/oei05?from=2025-02-01&to=2025-01-01",
            Some(&k.planner.token),
            None,
        )
        .await
        .assert_problem(400, "invalid_query");
}

#[actix_web::test]
async fn targets_give_avance_and_the_series_compares_years() {
    let k = known().await;
    let put = k
        .app
        .call(
            "PUT",
            "/api/v1/indicators/oei05/targets/2025",
            Some(&k.planner.token),
            Some(&json!({ "target": 4, "sense": "ascending" })),
        )
        .await;
    assert_eq!(put.status, 200, "{:?}", put.json());
    let r = oei05(&k, "year=2025").await;
    assert_eq!(r["avance"]["capped"], 75.0);
    k.app
        .call(
            "PUT",
            "/api/v1/indicators/oei05/targets/2025",
            Some(&k.planner.token),
            Some(&json!({ "target": 2, "sense": "ascending" })),
        )
        .await;
    let r = oei05(&k, "year=2025").await;
    assert_eq!(
        (
            r["avance"]["capped"].as_f64(),
            r["avance"]["uncapped"].as_f64()
        ),
        (Some(100.0), Some(150.0))
    );
    k.app
        .call(
            "PUT",
            "/api/v1/indicators/oei05/targets/2025",
            Some(&k.planner.token),
            Some(&json!({ "target": -1, "sense": "ascending" })),
        )
        .await
        .assert_problem(422, "validation_failed");
    let s = k
        .app
        .call(
            "GET",
            "/api/v1/indicators/oei05/series?from=2024&to=2025",
            Some(&k.hq.token),
            None,
        )
        .await
        .json();
    let years = s["years"].as_array().expect("years");
    assert_eq!(years[0]["persons"], 1, "2024: Nadia");
    assert_eq!(years[1]["persons"], 3);
    assert_eq!(years[1]["change_vs_previous"]["absolute"], 2);
    assert_eq!(years[1]["change_vs_previous"]["percent"], 200.0);
    assert_eq!(years[1]["avance"]["uncapped"], 150.0);
}

#[actix_web::test]
async fn a_closed_year_keeps_its_figures_and_reports_the_drift() {
    let k = known().await;
    let closed = k
        .app
        .call(
            "POST",
            "/api/v1/indicators/oei05/2025/close",
            Some(&k.planner.token),
            None,
        )
        .await;
    assert_eq!(closed.status, 201, "{:?}", closed.json());
    assert_eq!(closed.json()["persons"], 3);
    k.app
        .call(
            "POST",
            "/api/v1/indicators/oei05/2025/close",
            Some(&k.planner.token),
            None,
        )
        .await
        .assert_problem(409, "year_closed");

    // a late entry for a new person, and a merge of Marco into Nadia
    let late = k
        .app
        .register_person(&k.ar, json!({ "given_names": "Tardío", "first_surname": "Ramos", "sex": "male", "birth_date": "1950-01-01" }))
        .await;
    case_with(
        &k.app,
        &k.ar,
        late,
        None,
        &[("orientación legal", "2025-09-09")],
    )
    .await;
    let merged = k
        .app
        .call(
            "POST",
            &format!("/api/v1/persons/{}/merge", k.ids[1]),
            Some(&k.hq.token),
            Some(&json!({ "into": k.ids[2], "reason": "test" })),
        )
        .await;
    assert_eq!(merged.status, 200, "{:?}", merged.json());
    let merge_id = merged.json()["id"].clone();

    let r = oei05(&k, "year=2025").await;
    assert_eq!(r["figures"]["persons"], 3, "served from the snapshot");
    assert!(r["closed"]["snapshot_id"].is_string());
    let d = &r["drift"];
    assert_eq!(d["has_drift"], true, "{d}");
    assert_eq!(d["persons_closed"], 3);
    assert_eq!(
        d["persons_now"], 3,
        "one more (late entry), one less (merge)"
    );
    assert_eq!(d["persons_added"], 1);
    assert_eq!(d["persons_removed"], 1);
    assert_eq!(d["attentions_now"], 7);
    assert_eq!(
        d["merges"][0]["merge_id"], merge_id,
        "the merge that changed it is named"
    );
    assert!(d["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .any(|c| c["breakdown"] == "age_group"
            && c["key"] == "60+"
            && c["closed"] == 0
            && c["now"] == 1));

    // reopening is for admins, with a reason, and audited
    k.app
        .call(
            "POST",
            "/api/v1/indicators/oei05/2025/reopen",
            Some(&k.planner.token),
            Some(&json!({ "reason": "x" })),
        )
        .await
        .assert_problem(403, "forbidden");
    let reopened = k
        .app
        .call(
            "POST",
            "/api/v1/indicators/oei05/2025/reopen",
            Some(&k.admin.token),
            Some(&json!({ "reason": "late entries from Milan" })),
        )
        .await;
    assert_eq!(reopened.status, 204);
    let r = oei05(&k, "year=2025").await;
    assert!(r["closed"].is_null());
    assert_eq!(r["figures"]["attentions"], 7, "live again");
    let audit = k
        .app
        .call(
            "GET",
            "/api/v1/audit?action=oei05.reopen",
            Some(&k.admin.token),
            None,
        )
        .await
        .json();
    assert_eq!(
        audit["items"][0]["details"]["reason"], "late entries from Milan",
        "{audit}"
    );
}

#[actix_web::test]
async fn exports_open_in_a_spreadsheet_with_accents_and_suppression() {
    use calamine::{Data, Reader, Xlsx};
    let k = known().await;
    let csv = k
        .app
        .call(
            "GET",
            "/api/v1/exports/oei05.csv?year=2025",
            Some(&k.planner.token),
            None,
        )
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/csv")));
    assert!(csv.body.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 BOM");
    let text = std::str::from_utf8(&csv.body[3..]).expect("utf-8");
    assert!(text.starts_with("desglose,grupo,columna,valor\r\n"));
    assert!(text.contains("Región y sexo,América,Total,2\r\n"), "{text}");
    assert!(text.contains("País,Argentina,Personas,2\r\n"));

    let suppressed = k
        .app
        .call(
            "GET",
            "/api/v1/exports/oei05.csv?year=2025&suppress_below=2",
            Some(&k.planner.token),
            None,
        )
        .await;
    let text = String::from_utf8_lossy(&suppressed.body).to_string();
    assert!(text.contains("País,Chile,Personas,<2\r\n"), "{text}");
    assert!(text.contains("País,Argentina,Personas,2\r\n"));

    let xlsx = k
        .app
        .call(
            "GET",
            "/api/v1/exports/oei05.xlsx?year=2025",
            Some(&k.planner.token),
            None,
        )
        .await;
    assert_eq!(xlsx.status, 200);
    let mut book: Xlsx<_> =
        Xlsx::new(std::io::Cursor::new(xlsx.body.to_vec())).expect("the XLSX opens");
    let names = book.sheet_names();
    for s in [
        "Resumen",
        "Región y sexo",
        "Sexo",
        "País",
        "Tipo de atención",
        "Notas",
    ] {
        assert!(names.iter().any(|n| n == s), "sheet {s} in {names:?}");
    }
    let table = book.worksheet_range("Región y sexo").expect("sheet");
    let heading: Vec<String> = (0..8)
        .map(|c| {
            table
                .get_value((2, c))
                .map(|v| v.to_string())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        heading,
        [
            "Región",
            "Total",
            "Mujer",
            "%",
            "Hombre",
            "%",
            "Sin registro",
            "%"
        ]
    );
    assert_eq!(
        table.get_value((3, 0)),
        Some(&Data::String("América".into()))
    );
    assert_eq!(table.get_value((3, 1)), Some(&Data::Float(2.0)));
    let json = k
        .app
        .call(
            "GET",
            "/api/v1/exports/oei05.json?year=2025",
            Some(&k.planner.token),
            None,
        )
        .await
        .json();
    assert_eq!(json["sheets"][0]["name"], "Resumen");
    let svg = k
        .app
        .call(
            "GET",
            "/api/v1/charts/oei05/country.svg?year=2025",
            Some(&k.planner.token),
            None,
        )
        .await;
    assert_eq!(svg.header("content-type").as_deref(), Some("image/svg+xml"));
    assert!(String::from_utf8_lossy(&svg.body).contains("Argentina"));
    k.app
        .call(
            "GET",
            "/api/v1/exports/oei05.pdf?year=2025",
            Some(&k.planner.token),
            None,
        )
        .await
        .assert_problem(404, "not_found");
    let audit = k
        .app
        .call(
            "GET",
            "/api/v1/audit?action=oei05.export",
            Some(&k.admin.token),
            None,
        )
        .await
        .json();
    assert!(
        audit["total"].as_i64().is_some_and(|n| n >= 4),
        "exports are audited: {audit}"
    );
}

#[actix_web::test]
async fn operational_figures_show_demand_and_bottlenecks_per_consulate() {
    let k = known().await;
    let sup = k
        .app
        .caller("sup.ar", Role::Supervisor, Some("AR-BUENOS-AIRES"));
    let today = chrono::Utc::now().date_naive();
    let from = format!("{}-01-01", today.format("%Y"));
    let r = k
        .app
        .call(
            "GET",
            &format!("/api/v1/indicators/operations?from=2025-01-01&to={today}"),
            Some(&k.planner.token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    let r = r.json();
    let ar = r["consulates"]
        .as_array()
        .expect("consulates")
        .iter()
        .find(|c| c["code"] == "AR-BUENOS-AIRES")
        .expect("AR")
        .clone();
    assert_eq!(ar["totals"]["new_cases"], 3);
    assert_eq!(
        ar["totals"]["attentions"], 3,
        "2025: Rosa 2 + Nadia 1 (the voided and 2024 ones are out)"
    );
    assert_eq!(ar["backlog"]["open_cases"], 3);
    assert_eq!(ar["attentions_per_officer"][0]["attentions"], 3);
    assert_eq!(
        ar["attentions_per_officer"][0]["officer_id"],
        json!(k.ar.user_id)
    );
    // a supervisor sees only their consulate
    let own = k
        .app
        .call(
            "GET",
            &format!("/api/v1/indicators/operations?from={from}&to={today}"),
            Some(&sup.token),
            None,
        )
        .await
        .json();
    let codes: Vec<&str> = own["consulates"]
        .as_array()
        .expect("consulates")
        .iter()
        .filter_map(|c| c["code"].as_str())
        .collect();
    assert_eq!(codes, ["AR-BUENOS-AIRES"]);
}

/// PATCH with If-Match "1" as `caller`.
async fn patch_v1(app: &TestApp, caller: &Caller, path: &str, body: Value) -> crate::helpers::Resp {
    let req = app
        .request("PATCH", path)
        .await
        .insert_header(("Authorization", format!("Bearer {}", caller.token)))
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("If-Match", "\"1\""));
    app.send(req, Some(body.to_string().into_bytes())).await
}

#[actix_web::test]
async fn corrections_of_a_person_or_a_case_country_reach_the_indicator() {
    let app = TestApp::spawn().await;
    let ar = app.caller("off.ar", Role::Officer, Some("AR-BUENOS-AIRES"));
    let planner = app.caller("planner.one", Role::Planner, None);
    let person = app
        .register_person(
            &ar,
            json!({ "given_names": "Elena", "first_surname": "Vargas", "sex": "not_recorded" }),
        )
        .await;
    let case = case_with(
        &app,
        &ar,
        person,
        None,
        &[("orientación legal", "2025-03-03")],
    )
    .await;
    let fix = patch_v1(
        &app,
        &ar,
        &format!("/api/v1/persons/{person}"),
        json!({ "sex": "female", "birth_date": "1980-01-01" }),
    )
    .await;
    assert_eq!(fix.status, 200, "{:?}", fix.json());
    let moved = patch_v1(
        &app,
        &ar,
        &format!("/api/v1/cases/{case}"),
        json!({ "country": "UY" }),
    )
    .await;
    assert_eq!(moved.status, 200, "{:?}", moved.json());
    let r = app
        .call(
            "GET",
            "/api/v1/indicators/oei05?year=2025",
            Some(&planner.token),
            None,
        )
        .await
        .json();
    let f = &r["figures"];
    assert_eq!(persons_in(f, "sex", "female"), 1, "{f}");
    assert_eq!(persons_in(f, "sex", "not_recorded"), 0);
    assert_eq!(persons_in(f, "age_group", "45-59"), 1);
    assert_eq!(persons_in(f, "country", "UY"), 1);
    assert_eq!(persons_in(f, "country", "AR"), 0);
}
