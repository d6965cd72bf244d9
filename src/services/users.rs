//! Accounts: creating them (the API, the `users create` command and the
//! first administrator), changing their access and resetting passwords.

use rand::seq::IndexedRandom;

use crate::audit::{Event, RequestMeta};
use crate::auth::password::{check_new_password, HashCost, PasswordService};
use crate::auth::AuthUser;
use crate::db::{DbConn, Id, Ts};
use crate::domain::audit::AuditAction;
use crate::domain::error_code::ErrorCode;
use crate::domain::role::Role;
use crate::error::{AppError, FieldError};
use crate::models::reference::{self as reference_model, ConsulateKey};
use crate::models::users::{self as model, AccountChange, User};
use crate::services::journal::Journal;

pub struct NewAccount {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub consulate: Option<String>,
    pub password: String,
}

/// Validates and creates an account, with its audit row, in one transaction.
/// Seals the TOTP secrets stored in clear by earlier versions; returns
/// how many (run by `serve` at start-up).
pub fn seal_clear_totp_secrets(conn: &mut DbConn) -> anyhow::Result<usize> {
    use crate::db::schema::users;
    use diesel::prelude::*;
    let clear: Vec<(Id, String)> = users::table
        .filter(users::totp_secret.is_not_null())
        .select((users::id, users::totp_secret.assume_not_null()))
        .load(conn)?;
    let mut sealed = 0;
    for (id, secret) in clear
        .into_iter()
        .filter(|(_, s)| !crate::auth::sealed::is_sealed(s))
    {
        let stored = crate::auth::sealed::seal(&secret, id).map_err(anyhow::Error::msg)?;
        diesel::update(users::table.find(id).filter(users::totp_secret.eq(&secret)))
            .set(users::totp_secret.eq(stored))
            .execute(conn)?;
        sealed += 1;
    }
    Ok(sealed)
}

pub fn create(
    conn: &mut DbConn,
    cost: HashCost,
    account: NewAccount,
    action: AuditAction,
) -> Result<Id, AppError> {
    let username = model::normalize_username(&account.username);
    if !(3..=64).contains(&username.len())
        || !username.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
    {
        return Err(AppError::invalid(
            "username",
            "3 to 64 characters: letters a-z, digits, dot, underscore or hyphen",
        ));
    }
    check_new_password("password", &account.password, &username)?;
    let hash = PasswordService::hash_blocking(cost, &account.password)?;
    super::journal::run(conn, None, &RequestMeta::default(), |conn, j| {
        let consulate = match account.consulate.as_deref() {
            None => None,
            Some(raw) => {
                let key = match uuid::Uuid::parse_str(raw) {
                    Ok(u) => ConsulateKey::Id(Id(u)),
                    Err(_) => ConsulateKey::Code(raw.to_owned()),
                };
                Some(
                    reference_model::find_consulate(conn, &key)?
                        .ok_or_else(|| {
                            AppError::invalid("consulate", format!("no consulate `{raw}`"))
                        })?
                        .consulate
                        .id,
                )
            }
        };
        if account.role.is_consulate_scoped() != consulate.is_some() {
            return Err(AppError::invalid(
                "consulate",
                format!(
                    "{} for the {} role",
                    if consulate.is_some() {
                        "not allowed"
                    } else {
                        "required"
                    },
                    account.role
                ),
            ));
        }
        if model::find_user_by_username(conn, &username)?.is_some() {
            return Err(AppError::conflict(
                ErrorCode::AlreadyExists,
                Some("username"),
                format!("the username `{username}` is taken"),
            ));
        }
        let user = new_user(
            username,
            account.display_name.trim().to_owned(),
            account.role,
            consulate,
            hash,
        );
        model::insert_user(conn, &user)?;
        j.audit(
            Event::new(action, "user", Some(user.id.to_string())).details(
                serde_json::json!({ "username": user.username, "role": user.role, "via": "cli" }),
            ),
        );
        Ok(user.id)
    })
}

/// A random 24-character password from an alphabet without look-alikes.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| char::from(*ALPHABET.choose(&mut rng).unwrap_or(&b'x')))
        .collect()
}

