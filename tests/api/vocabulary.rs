//! A legacy extract as officers wrote it, taught through the API only.
//!
//! The extract has every class of spelling a real one had: channels in
//! short forms, other words and without accents, a blank channel and a file
//! with no channel column; consulates by English city, by shortened city,
//! wrapped in "CG", an office in a territory filed under another country,
//! an office missing from the reference list; a country, a sex and a
//! document type nothing resolves; CRLF line ends. The test shows the
//! report of the first run, then the administrator's aliases and the
//! missing office through the API, then the same file run again, and the
//! exact OEI.05 figures of the extract's truth.

use mapce::domain::role::Role;
use serde_json::{json, Value};

use crate::helpers::{Caller, TestApp};

const HEADER: &str =
    "Fecha;Consulado;País;Tipo_Documento;Numero_Documento;Nombres;Sexo;Fecha_Nacimiento;Tipo_Atención;Canal";

/// Lines 2 to 16 of the extract (line 1 is the header).
const ROWS: [&str; 15] = [
    // 2: everything resolves
    "2024-01-10;IT-MILAN;IT;DNI;40000001;Ana Quispe Rojas;F;1980-01-01;legal_orientation;Teléfono",
    // 3: a short channel form: imported, channel not recorded
    "2024-01-11;Milán;Italia;DNI;40000002;Luis Mamani Cruz;M;1979-02-02;legal_orientation;tel",
    // 4: another word for the window
    "2024-01-12;Milan;IT;DNI;40000003;Rosa Flores Diaz;F;1981-03-03;legal_orientation;Presencial",
    // 5: a blank channel
    "2024-01-13;IT-MILAN;IT;DNI;40000004;Juan Perez Soto;M;1975-04-04;legal_orientation;",
    // 6: the English city, a channel without accents
    "2024-02-01;New York;US;DNI;40000005;Carmen Rojas Vega;F;1970-05-05;legal_orientation;cita electronica",
    // 7: the English city, a short form of the window
    "2024-02-02;Geneva;Suiza;DNI;40000006;Pedro Silva Luna;M;1968-06-06;legal_orientation;ventanilla",
    // 8: a shortened city two offices of Brazil share: refused, never guessed
    "2024-02-03;Rio;BR;DNI;40000007;Elena Torres Paz;F;1990-07-07;legal_orientation;correo",
    // 9: a shortened city only one office has
    "2024-02-04;S. Paulo;Brasil;DNI;40000008;Mario Vargas Rios;M;1985-08-08;legal_orientation;Telefono",
    // 10: an office in a territory filed under the country the ministry reports
    "2024-02-05;Hong Kong;China;DNI;40000009;Lucia Chavez Ramos;F;1988-09-09;legal_orientation;Correo institucional",
    // 11: an office missing from the reference list
    "2024-02-06;Orlando;US;DNI;40000010;Jorge Castro Vela;M;1977-10-10;legal_orientation;tel",
    // 12: a country nothing resolves (and a shortened city)
    "2024-02-07;Washington;EE.UU. de Norteamerica;DNI;40000011;Sofia Reyes Ortiz;F;1992-11-11;legal_orientation;Telefono",
    // 13: a document type and a sex nothing resolves
    "2024-02-08;IT-MILAN;IT;Doc. Nac.;40000012;Pablo Diaz Neyra;H;1983-12-12;legal_orientation;Telefono",
    // 14: Ana again, a short form of the channel
    "2024-03-01;IT-MILAN;IT;DNI;40000001;Ana Quispe Rojas;F;1980-01-01;legal_orientation;tel",
    // 15: the office wrapped in its kind, a channel adjective
    "2024-03-02;CG Milán;IT;DNI;40000013;Raul Soto Lara;M;1960-01-15;legal_orientation;Telefonico",
    // 16: Luis again, by mail
    "2024-03-03;Milan;IT;DNI;40000002;Luis Mamani Cruz;M;1979-02-02;legal_orientation;correo",
];

/// The same kind of extract without a channel column at all (LF ends).
const NO_CHANNEL: &str = "Fecha;Consulado;País;Tipo_Documento;Numero_Documento;Nombres;Sexo;Fecha_Nacimiento;Tipo_Atención\n\
2024-04-01;IT-MILAN;IT;DNI;40000014;Nilda Huaman Poma;F;1966-02-02;legal_orientation\n";

fn crlf_extract() -> Vec<u8> {
    let mut text = String::from(HEADER);
    text.push_str("\r\n");
    for r in ROWS {
        text.push_str(r);
        text.push_str("\r\n");
    }
    text.into_bytes()
}

