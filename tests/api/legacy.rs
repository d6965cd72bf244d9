//! Legacy MAPCE import: messy labels, repeated people and bad rows; the
//! indicator equals the extract's truth; re-runs add nothing; dry runs and
//! refused atomic imports write nothing. Runs on both backends.

use diesel::prelude::*;
use mapce::db::schema::{attentions, cases, duplicate_pairs, imports, persons, timeline_events};
use mapce::db::{DbConn, Id};
use mapce::domain::role::Role;
use mapce::services::legacy::{self, IndexMode, Options, Report};
use serde_json::json;

use crate::helpers::*;

/// The extract: semicolon-separated, headings in mixed case and accents,
/// one Latin-1 row. Truth for 2024 (with the person registered beforehand
/// by DNI 87654321):
/// - persons: Rosa (DNI, 3 rows in ES and AR plus an identical copy), Juan
///   (passport), Luis (no document, same name and birth twice), Ana (no
///   document, no birth, no sex), María (CE, Latin-1), Pedro (matched to
///   the registered person) = 6; attentions = 10.
/// - sex: female Rosa, María = 2; male Juan, Luis, Pedro = 3; not recorded
///   Ana = 1. Country: ES 6, AR 1 (Rosa counts in both).
/// - 8 bad rows; one 2023 row for Juan.
const GOOD: &[&str] = &[
    "2024-03-05;ES-MADRID;España;DNI;12345678;QUISPE MAMANI, ROSA;F;1985-04-02;Orientacion juridica;ventanilla del consulado",
    "07/03/2024;Consulado General del Perú en Madrid;ESP;dni;12.345.678;Rosa Quispe Mamani;Mujer;02/04/1985;Visita a detenidos;Teléfono",
    "2024-05-10;AR-BUENOS-AIRES;AR;DNI;12345678;ROSA QUISPE;F;1985-04-02;legal_orientation;phone",
    "2024-03-05;ES-MADRID;España;DNI;12345678;QUISPE MAMANI, ROSA;F;1985-04-02;Orientacion juridica;ventanilla del consulado",
    "2024-06-01;Barcelona;España;PASAPORTE;AB123456;Juan Pérez;M;;Asesoría legal;e_appointment",
    "2024-06-02;ES-BARCELONA;;;;Luis Torres Vega;Masculino;1970-01-01;Consulta legal;consulate_window",
    "2024-07-02;ES-BARCELONA;ES;;;LUIS TORRES VEGA;M;01/01/1970;Patrocinio legal;consulate_window",
    "2024-08-01;ES-MADRID;ES;;;Ana Díaz;;;Orientación legal;phone",
    "2023-12-31;ES-BARCELONA;ES;Pasaporte;AB123456;JUAN PEREZ;M;;legal_orientation;phone",
    "2024-10-01;ES-MADRID;ES;DNI;87654321;Pedro Ramos;M;;legal_orientation;phone",
];
const BAD: &[&str] = &[
    "2024-02-30;ES-MADRID;ES;;;Eva Luna Sol;F;;legal_orientation;phone",
    "2024-04-01;ES-MADRID;ES;;;Eva Luna Sol;F;;Trámite raro xyz;phone",
    "2024-04-02;ES-MADRID;ES;;;Eva Luna Sol;F;;Trámite raro xyz;phone",
    "2024-04-03;ES-MADRID;ES;;;Eva Luna Sol;X;;legal_orientation;phone",
    "2024-04-04;ES-MADRID;ES;DNI;123;Eva Luna Sol;F;;legal_orientation;phone",
    "2099-01-01;ES-MADRID;ES;;;Eva Luna Sol;F;;legal_orientation;phone",
    "2024-04-05;Atlantis;ES;;;Eva Luna Sol;F;;legal_orientation;phone",
    "2024-03-01;ES-MADRID;ES;;;Eva Luna Sol;F;2024-05-01;legal_orientation;phone",
];

fn extract(rows: &[&str]) -> Vec<u8> {
    let mut out = "Fecha;Consulado;País;Tipo_Documento;Numero_Documento;Nombres;Sexo;Fecha_Nacimiento;Tipo_Atención;Canal\n"
        .as_bytes()
        .to_vec();
    for r in rows {
        out.extend_from_slice(r.as_bytes());
        out.push(b'\n');
    }
    // María López with a foreigner's card, written by a Latin-1 system
    out.extend_from_slice(
        b"2024-09-01;ES-MADRID;Espa\xf1a;CE;X1234567;Mar\xeda L\xf3pez Cano;F;1990-01-01;Orientaci\xf3n legal;Tel\xe9fono\n",
    );
    out
}

/// An extract of exactly these rows, under the usual header (UTF-8, LF).
fn plain_extract(rows: &[&str]) -> String {
    let mut text = String::from("Fecha;Consulado;País;Tipo_Documento;Numero_Documento;Nombres;Sexo;Fecha_Nacimiento;Tipo_Atención;Canal\n");
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    text
}

/// Imports with a writer connection, as the CLI does (batches written on
/// a second connection while the next is resolved).
fn run(db: &TestDb, conn: &mut DbConn, file: &std::path::Path, opts: Options) -> Report {
    run_with(conn, &mut db.connect(), file, opts).expect("import runs")
}

/// `run` with the writer connection given, and its outcome as it is.
fn run_with(
    conn: &mut DbConn,
    writer: &mut DbConn,
    file: &std::path::Path,
    opts: Options,
) -> Result<Report, mapce::error::AppError> {
    legacy::run(
        conn,
        Some(writer),
        file,
        "extract.csv",
        Id::new(),
        None,
        opts,
        &mut (),
    )
}

fn count(conn: &mut DbConn) -> (i64, i64, i64, i64, i64) {
    (
        persons::table.count().get_result(conn).expect("persons"),
        cases::table.count().get_result(conn).expect("cases"),
        attentions::table
            .count()
            .get_result(conn)
            .expect("attentions"),
        timeline_events::table
            .count()
            .get_result(conn)
            .expect("events"),
        imports::table.count().get_result(conn).expect("imports"),
    )
}

