//! The append-only, hash-chained audit log.
//!
//! [`record`] is called inside the transaction of the write it records, so
//! both commit or neither does. Appends take the single `audit_head` row with
//! an UPDATE first, which serialises them on both backends: rows are chained
//! in commit order, with no gaps in `seq`. [`verify`] recomputes the chain and
//! names the first altered, missing or extra row.

use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db::schema::{audit_head, audit_log};
use crate::db::{DbConn, Id, Ts};
use crate::domain::audit::AuditAction;
use crate::domain::role::Role;

/// How an audited act ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// Who acted.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Id,
    pub username: String,
    pub role: Role,
    pub consulate_id: Option<Id>,
}

/// Where a request came from: request id and client address.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
}

/// One audited act.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub action: AuditAction,
    pub resource_type: &'a str,
    pub resource_id: Option<String>,
    /// The person whose data is involved, when personal data is.
    pub subject_person_id: Option<Id>,
    pub outcome: Outcome,
    /// Non-secret context: changed fields, reasons, counts.
    pub details: serde_json::Value,
}

impl<'a> Event<'a> {
    pub fn new(action: AuditAction, resource_type: &'a str, resource_id: Option<String>) -> Self {
        Event {
            action,
            resource_type,
            resource_id,
            subject_person_id: None,
            outcome: Outcome::Success,
            details: serde_json::json!({}),
        }
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    pub fn subject(mut self, person: Id) -> Self {
        self.subject_person_id = Some(person);
        self
    }

    /// The data subjects of a read that returned several persons' data (a
    /// list's page): named in `details.subjects`, and as the row's subject
    /// when there is exactly one. Call after [`Event::details`].
    pub fn subjects(mut self, persons: impl IntoIterator<Item = Id>) -> Self {
        let mut all: Vec<Id> = Vec::new();
        for p in persons {
            if !all.contains(&p) {
                all.push(p);
            }
        }
        if let [one] = all.as_slice() {
            self.subject_person_id = Some(*one);
        }
        if !all.is_empty() {
            if let serde_json::Value::Object(map) = &mut self.details {
                map.insert(
                    "subjects".into(),
                    serde_json::Value::Array(
                        all.iter()
                            .map(|p| serde_json::Value::String(p.to_string()))
                            .collect(),
                    ),
                );
            }
        }
        self
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: Id,
    pub seq: i64,
    pub at: Ts,
    pub actor_id: Option<Id>,
    pub actor_username: Option<String>,
    pub actor_role: Option<String>,
    pub actor_consulate_id: Option<Id>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub subject_person_id: Option<Id>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    pub outcome: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
    /// HMAC of `hash` under the audit key; absent on rows written before
    /// the log was keyed (the head's `keyed_from` says where keying began).
    pub mac: Option<String>,
}

#[derive(Queryable)]
struct Head {
    #[allow(dead_code)]
    id: i64,
    seq: i64,
    hash: String,
    keyed_from: Option<i64>,
    mac: Option<String>,
}

/// The key that authenticates audit rows, the head and checkpoints: held
/// outside the database (`MAPCE_AUDIT_KEY` or `MAPCE_DATA_DIR/audit-key`),
/// so a database writer can neither forge a row nor re-chain the log.
static KEY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// Installs the process's audit key (the first call wins); false when
/// another key was installed already.
pub fn install_key(key: &[u8]) -> bool {
    KEY.get_or_init(|| key.to_vec()) == key
}

fn key() -> QueryResult<&'static [u8]> {
    KEY.get().map(Vec::as_slice).ok_or_else(|| {
        diesel::result::Error::QueryBuilderError(
            "the audit key is not loaded (audit::install_key at start-up)".into(),
        )
    })
}

/// A key for another purpose derived from the audit key (HMAC-SHA256 of
/// the purpose's name), so that one secret outside the database serves.
pub fn derived_key(purpose: &str) -> QueryResult<[u8; 32]> {
    use hmac::{Hmac, Mac};
    let key = key()?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(purpose.as_bytes());
    Ok(mac.finalize().into_bytes().into())
}

fn mac_of(key: &[u8], text: &str) -> String {
    use hmac::{Hmac, Mac};
    // HMAC accepts keys of any length: new_from_slice cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(text.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn row_mac(key: &[u8], hash: &str) -> String {
    mac_of(key, &format!("mapce-audit-row|{hash}"))
}

fn head_mac(key: &[u8], seq: i64, hash: &str, keyed_from: Option<i64>) -> String {
    let from = keyed_from.map(|k| k.to_string()).unwrap_or_default();
    mac_of(key, &format!("mapce-audit-head|{seq}|{hash}|{from}"))
}

/// A signed head to keep outside the database (`mapce audit checkpoint`);
/// `mapce audit verify --checkpoint` then catches a log cut back below it
/// or re-chained under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub at: String,
    pub mac: String,
}