async fn upload(app: &TestApp, admin: &Caller, body: Vec<u8>, query: &str) -> Value {
    let req = app
        .request("POST", &format!("/api/v1/imports{query}"))
        .await
        .insert_header(("Authorization", format!("Bearer {}", admin.token)))
        .insert_header(("Content-Type", "text/csv; charset=utf-8"));
    let r = app.send(req, Some(body)).await;
    assert_eq!(r.status, 202, "{:?}", r.json());
    let id = r.json()["id"].as_str().expect("id").to_owned();
    let body = app.import_ended(admin, &id).await;
    assert_eq!(body["status"], "succeeded", "{body}");
    body
}

async fn oei05(app: &TestApp, planner: &Caller) -> Value {
    let r = app
        .call(
            "GET",
            "/api/v1/indicators/oei05?year=2024",
            Some(&planner.token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    r.json()
}

/// A breakdown's groups as (key, persons), sorted by key.
fn groups(figures: &Value, name: &str) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = figures["breakdowns"]
        .as_array()
        .expect("breakdowns")
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("breakdown {name}"))["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter(|g| g["persons"].as_i64().unwrap_or(0) > 0)
        .map(|g| {
            (
                g["key"].as_str().expect("key").to_owned(),
                g["persons"].as_i64().expect("persons"),
            )
        })
        .collect();
    out.sort();
    out
}

fn owned(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    v.sort();
    v
}

/// (field, spelling, rows, persons, imported_as) of a report.
fn unresolved(report: &Value) -> Vec<(String, String, i64, i64, Option<String>)> {
    let mut v: Vec<_> = report["unresolved_values"]
        .as_array()
        .expect("unresolved_values")
        .iter()
        .map(|u| {
            assert_eq!(
                u["closest"].as_array().map(Vec::len),
                Some(3),
                "three closest entries: {u}"
            );
            (
                u["field"].as_str().expect("field").to_owned(),
                u["spelling"].as_str().expect("spelling").to_owned(),
                u["rows"].as_i64().expect("rows"),
                u["persons"].as_i64().expect("persons"),
                u["imported_as"].as_str().map(str::to_owned),
            )
        })
        .collect();
    v.sort();
    v
}

fn row(
    field: &str,
    spelling: &str,
    rows: i64,
    persons: i64,
    imported: bool,
) -> (String, String, i64, i64, Option<String>) {
    (
        field.into(),
        spelling.into(),
        rows,
        persons,
        imported.then(|| "not_recorded".to_owned()),
    )
}

async fn teach(app: &TestApp, admin: &Caller, path: &str, spelling: &str) -> Value {
    let r = app
        .call(
            "POST",
            &format!("/api/v1/{path}/aliases"),
            Some(&admin.token),
            Some(&json!({ "spelling": spelling })),
        )
        .await;
    assert_eq!(r.status, 201, "{path} {spelling}: {:?}", r.json());
    r.json()
}

#[actix_web::test]
async fn a_messy_extract_is_taught_through_the_api_and_then_counts_exactly() {
    let app = TestApp::spawn().await;
    let admin = app.caller("admin.vocab", Role::Admin, None);
    let planner = app.caller("planner.vocab", Role::Planner, None);
    let hq = app.caller("hq.vocab", Role::HqAnalyst, None);

    // --- the first run: what the administrator reads ------------------------
    let first = upload(&app, &admin, crlf_extract(), "?name=mapce-2024.csv").await;
    let report = &first["report"];
    assert_eq!(report["rows"], 15);
    // refused: 8 (Rio), 11 (Orlando), 12 (country), 13 (document, sex)
    assert_eq!(report["rows_rejected"], 4, "{report}");
    assert_eq!(report["rows_imported"], 11);
    assert_eq!(
        unresolved(report),
        vec![
            row("canal", "Presencial", 1, 1, true),
            row("canal", "Telefonico", 1, 1, true),
            row("canal", "correo", 1, 1, true),
            row("canal", "tel", 2, 2, true),
            row("canal", "ventanilla", 1, 1, true),
            row("consulado", "Orlando", 1, 1, false),
            row("consulado", "Rio", 1, 1, false),
            row("pais", "EE.UU. de Norteamerica", 1, 1, false),
            row("sexo", "H", 1, 1, false),
            row("tipo_documento", "Doc. Nac.", 1, 1, false),
        ],
        "{report}"
    );
    assert_eq!(report["quality"]["outside_jurisdiction"], 1, "Hong Kong");
    // refusals carry the line an editor shows, CRLF or not
    let refused = app
        .call(
            "GET",
            &format!(
                "/api/v1/imports/{}/rejections",
                first["id"].as_str().expect("id")
            ),
            Some(&admin.token),
            None,
        )
        .await
        .json();
    let lines: Vec<i64> = refused["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["line"].as_i64().expect("line"))
        .collect();
    assert_eq!(lines, vec![8, 11, 12, 13, 13], "{refused}");

    // no person is lost for a channel: 9 persons so far, 5 of them with a
    // channel not recorded (one of them, Ana, also by phone)
    let f = oei05(&app, &planner).await["figures"].clone();
    assert_eq!(f["persons"], 9, "{f}");
    assert_eq!(
        groups(&f, "channel"),
        owned(&[
            ("not_recorded", 6),
            ("phone", 2),
            ("e_appointment", 1),
            ("institutional_email", 1),
        ])
    );

    // the live report lists what is unresolved today
    let q = app
        .call("GET", "/api/v1/data-quality", Some(&hq.token), None)
        .await
        .json();
    let live: Vec<(String, String)> = q["unresolved_values"]
        .as_array()
        .expect("unresolved_values")
        .iter()
        .map(|u| {
            (
                u["field"].as_str().expect("field").to_owned(),
                u["spelling"].as_str().expect("spelling").to_owned(),
            )
        })
        .collect();
    assert!(live.contains(&("canal".into(), "tel".into())), "{q}");
    assert!(
        live.contains(&("consulado".into(), "Orlando".into())),
        "{q}"
    );

    // the year is closed on these figures
    let closed = app
        .call(
            "POST",
            "/api/v1/indicators/oei05/2024/close",
            Some(&planner.token),
            None,
        )
        .await;
    assert!(closed.status < 300, "{:?}", closed.json());

    // --- the administrator teaches, through the API only --------------------
    let tel = teach(&app, &admin, "channels/phone", "tel").await;
    assert_eq!(tel["recoded"]["attentions"], 2, "{tel}");
    assert_eq!(tel["recoded"]["attentions_by_year"]["2024"], 2);
    assert_eq!(
        tel["recoded"]["cases"], 1,
        "Luis's case; Ana's began by phone"
    );
    teach(&app, &admin, "channels/phone", "Telefonico").await;
    teach(&app, &admin, "channels/consulate_window", "Presencial").await;
    teach(&app, &admin, "channels/consulate_window", "ventanilla").await;
    teach(&app, &admin, "channels/institutional_email", "correo").await;
    teach(&app, &admin, "consulates/BR-RIO-DE-JANEIRO", "Rio").await;
    teach(&app, &admin, "countries/US", "EE.UU. de Norteamérica").await;
    teach(&app, &admin, "sexes/male", "H").await;
    teach(&app, &admin, "document-types/dni", "Doc Nac").await;
    // a spelling that already names an entry is refused, naming it
    app.call(
        "POST",
        "/api/v1/consulates/IT-ROMA/aliases",
        Some(&admin.token),
        Some(&json!({ "spelling": "Milán" })),
    )
    .await
    .assert_problem(409, "alias_taken");
    let office = app
        .call(
            "POST",
            "/api/v1/consulates",
            Some(&admin.token),
            Some(&json!({
                "code": "US-ORLANDO",
                "kind": "consulate",
                "country": "US",
                "city": "Orlando",
            })),
        )
        .await;
    assert_eq!(office.status, 201, "{:?}", office.json());

    // the recoding is in the audit log, and the closed year shows the drift
    let audit = app
        .call(
            "GET",
            "/api/v1/audit?action=legacy.channel_recode",
            Some(&admin.token),
            None,
        )
        .await
        .json();
    let recodes = audit["items"].as_array().expect("items");
    assert_eq!(recodes.len(), 5, "{audit}");
    let closed_view = oei05(&app, &planner).await;
    let drift = &closed_view["drift"];
    assert_eq!(drift["has_drift"], true, "{drift}");
    let cell = |key: &str| {
        drift["cells"]
            .as_array()
            .expect("cells")
            .iter()
            .find(|c| c["breakdown"] == "channel" && c["key"] == key)
            .map(|c| (c["closed"].as_i64(), c["now"].as_i64()))
    };
    assert_eq!(cell("not_recorded"), Some((Some(6), Some(1))), "{drift}");
    assert_eq!(cell("phone"), Some((Some(2), Some(4))), "{drift}");
    let reopened = app
        .call(
            "POST",
            "/api/v1/indicators/oei05/2024/reopen",
            Some(&admin.token),
            Some(&json!({ "reason": "legacy spellings taught" })),
        )
        .await;
    assert_eq!(reopened.status, 204);

    // --- the same file again, and the extract without a channel column ------
    let second = upload(&app, &admin, crlf_extract(), "?name=mapce-2024.csv").await;
    let report = &second["report"];
    assert_eq!(report["rows_rejected"], 0, "{report}");
    assert_eq!(report["rows_already_imported"], 11);
    assert_eq!(report["rows_imported"], 4);
    assert_eq!(unresolved(report), vec![]);
    let third = upload(
        &app,
        &admin,
        NO_CHANNEL.as_bytes().to_vec(),
        "?name=nochannel.csv",
    )
    .await;
    assert_eq!(third["report"]["rows_imported"], 1, "{third}");

    // --- the truth of the extract ---------------------------------------------
    let f = oei05(&app, &planner).await["figures"].clone();
    assert_eq!(f["persons"], 14, "{f}");
    assert_eq!(f["attentions"], 16);
    assert_eq!(
        groups(&f, "channel"),
        owned(&[
            ("phone", 7),
            ("consulate_window", 2),
            ("e_appointment", 1),
            ("institutional_email", 3),
            ("not_recorded", 2),
        ]),
        "Juan's blank channel and Nilda's file without one stay not recorded"
    );
    assert_eq!(
        groups(&f, "consulate"),
        owned(&[
            ("IT-MILAN", 7),
            ("US-NUEVA-YORK", 1),
            ("CH-GINEBRA", 1),
            ("BR-RIO-DE-JANEIRO", 1),
            ("BR-SAO-PAULO", 1),
            ("HK-HONG-KONG", 1),
            ("US-ORLANDO", 1),
            ("US-WASHINGTON", 1),
        ])
    );
    assert_eq!(groups(&f, "sex"), owned(&[("female", 7), ("male", 7)]));
    let q = app
        .call("GET", "/api/v1/data-quality", Some(&hq.token), None)
        .await
        .json();
    assert_eq!(
        q["unresolved_values"],
        json!([]),
        "nothing is unresolved today: {q}"
    );
}

#[actix_web::test]
async fn value_mappings_ride_in_the_mapping_file_for_one_import() {
    let app = TestApp::spawn().await;
    let admin = app.caller("admin.map", Role::Admin, None);
    let body = format!(
        "{HEADER}\r\n2024-05-01;Rio;BR;DNI;40000020;Eva Luna Paz;F;1980-01-01;legal_orientation;tel\r\n"
    )
    .into_bytes();
    // a mapping to nothing is refused before anything is read
    let bad = urlencode("canal: tel = fax");
    let req = app
        .request("POST", &format!("/api/v1/imports?mapping={bad}"))
        .await
        .insert_header(("Authorization", format!("Bearer {}", admin.token)))
        .insert_header(("Content-Type", "text/csv; charset=utf-8"));
    let r = app.send(req, Some(body.clone())).await;
    let problem = r.assert_problem(400, "invalid_query");
    assert!(problem.to_string().contains("fax"), "{problem}");

    let mapping = urlencode("canal: tel = Teléfono; consulado: Rio = BR-RIO-DE-JANEIRO");
    let job = upload(&app, &admin, body, &format!("?mapping={mapping}")).await;
    assert_eq!(job["report"]["rows_imported"], 1, "{job}");
    assert_eq!(job["report"]["unresolved_values"], json!([]));
    // for this import only: no alias was added
    let aliases = app
        .call("GET", "/api/v1/aliases", Some(&admin.token), None)
        .await
        .json();
    assert_eq!(aliases["items"], json!([]));
}

#[actix_web::test]
async fn an_alias_is_removed_but_kept_and_audited() {
    let app = TestApp::spawn().await;
    let admin = app.caller("admin.rm", Role::Admin, None);
    let a = teach(&app, &admin, "countries/US", "Gringolandia").await;
    let id = a["id"].as_str().expect("id");
    assert_eq!(a["target"], "US");
    assert_eq!(a["folded"], "gringolandia");
    // the same spelling twice, or blank, or for nothing
    app.call(
        "POST",
        "/api/v1/countries/MX/aliases",
        Some(&admin.token),
        Some(&json!({ "spelling": "GRINGOLANDIA" })),
    )
    .await
    .assert_problem(409, "alias_taken");
    app.call(
        "POST",
        "/api/v1/countries/US/aliases",
        Some(&admin.token),
        Some(&json!({ "spelling": "¿?" })),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.call(
        "POST",
        "/api/v1/channels/fax/aliases",
        Some(&admin.token),
        Some(&json!({ "spelling": "fax" })),
    )
    .await
    .assert_problem(404, "not_found");
    let removed = app
        .call(
            "DELETE",
            &format!("/api/v1/aliases/{id}"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(removed.status, 200, "{:?}", removed.json());
    assert!(removed.json()["removed_at"].is_string());
    app.call(
        "DELETE",
        &format!("/api/v1/aliases/{id}"),
        Some(&admin.token),
        None,
    )
    .await
    .assert_problem(404, "not_found");
    let list = app
        .call(
            "GET",
            "/api/v1/aliases?vocabulary=country",
            Some(&admin.token),
            None,
        )
        .await
        .json();
    assert_eq!(list["items"], json!([]));
    // the spelling is free again, for another entry
    teach(&app, &admin, "countries/MX", "Gringolandia").await;
    let audit = app
        .call(
            "GET",
            "/api/v1/audit?action=vocabulary.alias_remove",
            Some(&admin.token),
            None,
        )
        .await
        .json();
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "{audit}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