/// Every index of the database with its definition, sorted.
fn index_definitions(conn: &mut DbConn) -> Vec<(String, String)> {
    #[derive(QueryableByName)]
    struct Def {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        def: String,
    }
    let defs: Vec<Def> = match conn {
        DbConn::Pg(c) => diesel::sql_query(
            "SELECT indexname AS name, indexdef AS def FROM pg_indexes \
             WHERE schemaname = current_schema() ORDER BY 1",
        )
        .load(c),
        DbConn::Sqlite(c) => diesel::sql_query(
            "SELECT name, sql AS def FROM sqlite_master \
             WHERE type = 'index' AND sql IS NOT NULL ORDER BY 1",
        )
        .load(c),
    }
    .expect("indexes");
    defs.into_iter().map(|d| (d.name, d.def)).collect()
}

#[actix_web::test]
async fn indexes_an_interrupted_import_set_aside_come_back_at_the_next_start() {
    let app = TestApp::spawn().await;
    let mut conn = app.db.connect();
    let all = index_definitions(&mut conn);
    mapce::db::bulk::indexes::set_aside(&mut conn).expect("set aside");
    let missing = mapce::db::bulk::indexes::missing(&mut conn).expect("missing");
    assert_eq!(missing.len(), mapce::db::bulk::indexes::DEFERRABLE.len());
    assert!(index_definitions(&mut conn).len() < all.len());
    // what `mapce migrate` and `mapce serve` run at start
    mapce::services::setup::migrate(&mut conn).expect("migrate");
    assert_eq!(index_definitions(&mut conn), all);
    assert!(mapce::db::bulk::indexes::missing(&mut conn)
        .expect("missing")
        .is_empty());
}

fn group(figures: &serde_json::Value, breakdown: &str, key: &str) -> i64 {
    figures["breakdowns"]
        .as_array()
        .expect("breakdowns")
        .iter()
        .find(|b| b["name"] == breakdown)
        .and_then(|b| b["groups"].as_array())
        .and_then(|g| g.iter().find(|g| g["key"] == key))
        .map(|g| g["persons"].as_i64().expect("persons"))
        .unwrap_or(0)
}

