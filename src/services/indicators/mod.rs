//! OEI.05 — persons protected and assisted: distinct persons with at least
//! one non-voided attention in a period, with their breakdowns, progress
//! against the year's target (Avance tipo 1), and the per-person groups a
//! closed year keeps so that drift can be explained.
//!
//! One query reads the period's attentions (with the case's country and the
//! person's sex and birth date); everything else is counted in memory, where
//! "once per person per group" is a set membership, the same on both backends.

mod figures;
mod labels;
mod scan;
mod tally;
mod target;

pub use figures::*;
pub use labels::*;
use scan::*;
pub use tally::*;
pub use target::*;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Datelike, NaiveDate};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::bulk::raw_sqlite;
use crate::db::schema::{attention_types, attentions, consulates, countries, regions};
use crate::db::types::parse_day_bytes;
use crate::db::{Code, Day, DbConn, Id};
use crate::domain::catalogue::IntakeChannel;

/// The rules every figure follows; served with the figures and in docs/oei05.md.
pub const COUNTING_RULES: &[&str] = &[
    "A person is counted when they have at least one attention in the period that is not voided.",
    "Each person counts once in the total, however many attentions, cases, types, countries or consulates they have.",
    "In a breakdown a person counts once in every group they appear in: someone attended in two countries counts in both, so groups may add up to more than the total (`groups_exceed_total`).",
    "Merged duplicates are one person: their attentions belong to the surviving record.",
    "Sex `not_recorded` is a group of its own, never guessed.",
    "Age group is the age at the person's first attention of the period; without a birth date it is `unknown`.",
    "Country is where the case happened; region is that country's; consulate is the office that gave the attention.",
    "Attentions count every non-voided attention in the period.",
];

pub const AGE_GROUPS: [&str; 6] = ["0-17", "18-29", "30-44", "45-59", "60+", "unknown"];

fn age_group(birth: Option<NaiveDate>, on: NaiveDate) -> &'static str {
    let Some(b) = birth else { return "unknown" };
    let Some(age) = on.years_since(b) else {
        return "unknown";
    };
    match age {
        0..=17 => "0-17",
        18..=29 => "18-29",
        30..=44 => "30-44",
        45..=59 => "45-59",
        _ => "60+",
    }
}

/// The breakdowns, in the order they are served and exported.
pub const BREAKDOWNS: [&str; 8] = [
    "sex",
    "region",
    "country",
    "consulate",
    "attention_type",
    "category",
    "channel",
    "age_group",
];

/// Counts a period's non-voided attentions (`to` inclusive), read in one
/// index-only pass over `attentions_oei05_idx` (the attention carries the
/// case's country and the person's sex and birth date).
///
/// Reading rows and counting them take about the same time, so they run on
/// two threads: this one reads rows in chunks and a scoped worker counts
/// each chunk while the next is read. On SQLite the rows are read through a
/// raw read-only cursor on the same file ([`raw_sqlite`]): one statement, so
/// one consistent snapshot, with column bytes borrowed instead of decoded
/// field by field. The result does not depend on how the rows arrive.
pub fn count_period(
    conn: &mut DbConn,
    from: NaiveDate,
    to: NaiveDate,
    labels: &Labels,
    series: Option<SeriesPeriod>,
) -> QueryResult<Tally> {
    let file = raw_sqlite::database_file(conn)?;
    pipeline(labels, series, |sink| match &file {
        Some(path) => scan_raw(path, from, to, sink),
        None => scan_diesel(conn, from, to, sink),
    })
}

/// Where the scan puts rows: chunks sent to the counter thread.
struct Sink {
    chunk: Vec<Row>,
    send: std::sync::mpsc::SyncSender<Vec<Row>>,
}

impl Sink {
    fn push(&mut self, row: Row) {
        self.chunk.push(row);
        if self.chunk.len() == CHUNK {
            let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
            // a closed channel means the counter panicked: reported by join
            let _ = self.send.send(full);
        }
    }
}

/// Runs `scan` on this thread and counts what it pushes on another.
fn pipeline(
    labels: &Labels,
    series: Option<SeriesPeriod>,
    scan: impl FnOnce(&mut Sink) -> QueryResult<()>,
) -> QueryResult<Tally> {
    let (send, receive) = std::sync::mpsc::sync_channel::<Vec<Row>>(8);
    std::thread::scope(|scope| {
        let counter = std::thread::Builder::new()
            .name("oei05-count".into())
            .spawn_scoped(scope, move || {
                let mut c = Counter::new(labels, series);
                for chunk in receive {
                    for row in chunk {
                        c.add(row);
                    }
                }
                c.finish()
            })
            .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?;
        let mut sink = Sink {
            chunk: Vec::with_capacity(CHUNK),
            send,
        };
        let scanned = scan(&mut sink);
        let Sink { chunk, send } = sink;
        if !chunk.is_empty() {
            let _ = send.send(chunk);
        }
        drop(send);
        let tally = counter.join().map_err(|_| {
            diesel::result::Error::QueryBuilderError("the OEI.05 counter failed".into())
        })?;
        scanned.map(|()| tally)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avance_follows_the_sense_and_is_served_capped_and_uncapped() {
        let a = avance(Sense::Ascending, 17_268, 19_030).expect("avance");
        assert_eq!(a.capped, 90.7);
        assert_eq!(a.uncapped, 90.7);
        let a = avance(Sense::Ascending, 40_700, 20_000).expect("avance");
        assert_eq!((a.capped, a.uncapped), (100.0, 203.5));
        assert_eq!(
            avance(Sense::Descending, 50, 40).map(|a| a.capped),
            Some(80.0)
        );
        assert_eq!(
            avance(Sense::MaximumPermissible, 10, 12).map(|a| a.capped),
            Some(100.0)
        );
        assert_eq!(
            avance(Sense::MaximumPermissible, 13, 12).map(|a| a.capped),
            Some(0.0)
        );
        assert_eq!(
            avance(Sense::MinimumPermissible, 11, 12).map(|a| a.capped),
            Some(0.0)
        );
        assert_eq!(avance(Sense::Ascending, 5, 0), None);
    }

    #[test]
    fn age_groups_are_taken_at_the_first_attention() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("date");
        assert_eq!(age_group(Some(d(2006, 6, 1)), d(2024, 5, 31)), "0-17");
        assert_eq!(age_group(Some(d(2006, 6, 1)), d(2024, 6, 1)), "18-29");
        assert_eq!(age_group(Some(d(1964, 1, 1)), d(2024, 1, 1)), "60+");
        assert_eq!(age_group(None, d(2024, 1, 1)), "unknown");
    }
}
