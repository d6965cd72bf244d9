//! Users, sessions, refresh tokens, recovery codes and login failures.

use diesel::prelude::*;

use crate::db::schema::{
    consulates, login_failures, recovery_codes, refresh_tokens, sessions, users,
};
use crate::db::{DbConn, Id, MultiBackend, Ts};
use crate::domain::role::Role;
use crate::domain::text::escape_like;
use crate::domain::{Stored, UnknownStored};
use crate::models::reference::Window;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: Id,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub consulate_id: Option<Id>,
    pub active: bool,
    pub password_hash: String,
    pub password_changed_at: Ts,
    pub totp_secret: Option<String>,
    pub totp_enabled: bool,
    pub totp_last_step: Option<i64>,
    pub version: i32,
    pub created_at: Ts,
    pub updated_at: Ts,
}

impl User {
    /// The role column is CHECK-constrained; anything else is a damaged
    /// database, and an error.
    pub fn role(&self) -> Result<Role, UnknownStored> {
        Role::stored(&self.role)
    }
}

/// Usernames are compared and stored in lowercase.
pub fn normalize_username(raw: &str) -> String {
    raw.trim().to_lowercase()
}

pub fn find_user(conn: &mut DbConn, id: Id) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()
}

pub fn find_user_by_username(conn: &mut DbConn, username: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::username.eq(normalize_username(username)))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// Stores a new password hash and bumps the version.
pub fn set_password(conn: &mut DbConn, id: Id, hash: String) -> QueryResult<()> {
    let now = Ts::now();
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::password_changed_at.eq(now),
            users::updated_at.eq(now),
            users::version.eq(users::version + 1),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Stores a stronger hash of the same password (new parameters): not a
/// change of password, so no version bump and no session ends.
pub fn store_rehash(conn: &mut DbConn, id: Id, hash: String) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::password_hash.eq(hash))
        .execute(conn)
        .map(|_| ())
}

/// Records the TOTP step a login spent, only when it is later than the last
/// one read: false when a concurrent login spent it first.
pub fn spend_totp_step(conn: &mut DbConn, id: Id, step: i64) -> QueryResult<bool> {
    let changed = diesel::update(
        users::table.find(id).filter(
            users::totp_last_step
                .is_null()
                .or(users::totp_last_step.lt(step)),
        ),
    )
    .set(users::totp_last_step.eq(step))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Keeps a sealed secret pending confirmation, unless a second factor is
/// enabled already (false then).
pub fn stage_totp_secret(conn: &mut DbConn, id: Id, sealed: String) -> QueryResult<bool> {
    let changed = diesel::update(users::table.find(id).filter(users::totp_enabled.eq(false)))
        .set(users::totp_secret.eq(Some(sealed)))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Turns the staged secret on, having spent `step`.
pub fn enable_totp(conn: &mut DbConn, id: Id, step: i64) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::totp_enabled.eq(true),
            users::totp_last_step.eq(step),
            users::version.eq(users::version + 1),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Turns the second factor off and forgets its secret.
pub fn disable_totp(conn: &mut DbConn, id: Id) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::totp_enabled.eq(false),
            users::totp_secret.eq(None::<String>),
            users::version.eq(users::version + 1),
        ))
        .execute(conn)
        .map(|_| ())
}

/// What an administrator may change of an account, all at once.
pub struct AccountChange<'a> {
    pub display_name: &'a str,
    pub role: Role,
    pub consulate_id: Option<Id>,
    pub active: bool,
    /// The version being replaced; the row gets the next one.
    pub version: i32,
}

pub fn update_account(conn: &mut DbConn, id: Id, change: &AccountChange<'_>) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::display_name.eq(change.display_name),
            users::role.eq(change.role.as_str()),
            users::consulate_id.eq(change.consulate_id),
            users::active.eq(change.active),
            users::version.eq(change.version + 1),
            users::updated_at.eq(Ts::now()),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Removes the second factor (lost device) as part of a password reset,
/// which bumps the version itself.
pub fn clear_second_factor(conn: &mut DbConn, id: Id) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::totp_enabled.eq(false),
            users::totp_secret.eq(None::<String>),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn count_users(conn: &mut DbConn) -> QueryResult<i64> {
    users::table.count().get_result(conn)
}

pub fn insert_user(conn: &mut DbConn, user: &User) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)
        .map(|_| ())
}

/// A user and the code of their consulate, for responses.
pub type UserWithConsulate = (User, Option<String>);

#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    pub role: Option<Role>,
    pub consulate_id: Option<Id>,
    pub active: Option<bool>,
    /// Lowercased substring of username or display name.
    pub search: Option<String>,
}