#[actix_web::test]
async fn a_messy_extract_imports_to_the_truth_and_a_rerun_adds_nothing() {
    let app = TestApp::spawn().await;
    let es = app.caller("off.es", Role::Officer, Some("ES-MADRID"));
    let planner = app.caller("planner.imp", Role::Planner, None);
    let hq = app.caller("hq.imp", Role::HqAnalyst, None);
    let pedro = app
        .register_person(
            &es,
            json!({ "given_names": "Pedro", "first_surname": "Ramos", "sex": "male",
                    "documents": [{ "type": "dni", "number": "87654321" }] }),
        )
        .await;
    // Luis without a document, already known: the imported Luis is a likely
    // duplicate for review, not merged.
    app.register_person(
        &es,
        json!({ "given_names": "Luis", "first_surname": "Torres", "second_surname": "Vega",
                "sex": "male", "birth_date": "1970-01-01" }),
    )
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("extract.csv");
    let mut rows: Vec<&str> = GOOD.to_vec();
    rows.extend_from_slice(BAD);
    std::fs::write(&file, extract(&rows)).expect("write extract");

    let mut conn = app.db.connect();
    let indexes = index_definitions(&mut conn);
    // written with the secondary indexes set aside, as a big load would be
    let report = run(
        &app.db,
        &mut conn,
        &file,
        Options {
            indexes: IndexMode::Defer,
            ..Options::default()
        },
    );
    assert!(report.indexes_set_aside);
    assert_eq!(
        report.keys_set_aside,
        app.db.backend() == mapce::db::Backend::Sqlite,
        "SQLite sets the import keys aside too"
    );
    assert_eq!(
        index_definitions(&mut conn),
        indexes,
        "the rebuilt indexes are the migrations' own"
    );
    assert_eq!(report.rows, 19, "{report:#?}");
    assert_eq!(report.rows_rejected, 8, "{:#?}", report.rejections);
    assert_eq!(report.rows_imported, 11);
    assert_eq!(report.identical_rows, 1);
    assert_eq!(report.persons_new, 5, "Rosa, Juan, Luis, Ana, María");
    assert_eq!(report.persons_matched, 1, "Pedro by his DNI");
    assert_eq!(report.cases_new, 8, "{report:#?}");
    assert!(
        report.duplicates_queued >= 1,
        "imported Luis is a likely duplicate"
    );
    // every refused row is reported with its line, field, value and reason
    let fields: Vec<(u64, &str)> = report
        .rejections
        .iter()
        .map(|r| (r.line, r.field.as_str()))
        .collect();
    for expected in [
        (12, "fecha"),
        (13, "tipo_atencion"),
        (14, "tipo_atencion"),
        (15, "sexo"),
        (16, "numero_documento"),
        (17, "fecha"),
        (18, "consulado"),
        (19, "fecha_nacimiento"),
    ] {
        assert!(fields.contains(&expected), "{expected:?} in {fields:?}");
    }
    let unmapped = &report.unmapped_labels;
    assert_eq!(unmapped.len(), 1, "{unmapped:?}");
    assert_eq!(unmapped[0].label, "Trámite raro xyz");
    assert_eq!(unmapped[0].rows, 2);
    assert!(!unmapped[0].closest.is_empty());
    assert_eq!(report.quality.missing_sex, 1, "Ana");

    // the likely duplicate waits for review; nobody was merged
    let open_pairs: i64 = duplicate_pairs::table
        .filter(duplicate_pairs::status.eq("open"))
        .count()
        .get_result(&mut conn)
        .expect("pairs");
    assert!(open_pairs >= 1);

    // OEI.05 for 2024 from the imported data equals the extract's truth
    let r = app
        .call(
            "GET",
            "/api/v1/indicators/oei05?year=2024",
            Some(&planner.token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    let f = &r.json()["figures"];
    assert_eq!(f["persons"], 6, "{f}");
    assert_eq!(f["attentions"], 10);
    assert_eq!(group(f, "sex", "female"), 2);
    assert_eq!(group(f, "sex", "male"), 3);
    assert_eq!(group(f, "sex", "not_recorded"), 1);
    assert_eq!(group(f, "country", "ES"), 6);
    assert_eq!(group(f, "country", "AR"), 1);
    let r2023 = app
        .call(
            "GET",
            "/api/v1/indicators/oei05?year=2023",
            Some(&planner.token),
            None,
        )
        .await;
    assert_eq!(r2023.json()["figures"]["persons"], 1);

    // HQ sees the imported attention in the matched person's history
    let kinds = app.history_kinds(&hq, pedro, "").await;
    assert!(kinds.iter().any(|k| k == "attention.recorded"), "{kinds:?}");

    // the same file again: nothing new
    let before = count(&mut conn);
    let again = run(&app.db, &mut conn, &file, Options::default());
    assert!(!again.indexes_set_aside, "a small file keeps them (auto)");
    assert_eq!(again.rows_imported, 0, "{again:#?}");
    assert_eq!(again.rows_already_imported, 11);
    assert_eq!(again.persons_new, 0);
    assert_eq!(again.cases_new, 0);
    let after = count(&mut conn);
    assert_eq!(
        (before.0, before.1, before.2, before.3),
        (after.0, after.1, after.2, after.3)
    );
    assert_eq!(after.4, before.4 + 1, "the re-run is itself recorded");
    let r = app
        .call(
            "GET",
            "/api/v1/indicators/oei05?year=2024",
            Some(&planner.token),
            None,
        )
        .await;
    assert_eq!(r.json()["figures"]["persons"], 6);
}

#[test]
fn a_failing_writer_stops_the_import_with_its_own_error() {
    let db = TestDb::migrated();
    let mut conn = db.connect();
    // the writer's database has no tables: its first batch fails
    let elsewhere = TestDb::new();
    let mut writer = elsewhere.connect();
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("extract.csv");
    std::fs::write(&file, extract(GOOD)).expect("write extract");
    let before = count(&mut conn);
    let outcome = run_with(
        &mut conn,
        &mut writer,
        &file,
        Options {
            batch_rows: 2, // more batches than the writer takes
            ..Options::default()
        },
    );
    let error = format!("{:?}", outcome.expect_err("the writer failed"));
    assert!(
        !error.contains("writer stopped"),
        "the writer's own error is reported, not the reader's: {error}"
    );
    let after = count(&mut conn);
    assert_eq!(
        (after.0, after.1, after.2, after.3),
        (before.0, before.1, before.2, before.3),
        "no row was written (only the import's own record)"
    );
}

#[actix_web::test]
async fn a_dry_run_writes_nothing_and_a_refused_atomic_import_rolls_back() {
    let db = TestDb::migrated();
    let mut conn = db.connect();
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("extract.csv");
    let mut rows: Vec<&str> = GOOD.to_vec();
    rows.extend_from_slice(BAD);
    std::fs::write(&file, extract(&rows)).expect("write extract");
    let empty = count(&mut conn);

    let dry = run(
        &db,
        &mut conn,
        &file,
        Options {
            dry_run: true,
            ..Options::default()
        },
    );
    assert!(dry.dry_run);
    assert_eq!(dry.rows_imported, 11, "what it would import");
    assert_eq!(dry.persons_new, 6, "Pedro is new on this database");
    assert_eq!(dry.rows_rejected, 8);
    assert_eq!(count(&mut conn), empty, "a dry run writes nothing");

    let atomic = run(
        &db,
        &mut conn,
        &file,
        Options {
            atomic: true,
            ..Options::default()
        },
    );
    assert!(atomic.rolled_back, "{atomic:#?}");
    assert_eq!(atomic.rows_imported, 0);
    let after = count(&mut conn);
    assert_eq!(
        (after.0, after.1, after.2, after.3),
        (empty.0, empty.1, empty.2, empty.3)
    );
    let status: String = imports::table
        .select(imports::status)
        .first(&mut conn)
        .expect("import row");
    assert_eq!(status, "failed");

    // only good rows: atomic imports them all
    let good = dir.path().join("good.csv");
    std::fs::write(&good, extract(GOOD)).expect("write extract");
    let ok = run(
        &db,
        &mut conn,
        &good,
        Options {
            atomic: true,
            ..Options::default()
        },
    );
    assert!(!ok.rolled_back);
    assert_eq!(ok.rows_imported, 11);
    let n: i64 = attentions::table
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!(n, 11);
}

#[actix_web::test]
async fn an_uploaded_extract_runs_as_a_job_with_its_report_and_refusals() {
    let app = TestApp::spawn().await;
    let admin = app.caller("admin.imp", Role::Admin, None);
    let hq = app.caller("hq.quality", Role::HqAnalyst, None);
    let mut rows: Vec<&str> = GOOD.to_vec();
    rows.extend_from_slice(BAD);
    let upload = |query: &'static str| {
        let body = extract(&rows);
        let app = &app;
        let token = admin.token.clone();
        async move {
            let req = app
                .request("POST", &format!("/api/v1/imports{query}"))
                .await
                .insert_header(("Authorization", format!("Bearer {token}")))
                .insert_header(("Content-Type", "text/csv; charset=utf-8"));
            app.send(req, Some(body)).await
        }
    };
    // a dry run as a job: the report, nothing imported
    let r = upload("?dry_run=true&name=legacy-2024.csv").await;
    assert_eq!(r.status, 202, "{:?}", r.json());
    let id = r.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(
        r.header("location").as_deref(),
        Some(format!("/api/v1/imports/{id}").as_str())
    );
    let job = app.import_ended(&admin, &id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["dry_run"], true);
    assert_eq!(job["report"]["rows_imported"], 11);
    let mut conn = app.db.connect();
    let n: i64 = attentions::table
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!(n, 0, "a dry run writes no attention");

    // the real run
    let r = upload("").await;
    assert_eq!(r.status, 202);
    let id = r.json()["id"].as_str().expect("id").to_owned();
    let job = app.import_ended(&admin, &id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["rows_imported"], 11);
    assert_eq!(job["rows_rejected"], 8);
    assert_eq!(job["report"]["unmapped_labels"][0]["rows"], 2);
    let page = app
        .call(
            "GET",
            &format!("/api/v1/imports/{id}/rejections?limit=3"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(page.status, 200);
    let p = page.json();
    assert_eq!(p["total"], 8);
    assert_eq!(p["items"].as_array().expect("items").len(), 3);
    assert_eq!(p["items"][0]["line"], 12);
    assert_eq!(p["items"][0]["field"], "fecha");
    assert!(p["next"].is_string());

    // the wrong kind of body, and an unknown mapping field
    let req = app
        .request("POST", "/api/v1/imports")
        .await
        .insert_header(("Authorization", format!("Bearer {}", admin.token)))
        .insert_header(("Content-Type", "application/json"));
    app.send(req, Some(b"{}".to_vec()))
        .await
        .assert_problem(415, "unsupported_media_type");
    upload("?mapping=colour%3Dx")
        .await
        .assert_problem(400, "invalid_query");

    // the live data-quality report sees the import's findings
    let q = app
        .call("GET", "/api/v1/data-quality", Some(&hq.token), None)
        .await;
    assert_eq!(q.status, 200, "{:?}", q.json());
    let q = q.json();
    assert_eq!(q["persons_missing_sex"]["count"], 1, "Ana: {q}");
    assert_eq!(q["unmapped_labels"][0]["label"], "Trámite raro xyz");
    assert_eq!(q["unmapped_labels"][0]["rows"], 2);
    assert_eq!(q["attentions_in_future"]["count"], 0);
}

/// On PostgreSQL the import skips the per-row foreign-key triggers and
/// checks each batch's keys with one query per key: a dangling reference
/// still fails its batch, which rolls back; rows written to a table not
/// named for checking are refused; and a role that may not skip the
/// triggers is told so (the import then inserts with them).
#[actix_web::test]
#[cfg_attr(
    not(pg_tests),
    ignore = "needs TEST_DATABASE_URL (a PostgreSQL server)"
)]
async fn batch_checked_foreign_keys_refuse_a_dangling_reference() {
    use mapce::db::bulk::checked_load;

    let admin = pg_admin_url().expect("TEST_DATABASE_URL");
    let db = TestDb::postgres(&admin);
    let mut conn = db.connect();
    mapce::services::setup::migrate(&mut conn).expect("migrate");
    let keys = checked_load::foreign_keys(&mut conn, &["legacy_rows"])
        .expect("catalogue")
        .expect("the test's superuser may skip the triggers");
    let mut named: Vec<(String, String)> = keys
        .iter()
        .map(|k| (k.columns.join(","), k.parent.clone()))
        .collect();
    named.sort();
    assert_eq!(
        named,
        [
            ("attention_id".to_owned(), "attentions".to_owned()),
            ("import_id".to_owned(), "imports".to_owned())
        ]
    );

    refuses_a_ghost_row(&mut conn, &keys);

    // a login role without the privilege: no shortcut
    let role = format!("mapce_limited_{}", std::process::id());
    diesel::sql_query(format!("CREATE ROLE {role} LOGIN"))
        .execute(&mut conn)
        .expect("create role");
    let mapce::db::DatabaseUrl::Postgres(url) = &db.url else {
        unreachable!("postgres")
    };
    let scheme = url.find("://").expect("scheme") + 3;
    let at = url.find('@').expect("user@host");
    let limited_url = format!("{}{role}{}", &url[..scheme], &url[at..]);
    let outcome = diesel::PgConnection::establish(&limited_url)
        .map_err(|e| e.to_string())
        .and_then(|c| {
            checked_load::foreign_keys(&mut DbConn::Pg(c), &["legacy_rows"])
                .map_err(|e| e.to_string())
        });
    diesel::sql_query(format!("DROP ROLE {role}"))
        .execute(&mut conn)
        .expect("drop role");
    assert!(
        matches!(outcome, Ok(None)),
        "a role without the privilege keeps the triggers: {outcome:?}"
    );
}

/// SQLite: the loading connection turns per-row enforcement off and checks
/// per batch; a dangling reference still fails and rolls back, a key
/// column whose values are not given refuses the batch, and enforcement
/// comes back on (verified) for the connection's next user.
#[test]
fn sqlite_batch_checked_foreign_keys_refuse_a_dangling_reference() {
    use diesel::result::{DatabaseErrorKind, Error};
    use mapce::db::bulk::checked_load;
    use mapce::db::schema::legacy_rows as lr;

    let db = TestDb::sqlite();
    let mut conn = db.connect();
    mapce::services::setup::migrate(&mut conn).expect("migrate");
    let keys = checked_load::foreign_keys(&mut conn, &["legacy_rows", "duplicate_pairs"])
        .expect("catalogue")
        .expect("SQLite always checks per batch");
    let mut named: Vec<(String, String, String)> = keys
        .iter()
        .map(|k| (k.child.clone(), k.columns.join(","), k.parent.clone()))
        .collect();
    named.sort();
    let expected = [
        ("duplicate_pairs", "decided_by", "users"),
        ("duplicate_pairs", "person_a", "persons"),
        ("duplicate_pairs", "person_b", "persons"),
        ("legacy_rows", "attention_id", "attentions"),
        ("legacy_rows", "import_id", "imports"),
    ]
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    assert_eq!(named, expected);
    let keys: Vec<_> = keys
        .into_iter()
        .filter(|k| k.child == "legacy_rows")
        .collect();

    checked_load::enforce(&mut conn, false).expect("enforcement off");
    let (import, ghost) = refuses_a_ghost_row(&mut conn, &keys);

    // back on: SQLite itself refuses the same row again
    checked_load::enforce(&mut conn, true).expect("enforcement on");
    let plain = diesel::insert_into(lr::table)
        .values((
            lr::fingerprint.eq("ghost"),
            lr::import_id.eq(import),
            lr::line.eq(1_i64),
            lr::attention_id.eq(ghost),
        ))
        .execute(&mut conn);
    assert!(
        matches!(
            plain,
            Err(Error::DatabaseError(
                DatabaseErrorKind::ForeignKeyViolation,
                _
            ))
        ),
        "{plain:?}"
    );
}

/// A big load on SQLite sets the import's own unique keys aside too: the
/// rows and legacy cases already stored are read into memory first, so an
/// extract that repeats them adds them once, and the keys come back as the
/// migrations define them. On PostgreSQL the keys stay; same outcome.
#[actix_web::test]
async fn import_keys_set_aside_still_skip_stored_rows_and_reuse_their_cases() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().expect("dir");
    let mut conn = app.db.connect();
    let indexes = index_definitions(&mut conn);
    let first: Vec<&str> = vec![GOOD[0], GOOD[4]];
    let small = dir.path().join("small.csv");
    std::fs::write(&small, extract(&first)).expect("write");
    let keep = Options {
        indexes: IndexMode::Keep,
        ..Options::default()
    };
    let a = run(&app.db, &mut conn, &small, keep);
    assert!(!a.keys_set_aside);
    // María's Latin-1 row comes with every extract: 3 rows, 3 cases
    assert_eq!((a.rows_imported, a.cases_new), (3, 3), "{a:#?}");

    // the same rows, Rosa again in Madrid in 2024 (her case), 20 new persons
    let fillers: Vec<String> = (0..20_u8)
        .map(|i| {
            format!(
                "2024-01-{:02};ES-MADRID;ES;DNI;{:08};Persona {} Prueba;F;;legal_orientation;phone",
                i + 1,
                40_000_000 + u32::from(i),
                char::from(b'A' + i)
            )
        })
        .collect();
    let mut rows = first.clone();
    rows.push(
        "2024-11-20;ES-MADRID;España;DNI;12345678;Rosa Quispe Mamani;F;1985-04-02;legal_orientation;phone",
    );
    rows.extend(fillers.iter().map(String::as_str));
    let big = dir.path().join("big.csv");
    std::fs::write(&big, extract(&rows)).expect("write");
    let defer = Options {
        indexes: IndexMode::Defer,
        ..Options::default()
    };
    let b = run(&app.db, &mut conn, &big, defer);
    assert_eq!(
        b.keys_set_aside,
        app.db.backend() == mapce::db::Backend::Sqlite,
        "{b:#?}"
    );
    assert_eq!(b.rows_already_imported, 3, "{b:#?}");
    assert_eq!(b.rows_imported, 21);
    assert_eq!(b.cases_new, 20, "Rosa's new row joins her stored 2024 case");
    assert_eq!(
        index_definitions(&mut conn),
        indexes,
        "the keys and indexes are the migrations' own again"
    );
    let lc: i64 = mapce::db::schema::legacy_cases::table
        .count()
        .get_result(&mut conn)
        .expect("legacy cases");
    assert_eq!(lc, 23);
    // and they hold: a third run adds nothing
    let c = run(&app.db, &mut conn, &big, Options::default());
    assert_eq!(
        (c.rows_imported, c.rows_already_imported),
        (0, 24),
        "{c:#?}"
    );
}

