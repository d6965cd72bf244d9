//! Creating accounts outside the HTTP API: the `users create` command and
//! the first administrator.

use rand::seq::IndexedRandom;

use crate::audit::{self, Event, RequestMeta};
use crate::auth::password::{check_new_password, HashCost, PasswordService};
use crate::db::{DbConn, Id, Ts};
use crate::domain::role::Role;
use crate::error::AppError;
use crate::models::reference::{self as reference_model, ConsulateKey};
use crate::models::users::{self as model, User};

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
    action: &str,
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
    crate::db::write_tx::<_, AppError, _>(conn, |conn| {
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
                "already_exists",
                Some("username"),
                format!("the username `{username}` is taken"),
            ));
        }
        let now = Ts::now();
        let user = User {
            id: Id::new(),
            username,
            display_name: account.display_name.trim().to_owned(),
            role: account.role.as_str().to_owned(),
            consulate_id: consulate,
            active: true,
            password_hash: hash,
            password_changed_at: now,
            totp_secret: None,
            totp_enabled: false,
            totp_last_step: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        model::insert_user(conn, &user)?;
        audit::record(
            conn,
            None,
            &RequestMeta::default(),
            Event::new(action, "user", Some(user.id.to_string())).details(
                serde_json::json!({ "username": user.username, "role": user.role, "via": "cli" }),
            ),
        )?;
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
