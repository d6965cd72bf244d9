//! Case rules: attentions (with protocol steps and deadline tasks), status
//! transitions with their closing conditions, and the case's timeline.

use crate::domain::Stored;
use chrono::NaiveDate;

use crate::audit::Event;
use crate::auth::AuthUser;
use crate::db::{DbConn, Id, Ts};
use crate::domain::access::View;
use crate::domain::case::{CaseOutcome, CaseStatus, Flag, RequesterKind};
use crate::domain::catalogue::IntakeChannel;
use crate::domain::vocabulary::RecordedChannel;
use crate::error::{AppError, FieldError};
use crate::models::cases::{self as model, Attention, Case, CaseStep, Task};
use crate::models::catalogue::{self as catalogue, AttentionType};
use crate::models::persons::{self as persons, Person};
use crate::models::reference as reference_model;
use crate::services::access::{self as access_service, Viewer};
use crate::services::input::text;
use crate::services::journal::Journal;

/// Loads a case the caller may act on: officers and supervisors only their
/// consulate's (others read as not found).
pub fn load_scoped(conn: &mut DbConn, user: &AuthUser, raw: &str) -> Result<Case, AppError> {
    let missing = || AppError::not_found(format!("no case `{raw}`"));
    let id = uuid::Uuid::parse_str(raw).map(Id).map_err(|_| missing())?;
    let c = model::find_case(conn, id)?.ok_or_else(missing)?;
    if !user.can_touch_consulate(c.consulate_id) {
        return Err(AppError::OutOfScope(format!("no case `{raw}`")));
    }
    Ok(c)
}

/// What a new attention says, resolved.
pub struct NewAttention {
    pub attention_type: AttentionType,
    pub attended_on: NaiveDate,
    pub channel: String,
    pub description: String,
    pub late_registration: bool,
}

/// Validates an attention's date against today and the case.
pub fn check_attention_date(
    field: &str,
    date: NaiveDate,
    late: bool,
    case_opened: Ts,
) -> Result<(), AppError> {
    let today = chrono::Utc::now().date_naive();
    if date > today {
        return Err(AppError::invalid(field, "is in the future"));
    }
    if date < case_opened.0.date_naive() && !late {
        return Err(AppError::invalid(
            field,
            "is before the case was opened; set late_registration to record an earlier attention",
        ));
    }
    Ok(())
}

/// Records an attention on a case. The first attention of a type with a
/// protocol copies the protocol's current version into the case's steps and
/// creates a task for every step with a deadline; a protected type makes the
/// case protected.
/// `steps` holds the case's protocol steps (loaded by the caller, empty for a
/// new case); steps this attention adds are appended to it.
fn add_attention(
    conn: &mut DbConn,
    journal: &mut Journal,
    case: &mut Case,
    new: NewAttention,
    actor: Id,
    steps: &mut Vec<CaseStep>,
) -> Result<Attention, AppError> {
    if new.attention_type.status != "active" {
        let hint = match new.attention_type.merged_into_id {
            Some(_) => "it was merged; use the type it resolves to",
            None => "it is deprecated",
        };
        return Err(AppError::invalid(
            "body.attention_type",
            format!(
                "{} cannot take new attentions: {hint}",
                new.attention_type.code
            ),
        ));
    }
    let (sex, birth) = persons::sex_and_birth(conn, case.person_id)?;
    let attention = Attention {
        id: Id::new(),
        case_id: case.id,
        person_id: case.person_id,
        consulate_id: case.consulate_id,
        attention_type_id: new.attention_type.id,
        attended_on: new.attended_on,
        channel: new.channel,
        officer_id: Some(actor),
        description: new.description,
        late_registration: new.late_registration,
        voided_at: None,
        voided_by: None,
        void_reason: None,
        created_at: Ts::now(),
        country_code: Some(case.country_code.clone()),
        person_sex: Some(sex),
        person_birth_date: birth,
    };
    model::insert_attention(conn, &attention)?;
    if !steps
        .iter()
        .any(|s| s.attention_type_id == attention.attention_type_id)
    {
        if let Some((version, protocol_steps)) =
            catalogue::protocol(conn, attention.attention_type_id, None)?
        {
            for step in protocol_steps {
                let due = step
                    .deadline_hours
                    .map(|h| Ts(case.opened_at.0 + chrono::Duration::hours(i64::from(h))));
                let case_step = CaseStep {
                    id: Id::new(),
                    case_id: case.id,
                    attention_type_id: attention.attention_type_id,
                    protocol_version_id: version.id,
                    position: step.position,
                    title_es: step.title_es.clone(),
                    title_en: step.title_en.clone(),
                    required_to_close: step.required_to_close,
                    due_at: due,
                    status: "pending".into(),
                    done_at: None,
                    waiver_reason: None,
                    decided_by: None,
                };
                model::insert_step(conn, &case_step)?;
                steps.push(case_step.clone());
                if due.is_some() {
                    model::insert_task(
                        conn,
                        &Task {
                            id: Id::new(),
                            case_id: case.id,
                            consulate_id: case.consulate_id,
                            title: step.title_es,
                            assignee_id: case.assigned_officer_id,
                            due_at: due,
                            done_at: None,
                            case_step_id: Some(case_step.id),
                            created_by: Some(actor),
                            created_at: Ts::now(),
                        },
                    )?;
                }
            }
        }
    }
    if new.attention_type.protected_by_default && !case.protected {
        case.protected = true;
        crate::services::access::case_protected(
            conn,
            case.person_id,
            case.consulate_id,
            Some(actor),
        )?;
    }
    // The history is ordered by when things happened: an attention entered
    // late sits at its own date, not at the day it was typed in.
    let today = chrono::Utc::now().date_naive();
    let at = if attention.attended_on < today {
        attention
            .attended_on
            .and_hms_opt(12, 0, 0)
            .map(|t| Ts(t.and_utc()))
            .unwrap_or_else(Ts::now)
    } else {
        Ts::now()
    };
    journal.case_event_at(
        case,
        at,
        "attention.recorded",
        Some(actor),
        Some(attention.attention_type_id),
        serde_json::json!({
            "attention_id": attention.id,
            "attention_type": new.attention_type.code,
            "attended_on": attention.attended_on,
            "channel": attention.channel,
            "late_registration": attention.late_registration,
        }),
    );
    Ok(attention)
}

