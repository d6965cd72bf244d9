//! Administrators' aliases per vocabulary, and the spellings imported
//! attentions carried where nothing resolved them (see `services::vocabulary`).

use diesel::prelude::*;

use crate::db::schema::{attention_spellings, attentions, cases, vocabulary_aliases};
use crate::db::{DbConn, Id, Ts};

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = vocabulary_aliases, treat_none_as_default_value = false)]
pub struct AliasRow {
    pub id: Id,
    pub vocabulary: String,
    pub spelling: String,
    pub folded: String,
    pub target: String,
    pub created_by: Option<Id>,
    pub created_at: Ts,
    pub removed_at: Option<Ts>,
    pub removed_by: Option<Id>,
}

pub fn insert_alias(conn: &mut DbConn, row: &AliasRow) -> QueryResult<()> {
    diesel::insert_into(vocabulary_aliases::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find_alias(conn: &mut DbConn, id: Id) -> QueryResult<Option<AliasRow>> {
    vocabulary_aliases::table
        .find(id)
        .select(AliasRow::as_select())
        .first(conn)
        .optional()
}

/// Live aliases (all vocabularies, or one), oldest first.
pub fn live_aliases(conn: &mut DbConn, vocabulary: Option<&str>) -> QueryResult<Vec<AliasRow>> {
    let mut q = vocabulary_aliases::table
        .filter(vocabulary_aliases::removed_at.is_null())
        .select(AliasRow::as_select())
        .order((vocabulary_aliases::created_at, vocabulary_aliases::id))
        .into_boxed();
    if let Some(v) = vocabulary {
        q = q.filter(vocabulary_aliases::vocabulary.eq(v.to_owned()));
    }
    q.load(conn)
}

/// Marks a live alias removed; false when it was removed already.
pub fn remove_alias(conn: &mut DbConn, id: Id, by: Id, at: Ts) -> QueryResult<bool> {
    diesel::update(
        vocabulary_aliases::table
            .filter(vocabulary_aliases::id.eq(id))
            .filter(vocabulary_aliases::removed_at.is_null()),
    )
    .set((
        vocabulary_aliases::removed_at.eq(Some(at)),
        vocabulary_aliases::removed_by.eq(Some(by)),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// One kept spelling: (attention, case, vocabulary, as written, folded).
pub type Spelling = (Id, Id, &'static str, String, String);

pub fn insert_spellings(conn: &mut DbConn, rows: &[Spelling]) -> QueryResult<()> {
    for chunk in rows.chunks(500) {
        let values: Vec<_> = chunk
            .iter()
            .map(|(a, c, v, s, f)| {
                (
                    attention_spellings::attention_id.eq(*a),
                    attention_spellings::case_id.eq(*c),
                    attention_spellings::vocabulary.eq(*v),
                    attention_spellings::spelling.eq(s.clone()),
                    attention_spellings::folded.eq(f.clone()),
                )
            })
            .collect();
        crate::per_backend!(conn, |c| diesel::insert_into(attention_spellings::table)
            .values(&values)
            .execute(c))?;
    }
    Ok(())
}

/// Kept channel spellings still `not_recorded` on a live attention, as
/// (spelling, attentions, persons), most attentions first.
pub fn open_channel_spellings(conn: &mut DbConn) -> QueryResult<Vec<(String, i64, i64)>> {
    let rows = attention_spellings::table
        .inner_join(attentions::table)
        .filter(attention_spellings::vocabulary.eq("channel"))
        .filter(attentions::channel.eq("not_recorded"))
        .filter(attentions::voided_at.is_null())
        .select((attention_spellings::spelling, attentions::person_id))
        .load_iter::<(String, Id), diesel::connection::DefaultLoadingMode>(conn)?;
    let mut by: std::collections::HashMap<String, (i64, std::collections::HashSet<Id>)> =
        Default::default();
    for row in rows {
        let (spelling, person) = row?;
        let e = by.entry(spelling).or_default();
        e.0 += 1;
        e.1.insert(person);
    }
    let mut out: Vec<(String, i64, i64)> = by
        .into_iter()
        .map(|(s, (n, persons))| (s, n, persons.len() as i64))
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

/// What recoding a channel spelling changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recoded {
    pub attentions: i64,
    pub cases: i64,
    /// (year, attentions) of the attentions recoded.
    pub years: Vec<(i32, i64)>,
}

/// Gives the attentions still `not_recorded` that carried the folded
/// spelling the channel `target`, and their cases too when the case's first
/// attention now has that channel (a legacy case takes its first row's).
pub fn recode_channel(conn: &mut DbConn, folded: &str, target: &str) -> QueryResult<Recoded> {
    let carrying = || {
        attention_spellings::table
            .filter(attention_spellings::vocabulary.eq("channel"))
            .filter(attention_spellings::folded.eq(folded.to_owned()))
    };
    let dates: Vec<chrono::NaiveDate> = attentions::table
        .filter(attentions::channel.eq("not_recorded"))
        .filter(attentions::id.eq_any(carrying().select(attention_spellings::attention_id)))
        .select(attentions::attended_on)
        .load(conn)?;
    let mut years: std::collections::BTreeMap<i32, i64> = Default::default();
    for d in &dates {
        *years.entry(chrono::Datelike::year(d)).or_default() += 1;
    }
    let attentions_changed = diesel::update(
        attentions::table
            .filter(attentions::channel.eq("not_recorded"))
            .filter(attentions::id.eq_any(carrying().select(attention_spellings::attention_id))),
    )
    .set(attentions::channel.eq(target))
    .execute(conn)? as i64;
    // A case whose first attention (by date) now has the channel; the
    // subquery is correlated on the case.
    let first_channel = attentions::table
        .filter(attentions::case_id.eq(cases::id))
        .order((
            attentions::attended_on,
            attentions::created_at,
            attentions::id,
        ))
        .select(attentions::channel)
        .limit(1)
        .single_value();
    let cases_changed = diesel::update(
        cases::table
            .filter(cases::channel.eq("not_recorded"))
            .filter(cases::id.eq_any(carrying().select(attention_spellings::case_id)))
            .filter(first_channel.eq(target)),
    )
    .set((
        cases::channel.eq(target),
        cases::version.eq(cases::version + 1),
        cases::updated_at.eq(Ts::now()),
    ))
    .execute(conn)? as i64;
    Ok(Recoded {
        attentions: attentions_changed,
        cases: cases_changed,
        years: years.into_iter().collect(),
    })
}
