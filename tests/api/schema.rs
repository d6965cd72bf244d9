//! The two migration folders describe one schema.
//!
//! Each backend's migrated schema is reduced to the same normal form
//! (tables; columns with type class and nullability; indexes by columns and
//! uniqueness) and compared with `tests/api/schema.snapshot`. The SQLite run
//! checks migrations/sqlite, the PostgreSQL run checks migrations/postgres,
//! so a column added to only one folder fails one of the runs. Refresh the
//! snapshot after a deliberate change with `UPDATE_SCHEMA_SNAPSHOT=1 cargo test schema`.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use mapce::db::DbConn;

use crate::helpers::TestDb;

const SNAPSHOT_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/schema.snapshot");

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    #[diesel(column_name = type_)]
    type_: String,
    #[diesel(sql_type = Bool)]
    notnull: bool,
}

#[derive(QueryableByName)]
struct SqliteIndex {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Bool)]
    unique: bool,
}

#[derive(QueryableByName)]
struct SqliteIndexColumn {
    #[diesel(sql_type = BigInt)]
    seqno: i64,
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
}

#[derive(QueryableByName)]
struct PgIndex {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Bool)]
    is_unique: bool,
    #[diesel(sql_type = Text)]
    columns: String,
}

/// One class per type, the same for both engines' spellings.
fn type_class(raw: &str) -> String {
    match raw.to_ascii_lowercase().as_str() {
        "uuid" | "uuid_text" => "uuid",
        "timestamp with time zone" | "timestamptz_text" => "timestamptz",
        "text" | "character varying" => "text",
        "integer" | "bigint" | "smallint" => "integer",
        "boolean" => "bool",
        "date" | "date_text" => "date",
        "numeric" => "numeric",
        "double precision" | "double" => "double",
        "bytea" | "blob" => "blob",
        "jsonb" | "json_text" => "json",
        other => return format!("unknown({other})"),
    }
    .to_owned()
}

fn describe_sqlite(conn: &mut diesel::SqliteConnection) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '__diesel_schema_migrations'",
    )
    .load(conn)
    .expect("tables");
    for Name { name: table } in tables {
        out.insert(format!("table {table}"));
        let columns: Vec<SqliteColumn> = diesel::sql_query(format!(
            "SELECT name, type AS type_, \"notnull\" FROM pragma_table_info('{table}')"
        ))
        .load(conn)
        .expect("columns");
        for c in columns {
            let null = if c.notnull { "not null" } else { "null" };
            out.insert(format!(
                "column {table}.{} {} {null}",
                c.name,
                type_class(&c.type_)
            ));
        }
        let indexes: Vec<SqliteIndex> = diesel::sql_query(format!(
            "SELECT name, \"unique\" FROM pragma_index_list('{table}')"
        ))
        .load(conn)
        .expect("indexes");
        for index in indexes {
            let mut cols: Vec<SqliteIndexColumn> = diesel::sql_query(format!(
                "SELECT seqno, name FROM pragma_index_info('{}')",
                index.name
            ))
            .load(conn)
            .expect("index columns");
            cols.sort_by_key(|c| c.seqno);
            let cols: Vec<String> = cols.into_iter().map(|c| c.name).collect();
            let kind = if index.unique {
                "unique index"
            } else {
                "index"
            };
            out.insert(format!("{kind} {table}({})", cols.join(",")));
        }
    }
    out
}

fn describe_pg(conn: &mut diesel::PgConnection) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT table_name::text AS name FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' \
         AND table_name <> '__diesel_schema_migrations'",
    )
    .load(conn)
    .expect("tables");
    for Name { name } in &tables {
        out.insert(format!("table {name}"));
    }
    let columns: Vec<PgColumn> = diesel::sql_query(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
         FROM information_schema.columns WHERE table_schema = 'public' \
         AND table_name <> '__diesel_schema_migrations'",
    )
    .load(conn)
    .expect("columns");
    for c in columns {
        let null = if c.is_nullable == "YES" {
            "null"
        } else {
            "not null"
        };
        out.insert(format!(
            "column {}.{} {} {null}",
            c.table_name,
            c.column_name,
            type_class(&c.data_type)
        ));
    }
    let indexes: Vec<PgIndex> = diesel::sql_query(
        "SELECT t.relname::text AS table_name, ix.indisunique AS is_unique, \
                string_agg(a.attname::text, ',' ORDER BY k.ord) AS columns \
         FROM pg_index ix \
         JOIN pg_class i ON i.oid = ix.indexrelid \
         JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord) \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
         WHERE n.nspname = 'public' AND t.relname <> '__diesel_schema_migrations' \
         GROUP BY t.relname, i.relname, ix.indisunique",
    )
    .load(conn)
    .expect("indexes");
    for index in indexes {
        let kind = if index.is_unique {
            "unique index"
        } else {
            "index"
        };
        out.insert(format!("{kind} {}({})", index.table_name, index.columns));
    }
    out
}

fn describe(conn: &mut DbConn) -> BTreeSet<String> {
    match conn {
        DbConn::Pg(c) => describe_pg(c),
        DbConn::Sqlite(c) => describe_sqlite(c),
    }
}

fn render(schema: &BTreeSet<String>) -> String {
    let mut text = String::from(
        "# The migrated schema in normal form; see tests/api/schema.rs.\n\
         # Regenerate after a deliberate change: UPDATE_SCHEMA_SNAPSHOT=1 cargo test schema\n",
    );
    for line in schema {
        text.push_str(line);
        text.push('\n');
    }
    text
}

#[test]
fn migrations_agree_across_backends() {
    let db = TestDb::migrated();
    let schema = describe(&mut db.connect());
    assert!(
        !schema.iter().any(|l| l.contains("unknown(")),
        "a column type has no class in type_class(): {schema:#?}"
    );
    let rendered = render(&schema);
    if std::env::var("UPDATE_SCHEMA_SNAPSHOT").is_ok() {
        std::fs::write(SNAPSHOT_PATH, &rendered).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(SNAPSHOT_PATH).unwrap_or_default();
    if rendered != expected {
        let expected: BTreeSet<&str> = expected.lines().filter(|l| !l.starts_with('#')).collect();
        let actual: BTreeSet<&str> = rendered.lines().filter(|l| !l.starts_with('#')).collect();
        panic!(
            "the {} schema differs from tests/api/schema.snapshot (the migration folders drifted?)\n\
             only in {}: {:#?}\nonly in snapshot: {:#?}",
            db.backend().name(),
            db.backend().name(),
            actual.difference(&expected).collect::<Vec<_>>(),
            expected.difference(&actual).collect::<Vec<_>>(),
        );
    }
}

/// With both engines at hand, compare them directly too.
#[test]
#[cfg_attr(
    not(pg_tests),
    ignore = "needs TEST_DATABASE_URL (a PostgreSQL server)"
)]
fn postgres_and_sqlite_schemas_are_equal() {
    let admin = crate::helpers::pg_admin_url().expect("TEST_DATABASE_URL");
    let pg = TestDb::postgres(&admin);
    mapce::services::setup::migrate(&mut pg.connect()).expect("migrate postgres");
    let sqlite = TestDb::sqlite();
    mapce::services::setup::migrate(&mut sqlite.connect()).expect("migrate sqlite");
    assert_eq!(describe(&mut pg.connect()), describe(&mut sqlite.connect()));
}
