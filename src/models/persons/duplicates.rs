//! The duplicate review queue (pairs of persons likely the same) and the
//! merges decided from it, which can be undone.

use super::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = duplicate_pairs)]
pub struct DuplicatePair {
    pub id: Id,
    pub person_a: Id,
    pub person_b: Id,
    pub score: f64,
    pub reasons: String,
    pub status: String,
    pub source: String,
    pub decided_by: Option<Id>,
    pub decided_at: Option<Ts>,
    pub decision_reason: Option<String>,
    pub created_at: Ts,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = person_merges)]
pub struct PersonMerge {
    pub id: Id,
    pub survivor_id: Id,
    pub merged_id: Id,
    pub reason: String,
    pub actor_id: Option<Id>,
    pub at: Ts,
    pub snapshot: String,
    pub undone_at: Option<Ts>,
    pub undone_by: Option<Id>,
}

/// The ordered pair key: a pair is stored once whatever the order.
pub fn ordered(a: Id, b: Id) -> (Id, Id) {
    if a < b {
        (a, b)
    } else {
        (b, a)
    }
}

pub fn find_pair(conn: &mut DbConn, a: Id, b: Id) -> QueryResult<Option<DuplicatePair>> {
    let (a, b) = ordered(a, b);
    duplicate_pairs::table
        .filter(duplicate_pairs::person_a.eq(a))
        .filter(duplicate_pairs::person_b.eq(b))
        .select(DuplicatePair::as_select())
        .first(conn)
        .optional()
}

/// Queues a pair unless it is already known (in any status). Returns true
/// when it was added.
pub fn queue_pair(
    conn: &mut DbConn,
    a: Id,
    b: Id,
    score: f64,
    reasons: &[String],
    source: &str,
) -> QueryResult<bool> {
    if find_pair(conn, a, b)?.is_some() {
        return Ok(false);
    }
    let (a, b) = ordered(a, b);
    diesel::insert_into(duplicate_pairs::table)
        .values(&DuplicatePair {
            id: Id::new(),
            person_a: a,
            person_b: b,
            score,
            reasons: serde_json::to_string(reasons).unwrap_or_else(|_| "[]".into()),
            status: "open".into(),
            source: source.into(),
            decided_by: None,
            decided_at: None,
            decision_reason: None,
            created_at: Ts::now(),
        })
        .execute(conn)?;
    Ok(true)
}

pub fn find_pair_by_id(conn: &mut DbConn, id: Id) -> QueryResult<Option<DuplicatePair>> {
    duplicate_pairs::table
        .find(id)
        .select(DuplicatePair::as_select())
        .first(conn)
        .optional()
}

pub fn decide_pair(
    conn: &mut DbConn,
    id: Id,
    status: &str,
    by: Option<Id>,
    reason: Option<&str>,
) -> QueryResult<()> {
    diesel::update(duplicate_pairs::table.find(id))
        .set((
            duplicate_pairs::status.eq(status),
            duplicate_pairs::decided_by.eq(by),
            duplicate_pairs::decided_at.eq(by.map(|_| Ts::now())),
            duplicate_pairs::decision_reason.eq(reason),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn pairs_involving(conn: &mut DbConn, a: Id, b: Id) -> QueryResult<Option<DuplicatePair>> {
    find_pair(conn, a, b)
}

pub fn list_pairs(
    conn: &mut DbConn,
    status: Option<&str>,
    person: Option<Id>,
    window: Window,
) -> QueryResult<(Vec<DuplicatePair>, i64)> {
    let build = || {
        let mut q = duplicate_pairs::table.into_boxed::<MultiBackend>();
        if let Some(s) = status {
            q = q.filter(duplicate_pairs::status.eq(s.to_owned()));
        }
        if let Some(p) = person {
            q = q.filter(
                duplicate_pairs::person_a
                    .eq(p)
                    .or(duplicate_pairs::person_b.eq(p)),
            );
        }
        q
    };
    let total = build().count().get_result(conn)?;
    let rows = build()
        .order((duplicate_pairs::score.desc(), duplicate_pairs::created_at))
        .limit(window.limit)
        .offset(window.offset)
        .select(DuplicatePair::as_select())
        .load(conn)?;
    Ok((rows, total))
}

// --- merges ---------------------------------------------------------------------

pub fn insert_merge(conn: &mut DbConn, m: &PersonMerge) -> QueryResult<()> {
    diesel::insert_into(person_merges::table)
        .values(m)
        .execute(conn)
        .map(|_| ())
}

pub fn find_merge(conn: &mut DbConn, id: Id) -> QueryResult<Option<PersonMerge>> {
    person_merges::table
        .find(id)
        .select(PersonMerge::as_select())
        .first(conn)
        .optional()
}

pub fn mark_merge_undone(conn: &mut DbConn, id: Id, by: Id) -> QueryResult<bool> {
    let n = diesel::update(
        person_merges::table
            .filter(person_merges::id.eq(id))
            .filter(person_merges::undone_at.is_null()),
    )
    .set((
        person_merges::undone_at.eq(Ts::now()),
        person_merges::undone_by.eq(by),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn move_documents(conn: &mut DbConn, ids: &[Id], to: Id) -> QueryResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    diesel::update(person_documents::table.filter(person_documents::id.eq_any(ids.to_vec())))
        .set(person_documents::person_id.eq(to))
        .execute(conn)
        .map(|_| ())
}
