//! The support network's rules: the directory of organisations a consulate
//! refers people to (who may see and maintain an entry, what counts as
//! verifying it) and referrals from cases to them (`sent → accepted |
//! declined`, `accepted → completed`).
//!
//! Writes run inside [`crate::services::journal::commit`]; field names in
//! errors are those of the input, placed in the request by the API.

use chrono::NaiveDate;

use crate::audit::Event;
use crate::auth::AuthUser;
use crate::db::{DbConn, Id, Ts};
use crate::domain::audit::AuditAction;
use crate::domain::catalogue::AttentionCategory;
use crate::domain::error_code::ErrorCode;
use crate::domain::role::Role;
use crate::domain::support::{OrganisationKind, ReferralStatus};
use crate::domain::text::fold_key;
use crate::domain::timeline::TimelineKind;
use crate::domain::Stored;
use crate::error::AppError;
use crate::models::cases::Case;
use crate::models::reference::{self as reference_model, ConsulateKey};
use crate::models::support::{self as model, Organisation, Referral};
use crate::services::cases::load_scoped;
use crate::services::input::{
    changed_meanwhile, check_version, field_changes, optional_text, past_date, text,
};
use crate::services::journal::Journal;

fn languages(field: &str, raw: &[String]) -> Result<String, AppError> {
    let mut out: Vec<String> = Vec::new();
    for (i, l) in raw.iter().enumerate() {
        let l = l.trim().to_ascii_lowercase();
        if l.len() != 2 || !l.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(AppError::invalid(
                format!("{field}[{i}]"),
                "must be an ISO 639-1 code such as `es` or `en`",
            ));
        }
        if !out.contains(&l) {
            out.push(l);
        }
    }
    serde_json::to_string(&out).map_err(AppError::internal)
}

fn categories(raw: &[AttentionCategory]) -> Result<String, AppError> {
    let mut c: Vec<&str> = raw.iter().map(|c| c.as_str()).collect();
    c.sort_unstable();
    c.dedup();
    serde_json::to_string(&c).map_err(AppError::internal)
}

fn email(field: &str, v: Option<&str>) -> Result<Option<String>, AppError> {
    let v = optional_text(field, v, 254)?;
    if let Some(e) = &v {
        let ok = e
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !e.contains(' '));
        if !ok {
            return Err(AppError::invalid(field, "is not an e-mail address"));
        }
    }
    Ok(v)
}

fn search_key(name: &str, city: Option<&str>) -> String {
    fold_key(&format!("{name} {}", city.unwrap_or_default()))
}

/// Resolves consulate ids or codes; supervisors may only name their own.
fn serving_consulates(
    conn: &mut DbConn,
    user: &AuthUser,
    raw: Option<&[String]>,
) -> Result<Vec<Id>, AppError> {
    let Some(raw) = raw else {
        return match (user.role, user.consulate_id) {
            (Role::Supervisor, Some(own)) => Ok(vec![own]),
            _ => Ok(Vec::new()),
        };
    };
    let mut out = Vec::new();
    for (i, key) in raw.iter().enumerate() {
        let field = format!("consulates[{i}]");
        let k = match uuid::Uuid::parse_str(key.trim()) {
            Ok(id) => ConsulateKey::Id(Id(id)),
            Err(_) => ConsulateKey::Code(key.trim().to_owned()),
        };
        let c = reference_model::find_consulate(conn, &k)?
            .ok_or_else(|| AppError::invalid(&field, format!("no consulate `{key}`")))?;
        if user.role.is_consulate_scoped() && Some(c.consulate.id) != user.consulate_id {
            return Err(AppError::forbidden(
                ErrorCode::Forbidden,
                format!("{field}: a supervisor maintains only their own consulate's entries"),
            ));
        }
        if !out.contains(&c.consulate.id) {
            out.push(c.consulate.id);
        }
    }
    if user.role == Role::Supervisor && out.is_empty() {
        return Err(AppError::invalid(
            "consulates",
            "must include your consulate",
        ));
    }
    Ok(out)
}