/// A new active account with no second factor yet.
fn new_user(
    username: String,
    display_name: String,
    role: Role,
    consulate_id: Option<Id>,
    password_hash: String,
) -> User {
    let now = Ts::now();
    User {
        id: Id::new(),
        username,
        display_name,
        role: role.as_str().to_owned(),
        consulate_id,
        active: true,
        password_hash,
        password_changed_at: now,
        totp_secret: None,
        totp_enabled: false,
        totp_last_step: None,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

/// An account an administrator creates (name and password already
/// checked, the password hashed).
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub consulate: Option<String>,
    pub password_hash: String,
}

/// Creates an account through the write recipe: the consulate must be
/// active and fit the role, the username free.
pub fn create_account(
    conn: &mut DbConn,
    journal: &mut Journal,
    new: NewUser,
) -> Result<(User, Option<String>), AppError> {
    let consulate = new
        .consulate
        .as_deref()
        .map(|c| resolve_consulate(conn, "consulate", c))
        .transpose()?;
    check_role_consulate(new.role, consulate)?;
    if model::find_user_by_username(conn, &new.username)?.is_some() {
        return Err(AppError::Conflict {
            code: ErrorCode::AlreadyExists,
            detail: format!("the username `{}` is taken", new.username),
            errors: vec![FieldError::new("username", "already in use")],
        });
    }
    let user = new_user(
        new.username,
        new.display_name,
        new.role,
        consulate,
        new.password_hash,
    );
    model::insert_user(conn, &user)?;
    journal.audit(
        Event::new(AuditAction::UserCreate, "user", Some(user.id.to_string())).details(
            serde_json::json!({
                "username": user.username, "role": user.role, "consulate_id": user.consulate_id,
            }),
        ),
    );
    let created =
        model::find_user(conn, user.id)?.ok_or_else(|| AppError::not_found("no such user"))?;
    Ok(model::attach_consulate_codes(conn, vec![created])?.remove(0))
}

/// Resolves a consulate given by id or code to its id; it must be active.
pub fn resolve_consulate(conn: &mut DbConn, field: &str, raw: &str) -> Result<Id, AppError> {
    let key = match uuid::Uuid::parse_str(raw) {
        Ok(u) => ConsulateKey::Id(Id(u)),
        Err(_) => ConsulateKey::Code(raw.to_owned()),
    };
    match reference_model::find_consulate(conn, &key)? {
        Some(c) if c.consulate.active => Ok(c.consulate.id),
        Some(_) => Err(AppError::invalid(
            field,
            format!("consulate `{raw}` is inactive"),
        )),
        None => Err(AppError::invalid(field, format!("no consulate `{raw}`"))),
    }
}

/// Officers and supervisors need a consulate; other roles must have none.
pub fn check_role_consulate(role: Role, consulate: Option<Id>) -> Result<(), AppError> {
    match (role.is_consulate_scoped(), consulate.is_some()) {
        (true, false) => Err(AppError::invalid(
            "consulate",
            format!("required for the {role} role"),
        )),
        (false, true) => Err(AppError::invalid(
            "consulate",
            format!("not allowed for the {role} role, which is national"),
        )),
        _ => Ok(()),
    }
}

/// Loads a user the caller may see: out of scope reads as not found.
pub fn load_scoped(
    conn: &mut DbConn,
    caller: &AuthUser,
    id: Id,
    raw: &str,
) -> Result<User, AppError> {
    let found = model::find_user(conn, id)?
        .ok_or_else(|| AppError::not_found(format!("no user `{raw}`")))?;
    if caller.role.is_consulate_scoped() && found.consulate_id != caller.consulate_id {
        return Err(AppError::OutOfScope(format!("no user `{raw}`")));
    }
    Ok(found)
}

/// A change of an account; `None` keeps what is stored.
pub struct Change {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    /// `Some(None)` removes the consulate.
    pub consulate: Option<Option<String>>,
    pub active: Option<bool>,
}

/// Applies a change at version `expected`; a change of role, consulate or
/// active flag ends the user's sessions. Returns the account (with its
/// consulate's code) and how many sessions ended.
pub fn update(
    conn: &mut DbConn,
    journal: &mut Journal,
    caller: &AuthUser,
    id: Id,
    raw: &str,
    expected: i32,
    change: Change,
) -> Result<((User, Option<String>), usize), AppError> {
    {
        let current = load_scoped(conn, caller, id, raw)?;
        if current.version != expected {
            return Err(AppError::PreconditionFailed(format!(
                "the user is at version {}, not {expected}; read it again",
                current.version
            )));
        }
        let role = match change.role {
            Some(r) => r,
            None => current.role()?,
        };
        let consulate = match &change.consulate {
            None => current.consulate_id,
            Some(None) => None,
            Some(Some(c)) => Some(resolve_consulate(conn, "consulate", c)?),
        };
        check_role_consulate(role, consulate)?;
        let active = change.active.unwrap_or(current.active);
        let display_name = change
            .display_name
            .clone()
            .unwrap_or_else(|| current.display_name.clone());
        let mut changes = serde_json::Map::new();
        let mut note = |field: &str, from: serde_json::Value, to: serde_json::Value| {
            if from != to {
                changes.insert(
                    field.to_owned(),
                    serde_json::json!({ "from": from, "to": to }),
                );
            }
        };
        note(
            "display_name",
            current.display_name.clone().into(),
            display_name.clone().into(),
        );
        note("role", current.role.clone().into(), role.as_str().into());
        note(
            "consulate_id",
            serde_json::json!(current.consulate_id),
            serde_json::json!(consulate),
        );
        note("active", current.active.into(), active.into());
        let access_changed = ["role", "consulate_id", "active"]
            .iter()
            .any(|f| changes.contains_key(*f));
        model::update_account(
            conn,
            id,
            &AccountChange {
                display_name: &display_name,
                role,
                consulate_id: consulate,
                active,
                version: current.version,
            },
        )?;
        let ended = if access_changed {
            model::revoke_user_sessions(conn, id, "access_changed")?.len()
        } else {
            0
        };
        journal.audit(
            Event::new(AuditAction::UserUpdate, "user", Some(id.to_string()))
                .details(serde_json::json!({ "changes": changes, "sessions_ended": ended })),
        );
        let updated =
            model::find_user(conn, id)?.ok_or_else(|| AppError::not_found("no such user"))?;
        Ok((
            model::attach_consulate_codes(conn, vec![updated])?.remove(0),
            ended,
        ))
    }
}

/// Sets a new password (already hashed) and, for a lost device, removes the
/// second factor; ends the user's sessions.
pub fn reset_password(
    conn: &mut DbConn,
    journal: &mut Journal,
    id: Id,
    hash: String,
    reset_second_factor: bool,
) -> Result<(), AppError> {
    {
        model::set_password(conn, id, hash)?;
        if reset_second_factor {
            model::clear_second_factor(conn, id)?;
            model::replace_recovery_codes(conn, id, &[])?;
        }
        let ended = model::revoke_user_sessions(conn, id, "password_reset")?;
        journal.audit(
            Event::new(AuditAction::UserPasswordReset, "user", Some(id.to_string()))
                .details(serde_json::json!({ "reset_second_factor": reset_second_factor, "sessions_ended": ended.len() })),
        );
        Ok(())
    }
}
