//! Lets tests that need a PostgreSQL server be marked ignored (and listed as
//! such) when TEST_DATABASE_URL is not set, instead of passing silently;
//! and rebuilds the crate when a migration is added.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(pg_tests)");
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    println!("cargo::rerun-if-changed=build.rs");
    // the migrations are embedded (db::SQLITE_MIGRATIONS): a new folder
    // must rebuild the crate, which embed_migrations! alone does not ask for
    println!("cargo::rerun-if-changed=migrations");
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|v| !v.trim().is_empty()) {
        println!("cargo::rustc-cfg=pg_tests");
    }
}