/// Moves a case to `to`, checking the workflow and the closing conditions:
/// at least one attention, an outcome, and every required protocol step
/// done or waived.
pub fn transition(
    conn: &mut DbConn,
    case: &mut Case,
    to: CaseStatus,
    outcome: Option<CaseOutcome>,
    reason: Option<&str>,
) -> Result<serde_json::Value, AppError> {
    let from = CaseStatus::stored(&case.status)?;
    if !from.allowed_next().contains(&to) {
        let allowed: Vec<&str> = from.allowed_next().iter().map(|s| s.as_str()).collect();
        return Err(AppError::Conflict {
            code: "invalid_transition",
            detail: format!(
                "a case that is {} can go to: {}",
                from.as_str(),
                allowed.join(", ")
            ),
            errors: vec![FieldError::new(
                "body.to",
                format!("allowed: {}", allowed.join(", ")),
            )],
        });
    }
    match to {
        CaseStatus::Closed => {
            let outcome = outcome
                .ok_or_else(|| AppError::invalid("body.outcome", "closing needs an outcome"))?;
            let live = model::attentions_of(conn, &[case.id])?
                .into_iter()
                .filter(|a| a.voided_at.is_none())
                .count();
            if live == 0 {
                return Err(AppError::conflict(
                    "no_attention",
                    None,
                    "a case closes only after at least one attention is recorded",
                ));
            }
            let pending: Vec<String> = model::steps_of(conn, case.id)?
                .into_iter()
                .filter(|s| s.required_to_close && s.status == "pending")
                .map(|s| s.title_es)
                .collect();
            if !pending.is_empty() {
                return Err(AppError::Conflict {
                    code: "protocol_steps_pending",
                    detail: format!("required protocol steps are pending: {}; mark them done or waive them with a reason", pending.join("; ")),
                    errors: pending.iter().map(|p| FieldError::new("steps", p.clone())).collect(),
                });
            }
            case.outcome = Some(outcome.as_str().to_owned());
            case.closed_at = Some(Ts::now());
        }
        CaseStatus::Reopened => {
            let reason = reason
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .ok_or_else(|| AppError::invalid("body.reason", "reopening needs a reason"))?;
            case.closed_at = None;
            case.outcome = None;
            let _ = reason;
        }
        _ => {}
    }
    case.status = to.as_str().to_owned();
    Ok(
        serde_json::json!({ "from": from.as_str(), "to": to.as_str(), "outcome": outcome.map(|o| o.as_str()), "reason": reason }),
    )
}

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

fn channel(field: &str, raw: &str) -> Result<IntakeChannel, AppError> {
    IntakeChannel::parse(raw).ok_or_else(|| {
        AppError::invalid(field, "one of phone, e_appointment, consulate_window, institutional_email, in_person_ministry (or their Spanish names)")
    })
}