/// An organisation the caller may see (public, or serving their consulate;
/// all for national roles), with the consulates it serves; others read as
/// absent.
pub fn load_visible(
    conn: &mut DbConn,
    user: &AuthUser,
    raw: &str,
) -> Result<(Organisation, Vec<Id>), AppError> {
    let missing = || AppError::not_found(format!("no organisation `{raw}`"));
    let id = uuid::Uuid::parse_str(raw).map(Id).map_err(|_| missing())?;
    let o = model::find_organisation(conn, id)?.ok_or_else(missing)?;
    let serving: Vec<Id> = model::consulates_of(conn, &[o.id])?
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    let visible = !user.role.is_consulate_scoped()
        || o.public
        || user.consulate_id.is_some_and(|c| serving.contains(&c));
    if !visible {
        return Err(AppError::OutOfScope(format!("no organisation `{raw}`")));
    }
    Ok((o, serving))
}

/// Supervisors write only entries serving their consulate.
fn require_maintainer(user: &AuthUser, serving: &[Id]) -> Result<(), AppError> {
    if user.role.is_consulate_scoped() && !user.consulate_id.is_some_and(|c| serving.contains(&c)) {
        return Err(AppError::forbidden(
            ErrorCode::Forbidden,
            "only supervisors of a consulate this organisation serves (or admins) may change it",
        ));
    }
    Ok(())
}

/// A directory entry to add.
pub struct NewOrganisation {
    pub name: String,
    pub kind: OrganisationKind,
    pub country: String,
    pub city: Option<String>,
    pub address: Option<String>,
    pub attention_categories: Vec<AttentionCategory>,
    pub languages: Vec<String>,
    pub contact_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub website: Option<String>,
    pub notes: Option<String>,
    pub public: bool,
    pub consulates: Option<Vec<String>>,
}

/// Adds an organisation, verified now, serving the consulates named (a
/// supervisor's serves their own).
pub fn create_organisation(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    new: NewOrganisation,
) -> Result<(Organisation, Vec<Id>), AppError> {
    let name = text("name", &new.name, 300)?;
    let country = reference_model::find_country_by_code(conn, &new.country)?
        .ok_or_else(|| {
            AppError::invalid("country", format!("unknown country code `{}`", new.country))
        })?
        .alpha2;
    let city = optional_text("city", new.city.as_deref(), 200)?;
    let serving = serving_consulates(conn, user, new.consulates.as_deref())?;
    let now = Ts::now();
    let o = Organisation {
        id: Id::new(),
        search_key: search_key(&name, city.as_deref()),
        name,
        kind: new.kind.as_str().to_owned(),
        country_code: country,
        city,
        address: optional_text("address", new.address.as_deref(), 500)?,
        attention_categories: categories(&new.attention_categories)?,
        languages: languages("languages", &new.languages)?,
        contact_name: optional_text("contact_name", new.contact_name.as_deref(), 200)?,
        email: email("email", new.email.as_deref())?,
        phone: optional_text("phone", new.phone.as_deref(), 50)?,
        website: optional_text("website", new.website.as_deref(), 500)?,
        notes: optional_text("notes", new.notes.as_deref(), 4000)?,
        public: new.public,
        active: true,
        verified_at: Some(now),
        verified_by: Some(user.user_id),
        version: 1,
        created_by: Some(user.user_id),
        created_at: now,
        updated_at: now,
    };
    model::insert_organisation(conn, &o, &serving)?;
    journal.audit(
        Event::new(
            AuditAction::OrganisationCreate,
            "organisation",
            Some(o.id.to_string()),
        )
        .details(serde_json::json!({ "name": o.name, "consulates": serving })),
    );
    Ok((o, serving))
}

/// A correction of an entry; `None` keeps a field.
#[derive(Default)]
pub struct OrganisationChange {
    pub name: Option<String>,
    pub kind: Option<OrganisationKind>,
    pub city: Option<String>,
    pub address: Option<String>,
    pub attention_categories: Option<Vec<AttentionCategory>>,
    pub languages: Option<Vec<String>>,
    pub contact_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub website: Option<String>,
    pub notes: Option<String>,
    pub public: Option<bool>,
    pub active: Option<bool>,
    pub consulates: Option<Vec<String>>,
}

impl OrganisationChange {
    /// A change of contact data counts as verifying the entry.
    fn touches_contact(&self) -> bool {
        self.contact_name.is_some()
            || self.email.is_some()
            || self.phone.is_some()
            || self.website.is_some()
            || self.address.is_some()
    }
}

