//! TOTP secrets sealed at rest. A second factor is only a second factor
//! while its secret stays out of reach of whoever reads the database (a
//! backup, a replica, an SQL injection elsewhere): stored secrets are
//! encrypted with ChaCha20-Poly1305 under a key derived from the audit key
//! (held outside the database), bound to their user (a sealed secret copied
//! to another account does not open).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

const PREFIX: &str = "sealed:v1:";

fn cipher() -> Result<ChaCha20Poly1305, String> {
    let key = crate::audit::derived_key("mapce-totp-secret-v1")
        .map_err(|e| format!("no key to seal TOTP secrets: {e}"))?;
    Ok(ChaCha20Poly1305::new(Key::from_slice(&key)))
}

/// Whether a stored value is sealed (older rows may hold a clear secret).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// The stored form of `secret` for `user`.
pub fn seal(secret: &str, user: crate::db::Id) -> Result<String, String> {
    let mut nonce = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
    let sealed = cipher()?
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: secret.as_bytes(),
                aad: user.0.as_bytes(),
            },
        )
        .map_err(|_| "sealing failed".to_owned())?;
    Ok(format!(
        "{PREFIX}{}{}",
        hex::encode(nonce),
        hex::encode(sealed)
    ))
}

/// The secret behind a stored value (a clear one is returned as it is).
pub fn open(stored: &str, user: crate::db::Id) -> Result<String, String> {
    let Some(rest) = stored.strip_prefix(PREFIX) else {
        return Ok(stored.to_owned());
    };
    let bytes = hex::decode(rest).map_err(|_| "a sealed secret is not hex".to_owned())?;
    if bytes.len() < 12 + 16 {
        return Err("a sealed secret is too short".into());
    }
    let (nonce, sealed) = bytes.split_at(12);
    let clear = cipher()?
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: user.0.as_bytes(),
            },
        )
        .map_err(|_| "a sealed secret does not open with this key and user".to_owned())?;
    String::from_utf8(clear).map_err(|_| "a sealed secret is not text".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Id;

    #[test]
    fn a_sealed_secret_opens_for_its_user_only() {
        crate::audit::install_key(b"unit test audit key, thirty-two bytes or more");
        let (ana, luis) = (Id(uuid::Uuid::from_u128(1)), Id(uuid::Uuid::from_u128(2)));
        let stored = seal("JBSWY3DPEHPK3PXP", ana).expect("seal");
        assert!(is_sealed(&stored) && !stored.contains("JBSWY3DPEHPK3PXP"));
        assert_ne!(
            stored,
            seal("JBSWY3DPEHPK3PXP", ana).expect("seal"),
            "fresh nonce"
        );
        assert_eq!(open(&stored, ana).expect("open"), "JBSWY3DPEHPK3PXP");
        assert!(open(&stored, luis).is_err());
        assert_eq!(
            open("JBSWY3DPEHPK3PXP", ana).expect("clear"),
            "JBSWY3DPEHPK3PXP"
        );
    }
}
