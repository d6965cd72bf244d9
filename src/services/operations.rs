//! Operational figures per consulate and month: demand (new cases,
//! attentions, referrals, payments), bottlenecks (open backlog and its age,
//! days to close per attention type, overdue tasks, first-contact breaches)
//! and the load per officer.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Duration, NaiveDate, NaiveTime};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::schema::{
    attention_types, attentions, cases, consulates, detentions, payments, referrals, tasks,
};
use crate::db::{DbConn, Id, Ts};
use crate::error::AppError;

#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct MonthFigures {
    /// `YYYY-MM`, or `total`.
    pub month: String,
    pub new_cases: i64,
    pub attentions: i64,
    pub referrals: i64,
    /// Paid entries net of reversals.
    pub payments: i64,
    /// Their PEN amount.
    pub payments_pen: String,
    #[serde(skip)]
    pen_cents: i64,
}

#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct Backlog {
    /// Cases not closed, opened by the end of the period.
    pub open_cases: i64,
    pub median_age_days: Option<f64>,
    pub p90_age_days: Option<i64>,
    pub oldest_days: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimeToClose {
    pub attention_type: String,
    /// Cases closed in the period that had this type.
    pub closed_cases: i64,
    pub median_days: f64,
    pub p90_days: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OfficerLoad {
    /// The user who recorded the attentions (staff, not persons assisted).
    pub officer_id: Option<Id>,
    pub attentions: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsulateOperations {
    pub consulate_id: Id,
    pub code: String,
    pub name: String,
    pub months: Vec<MonthFigures>,
    pub totals: MonthFigures,
    pub backlog: Backlog,
    /// Open tasks past their due time, now.
    pub overdue_tasks: i64,
    /// Detentions notified in the period whose first consular contact came
    /// (or is still missing) more than 24 hours after notification.
    pub first_contact_breaches: i64,
    pub days_to_close: Vec<TimeToClose>,
    pub attentions_per_officer: Vec<OfficerLoad>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OperationsResponse {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Consulates with any activity, most attentions first.
    pub consulates: Vec<ConsulateOperations>,
    pub notes: Vec<String>,
}

fn month_of(d: NaiveDate) -> String {
    format!("{}-{:02}", d.year(), d.month())
}

/// Median of sorted values (mean of the two middle ones when even).
fn median(sorted: &[i64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2] as f64),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0),
    }
}

/// Nearest-rank 90th percentile of sorted values.
fn p90(sorted: &[i64]) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * 9).div_ceil(10).max(1);
    sorted.get(rank - 1).copied()
}

fn start_of(d: NaiveDate) -> Ts {
    Ts(d.and_time(NaiveTime::MIN).and_utc())
}

#[derive(Default)]
struct Acc {
    months: BTreeMap<String, MonthFigures>,
    backlog_ages: Vec<i64>,
    overdue: i64,
    breaches: i64,
    close_days: HashMap<Id, Vec<i64>>,
    officers: HashMap<Option<Id>, i64>,
}

impl Acc {
    fn month(&mut self, m: String) -> &mut MonthFigures {
        self.months
            .entry(m.clone())
            .or_insert_with(|| MonthFigures {
                month: m,
                ..MonthFigures::default()
            })
    }
}