/// Writes a legacy row naming an attention and an import that do not exist
/// through `checked_load::write` with `keys` (legacy_rows' foreign keys):
/// it must fail as a foreign-key violation, a batch that does not give one
/// key column's values must be refused, and neither may leave a row.
/// Returns the import and attention ids it used.
fn refuses_a_ghost_row(
    conn: &mut DbConn,
    keys: &[mapce::db::bulk::checked_load::ForeignKey],
) -> (Id, Id) {
    use diesel::result::{DatabaseErrorKind, Error};
    use mapce::db::bulk::checked_load::{self, Values, Written};
    use mapce::db::schema::legacy_rows as lr;

    let ghost = Id::new();
    let import = Id::new();
    let write_ghost = |conn: &mut DbConn, written: &[Written]| {
        mapce::db::write_tx(conn, |conn| {
            checked_load::write(conn, keys, written, |conn| {
                diesel::insert_into(lr::table)
                    .values((
                        lr::fingerprint.eq("ghost"),
                        lr::import_id.eq(import),
                        lr::line.eq(1_i64),
                        lr::attention_id.eq(ghost),
                    ))
                    .execute(conn)
                    .map(|_| ())
            })
        })
    };
    let named = [
        Written {
            table: "legacy_rows",
            column: "attention_id",
            values: Values::ids([ghost]),
        },
        Written {
            table: "legacy_rows",
            column: "import_id",
            values: Values::ids([import]),
        },
    ];
    match write_ghost(conn, &named) {
        Err(Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info)) => {
            assert!(info.message().contains("legacy_rows"), "{}", info.message())
        }
        other => panic!("a dangling reference must fail, got {other:?}"),
    }
    assert!(
        matches!(
            write_ghost(conn, &named[..1]),
            Err(Error::QueryBuilderError(_))
        ),
        "a key column whose values are not given refuses the batch"
    );
    let rows: i64 = lr::table.count().get_result(conn).expect("count");
    assert_eq!(rows, 0, "both transactions rolled back");
    (import, ghost)
}