/// Corrects an entry at version `expected`.
pub fn update_organisation(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    expected: Result<i32, AppError>,
    change: OrganisationChange,
) -> Result<(Organisation, Vec<Id>), AppError> {
    let (current, serving) = load_visible(conn, user, raw)?;
    require_maintainer(user, &serving)?;
    let expected = expected?;
    check_version(current.version, expected, "organisation")?;
    let mut next = current.clone();
    apply_change(&mut next, &change)?;
    let mut serving_next = serving.clone();
    if let Some(c) = &change.consulates {
        if user.role != Role::Admin {
            return Err(AppError::forbidden(
                ErrorCode::Forbidden,
                "consulates: only admins change which consulates an organisation serves",
            ));
        }
        serving_next = serving_consulates(conn, user, Some(c))?;
        model::set_organisation_consulates(conn, next.id, &serving_next)?;
    }
    let now = Ts::now();
    if change.touches_contact() {
        next.verified_at = Some(now);
        next.verified_by = Some(user.user_id);
    }
    next.search_key = search_key(&next.name, next.city.as_deref());
    next.version += 1;
    next.updated_at = now;
    if !model::update_organisation(conn, &next, expected)? {
        return Err(changed_meanwhile("organisation"));
    }
    let mut changes = field_changes(&current, &next, &["version", "updated_at", "search_key"]);
    if serving_next != serving {
        changes.insert(
            "consulates".into(),
            serde_json::json!({ "from": serving, "to": serving_next }),
        );
    }
    journal.audit(
        Event::new(
            AuditAction::OrganisationUpdate,
            "organisation",
            Some(next.id.to_string()),
        )
        .details(serde_json::json!({ "changes": changes })),
    );
    Ok((next, serving_next))
}

/// The checked fields of a correction, in the order they are checked.
fn apply_change(next: &mut Organisation, change: &OrganisationChange) -> Result<(), AppError> {
    if let Some(n) = &change.name {
        next.name = text("name", n, 300)?;
    }
    if let Some(k) = change.kind {
        next.kind = k.as_str().to_owned();
    }
    if change.city.is_some() {
        next.city = optional_text("city", change.city.as_deref(), 200)?;
    }
    if change.address.is_some() {
        next.address = optional_text("address", change.address.as_deref(), 500)?;
    }
    if let Some(c) = &change.attention_categories {
        next.attention_categories = categories(c)?;
    }
    if let Some(l) = &change.languages {
        next.languages = languages("languages", l)?;
    }
    if change.contact_name.is_some() {
        next.contact_name = optional_text("contact_name", change.contact_name.as_deref(), 200)?;
    }
    if change.email.is_some() {
        next.email = email("email", change.email.as_deref())?;
    }
    if change.phone.is_some() {
        next.phone = optional_text("phone", change.phone.as_deref(), 50)?;
    }
    if change.website.is_some() {
        next.website = optional_text("website", change.website.as_deref(), 500)?;
    }
    if change.notes.is_some() {
        next.notes = optional_text("notes", change.notes.as_deref(), 4000)?;
    }
    if let Some(p) = change.public {
        next.public = p;
    }
    if let Some(a) = change.active {
        next.active = a;
    }
    Ok(())
}

/// Confirms an entry is still accurate (resets its staleness).
pub fn verify_organisation(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
) -> Result<(Organisation, Vec<Id>), AppError> {
    let (current, serving) = load_visible(conn, user, raw)?;
    require_maintainer(user, &serving)?;
    let now = Ts::now();
    let mut next = current.clone();
    next.verified_at = Some(now);
    next.verified_by = Some(user.user_id);
    next.version += 1;
    next.updated_at = now;
    if !model::update_organisation(conn, &next, current.version)? {
        return Err(changed_meanwhile("organisation"));
    }
    journal.audit(
        Event::new(
            AuditAction::OrganisationVerify,
            "organisation",
            Some(next.id.to_string()),
        )
        .details(serde_json::json!({ "previously_verified_at": current.verified_at })),
    );
    Ok((next, serving))
}

/// A referral to send.
pub struct NewReferral {
    pub organisation_id: Id,
    pub reason: String,
    pub sent_on: Option<NaiveDate>,
}

