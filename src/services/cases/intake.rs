//! Opening a case: the person it is for (one the consulate holds), the
//! requester, the channel, and the attentions given at intake.

use super::*;
use crate::domain::audit::AuditAction;
use crate::domain::error_code::ErrorCode;
use crate::domain::timeline::TimelineKind;

/// An attention as a request gives it.
pub struct AttentionInput {
    /// A code or any known spelling.
    pub attention_type: String,
    pub date: NaiveDate,
    /// The request's channel when absent.
    pub channel: Option<String>,
    pub description: String,
    pub late_registration: bool,
}

pub(super) fn channel(field: &str, raw: &str) -> Result<IntakeChannel, AppError> {
    IntakeChannel::parse(raw).ok_or_else(|| {
        AppError::invalid(field, "one of phone, e_appointment, consulate_window, institutional_email, in_person_ministry (or their Spanish names)")
    })
}

/// Resolves and validates attentions; `base` is where the request carries
/// them (`attentions`, or empty for one attention as the whole input).
pub(super) fn prepare_attentions(
    conn: &mut DbConn,
    inputs: &[AttentionInput],
    base: &str,
    default_channel: IntakeChannel,
    opened: Ts,
) -> Result<Vec<NewAttention>, AppError> {
    let mut out = Vec::new();
    for (i, a) in inputs.iter().enumerate() {
        let field = |f: &str| {
            if base.is_empty() {
                f.to_owned()
            } else {
                format!("{base}[{i}].{f}")
            }
        };
        let t = crate::services::catalogue::resolve(conn, &a.attention_type)?.ok_or_else(|| {
            AppError::invalid(
                field("attention_type"),
                format!("no attention type is spelled `{}`", a.attention_type),
            )
        })?;
        check_attention_date(&field("date"), a.date, a.late_registration, opened)?;
        let ch = match &a.channel {
            Some(c) => channel(&field("channel"), c)?,
            None => default_channel,
        };
        out.push(NewAttention {
            attention_type: t,
            attended_on: a.date,
            channel: ch.as_str().to_owned(),
            description: text(&field("description"), &a.description, 4000)?,
            late_registration: a.late_registration,
        });
    }
    Ok(out)
}

/// Who asked for help.
pub struct Requester {
    pub kind: RequesterKind,
    pub name: Option<String>,
    pub relationship: Option<String>,
    pub contact: Option<String>,
}

/// A case to open.
pub struct NewCase {
    pub person_id: Id,
    pub country: Option<String>,
    pub city: Option<String>,
    pub channel: String,
    pub requester: Requester,
    pub summary: String,
    pub flags: Vec<Flag>,
    pub assigned_officer_id: Option<Id>,
    pub attentions: Vec<AttentionInput>,
}

/// A case just opened, with what the answer shows of it.
pub struct Opened {
    pub case: Case,
    pub person: Person,
    pub attentions: Vec<Attention>,
    pub steps: Vec<CaseStep>,
}

/// Whether `officer` is an active officer or supervisor of `consulate`.
pub(crate) fn is_officer_of(
    conn: &mut DbConn,
    officer: Id,
    consulate: Id,
) -> Result<bool, AppError> {
    Ok(match crate::models::users::find_user(conn, officer)? {
        Some(u) => u.active && u.consulate_id == Some(consulate) && u.role()?.is_consulate_scoped(),
        None => false,
    })
}

/// The person a new case is for: one the caller's consulate holds (any
/// other reads exactly like one that does not exist: opening a case is no
/// way in), not merged away.
pub(super) fn person_for_case(
    conn: &mut DbConn,
    user: &AuthUser,
    id: Id,
) -> Result<Person, AppError> {
    let no_such = || {
        AppError::invalid(
            "person_id",
            "no person your consulate holds has this id; a person known at another consulate is reached with POST /api/v1/persons/{id}/access-requests",
        )
    };
    let person = persons::find_person(conn, id)?.ok_or_else(no_such)?;
    if access_service::person_access(conn, Viewer::of(user, false), &person)?.view == View::NotHeld
    {
        return Err(no_such());
    }
    if let Some(survivor) = person.merged_into_id {
        return Err(AppError::invalid(
            "person_id",
            format!("this person was merged into {survivor}; use that id"),
        ));
    }
    Ok(person)
}

/// Opens a case for a person at the caller's consulate, with the
/// attentions given at intake; a protecting flag or attention type
/// protects the person at the consulate.
pub fn open(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    new: NewCase,
) -> Result<Opened, AppError> {
    let consulate = user.consulate_id.ok_or_else(|| {
        AppError::forbidden(ErrorCode::Forbidden, "only consulate staff open cases")
    })?;
    let person = person_for_case(conn, user, new.person_id)?;
    let ch = channel("channel", &new.channel)?;
    let summary = text("summary", &new.summary, 4000)?;
    let country = match &new.country {
        Some(code) => {
            reference_model::find_country_by_code(conn, code)?
                .ok_or_else(|| {
                    AppError::invalid("country", format!("unknown country code `{code}`"))
                })?
                .alpha2
        }
        None => reference_model::consulate_country(conn, consulate)?,
    };
    let relationship = new.requester.relationship.as_deref().map(str::trim);
    if new.requester.kind == RequesterKind::Relative && relationship.unwrap_or("").is_empty() {
        return Err(AppError::invalid(
            "requester.relationship",
            "say how the relative is related",
        ));
    }
    if let Some(officer) = new.assigned_officer_id {
        if !is_officer_of(conn, officer, consulate)? {
            return Err(AppError::invalid(
                "assigned_officer_id",
                "not an active officer of this consulate",
            ));
        }
    }
    let now = Ts::now();
    let mut flags = new.flags.clone();
    flags.sort();
    flags.dedup();
    let mut case = Case {
        id: Id::new(),
        person_id: person.id,
        consulate_id: consulate,
        country_code: country,
        city: new
            .city
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
        channel: ch.as_str().to_owned(),
        requester_kind: new.requester.kind.as_str().to_owned(),
        requester_name: new.requester.name,
        requester_relationship: new.requester.relationship,
        requester_contact: new.requester.contact,
        summary,
        flags: serde_json::to_string(&flags).map_err(AppError::internal)?,
        protected: flags.iter().any(|f| f.protects()),
        status: CaseStatus::Open.as_str().to_owned(),
        outcome: None,
        closed_at: None,
        assigned_officer_id: new.assigned_officer_id.or(Some(user.user_id)),
        opened_at: now,
        created_by: Some(user.user_id),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let attentions = prepare_attentions(conn, &new.attentions, "attentions", ch, now)?;
    // Final protection known before the insert: no second write.
    case.protected = case.protected
        || attentions
            .iter()
            .any(|a| a.attention_type.protected_by_default);
    model::insert_case(conn, &case)?;
    if case.protected {
        access_service::case_protected(conn, person.id, consulate, Some(user.user_id))?;
    }
    journal.case_event(
        &case,
        TimelineKind::CaseOpened,
        Some(user.user_id),
        None,
        serde_json::json!({ "channel": case.channel, "flags": flags }),
    );
    let mut steps = Vec::new();
    let mut recorded = Vec::new();
    for a in attentions {
        recorded.push(add_attention(
            conn,
            journal,
            &mut case,
            a,
            user.user_id,
            &mut steps,
        )?);
    }
    journal.audit(
        Event::new(AuditAction::CaseCreate, "case", Some(case.id.to_string())).subject(person.id),
    );
    Ok(Opened {
        case,
        person,
        attentions: recorded,
        steps,
    })
}