/// Resolves and validates attentions; `base` is where the request carries
/// them (`body.attentions`, or empty for one attention as the body).
fn prepare_attentions(
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
                format!("body.{f}")
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
fn is_officer_of(conn: &mut DbConn, officer: Id, consulate: Id) -> Result<bool, AppError> {
    Ok(match crate::models::users::find_user(conn, officer)? {
        Some(u) => u.active && u.consulate_id == Some(consulate) && u.role()?.is_consulate_scoped(),
        None => false,
    })
}

/// The person a new case is for: one the caller's consulate holds (any
/// other reads exactly like one that does not exist: opening a case is no
/// way in), not merged away.
fn person_for_case(conn: &mut DbConn, user: &AuthUser, id: Id) -> Result<Person, AppError> {
    let no_such = || {
        AppError::invalid(
            "body.person_id",
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
            "body.person_id",
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
    let consulate = user
        .consulate_id
        .ok_or_else(|| AppError::forbidden("forbidden", "only consulate staff open cases"))?;
    let person = person_for_case(conn, user, new.person_id)?;
    let ch = channel("body.channel", &new.channel)?;
    let summary = text("body.summary", &new.summary, 4000)?;
    let country = match &new.country {
        Some(code) => {
            reference_model::find_country_by_code(conn, code)?
                .ok_or_else(|| {
                    AppError::invalid("body.country", format!("unknown country code `{code}`"))
                })?
                .alpha2
        }
        None => reference_model::consulate_country(conn, consulate)?,
    };
    let relationship = new.requester.relationship.as_deref().map(str::trim);
    if new.requester.kind == RequesterKind::Relative && relationship.unwrap_or("").is_empty() {
        return Err(AppError::invalid(
            "body.requester.relationship",
            "say how the relative is related",
        ));
    }
    if let Some(officer) = new.assigned_officer_id {
        if !is_officer_of(conn, officer, consulate)? {
            return Err(AppError::invalid(
                "body.assigned_officer_id",
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
    let attentions = prepare_attentions(conn, &new.attentions, "body.attentions", ch, now)?;
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
        "case.opened",
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
    journal.audit(Event::new("case.create", "case", Some(case.id.to_string())).subject(person.id));
    Ok(Opened {
        case,
        person,
        attentions: recorded,
        steps,
    })
}

fn changed_meanwhile_retry() -> AppError {
    AppError::PreconditionFailed("the case changed meanwhile; retry".into())
}

/// Records one attention on an open case of the caller's consulate.
pub fn record_attention(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    input: AttentionInput,
) -> Result<Case, AppError> {
    let mut case = load_scoped(conn, user, raw)?;
    if case.status == CaseStatus::Closed.as_str() {
        return Err(AppError::conflict(
            "case_closed",
            None,
            "reopen the case before recording attentions",
        ));
    }
    let default = RecordedChannel::stored(&case.channel)?.intake();
    if default.is_none() && input.channel.is_none() {
        return Err(AppError::invalid(
            "body.channel",
            "the case's channel is not recorded: say how this request came",
        ));
    }
    let default = default.unwrap_or(IntakeChannel::ConsulateWindow);
    let new = prepare_attentions(
        conn,
        std::slice::from_ref(&input),
        "",
        default,
        case.opened_at,
    )?
    .remove(0);
    let version = case.version;
    let mut steps = model::steps_of(conn, case.id)?;
    let a = add_attention(conn, journal, &mut case, new, user.user_id, &mut steps)?;
    case.version += 1;
    case.updated_at = Ts::now();
    if !model::update_case(conn, &case, version)? {
        return Err(changed_meanwhile_retry());
    }
    journal.audit(
        Event::new("attention.create", "attention", Some(a.id.to_string())).subject(case.person_id),
    );
    Ok(case)
}

/// Voids an attention: it leaves every indicator but stays in the history.
pub fn void_attention(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    raw_attention: &str,
    reason: String,
) -> Result<Case, AppError> {
    let mut case = load_scoped(conn, user, raw)?;
    let missing = || AppError::not_found(format!("no attention `{raw_attention}` on this case"));
    let aid = uuid::Uuid::parse_str(raw_attention)
        .map(Id)
        .map_err(|_| missing())?;
    let a = model::find_attention(conn, aid)?
        .filter(|a| a.case_id == case.id)
        .ok_or_else(missing)?;
    if !model::void_attention(conn, a.id, user.user_id, &reason)? {
        return Err(AppError::conflict(
            "already_voided",
            None,
            "this attention is already voided",
        ));
    }
    let version = case.version;
    case.version += 1;
    case.updated_at = Ts::now();
    if !model::update_case(conn, &case, version)? {
        return Err(changed_meanwhile_retry());
    }
    journal.case_event(
        &case,
        "attention.voided",
        Some(user.user_id),
        Some(a.attention_type_id),
        serde_json::json!({ "attention_id": a.id, "reason": reason }),
    );
    journal.audit(
        Event::new("attention.void", "attention", Some(a.id.to_string()))
            .subject(case.person_id)
            .details(serde_json::json!({ "reason": reason })),
    );
    Ok(case)
}

/// A case at the version the caller read.
fn at_version(
    conn: &mut DbConn,
    user: &AuthUser,
    raw: &str,
    expected: Result<i32, AppError>,
) -> Result<(Case, i32), AppError> {
    let case = load_scoped(conn, user, raw)?;
    let expected = expected?;
    if case.version != expected {
        return Err(AppError::PreconditionFailed(format!(
            "the case is at version {}, not {expected}",
            case.version
        )));
    }
    Ok((case, expected))
}

/// Stores a changed case over the version read.
fn save(conn: &mut DbConn, case: &mut Case, expected: i32) -> Result<(), AppError> {
    case.version += 1;
    case.updated_at = Ts::now();
    if !model::update_case(conn, case, expected)? {
        return Err(AppError::PreconditionFailed(
            "the case changed meanwhile; read it again".into(),
        ));
    }
    Ok(())
}

/// A move through the workflow: the outcome closes, the reason reopens.
pub struct Move<'a> {
    pub to: CaseStatus,
    pub outcome: Option<CaseOutcome>,
    pub reason: Option<&'a str>,
}

/// Moves a case through its workflow (see [`transition`]).
pub fn move_case(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    expected: Result<i32, AppError>,
    to: Move<'_>,
) -> Result<Case, AppError> {
    let (mut case, expected) = at_version(conn, user, raw, expected)?;
    let change = transition(conn, &mut case, to.to, to.outcome, to.reason)?;
    save(conn, &mut case, expected)?;
    journal.case_event(
        &case,
        "case.status_changed",
        Some(user.user_id),
        None,
        change.clone(),
    );
    journal.audit(
        Event::new("case.transition", "case", Some(case.id.to_string()))
            .subject(case.person_id)
            .details(change),
    );
    Ok(case)
}

/// A protocol step's decision: `done`, or `waived` with a reason (checked
/// by the caller).
pub struct StepDecision<'a> {
    pub step: &'a str,
    pub status: &'a str,
    pub reason: Option<String>,
}

/// Decides a protocol step of the case, once.
pub fn decide_step(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    expected: Result<i32, AppError>,
    decision: StepDecision<'_>,
) -> Result<Case, AppError> {
    let StepDecision {
        step: raw_step,
        status,
        reason,
    } = decision;
    let (mut case, expected) = at_version(conn, user, raw, expected)?;
    let missing = || AppError::not_found(format!("no step `{raw_step}` on this case"));
    let sid = uuid::Uuid::parse_str(raw_step)
        .map(Id)
        .map_err(|_| missing())?;
    let step = model::steps_of(conn, case.id)?
        .into_iter()
        .find(|s| s.id == sid)
        .ok_or_else(missing)?;
    if !model::decide_step(conn, step.id, status, reason.as_deref(), user.user_id)? {
        return Err(AppError::conflict(
            "already_decided",
            None,
            format!("this step is already {}", step.status),
        ));
    }
    save(conn, &mut case, expected)?;
    let details = serde_json::json!({ "step": step.title_es, "status": status, "reason": reason });
    journal.case_event(
        &case,
        "case.step_decided",
        Some(user.user_id),
        Some(step.attention_type_id),
        details.clone(),
    );
    journal.audit(
        Event::new("case.step", "case", Some(case.id.to_string()))
            .subject(case.person_id)
            .details(details),
    );
    Ok(case)
}

/// Adds a follow-up note to a case's timeline.
pub fn add_note(
    conn: &mut DbConn,
    journal: &mut Journal,
    user: &AuthUser,
    raw: &str,
    note: String,
) -> Result<(), AppError> {
    let case = load_scoped(conn, user, raw)?;
    journal.case_event(
        &case,
        "case.note",
        Some(user.user_id),
        None,
        serde_json::json!({ "text": note }),
    );
    journal
        .audit(Event::new("case.note", "case", Some(case.id.to_string())).subject(case.person_id));
    Ok(())
}