pub fn compute(
    conn: &mut DbConn,
    from: NaiveDate,
    to: NaiveDate,
    consulate: Option<Id>,
) -> Result<Vec<ConsulateOperations>, AppError> {
    let (start, end) = (start_of(from), start_of(to + Duration::days(1)));
    let now = Ts::now();
    let as_of = if now < end { now } else { end };
    let mut acc: HashMap<Id, Acc> = HashMap::new();

    let mut q = cases::table
        .filter(cases::opened_at.ge(start))
        .filter(cases::opened_at.lt(end))
        .select((cases::consulate_id, cases::opened_at))
        .into_boxed();
    if let Some(c) = consulate {
        q = q.filter(cases::consulate_id.eq(c));
    }
    for (c, opened) in q.load::<(Id, Ts)>(conn)? {
        acc.entry(c)
            .or_default()
            .month(month_of(opened.0.date_naive()))
            .new_cases += 1;
    }

    let mut q = cases::table
        .filter(cases::opened_at.lt(end))
        .filter(cases::closed_at.is_null().or(cases::closed_at.ge(end)))
        .select((cases::consulate_id, cases::opened_at))
        .into_boxed();
    if let Some(c) = consulate {
        q = q.filter(cases::consulate_id.eq(c));
    }
    for (c, opened) in q.load::<(Id, Ts)>(conn)? {
        acc.entry(c)
            .or_default()
            .backlog_ages
            .push((as_of.0 - opened.0).num_days());
    }

    let mut q = attentions::table
        .inner_join(cases::table)
        .filter(cases::closed_at.ge(start))
        .filter(cases::closed_at.lt(end))
        .filter(attentions::voided_at.is_null())
        .select((
            cases::id,
            cases::consulate_id,
            cases::opened_at,
            cases::closed_at,
            attentions::attention_type_id,
        ))
        .into_boxed();
    if let Some(c) = consulate {
        q = q.filter(cases::consulate_id.eq(c));
    }
    let mut seen: std::collections::HashSet<(Id, Id)> = std::collections::HashSet::new();
    for (case, c, opened, closed, t) in q.load::<(Id, Id, Ts, Option<Ts>, Id)>(conn)? {
        if let Some(closed) = closed {
            if seen.insert((case, t)) {
                acc.entry(c)
                    .or_default()
                    .close_days
                    .entry(t)
                    .or_default()
                    .push((closed.0 - opened.0).num_days());
            }
        }
    }

    let mut q = attentions::table
        .filter(attentions::attended_on.ge(from))
        .filter(attentions::attended_on.le(to))
        .filter(attentions::voided_at.is_null())
        .select((
            attentions::consulate_id,
            attentions::attended_on,
            attentions::officer_id,
        ))
        .into_boxed();
    if let Some(c) = consulate {
        q = q.filter(attentions::consulate_id.eq(c));
    }
    for (c, on, officer) in q.load::<(Id, NaiveDate, Option<Id>)>(conn)? {
        let a = acc.entry(c).or_default();
        a.month(month_of(on)).attentions += 1;
        *a.officers.entry(officer).or_default() += 1;
    }

    let mut q = referrals::table
        .filter(referrals::sent_on.ge(from))
        .filter(referrals::sent_on.le(to))
        .select((referrals::consulate_id, referrals::sent_on))
        .into_boxed();
    if let Some(c) = consulate {
        q = q.filter(referrals::consulate_id.eq(c));
    }
    for (c, on) in q.load::<(Id, NaiveDate)>(conn)? {
        acc.entry(c).or_default().month(month_of(on)).referrals += 1;
    }

    let mut q = payments::table
        .filter(payments::value_date.ge(from))
        .filter(payments::value_date.le(to))
        .filter(payments::status.eq_any(["paid", "reversed"]))
        .select((
            payments::consulate_id,
            payments::value_date,
            payments::amount_pen_cents,
            payments::reverses_id,
        ))
        .into_boxed();
    if let Some(c) = consulate {
        q = q.filter(payments::consulate_id.eq(c));
    }
    for (c, on, cents, reverses) in q.load::<(Id, NaiveDate, i64, Option<Id>)>(conn)? {
        let m = acc.entry(c).or_default();
        let m = m.month(month_of(on));
        m.payments += if reverses.is_some() { -1 } else { 1 };
        m.pen_cents += cents;
    }

    let mut q = tasks::table
        .filter(tasks::done_at.is_null())
        .filter(tasks::due_at.lt(now))
        .select(tasks::consulate_id)
        .into_boxed();
    if let Some(c) = consulate {
        q = q.filter(tasks::consulate_id.eq(c));
    }
    for c in q.load::<Id>(conn)? {
        acc.entry(c).or_default().overdue += 1;
    }

    let mut q = detentions::table
        .filter(detentions::notified_at.ge(start))
        .filter(detentions::notified_at.lt(end))
        .select((
            detentions::consulate_id,
            detentions::notified_at,
            detentions::first_contact_at,
        ))
        .into_boxed();
    if let Some(c) = consulate {
        q = q.filter(detentions::consulate_id.eq(c));
    }
    let limit = Duration::hours(crate::domain::support::FIRST_CONTACT_HOURS);
    for (c, notified, first) in q.load::<(Id, Ts, Option<Ts>)>(conn)? {
        if first.unwrap_or(now).0 - notified.0 > limit {
            acc.entry(c).or_default().breaches += 1;
        }
    }

    let names: HashMap<Id, (String, String)> = consulates::table
        .select((consulates::id, consulates::code, consulates::name_es))
        .load::<(Id, String, String)>(conn)?
        .into_iter()
        .map(|(id, code, name)| (id, (code, name)))
        .collect();
    let types: HashMap<Id, String> = attention_types::table
        .select((attention_types::id, attention_types::code))
        .load::<(Id, String)>(conn)?
        .into_iter()
        .collect();

    let mut out: Vec<ConsulateOperations> = acc
        .into_iter()
        .map(|(id, mut a)| {
            let mut totals = MonthFigures {
                month: "total".into(),
                ..MonthFigures::default()
            };
            let months: Vec<MonthFigures> = a
                .months
                .into_values()
                .map(|mut m| {
                    totals.new_cases += m.new_cases;
                    totals.attentions += m.attentions;
                    totals.referrals += m.referrals;
                    totals.payments += m.payments;
                    totals.pen_cents += m.pen_cents;
                    m.payments_pen = crate::domain::money::format_scaled(m.pen_cents, 2);
                    m
                })
                .collect();
            totals.payments_pen = crate::domain::money::format_scaled(totals.pen_cents, 2);
            a.backlog_ages.sort_unstable();
            let mut days_to_close: Vec<TimeToClose> = a
                .close_days
                .into_iter()
                .map(|(t, mut d)| {
                    d.sort_unstable();
                    TimeToClose {
                        attention_type: types.get(&t).cloned().unwrap_or_else(|| t.to_string()),
                        closed_cases: d.len() as i64,
                        median_days: median(&d).unwrap_or(0.0),
                        p90_days: p90(&d).unwrap_or(0),
                    }
                })
                .collect();
            days_to_close.sort_by(|x, y| {
                y.closed_cases
                    .cmp(&x.closed_cases)
                    .then_with(|| x.attention_type.cmp(&y.attention_type))
            });
            let mut officers: Vec<OfficerLoad> = a
                .officers
                .into_iter()
                .map(|(officer_id, attentions)| OfficerLoad {
                    officer_id,
                    attentions,
                })
                .collect();
            officers.sort_by_key(|o| std::cmp::Reverse(o.attentions));
            let (code, name) = names.get(&id).cloned().unwrap_or_default();
            ConsulateOperations {
                consulate_id: id,
                code,
                name,
                months,
                totals,
                backlog: Backlog {
                    open_cases: a.backlog_ages.len() as i64,
                    median_age_days: median(&a.backlog_ages),
                    p90_age_days: p90(&a.backlog_ages),
                    oldest_days: a.backlog_ages.last().copied(),
                },
                overdue_tasks: a.overdue,
                first_contact_breaches: a.breaches,
                days_to_close,
                attentions_per_officer: officers,
            }
        })
        .collect();
    out.sort_by(|x, y| {
        y.totals
            .attentions
            .cmp(&x.totals.attentions)
            .then_with(|| x.code.cmp(&y.code))
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p90_follow_their_stated_definitions() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3]), Some(3.0));
        assert_eq!(median(&[1, 2, 3, 10]), Some(2.5));
        assert_eq!(p90(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), Some(9));
        assert_eq!(p90(&[5]), Some(5));
        assert_eq!(p90(&(1..=11).collect::<Vec<_>>()), Some(10));
    }
}