/// On SQLite the writer gathers whole batches into one transaction
/// (`commit_rows`): the same import either way, and a failing batch rolls
/// back the batches of its transaction, no others. A trigger of this test
/// refuses the attention of file line 6 (batches of two rows).
#[test]
fn gathered_batches_commit_together_and_fail_together() {
    use diesel::connection::SimpleConnection;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("extract.csv");
    std::fs::write(&file, extract(GOOD)).expect("write extract");
    let import = |commit_rows: usize, refuse_line_6: bool| {
        let db = TestDb::sqlite();
        let mut conn = db.connect();
        mapce::services::setup::migrate(&mut conn).expect("migrate");
        if refuse_line_6 {
            let DbConn::Sqlite(c) = &mut conn else {
                unreachable!("a SQLite test database")
            };
            c.batch_execute(
                "CREATE TRIGGER refuse_line_6 BEFORE INSERT ON attentions \
                 WHEN NEW.description LIKE '%(línea 6)' \
                 BEGIN SELECT RAISE(ABORT, 'line 6 refused'); END;",
            )
            .expect("trigger");
        }
        let outcome = run_with(
            &mut conn,
            &mut db.connect(),
            &file,
            Options {
                batch_rows: 2,
                commit_rows,
                ..Options::default()
            },
        );
        (outcome, count(&mut conn))
    };

    let (one, one_counts) = import(2, false);
    let (gathered, gathered_counts) = import(8, false);
    let (one, gathered) = (one.expect("one batch a time"), gathered.expect("gathered"));
    assert_eq!(one_counts, gathered_counts);
    assert_eq!(
        (
            one.rows_imported,
            one.persons_new,
            one.cases_new,
            one.duplicates_queued
        ),
        (
            gathered.rows_imported,
            gathered.persons_new,
            gathered.cases_new,
            gathered.duplicates_queued
        )
    );
    assert!(one.rows_imported >= 6, "{one:#?}");

    // one batch per transaction: the batches before the refused one stay
    // (lines 2 and 3 are the first batch, so there is at least one)
    let (failed, counts) = import(2, true);
    let error = format!("{:?}", failed.expect_err("line 6 is refused"));
    assert!(error.contains("line 6 refused"), "{error}");
    assert!(
        counts.2 >= 2,
        "the batches before the refused one: {counts:?}"
    );
    // four batches per transaction: the refused one (the second or third)
    // takes the batches before it in its transaction along
    let (failed, counts) = import(8, true);
    let error = format!("{:?}", failed.expect_err("line 6 is refused"));
    assert!(error.contains("line 6 refused"), "{error}");
    assert_eq!(counts.2, 0, "its transaction's batches roll back together");
}

