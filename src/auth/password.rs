//! Password hashing with argon2id, off the async workers and capped in
//! concurrency, and the rules for new passwords.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::{AppError, FieldError};

/// argon2id cost. Production uses [`HashCost::PRODUCTION`] (OWASP's
/// minimum: 19 MiB, 2 passes, 1 lane); tests may use a cheaper one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl HashCost {
    pub const PRODUCTION: HashCost = HashCost {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };
    /// For tests only: fast, and still a real argon2id hash.
    pub const TESTING: HashCost = HashCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
}

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 128;

const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

fn common_passwords() -> &'static std::collections::HashSet<String> {
    static SET: OnceLock<std::collections::HashSet<String>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_lowercase)
            .collect()
    })
}

/// NIST SP 800-63B rules: 12 to 128 characters of any kind, no composition
/// rules, not a known common password, not the username.
pub fn check_new_password(field: &str, password: &str, username: &str) -> Result<(), AppError> {
    let length = password.chars().count();
    let reason = if length < MIN_LENGTH {
        Some(format!("must be at least {MIN_LENGTH} characters"))
    } else if length > MAX_LENGTH {
        Some(format!("must be at most {MAX_LENGTH} characters"))
    } else if common_passwords().contains(&password.to_lowercase()) {
        Some("is on the list of commonly used passwords; choose another".to_owned())
    } else if password.trim().eq_ignore_ascii_case(username.trim()) {
        Some("must not be the username".to_owned())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(AppError::Validation {
            detail: format!("{field}: {reason}"),
            errors: vec![FieldError::new(field, reason)],
        }),
        None => Ok(()),
    }
}

/// The result of checking a password.
#[derive(Debug)]
pub enum Verification {
    Invalid,
    /// Correct; `rehash` carries a new hash when the stored one used other
    /// parameters, for the caller to store.
    Valid {
        rehash: Option<String>,
    },
}

/// Hashes and verifies passwords on the blocking pool, a few at a time, so a
/// burst of logins cannot starve the HTTP workers or exhaust memory.
#[derive(Clone)]
pub struct PasswordService {
    cost: HashCost,
    permits: Arc<Semaphore>,
    dummy_hash: Arc<OnceLock<String>>,
}

impl PasswordService {
    pub fn new(cost: HashCost, max_concurrent: usize) -> Self {
        PasswordService {
            cost,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy_hash: Arc::new(OnceLock::new()),
        }
    }

    pub fn cost(&self) -> HashCost {
        self.cost
    }

    fn argon2(cost: HashCost) -> Result<Argon2<'static>, AppError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Hashes synchronously (CLI and bootstrap).
    pub fn hash_blocking(cost: HashCost, password: &str) -> Result<String, AppError> {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Self::argon2(cost)?
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 hash: {e}")))
    }

    fn verify_blocking(
        cost: HashCost,
        stored: &str,
        password: &str,
    ) -> Result<Verification, AppError> {
        let parsed = PasswordHash::new(stored).map_err(|e| {
            AppError::internal(anyhow::anyhow!("stored hash is not a PHC string: {e}"))
        })?;
        // Verify with the parameters the hash was made with.
        if Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_err()
        {
            return Ok(Verification::Invalid);
        }
        let current = Params::try_from(&parsed).ok().is_some_and(|p| {
            p.m_cost() == cost.memory_kib
                && p.t_cost() == cost.iterations
                && p.p_cost() == cost.parallelism
        }) && parsed.algorithm.as_str() == "argon2id";
        let rehash = if current {
            None
        } else {
            Some(Self::hash_blocking(cost, password)?)
        };
        Ok(Verification::Valid { rehash })
    }

    pub async fn hash(&self, password: String) -> Result<String, AppError> {
        let _permit = self.permits.acquire().await.map_err(AppError::internal)?;
        let cost = self.cost;
        actix_web::web::block(move || Self::hash_blocking(cost, &password)).await?
    }

    /// Verifies `password` against `stored`; with no stored hash (unknown
    /// user) a dummy hash is checked instead, so the time taken does not
    /// reveal whether the account exists.
    pub async fn verify(
        &self,
        stored: Option<String>,
        password: String,
    ) -> Result<Verification, AppError> {
        let _permit = self.permits.acquire().await.map_err(AppError::internal)?;
        let cost = self.cost;
        let dummy = self.dummy_hash.clone();
        actix_web::web::block(move || {
            let known = stored.is_some();
            let hash = match stored {
                Some(hash) => hash,
                None => match dummy.get() {
                    Some(h) => h.clone(),
                    None => {
                        let h = Self::hash_blocking(cost, "dummy password for timing")?;
                        let _ = dummy.set(h.clone());
                        h
                    }
                },
            };
            let result = Self::verify_blocking(cost, &hash, &password)?;
            Ok(if known { result } else { Verification::Invalid })
        })
        .await?
    }

    /// Computes the dummy hash ahead of the first login of an unknown user,
    /// so that first answer is not slower.
    pub fn warm_up(&self) {
        if self.dummy_hash.get().is_none() {
            if let Ok(h) = Self::hash_blocking(self.cost, "dummy password for timing") {
                let _ = self.dummy_hash.set(h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_cost_meets_the_minimum() {
        let c = HashCost::PRODUCTION;
        assert!(c.memory_kib >= 19 * 1024 && c.iterations >= 2 && c.parallelism >= 1);
    }

    #[test]
    fn new_password_rules() {
        assert!(check_new_password("body.password", "short", "ana").is_err());
        assert!(check_new_password("body.password", &"x".repeat(129), "ana").is_err());
        assert!(check_new_password("body.password", "password1234", "ana").is_err());
        assert!(check_new_password("body.password", "Password1234", "ana").is_err());
        assert!(check_new_password("body.password", "ana.quispe.01", "ana.quispe.01").is_err());
        assert!(check_new_password("body.password", "correct horse battery staple", "ana").is_ok());
        // any characters count, by character not byte
        assert!(check_new_password("body.password", "ñandú-ñandú-ñ", "ana").is_ok());
    }

    #[test]
    fn hashes_are_argon2id_phc_and_rehash_on_new_cost() {
        let hash =
            PasswordService::hash_blocking(HashCost::TESTING, "a long enough secret").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        match PasswordService::verify_blocking(HashCost::TESTING, &hash, "a long enough secret")
            .unwrap()
        {
            Verification::Valid { rehash } => assert!(rehash.is_none()),
            Verification::Invalid => panic!("valid password refused"),
        }
        let stronger = HashCost {
            memory_kib: 128,
            iterations: 2,
            parallelism: 1,
        };
        match PasswordService::verify_blocking(stronger, &hash, "a long enough secret").unwrap() {
            Verification::Valid { rehash: Some(new) } => {
                assert!(new.contains("m=128,t=2,p=1"), "{new}")
            }
            other => panic!("expected a rehash, got {other:?}"),
        }
        assert!(matches!(
            PasswordService::verify_blocking(HashCost::TESTING, &hash, "wrong").unwrap(),
            Verification::Invalid
        ));
    }
}