fn users_query(filter: &UserFilter) -> users::BoxedQuery<'static, MultiBackend> {
    let mut query = users::table.into_boxed::<MultiBackend>();
    if let Some(role) = filter.role {
        query = query.filter(users::role.eq(role.as_str()));
    }
    if let Some(consulate) = filter.consulate_id {
        query = query.filter(users::consulate_id.eq(consulate));
    }
    if let Some(active) = filter.active {
        query = query.filter(users::active.eq(active));
    }
    if let Some(search) = &filter.search {
        let pattern = format!("%{}%", escape_like(search));
        query = query.filter(
            users::username
                .like(pattern.clone())
                .escape('\\')
                .or(users::display_name.like(pattern).escape('\\')),
        );
    }
    query
}

pub fn list_users(
    conn: &mut DbConn,
    filter: &UserFilter,
    window: Window,
) -> QueryResult<(Vec<UserWithConsulate>, i64)> {
    let total = users_query(filter).count().get_result(conn)?;
    let rows: Vec<User> = users_query(filter)
        .order(users::username)
        .limit(window.limit)
        .offset(window.offset)
        .select(User::as_select())
        .load(conn)?;
    let with = attach_consulate_codes(conn, rows)?;
    Ok((with, total))
}

pub fn attach_consulate_codes(
    conn: &mut DbConn,
    rows: Vec<User>,
) -> QueryResult<Vec<UserWithConsulate>> {
    let ids: Vec<Id> = rows.iter().filter_map(|u| u.consulate_id).collect();
    let codes: Vec<(Id, String)> = if ids.is_empty() {
        Vec::new()
    } else {
        consulates::table
            .filter(consulates::id.eq_any(ids))
            .select((consulates::id, consulates::code))
            .load(conn)?
    };
    Ok(rows
        .into_iter()
        .map(|u| {
            let code = u.consulate_id.and_then(|c| {
                codes
                    .iter()
                    .find(|(id, _)| *id == c)
                    .map(|(_, code)| code.clone())
            });
            (u, code)
        })
        .collect())
}

// --- sessions ----------------------------------------------------------------

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: Id,
    pub user_id: Id,
    pub created_at: Ts,
    pub last_refresh_at: Ts,
    pub expires_at: Ts,
    pub revoked_at: Option<Ts>,
    pub revoked_reason: Option<String>,
    pub second_factor: bool,
    pub client_addr: Option<String>,
}

pub fn insert_session(conn: &mut DbConn, session: &Session) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(session)
        .execute(conn)
        .map(|_| ())
}

pub fn find_session_with_user(conn: &mut DbConn, id: Id) -> QueryResult<Option<(Session, User)>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(id))
        .select((Session::as_select(), User::as_select()))
        .first(conn)
        .optional()
}

pub fn revoke_session(conn: &mut DbConn, id: Id, reason: &str) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::id.eq(id))
            .filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::revoked_at.eq(Ts::now()),
        sessions::revoked_reason.eq(reason),
    ))
    .execute(conn)
}

/// Revokes every live session of a user; returns their ids.
pub fn revoke_user_sessions(conn: &mut DbConn, user: Id, reason: &str) -> QueryResult<Vec<Id>> {
    let ids: Vec<Id> = sessions::table
        .filter(sessions::user_id.eq(user))
        .filter(sessions::revoked_at.is_null())
        .select(sessions::id)
        .load(conn)?;
    if !ids.is_empty() {
        diesel::update(sessions::table.filter(sessions::id.eq_any(ids.clone())))
            .set((
                sessions::revoked_at.eq(Ts::now()),
                sessions::revoked_reason.eq(reason),
            ))
            .execute(conn)?;
    }
    Ok(ids)
}

/// Binds the second-factor challenge a session was opened with. The column
/// is unique: of two concurrent uses of one challenge, one gets false.
pub fn bind_challenge(conn: &mut DbConn, session: Id, jti: &str) -> QueryResult<bool> {
    match diesel::update(sessions::table.find(session))
        .set(sessions::challenge_jti.eq(jti))
        .execute(conn)
    {
        Ok(_) => Ok(true),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether a session was already opened with this challenge.
pub fn challenge_spent(conn: &mut DbConn, jti: &str) -> QueryResult<bool> {
    let used: i64 = sessions::table
        .filter(sessions::challenge_jti.eq(jti))
        .count()
        .get_result(conn)?;
    Ok(used > 0)
}

pub fn touch_session(conn: &mut DbConn, id: Id, at: Ts) -> QueryResult<()> {
    diesel::update(sessions::table.filter(sessions::id.eq(id)))
        .set(sessions::last_refresh_at.eq(at))
        .execute(conn)
        .map(|_| ())
}

pub fn mark_second_factor(conn: &mut DbConn, id: Id) -> QueryResult<()> {
    diesel::update(sessions::table.filter(sessions::id.eq(id)))
        .set(sessions::second_factor.eq(true))
        .execute(conn)
        .map(|_| ())
}

// --- refresh tokens ----------------------------------------------------------

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshToken {
    pub id: Id,
    pub session_id: Id,
    pub token_hash: String,
    pub created_at: Ts,
    pub used_at: Option<Ts>,
}

pub fn insert_refresh_token(conn: &mut DbConn, token: &RefreshToken) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(token)
        .execute(conn)
        .map(|_| ())
}

pub fn find_refresh_token(conn: &mut DbConn, hash: &str) -> QueryResult<Option<RefreshToken>> {
    refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash))
        .select(RefreshToken::as_select())
        .first(conn)
        .optional()
}