/// The SQLite import writer inserts through prepared statements on the
/// connection's handle (`db::bulk::raw_insert`): every column of a row written
/// that way is stored exactly as diesel stores it (same text, same storage
/// class: `UNION` keeps both rows if any value differs), and reads back
/// equal. Every optional field is set, and the timestamps have
/// microseconds, so each binder is checked.
#[test]
fn raw_inserts_store_exactly_what_diesel_stores() {
    use chrono::{NaiveDate, TimeZone, Utc};
    use mapce::db::bulk::raw_insert::RawInserts;
    use mapce::db::Ts;
    use mapce::models::bulk::{insert_population, insert_population_raw, Population};
    use mapce::models::cases::{Attention, Case};
    use mapce::models::persons::{Person, TimelineEvent};

    // the values, not their parents, are what this test compares
    let (db, mut conn) = migrated_sqlite_without_foreign_keys();
    let at = |micros: u32| {
        Ts(Utc
            .with_ymd_and_hms(2024, 2, 29, 23, 5, 9)
            .single()
            .expect("a time")
            + chrono::Duration::microseconds(micros.into()))
    };
    let date = NaiveDate::from_ymd_opt(1985, 4, 2).expect("a date");
    let person = Person {
        id: Id::new(),
        given_names: "Rosa Ñusta".into(),
        first_surname: "Quispe".into(),
        second_surname: Some("Mamani".into()),
        birth_date: Some(date),
        sex: "female".into(),
        nationalities: r#"["PE"]"#.into(),
        phone: Some("+34 600".into()),
        email: Some("rosa@example.org".into()),
        address_abroad: Some("Calle 1".into()),
        name_key: "mamani quispe rosa".into(),
        registered_consulate_id: Some(Id::new()),
        merged_into_id: Some(Id::new()),
        version: 3,
        created_at: at(7),
        updated_at: at(999_999),
    };
    let case = Case {
        id: Id::new(),
        person_id: person.id,
        consulate_id: Id::new(),
        country_code: "ES".into(),
        city: Some("Madrid".into()),
        channel: "phone".into(),
        requester_kind: "relative".into(),
        requester_name: Some("Ana".into()),
        requester_relationship: Some("hermana".into()),
        requester_contact: Some("ana@example.org".into()),
        summary: "Atenciones 2024".into(),
        flags: r#"["minor"]"#.into(),
        protected: true,
        status: "closed".into(),
        outcome: Some("resolved".into()),
        closed_at: Some(at(10)),
        assigned_officer_id: Some(Id::new()),
        opened_at: at(0),
        created_by: Some(Id::new()),
        version: 2,
        created_at: at(1),
        updated_at: at(2),
    };
    let attention = Attention {
        id: Id::new(),
        case_id: case.id,
        person_id: person.id,
        consulate_id: case.consulate_id,
        attention_type_id: Id::new(),
        attended_on: NaiveDate::from_ymd_opt(2024, 12, 31).expect("a date"),
        channel: "phone".into(),
        officer_id: Some(Id::new()),
        description: "Importada (línea 2)".into(),
        late_registration: true,
        voided_at: Some(at(3)),
        voided_by: Some(Id::new()),
        void_reason: Some("duplicada".into()),
        created_at: at(4),
        country_code: Some("ES".into()),
        person_sex: Some("female".into()),
        person_birth_date: Some(date),
    };
    let event = TimelineEvent {
        id: Id::new(),
        person_id: person.id,
        case_id: Some(case.id),
        consulate_id: Some(case.consulate_id),
        kind: "attention.recorded".into(),
        at: at(5),
        actor_id: Some(Id::new()),
        attention_type_id: Some(attention.attention_type_id),
        payload: r#"{"a":"ñ"}"#.into(),
    };
    let rows = |p: &Person, c: &Case, a: &Attention, e: &TimelineEvent| {
        (
            vec![p.clone()],
            vec![c.clone()],
            vec![a.clone()],
            vec![e.clone()],
        )
    };
    let (p, c, a, e) = rows(&person, &case, &attention, &event);
    insert_population(&mut conn, &p, &[], &c, &a, &e).expect("diesel inserts");
    // the same rows under new ids, through the prepared statements
    let (mut p2, mut c2, mut a2, mut e2) = rows(&person, &case, &attention, &event);
    p2[0].id = Id::new();
    c2[0].id = Id::new();
    a2[0].id = Id::new();
    e2[0].id = Id::new();
    let mut raw = RawInserts::new(&mut conn).expect("a SQLite connection's handle");
    mapce::db::write_tx(&mut conn, |conn| {
        insert_population_raw(
            conn,
            &mut raw,
            Population {
                persons: &p2,
                keys: &[],
                cases: &c2,
                attentions: &a2,
                events: &e2,
            },
        )
    })
    .expect("raw inserts");

    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    #[derive(QueryableByName)]
    struct Columns {
        #[diesel(sql_type = diesel::sql_types::Text)]
        columns: String,
    }
    for (table, a, b) in [
        ("persons", person.id, p2[0].id),
        ("cases", case.id, c2[0].id),
        ("attentions", attention.id, a2[0].id),
        ("timeline_events", event.id, e2[0].id),
    ] {
        let cols: Columns = diesel::sql_query(format!(
            "SELECT group_concat(name, ', ') AS columns FROM pragma_table_info('{table}') WHERE name <> 'id'"
        ))
        .get_result(&mut conn)
        .expect("columns");
        let distinct: N = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM (SELECT {c} FROM {table} WHERE id = '{a}' \
             UNION SELECT {c} FROM {table} WHERE id = '{b}')",
            c = cols.columns
        ))
        .get_result(&mut conn)
        .expect("compare");
        assert_eq!(
            distinct.n, 1,
            "{table}: the two rows differ in {}",
            cols.columns
        );
    }
    let read = mapce::models::persons::find_person(&mut conn, p2[0].id)
        .expect("read")
        .expect("the raw person");
    assert_eq!(read, p2[0]);
    let read: Attention = attentions::table
        .find(a2[0].id)
        .select(Attention::as_select())
        .first(&mut conn)
        .expect("the raw attention");
    assert_eq!(read, a2[0]);

    // only ever on the connection it was made for
    let mut other = db.connect();
    let refused = mapce::db::write_tx(&mut other, |conn| {
        insert_population_raw(
            conn,
            &mut raw,
            Population {
                persons: &p2,
                keys: &[],
                cases: &[],
                attentions: &[],
                events: &[],
            },
        )
    });
    let error = format!("{:?}", refused.expect_err("another connection"));
    assert!(error.contains("another connection"), "{error}");
}