/// Refers an open case to an active organisation that serves the case's
/// consulate (or is public); written to the person's history.
pub fn refer(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    case: &Case,
    new: NewReferral,
) -> Result<Referral, AppError> {
    if case.status == "closed" {
        return Err(AppError::conflict(
            ErrorCode::CaseClosed,
            None,
            "the case is closed; reopen it to refer the person",
        ));
    }
    let reason = text("reason", &new.reason, 4000)?;
    let sent_on = past_date(
        "sent_on",
        new.sent_on
            .unwrap_or_else(|| chrono::Utc::now().date_naive()),
    )?;
    let org = model::find_organisation(conn, new.organisation_id)?
        .ok_or_else(|| AppError::invalid("organisation_id", "no such organisation"))?;
    let serving: Vec<Id> = model::consulates_of(conn, &[org.id])?
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    if !org.public && !serving.contains(&case.consulate_id) {
        return Err(AppError::invalid(
            "organisation_id",
            "the organisation neither serves this case's consulate nor is public",
        ));
    }
    if !org.active {
        return Err(AppError::invalid(
            "organisation_id",
            "the organisation is deactivated",
        ));
    }
    let now = Ts::now();
    let r = Referral {
        id: Id::new(),
        case_id: case.id,
        person_id: case.person_id,
        consulate_id: case.consulate_id,
        organisation_id: org.id,
        reason,
        status: ReferralStatus::Sent.as_str().to_owned(),
        sent_on,
        responded_on: None,
        completed_on: None,
        outcome: None,
        created_by: Some(user.user_id),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    model::insert_referral(conn, &r)?;
    journal.case_event(
        case,
        TimelineKind::ReferralSent,
        Some(user.user_id),
        None,
        serde_json::json!({
            "referral_id": r.id,
            "organisation_id": org.id,
            "organisation": org.name,
            "reason": r.reason,
            "sent_on": r.sent_on,
        }),
    );
    journal.audit(
        Event::new(
            AuditAction::ReferralCreate,
            "referral",
            Some(r.id.to_string()),
        )
        .subject(case.person_id)
        .details(serde_json::json!({ "case_id": case.id, "organisation_id": org.id })),
    );
    Ok(r)
}

/// The organisation's answer or the referral's completion.
pub struct ReferralAnswer {
    pub status: ReferralStatus,
    pub date: Option<NaiveDate>,
    pub outcome: Option<String>,
}

/// Records an answer along the allowed transitions; completing needs an
/// outcome, and no date may precede the referral's earlier ones.
pub fn answer(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    answer: ReferralAnswer,
) -> Result<Referral, AppError> {
    let missing = || AppError::not_found(format!("no referral `{raw}`"));
    let id = uuid::Uuid::parse_str(raw).map(Id).map_err(|_| missing())?;
    let current = model::find_referral(conn, id)?.ok_or_else(missing)?;
    let case = load_scoped(conn, user, &current.case_id.to_string())
        .map_err(|_| AppError::OutOfScope(format!("no referral `{raw}`")))?;
    let from = ReferralStatus::stored(&current.status)?;
    if !from.allowed_next().contains(&answer.status) {
        return Err(AppError::conflict(
            ErrorCode::InvalidTransition,
            Some("status"),
            format!(
                "a referral that is {} cannot become {}",
                from.as_str(),
                answer.status.as_str()
            ),
        ));
    }
    let date = past_date(
        "date",
        answer
            .date
            .unwrap_or_else(|| chrono::Utc::now().date_naive()),
    )?;
    if date < current.sent_on {
        return Err(AppError::invalid("date", "is before the referral was sent"));
    }
    let outcome = optional_text("outcome", answer.outcome.as_deref(), 4000)?;
    let mut next = current.clone();
    match answer.status {
        ReferralStatus::Completed => {
            if outcome.is_none() {
                return Err(AppError::invalid(
                    "outcome",
                    "say what came of the referral to complete it",
                ));
            }
            if current.responded_on.is_some_and(|r| date < r) {
                return Err(AppError::invalid("date", "is before it was accepted"));
            }
            next.completed_on = Some(date);
        }
        _ => next.responded_on = Some(date),
    }
    if outcome.is_some() {
        next.outcome = outcome;
    }
    next.status = answer.status.as_str().to_owned();
    next.version += 1;
    next.updated_at = Ts::now();
    if !model::update_referral(conn, &next, current.version)? {
        return Err(changed_meanwhile("referral"));
    }
    journal.case_event(
        &case,
        TimelineKind::ReferralStatusChanged,
        Some(user.user_id),
        None,
        serde_json::json!({
            "referral_id": next.id,
            "organisation_id": next.organisation_id,
            "from": from.as_str(),
            "to": next.status,
            "date": date,
            "outcome": next.outcome,
        }),
    );
    journal.audit(
        Event::new(
            AuditAction::ReferralStatus,
            "referral",
            Some(next.id.to_string()),
        )
        .subject(case.person_id)
        .details(serde_json::json!({ "from": from.as_str(), "to": answer.status.as_str() })),
    );
    Ok(next)
}