/// Marks a token used; false when another request used it first.
pub fn use_refresh_token(conn: &mut DbConn, id: Id) -> QueryResult<bool> {
    let changed = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::id.eq(id))
            .filter(refresh_tokens::used_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(Ts::now()))
    .execute(conn)?;
    Ok(changed == 1)
}

// --- recovery codes ----------------------------------------------------------

pub fn replace_recovery_codes(conn: &mut DbConn, user: Id, hashes: &[String]) -> QueryResult<()> {
    diesel::update(
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(Ts::now()))
    .execute(conn)?;
    let now = Ts::now();
    for hash in hashes {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::id.eq(Id::new()),
                recovery_codes::user_id.eq(user),
                recovery_codes::code_hash.eq(hash),
                recovery_codes::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Uses an unused recovery code of the user; false when none matches.
pub fn use_recovery_code(conn: &mut DbConn, user: Id, hash: &str) -> QueryResult<bool> {
    let changed = diesel::update(
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user))
            .filter(recovery_codes::code_hash.eq(hash))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(Ts::now()))
    .execute(conn)?;
    Ok(changed >= 1)
}

// --- login throttling --------------------------------------------------------

pub fn record_login_failure(
    conn: &mut DbConn,
    username: &str,
    client_addr: &str,
) -> QueryResult<()> {
    diesel::insert_into(login_failures::table)
        .values((
            login_failures::id.eq(Id::new()),
            login_failures::username.eq(normalize_username(username)),
            login_failures::client_addr.eq(client_addr),
            login_failures::at.eq(Ts::now()),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Failures for an account since `since`, and the oldest of them.
/// Failures for an account since `since`, from one address or (None)
/// from any.
pub fn failures_for_username(
    conn: &mut DbConn,
    username: &str,
    from: Option<&str>,
    since: Ts,
) -> QueryResult<(i64, Option<Ts>)> {
    let name = normalize_username(username);
    let filter = || {
        let mut q = login_failures::table
            .filter(login_failures::username.eq(name.clone()))
            .filter(login_failures::at.gt(since))
            .into_boxed::<crate::db::MultiBackend>();
        if let Some(addr) = from {
            q = q.filter(login_failures::client_addr.eq(addr.to_owned()));
        }
        q
    };
    let count = filter().count().get_result(conn)?;
    let oldest = filter()
        .select(login_failures::at)
        .order(login_failures::at)
        .first(conn)
        .optional()?;
    Ok((count, oldest))
}

pub fn failures_for_addr(
    conn: &mut DbConn,
    client_addr: &str,
    since: Ts,
) -> QueryResult<(i64, Option<Ts>)> {
    let filter = || {
        login_failures::table
            .filter(login_failures::client_addr.eq(client_addr))
            .filter(login_failures::at.gt(since))
    };
    let count = filter().count().get_result(conn)?;
    let oldest = filter()
        .select(login_failures::at)
        .order(login_failures::at)
        .first(conn)
        .optional()?;
    Ok((count, oldest))
}

/// A successful login clears the account's counter.
/// Whether this account opened a session from this address since `since`
/// (a known address keeps logging in while strangers hammer the account).
pub fn known_address(
    conn: &mut DbConn,
    username: &str,
    addr: &str,
    since: Ts,
) -> QueryResult<bool> {
    let n: i64 = sessions::table
        .inner_join(users::table)
        .filter(users::username.eq(normalize_username(username)))
        .filter(sessions::client_addr.eq(addr))
        .filter(sessions::created_at.gt(since))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

pub fn clear_login_failures(conn: &mut DbConn, username: &str) -> QueryResult<()> {
    diesel::delete(
        login_failures::table.filter(login_failures::username.eq(normalize_username(username))),
    )
    .execute(conn)
    .map(|_| ())
}
