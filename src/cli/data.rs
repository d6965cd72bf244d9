//! Commands that bring data in or look at it: the legacy import with its
//! progress bar, the data-quality report, the duplicate scan and demo data.

use super::*;
use crate::domain::audit::AuditAction;

pub(super) fn demo_data(
    settings: &Settings,
    spec: crate::services::demo::Spec,
) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    crate::services::setup::migrate(&mut conn)?;
    let started = std::time::Instant::now();
    let report = crate::services::demo::generate(&mut conn, &spec)?;
    println!(
        "generated {} persons, {} cases, {} attentions, {} tasks, {} payments, {} timeline events in {:.1} s",
        report.persons,
        report.cases,
        report.attentions,
        report.tasks,
        report.payments,
        report.events,
        started.elapsed().as_secs_f64()
    );
    for id in report.heavy_persons {
        println!("heavy person {id}");
    }
    Ok(())
}

/// A progress bar on standard error, when it is a terminal.
pub(super) struct Bar {
    started: std::time::Instant,
    last: std::time::Instant,
    tty: bool,
}

impl crate::services::legacy::Progress for Bar {
    fn update(&mut self, rows: i64, read: u64, total: u64) {
        use std::io::Write;
        if !self.tty || (self.last.elapsed().as_millis() < 200 && read < total) {
            return;
        }
        self.last = std::time::Instant::now();
        let share = if total == 0 {
            1.0
        } else {
            read as f64 / total as f64
        };
        let width = 30;
        let filled = ((share * width as f64) as usize).min(width);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r[{}{}] {:>3.0}%  {rows} rows  {:.0} rows/s ",
            "#".repeat(filled),
            " ".repeat(width - filled),
            share * 100.0,
            rows as f64 / secs
        );
        if read >= total {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }
}

pub(super) fn import(
    settings: &Settings,
    file: &std::path::Path,
    mapping: Option<&std::path::Path>,
    mut opts: crate::services::legacy::Options,
    report_path: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let mapping = match mapping {
        Some(p) => crate::services::legacy::read::Mapping::parse(&std::fs::read_to_string(p)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        None => Default::default(),
    };
    let mut conn = connect(settings)?;
    crate::services::setup::migrate(&mut conn)?;
    // a second connection writes batches while this one resolves the next
    let mut writer = connect(settings)?;
    for c in [&mut conn, &mut writer] {
        if let db::DbConn::Sqlite(c) = c {
            // These connections only import: the WAL is folded back less
            // often (the page cache is set by the import itself).
            use diesel::connection::SimpleConnection;
            c.batch_execute("PRAGMA wal_autocheckpoint = 10000;")?;
        }
    }
    opts.mapping = mapping;
    let dry_run = opts.dry_run;
    let mut bar = Bar {
        started: std::time::Instant::now(),
        last: std::time::Instant::now(),
        tty: std::io::stderr().is_terminal(),
    };
    let import_id = db::Id::new();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let report = match crate::services::legacy::run(
        &mut conn,
        Some(&mut writer),
        file,
        &name,
        import_id,
        None,
        opts,
        &mut bar,
    ) {
        Ok(r) => r,
        Err(e) => {
            if !dry_run {
                let _ = crate::services::legacy::mark_failed(&mut conn, import_id, &describe(&e));
            }
            anyhow::bail!("{}", describe(&e));
        }
    };
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(p) = report_path {
        std::fs::write(p, &json)?;
    }
    println!("{json}");
    if dry_run {
        eprintln!("dry run: nothing was written");
    } else {
        eprintln!(
            "import {import_id}: {} rows imported, {} already imported, {} rejected",
            report.rows_imported, report.rows_already_imported, report.rows_rejected
        );
    }
    Ok(())
}

pub(super) fn quality(settings: &Settings) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let q = crate::services::legacy::quality::live(&mut conn, chrono::Utc::now().date_naive())
        .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
    println!("{}", serde_json::to_string_pretty(&q)?);
    Ok(())
}

pub(super) fn dedup_scan(settings: &Settings) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let report = crate::services::persons::scan(&mut conn)
        .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
    crate::audit::record_alone(
        &mut conn,
        None,
        &crate::audit::RequestMeta::default(),
        crate::audit::Event::new(AuditAction::DuplicateScan, "duplicate_pair", None).details(serde_json::json!({
            "persons": report.persons, "likely_pairs": report.likely_pairs, "queued": report.queued,
        })),
    )?;
    println!(
        "scanned {} persons: {} likely pairs, {} newly queued for review",
        report.persons, report.likely_pairs, report.queued
    );
    Ok(())
}