fn checkpoint_mac(key: &[u8], seq: i64, hash: &str, at: &str) -> String {
    mac_of(key, &format!("mapce-audit-checkpoint|{seq}|{hash}|{at}"))
}

/// The current head, signed.
pub fn checkpoint(conn: &mut DbConn) -> QueryResult<Checkpoint> {
    let key = key()?;
    let head: Head = audit_head::table.filter(audit_head::id.eq(1)).first(conn)?;
    let at = Ts::now().to_storage_string();
    Ok(Checkpoint {
        mac: checkpoint_mac(key, head.seq, &head.hash, &at),
        seq: head.seq,
        hash: head.hash,
        at,
    })
}

/// The hash of a row: SHA-256 over a canonical JSON array of every field
/// but the hash itself, including the previous row's hash.
pub fn row_hash(row: &AuditRow) -> String {
    let canonical = serde_json::json!([
        row.seq,
        row.id.to_string(),
        row.at.to_storage_string(),
        row.actor_id.map(|i| i.to_string()),
        row.actor_username,
        row.actor_role,
        row.actor_consulate_id.map(|i| i.to_string()),
        row.action,
        row.resource_type,
        row.resource_id,
        row.subject_person_id.map(|i| i.to_string()),
        row.request_id,
        row.client_addr,
        row.outcome,
        row.details,
        row.prev_hash,
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// Appends one row; call it inside the transaction of the act it records.
pub fn record(
    conn: &mut DbConn,
    actor: Option<&Actor>,
    meta: &RequestMeta,
    event: Event<'_>,
) -> QueryResult<()> {
    let key = key()?;
    // The UPDATE takes the head's row lock (PostgreSQL) or the write lock
    // (SQLite) before anything is read, so concurrent appends queue here.
    let head: Head = diesel::update(audit_head::table.filter(audit_head::id.eq(1)))
        .set(audit_head::seq.eq(audit_head::seq + 1))
        .get_result(conn)?;
    let mut row = AuditRow {
        id: Id::new(),
        seq: head.seq,
        at: Ts::now(),
        actor_id: actor.map(|a| a.user_id),
        actor_username: actor.map(|a| a.username.clone()),
        actor_role: actor.map(|a| a.role.as_str().to_owned()),
        actor_consulate_id: actor.and_then(|a| a.consulate_id),
        action: event.action.as_str().to_owned(),
        resource_type: event.resource_type.to_owned(),
        resource_id: event.resource_id,
        subject_person_id: event.subject_person_id,
        request_id: meta.request_id.clone(),
        client_addr: meta.client_addr.clone(),
        outcome: event.outcome.as_str().to_owned(),
        details: event.details.to_string(),
        prev_hash: head.hash,
        hash: String::new(),
        mac: None,
    };
    row.hash = row_hash(&row);
    row.mac = Some(row_mac(key, &row.hash));
    diesel::insert_into(audit_log::table)
        .values(&row)
        .execute(conn)?;
    let keyed_from = head.keyed_from.or(Some(row.seq));
    diesel::update(audit_head::table.filter(audit_head::id.eq(1)))
        .set((
            audit_head::hash.eq(&row.hash),
            audit_head::keyed_from.eq(keyed_from),
            audit_head::mac.eq(head_mac(key, row.seq, &row.hash, keyed_from)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records an act in a transaction of its own (refusals, failed logins).
pub fn record_alone(
    conn: &mut DbConn,
    actor: Option<&Actor>,
    meta: &RequestMeta,
    event: Event<'_>,
) -> QueryResult<()> {
    crate::db::write_tx(conn, |conn| record(conn, actor, meta, event))
}

/// What [`verify`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The chain is whole: this many rows.
    Intact { rows: i64 },
    /// The first problem, by sequence number.
    Broken { seq: i64, reason: String },
}

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Walks the log in order, recomputing every hash and, from the row where
/// keying began, every row's MAC, in pages of 1000 rows; then the head.
pub fn verify(conn: &mut DbConn) -> QueryResult<Verdict> {
    verify_against(conn, None)
}

/// [`verify`], and that the log still holds a checkpoint's row unchanged:
/// a log cut back below it (truncated) or rebuilt under it (re-chained)
/// is broken even when its own chain and head were made consistent again.
pub fn verify_against(conn: &mut DbConn, checkpoint: Option<&Checkpoint>) -> QueryResult<Verdict> {
    let key = key()?;
    let head: Head = audit_head::table.filter(audit_head::id.eq(1)).first(conn)?;
    if let Some(cp) = checkpoint {
        if checkpoint_mac(key, cp.seq, &cp.hash, &cp.at) != cp.mac {
            return Ok(Verdict::Broken {
                seq: cp.seq,
                reason: "the checkpoint is not signed by this audit key".into(),
            });
        }
    }
    let mut checkpoint_seen = false;
    let mut expected_seq = 1i64;
    let mut prev_hash = GENESIS_HASH.to_owned();
    loop {
        let page: Vec<AuditRow> = audit_log::table
            .filter(audit_log::seq.ge(expected_seq))
            .order(audit_log::seq)
            .limit(1000)
            .select(AuditRow::as_select())
            .load(conn)?;
        if page.is_empty() {
            break;
        }
        for row in page {
            if row.seq != expected_seq {
                return Ok(Verdict::Broken {
                    seq: expected_seq,
                    reason: format!(
                        "row {expected_seq} is missing (next present is {})",
                        row.seq
                    ),
                });
            }
            if row.prev_hash != prev_hash {
                return Ok(Verdict::Broken {
                    seq: row.seq,
                    reason: "its prev_hash does not match the previous row's hash (previous row altered or replaced)".into(),
                });
            }
            if row_hash(&row) != row.hash {
                return Ok(Verdict::Broken {
                    seq: row.seq,
                    reason: "its content does not match its hash (row altered)".into(),
                });
            }
            let keyed = head.keyed_from.is_some_and(|k| row.seq >= k);
            if keyed && row.mac.as_deref() != Some(row_mac(key, &row.hash).as_str()) {
                return Ok(Verdict::Broken {
                    seq: row.seq,
                    reason: "its MAC does not match (written or re-chained without the audit key)"
                        .into(),
                });
            }
            if !keyed && row.mac.is_some() {
                return Ok(Verdict::Broken {
                    seq: row.seq,
                    reason: "it carries a MAC before the row where the head says keying began (head altered)".into(),
                });
            }
            if let Some(cp) = checkpoint.filter(|cp| cp.seq == row.seq) {
                if cp.hash != row.hash {
                    return Ok(Verdict::Broken {
                        seq: row.seq,
                        reason: "it differs from the checkpoint (the log was re-chained)".into(),
                    });
                }
                checkpoint_seen = true;
            }
            prev_hash = row.hash;
            expected_seq += 1;
        }
    }
    let rows = expected_seq - 1;
    if let Some(cp) = checkpoint.filter(|cp| cp.seq > 0 && !checkpoint_seen) {
        return Ok(Verdict::Broken {
            seq: cp.seq,
            reason: format!(
                "the checkpoint saw row {} but the log ends at row {rows} (truncated)",
                cp.seq
            ),
        });
    }
    if head.seq != rows {
        return Ok(Verdict::Broken {
            seq: rows + 1,
            reason: format!("the head says {} rows were written but {rows} are present (rows removed from the end)", head.seq),
        });
    }
    if head.hash != prev_hash {
        return Ok(Verdict::Broken {
            seq: rows,
            reason: "the last row's hash does not match the head (last row altered)".into(),
        });
    }
    let signed = head.keyed_from.is_none() && head.mac.is_none()
        || head.mac.as_deref()
            == Some(head_mac(key, head.seq, &head.hash, head.keyed_from).as_str());
    if !signed {
        return Ok(Verdict::Broken {
            seq: rows,
            reason: "the head's MAC does not match (head rewritten without the audit key)".into(),
        });
    }
    Ok(Verdict::Intact { rows })
}

/// Exact document searches since `since`, per (actor, username, consulate,
/// outcome): the rows `GET /lookups` adds up.
#[allow(clippy::type_complexity)]
pub fn lookups_since(
    conn: &mut DbConn,
    since: Ts,
) -> QueryResult<Vec<(Option<Id>, Option<String>, Option<Id>, String, i64)>> {
    audit_log::table
        .filter(audit_log::action.eq(AuditAction::PersonSearch.as_str()))
        .filter(audit_log::at.ge(since))
        .filter(audit_log::details.like("%\"by\":\"document\"%"))
        .group_by((
            audit_log::actor_id,
            audit_log::actor_username,
            audit_log::actor_consulate_id,
            audit_log::outcome,
        ))
        .select((
            audit_log::actor_id,
            audit_log::actor_username,
            audit_log::actor_consulate_id,
            audit_log::outcome,
            diesel::dsl::count_star(),
        ))
        .load(conn)
}

/// Filters for reading the log.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub actor_id: Option<Id>,
    pub subject_person_id: Option<Id>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub action: Option<String>,
    pub from: Option<Ts>,
    pub to: Option<Ts>,
}

fn filtered(filter: &AuditFilter) -> audit_log::BoxedQuery<'static, crate::db::MultiBackend> {
    let mut q = audit_log::table.into_boxed::<crate::db::MultiBackend>();
    if let Some(a) = filter.actor_id {
        q = q.filter(audit_log::actor_id.eq(a));
    }
    if let Some(s) = filter.subject_person_id {
        // The row's one subject, or one of the persons a list answer named.
        q = q.filter(
            audit_log::subject_person_id
                .eq(s)
                .or(audit_log::details.like(format!("%\"{s}\"%"))),
        );
    }
    if let Some(t) = &filter.resource_type {
        q = q.filter(audit_log::resource_type.eq(t.clone()));
    }
    if let Some(r) = &filter.resource_id {
        q = q.filter(audit_log::resource_id.eq(r.clone()));
    }
    if let Some(a) = &filter.action {
        q = q.filter(audit_log::action.eq(a.clone()));
    }
    if let Some(from) = filter.from {
        q = q.filter(audit_log::at.ge(from));
    }
    if let Some(to) = filter.to {
        q = q.filter(audit_log::at.lt(to));
    }
    q
}

/// Newest first, and how many match in all.
pub fn list(
    conn: &mut DbConn,
    filter: &AuditFilter,
    window: crate::models::reference::Window,
) -> QueryResult<(Vec<AuditRow>, i64)> {
    let total = filtered(filter).count().get_result(conn)?;
    let rows = filtered(filter)
        .order(audit_log::seq.desc())
        .limit(window.limit)
        .offset(window.offset)
        .select(AuditRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}
