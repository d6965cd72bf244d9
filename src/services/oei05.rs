//! The OEI.05 indicator as the planning office reads it: a period's
//! figures (or a closed year's snapshot, with how today's data drifted
//! from it), the year's target and Avance tipo 1; and the year's life:
//! setting its target, closing it (freezing its figures and the persons
//! behind every cell) and reopening it.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::indicators::{
    avance, cell_drift, count_period, figures, fold_top, Avance, CellDrift, Figures, Labels,
    PersonGroups, SeriesPeriod, SeriesPoint, Tally,
};
use crate::audit::Event;
use crate::db::{DbConn, Id, Ts};
use crate::domain::audit::AuditAction;
use crate::domain::error_code::ErrorCode;
use crate::domain::{stored_json, Stored};
use crate::error::AppError;
use crate::models::indicators::{self as model, Snapshot, Target};
use crate::services::indicators::Sense;
use crate::services::journal::Journal;

/// How many drifted cells a response lists at most.
const MAX_DRIFT_CELLS: usize = 200;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TargetResponse {
    pub year: i32,
    pub target: i64,
    pub sense: Sense,
    pub note: Option<String>,
    pub set_at: Ts,
}

pub fn target_response(t: Target) -> Result<TargetResponse, AppError> {
    Ok(TargetResponse {
        sense: Sense::stored(&t.sense)?,
        year: t.year,
        target: t.target,
        note: t.note,
        set_at: t.set_at,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MergeDrift {
    pub merge_id: Id,
    pub merged_at: Ts,
    /// Set when the merge was undone after the close.
    pub undone_at: Option<Ts>,
}

/// How today's data differs from a closed year's snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Drift {
    pub has_drift: bool,
    pub persons_closed: i64,
    pub persons_now: i64,
    pub attentions_closed: i64,
    pub attentions_now: i64,
    /// Persons counted now but not at the close (late entries, undone merges).
    pub persons_added: i64,
    /// Persons counted at the close but not now (voided attentions, merges).
    pub persons_removed: i64,
    /// Cells whose person count changed (at most 200).
    pub cells: Vec<CellDrift>,
    /// Merges that folded a counted person into another since the close.
    pub merges: Vec<MergeDrift>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClosedInfo {
    pub snapshot_id: Id,
    pub closed_at: Ts,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Oei05Response {
    pub indicator: String,
    pub year: Option<i32>,
    pub figures: Figures,
    pub target: Option<TargetResponse>,
    /// Avance tipo 1 against the year's target.
    pub avance: Option<Avance>,
    /// Present when the year is closed: the figures are the snapshot's.
    pub closed: Option<ClosedInfo>,
    pub drift: Option<Drift>,
}

/// What a closed year keeps besides its persons.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotDoc {
    figures: Figures,
    series_month: Vec<SeriesPoint>,
    series_quarter: Vec<SeriesPoint>,
}

fn parse_snapshot_persons(rows: Vec<(Id, String)>) -> Result<BTreeMap<Id, PersonGroups>, AppError> {
    rows.into_iter()
        .map(|(id, g)| Ok((id, stored_json("snapshot person groups", &g)?)))
        .collect()
}

fn drift(
    conn: &mut DbConn,
    snap: &Snapshot,
    closed: &BTreeMap<Id, PersonGroups>,
    now: &Tally,
) -> Result<Drift, AppError> {
    let added_ids: Vec<Id> = now
        .person_ids()
        .filter(|p| !closed.contains_key(*p))
        .copied()
        .collect();
    let removed: Vec<Id> = closed
        .keys()
        .filter(|p| !now.contains(p))
        .copied()
        .collect();
    let mut merges = Vec::new();
    for m in model::merges_touching(conn, &removed)? {
        if m.undone_at.is_none() && m.at > snap.closed_at {
            merges.push(MergeDrift {
                merge_id: m.id,
                merged_at: m.at,
                undone_at: None,
            });
        }
    }
    for m in model::merges_touching(conn, &added_ids)? {
        if m.undone_at.is_some_and(|u| u > snap.closed_at) {
            merges.push(MergeDrift {
                merge_id: m.id,
                merged_at: m.at,
                undone_at: m.undone_at,
            });
        }
    }
    let mut cells = cell_drift(closed, &now.person_groups());
    cells.truncate(MAX_DRIFT_CELLS);
    let added = added_ids.len() as i64;
    Ok(Drift {
        has_drift: added > 0
            || !removed.is_empty()
            || !cells.is_empty()
            || now.attentions != snap.attentions,
        persons_closed: snap.persons,
        persons_now: now.persons(),
        attentions_closed: snap.attentions,
        attentions_now: now.attentions,
        persons_added: added,
        persons_removed: removed.len() as i64,
        cells,
        merges,
    })
}

/// What the indicator is asked for: a period (a calendar year, or any
/// span), a series inside it, and how many groups to show.
pub struct ViewRequest {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub year: Option<i32>,
    pub period: Option<SeriesPeriod>,
    pub top: Option<u32>,
}

/// Computes (or, for a closed year, reads) the OEI.05 response.
pub fn view(conn: &mut DbConn, q: &ViewRequest) -> Result<Oei05Response, AppError> {
    let (from, to, year) = (q.from, q.to, q.year);
    let labels = Labels::load(conn)?;
    let snapshot = match year {
        Some(y) => model::live_snapshot(conn, y)?,
        None => None,
    };
    let (figures, persons, closed, drift) = match snapshot {
        Some(snap) => {
            let doc: SnapshotDoc = stored_json("snapshot figures", &snap.figures)?;
            let persons = parse_snapshot_persons(model::snapshot_persons(conn, snap.id)?)?;
            let mut figures = doc.figures;
            figures.series = match q.period {
                Some(SeriesPeriod::Month) => doc.series_month,
                Some(SeriesPeriod::Quarter) => doc.series_quarter,
                None => Vec::new(),
            };
            let now = count_period(conn, from, to, &labels, None)?;
            let d = drift(conn, &snap, &persons, &now)?;
            let info = ClosedInfo {
                snapshot_id: snap.id,
                closed_at: snap.closed_at,
            };
            (figures, persons, Some(info), Some(d))
        }
        None => {
            let started = std::time::Instant::now();
            let t = count_period(conn, from, to, &labels, q.period)?;
            let counted = started.elapsed();
            let figures = figures(&t, &labels, from, to);
            tracing::debug!(
                count_ms = counted.as_millis() as u64,
                figures_ms = (started.elapsed() - counted).as_millis() as u64,
                persons = t.persons(),
                "oei05 computed"
            );
            // the persons' groups are only needed to fold small groups
            let persons = if q.top.is_some() {
                t.person_groups()
            } else {
                BTreeMap::new()
            };
            (figures, persons, None, None)
        }
    };
    let mut figures = figures;
    if let Some(n) = q.top {
        fold_top(&mut figures, &persons, n.max(1) as usize);
    }
    let target = match year {
        Some(y) => model::find_target(conn, y)?
            .map(target_response)
            .transpose()?,
        None => None,
    };
    let avance = target
        .as_ref()
        .and_then(|t| avance(t.sense, figures.persons, t.target));
    Ok(Oei05Response {
        indicator: "OEI.05 — número de connacionales protegidos y asistidos".into(),
        year,
        figures,
        target,
        avance,
        closed,
        drift,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CloseResponse {
    pub snapshot_id: Id,
    pub year: i32,
    pub persons: i64,
    pub attentions: i64,
    pub closed_at: Ts,
}

/// Sets (or replaces) a year's target; the audit keeps the one replaced.
pub fn put_target(conn: &mut DbConn, journal: &mut Journal, t: Target) -> Result<Target, AppError> {
    let previous = model::put_target(conn, &t)?;
    journal.audit(
        Event::new(AuditAction::Oei05Target, "oei05_target", Some(t.year.to_string())).details(
            serde_json::json!({
                "target": t.target,
                "sense": t.sense,
                "previous": previous.map(|p| serde_json::json!({ "target": p.target, "sense": p.sense })),
            }),
        ),
    );
    Ok(t)
}

/// Freezes a year's figures and the persons behind every cell; a closed
/// year is served from its snapshot until an admin reopens it.
pub fn close_year(
    conn: &mut DbConn,
    journal: &mut Journal,
    year: i32,
    user: Id,
) -> Result<CloseResponse, AppError> {
    if model::live_snapshot(conn, year)?.is_some() {
        return Err(AppError::conflict(
            ErrorCode::YearClosed,
            None,
            format!("{year} is already closed; an admin may reopen it"),
        ));
    }
    let (from, to) = match (
        NaiveDate::from_ymd_opt(year, 1, 1),
        NaiveDate::from_ymd_opt(year, 12, 31),
    ) {
        (Some(f), Some(t)) => (f, t),
        _ => return Err(AppError::invalid("path.year", "is not a year")),
    };
    let labels = Labels::load(conn)?;
    let t = count_period(conn, from, to, &labels, Some(SeriesPeriod::Month))?;
    let mut frozen = figures(&t, &labels, from, to);
    frozen.series = Vec::new();
    let doc = SnapshotDoc {
        figures: frozen,
        series_month: t.series_points(),
        series_quarter: t.quarters_from_months(),
    };
    let persons: Vec<(Id, String)> = t
        .person_groups()
        .iter()
        .map(|(id, g)| Ok((*id, serde_json::to_string(g)?)))
        .collect::<Result<_, serde_json::Error>>()
        .map_err(AppError::internal)?;
    let snap = Snapshot {
        id: Id::new(),
        year,
        figures: serde_json::to_string(&doc).map_err(AppError::internal)?,
        persons: t.persons(),
        attentions: t.attentions,
        closed_at: Ts::now(),
        closed_by: Some(user),
        reopened_at: None,
        reopened_by: None,
        reopen_reason: None,
    };
    model::insert_snapshot(conn, &snap, &persons)?;
    journal.audit(
        Event::new(AuditAction::Oei05Close, "oei05_year", Some(year.to_string())).details(
            serde_json::json!({ "snapshot_id": snap.id, "persons": snap.persons, "attentions": snap.attentions }),
        ),
    );
    Ok(CloseResponse {
        snapshot_id: snap.id,
        year,
        persons: snap.persons,
        attentions: snap.attentions,
        closed_at: snap.closed_at,
    })
}

/// Reopens a closed year; the snapshot stays, stamped as reopened.
pub fn reopen_year(
    conn: &mut DbConn,
    journal: &mut Journal,
    year: i32,
    user: Id,
    reason: &str,
) -> Result<(), AppError> {
    let snap = model::live_snapshot(conn, year)?
        .ok_or_else(|| AppError::not_found(format!("{year} is not closed")))?;
    model::reopen_snapshot(conn, snap.id, user, reason)?;
    journal.audit(
        Event::new(
            AuditAction::Oei05Reopen,
            "oei05_year",
            Some(year.to_string()),
        )
        .details(serde_json::json!({ "snapshot_id": snap.id, "reason": reason })),
    );
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Change {
    pub absolute: i64,
    /// Percent change, one decimal; absent when the earlier value is 0.
    pub percent: Option<f64>,
}

fn change(now: i64, before: i64) -> Change {
    Change {
        absolute: now - before,
        percent: (before != 0)
            .then(|| ((now - before) as f64 * 1000.0 / before as f64).round() / 10.0),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesYear {
    pub year: i32,
    pub persons: i64,
    /// The value comes from the year's snapshot.
    pub closed: bool,
    pub target: Option<i64>,
    pub sense: Option<Sense>,
    pub avance: Option<Avance>,
    pub change_vs_previous: Option<Change>,
    pub change_vs_base: Option<Change>,
}

/// OEI.05 year by year from `from` to `to`: a closed year's value from its
/// snapshot, an open one's counted now; each with its target and Avance,
/// and its change over the previous year and over `base`.
pub fn series(
    conn: &mut DbConn,
    from: i32,
    to: i32,
    base: i32,
) -> Result<Vec<SeriesYear>, AppError> {
    let closed: BTreeMap<i32, i64> = model::closed_years(conn, from, to)?.into_iter().collect();
    let targets: BTreeMap<i32, Target> = model::targets_between(conn, from, to)?
        .into_iter()
        .map(|t| (t.year, t))
        .collect();
    let mut values = Vec::new();
    for y in from..=to {
        let persons = match closed.get(&y) {
            Some(p) => *p,
            None => {
                let (Some(f), Some(t)) = (
                    NaiveDate::from_ymd_opt(y, 1, 1),
                    NaiveDate::from_ymd_opt(y, 12, 31),
                ) else {
                    continue;
                };
                model::persons_between(conn, f, t)?
            }
        };
        values.push((y, persons));
    }
    let base_value = values.iter().find(|(y, _)| *y == base).map(|(_, v)| *v);
    let mut out = Vec::with_capacity(values.len());
    for (i, &(y, persons)) in values.iter().enumerate() {
        let t = targets.get(&y);
        let sense = t.map(|t| Sense::stored(&t.sense)).transpose()?;
        out.push(SeriesYear {
            year: y,
            persons,
            closed: closed.contains_key(&y),
            target: t.map(|t| t.target),
            sense,
            avance: t.zip(sense).and_then(|(t, s)| avance(s, persons, t.target)),
            change_vs_previous: (i > 0).then(|| change(persons, values[i - 1].1)),
            change_vs_base: base_value.filter(|_| y != base).map(|b| change(persons, b)),
        });
    }
    Ok(out)
}