/// A migrated SQLite database and a connection to it that does not
/// enforce foreign keys (the raw-insert tests store rows without parents).
fn migrated_sqlite_without_foreign_keys() -> (TestDb, DbConn) {
    use diesel::connection::SimpleConnection;
    let db = TestDb::sqlite();
    let mut conn = db.connect();
    mapce::services::setup::migrate(&mut conn).expect("migrate");
    let DbConn::Sqlite(c) = &mut conn else {
        unreachable!("a SQLite test database")
    };
    c.batch_execute("PRAGMA foreign_keys = OFF")
        .expect("pragma");
    (db, conn)
}

/// Statements of many rows: texts are bound from one buffer per statement
/// (`SQLITE_STATIC`), so 120 persons, each value different (two 50-row
/// statements and 20 single rows), must read back exactly as given; and a
/// row refused in the middle of a statement (`INSERT OR FAIL`) fails the
/// insert with its kind, and the rollback leaves none of the statement's
/// rows.
#[test]
fn raw_inserts_of_many_rows_store_each_row_and_fail_whole() {
    use chrono::{NaiveDate, TimeZone, Utc};
    use diesel::result::{DatabaseErrorKind, Error};
    use mapce::db::bulk::raw_insert::RawInserts;
    use mapce::db::schema::person_match_keys as mk;
    use mapce::db::Ts;
    use mapce::models::bulk::{insert_population_raw, Population};
    use mapce::models::persons::Person;

    let (_db, mut conn) = migrated_sqlite_without_foreign_keys();
    let mut people: Vec<Person> = (0..120_u32)
        .map(|i| Person {
            id: Id::new(),
            given_names: format!("Rosa {i}"),
            first_surname: "Quispe".repeat(1 + i as usize % 7),
            second_surname: (i % 3 != 0).then(|| format!("Mamani{i}")),
            birth_date: NaiveDate::from_ymd_opt(1950 + i as i32 % 60, 1 + i % 12, 1 + i % 28),
            sex: ["female", "male", "not_recorded"][i as usize % 3].into(),
            nationalities: r#"["PE"]"#.into(),
            phone: (i % 2 == 0).then(|| format!("+34 600 {i:04}")),
            email: None,
            address_abroad: (i % 5 == 0).then(|| "Calle ñandú ".repeat(i as usize % 4 + 1)),
            name_key: format!("quispe rosa {i}"),
            registered_consulate_id: Some(Id::new()),
            merged_into_id: None,
            version: i as i32,
            created_at: Ts(Utc
                .timestamp_opt(1_700_000_000 + i64::from(i), i * 1000)
                .single()
                .expect("time")),
            updated_at: Ts(Utc
                .timestamp_opt(1_710_000_000 - i64::from(i), 0)
                .single()
                .expect("time")),
        })
        .collect();
    people.sort_by_key(|p| p.id);
    let mut raw = RawInserts::new(&mut conn).expect("a SQLite connection's handle");
    let mut keys: Vec<(Id, String)> = people.iter().map(|p| (p.id, p.name_key.clone())).collect();
    keys.sort();
    let population = |persons, keys| Population {
        persons,
        keys,
        cases: &[],
        attentions: &[],
        events: &[],
    };
    mapce::db::write_tx(&mut conn, |conn| {
        insert_population_raw(conn, &mut raw, population(&people, &keys))
    })
    .expect("raw inserts");
    let mut stored: Vec<Person> = persons::table
        .select(Person::as_select())
        .load(&mut conn)
        .expect("persons");
    stored.sort_by_key(|p| p.id);
    assert_eq!(stored, people, "every row as given");
    let mut stored_keys: Vec<(Id, String)> = mk::table
        .select((mk::person_id, mk::match_key))
        .load(&mut conn)
        .expect("keys");
    stored_keys.sort();
    assert_eq!(stored_keys, keys);

    // 60 new keys, the 31st already stored: its statement fails, all roll back
    let more: Vec<(Id, String)> = (0..60)
        .map(|i| match i {
            30 => keys[7].clone(),
            _ => (Id::new(), format!("key {i}")),
        })
        .collect();
    let failed = mapce::db::write_tx(&mut conn, |conn| {
        insert_population_raw(conn, &mut raw, population(&[], &more))
    });
    assert!(
        matches!(
            failed,
            Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
        ),
        "{failed:?}"
    );
    let after: i64 = mk::table.count().get_result(&mut conn).expect("count");
    assert_eq!(after, 120, "none of the failed statement's rows stay");
}

/// `n` in letters (a name may hold no digit).
fn letters(mut n: usize) -> String {
    let mut out = String::new();
    loop {
        out.push(char::from(b'a' + (n % 26) as u8));
        n /= 26;
        if n == 0 {
            return out;
        }
    }
}

/// A big file run again is mostly rows already imported: `auto` decides by
/// the rows likely new (a sample of head and tail), so the second run keeps
/// the indexes instead of setting them aside and rebuilding them.
#[actix_web::test]
async fn a_big_file_run_again_keeps_its_indexes() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("big.csv");
    // 600 rows padded to the size of ~60 000 (the estimate goes by bytes):
    // an extra column of notes the mapping ignores.
    let mut text = String::from("Fecha;Consulado;País;Tipo_Documento;Numero_Documento;Nombres;Sexo;Fecha_Nacimiento;Tipo_Atención;Canal;Notas\n");
    let pad = "x".repeat(10_000);
    for i in 0..600 {
        text.push_str(&format!(
            "2024-03-05;ES-MADRID;ES;DNI;{:08};Persona {};F;1985-04-02;legal_orientation;phone;{pad}\n",
            30_000_000 + i,
            letters(i)
        ));
    }
    std::fs::write(&file, text).expect("write");
    let mut conn = app.db.connect();
    let first = run(&app.db, &mut conn, &file, Options::default());
    assert_eq!(first.rows_imported, 600, "{first:#?}");
    assert!(first.indexes_set_aside, "all new and big: set aside");
    assert!(
        first.rows_estimated_new.is_some_and(|n| n >= 50_000),
        "{first:#?}"
    );
    let again = run(&app.db, &mut conn, &file, Options::default());
    assert_eq!(again.rows_imported, 0);
    assert_eq!(again.rows_estimated_new, Some(0), "{again:#?}");
    assert!(!again.indexes_set_aside, "nothing new: the indexes stay");
}

/// On PostgreSQL a large import ends with VACUUM ANALYZE of the
/// attentions, so the figures' index-only scans find a visibility map
/// (here "large" is lowered to one row).
#[actix_web::test]
#[cfg_attr(
    not(pg_tests),
    ignore = "needs TEST_DATABASE_URL (a PostgreSQL server)"
)]
async fn a_large_import_on_postgresql_leaves_the_attentions_vacuumed() {
    let admin = pg_admin_url().expect("TEST_DATABASE_URL");
    let db = TestDb::postgres(&admin);
    let mut conn = db.connect();
    mapce::services::setup::migrate(&mut conn).expect("migrate");
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("extract.csv");
    std::fs::write(&file, extract(GOOD)).expect("write");
    let visible = |conn: &mut DbConn| -> i32 {
        #[derive(QueryableByName)]
        struct Pages {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            relallvisible: i32,
        }
        let DbConn::Pg(c) = conn else {
            panic!("PostgreSQL")
        };
        diesel::sql_query("SELECT relallvisible FROM pg_class WHERE relname = 'attentions'")
            .get_result::<Pages>(c)
            .expect("pg_class")
            .relallvisible
    };
    let report = run(
        &db,
        &mut conn,
        &file,
        Options {
            vacuum_after_rows: 1,
            ..Options::default()
        },
    );
    assert!(report.rows_imported > 0);
    assert!(visible(&mut conn) > 0, "the visibility map is written");
}

/// An office the extract files under another country (a territory, a
/// neighbouring country it serves de facto) resolves when exactly one
/// office anywhere has that name, and the row is flagged as outside the
/// office's jurisdiction instead of being refused.
#[actix_web::test]
async fn an_office_filed_under_another_country_resolves_and_is_flagged() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("extract.csv");
    let rows = [
        "2024-03-05;Madrid;Francia;DNI;55555555;Carla Soto;F;1985-04-02;legal_orientation;phone",
        "2024-03-06;Atlantis;Francia;DNI;55555556;Rita Soto;F;1985-04-02;legal_orientation;phone",
    ];
    std::fs::write(&file, plain_extract(&rows)).expect("write");
    let mut conn = app.db.connect();
    let report = run(&app.db, &mut conn, &file, Options::default());
    assert_eq!(report.rows_imported, 1, "{report:#?}");
    assert_eq!(report.quality.outside_jurisdiction, 1, "{report:#?}");
    assert_eq!(
        report.rows_rejected, 1,
        "an office nowhere is still refused"
    );
}

/// The report names each consulate, country and channel spelling nothing
/// resolved, with its rows and the closest entries, most rows first.
#[actix_web::test]
async fn the_report_lists_unresolved_values_with_the_closest_entries() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("extract.csv");
    let rows = [
        "2024-03-05;ES-MADRID;ES;DNI;55555551;Carla Soto;F;1985-04-02;legal_orientation;telefonico",
        "2024-03-06;ES-MADRID;ES;DNI;55555552;Rita Soto;F;1985-04-02;legal_orientation;telefonico",
        "2024-03-07;Mdrid;ES;DNI;55555553;Nora Soto;F;1985-04-02;legal_orientation;phone",
        "2024-03-08;ES-MADRID;Espana del sur;DNI;55555554;Eva Soto;F;1985-04-02;legal_orientation;phone",
    ];
    std::fs::write(&file, plain_extract(&rows)).expect("write");
    let mut conn = app.db.connect();
    let report = run(&app.db, &mut conn, &file, Options::default());
    let found: Vec<(&str, &str, i64, Option<&str>)> = report
        .unresolved_values
        .iter()
        .map(|u| {
            (
                u.field.as_str(),
                u.spelling.as_str(),
                u.rows,
                u.closest.first().map(|c| c.entry.as_str()),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("canal", "telefonico", 2, Some("telefono")),
            ("consulado", "Mdrid", 1, Some("madrid")),
            ("pais", "Espana del sur", 1, Some("espana")),
        ],
        "{report:#?}"
    );
}
