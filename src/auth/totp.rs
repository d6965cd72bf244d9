//! Time-based one-time passwords (RFC 6238: HMAC-SHA1, 30-second steps,
//! six digits) and one-time recovery codes.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use sha2::{Digest, Sha256};

pub const STEP_SECS: i64 = 30;
pub const DIGITS: u32 = 6;
/// Codes from one step before or after are accepted (clock drift).
pub const WINDOW: i64 = 1;
pub const RECOVERY_CODES: usize = 10;

/// A fresh 160-bit secret, base32 without padding (what authenticator apps read).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    BASE32_NOPAD.encode(&bytes)
}

/// The code for `secret` at time step `step` (RFC 4226 dynamic truncation).
pub fn code_at(secret_b32: &str, step: i64) -> Option<u32> {
    let key = BASE32_NOPAD.decode(secret_b32.as_bytes()).ok()?;
    let mut mac = Hmac::<Sha1>::new_from_slice(&key).ok()?;
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let slice: [u8; 4] = digest.get(offset..offset + 4)?.try_into().ok()?;
    let binary = u32::from_be_bytes(slice) & 0x7fff_ffff;
    Some(binary % 10u32.pow(DIGITS))
}

pub fn step_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// The step a code matches, within the drift window and strictly after
/// `last_step` (a code is accepted once).
pub fn verify(secret_b32: &str, code: &str, unix_secs: i64, last_step: Option<i64>) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let now = step_of(unix_secs);
    (now - WINDOW..=now + WINDOW)
        .filter(|step| last_step.is_none_or(|last| *step > last))
        .find(|step| code_at(secret_b32, *step) == Some(wanted))
}

/// The `otpauth://` URI an authenticator app scans.
pub fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    let label: String =
        form_urlencoded::byte_serialize(format!("{issuer}:{account}").as_bytes()).collect();
    let issuer_q: String = form_urlencoded::byte_serialize(issuer.as_bytes()).collect();
    format!(
        "otpauth://totp/{label}?secret={secret_b32}&issuer={issuer_q}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}"
    )
}

/// Fresh recovery codes, `XXXXX-XXXXX` from the base32 alphabet.
pub fn generate_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 7];
            rand::rng().fill_bytes(&mut bytes);
            let text = BASE32_NOPAD.encode(&bytes);
            format!("{}-{}", &text[..5], &text[5..10])
        })
        .collect()
}

/// What is stored for a recovery code: SHA-256 of its normalised form.
pub fn recovery_code_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_uppercase();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_test_vectors() {
        // RFC 6238 appendix B, secret "12345678901234567890", 8 digits -> we
        // compare the last six.
        let secret = BASE32_NOPAD.encode(b"12345678901234567890");
        for (time, eight) in [
            (59, 94287082u32),
            (1111111109, 7081804),
            (1234567890, 89005924),
            (2000000000, 69279037),
        ] {
            assert_eq!(
                code_at(&secret, step_of(time)),
                Some(eight % 1_000_000),
                "t={time}"
            );
        }
    }

    #[test]
    fn codes_are_accepted_once_within_the_window() {
        let secret = generate_secret();
        let now = 1_700_000_000;
        let code = format!("{:06}", code_at(&secret, step_of(now)).unwrap());
        let step = verify(&secret, &code, now, None).expect("current code");
        assert_eq!(
            verify(&secret, &code, now, Some(step)),
            None,
            "replay refused"
        );
        let previous = format!("{:06}", code_at(&secret, step_of(now) - 1).unwrap());
        assert!(
            verify(&secret, &previous, now, None).is_some(),
            "one step of drift"
        );
        let old = format!("{:06}", code_at(&secret, step_of(now) - 3).unwrap());
        if old != code && old != previous {
            assert_eq!(verify(&secret, &old, now, None), None);
        }
        assert_eq!(verify(&secret, "12345", now, None), None);
        assert_eq!(verify(&secret, "abcdef", now, None), None);
    }

    #[test]
    fn recovery_codes_hash_after_normalising() {
        let codes = generate_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let c = &codes[0];
        assert_eq!(
            recovery_code_hash(c),
            recovery_code_hash(&c.to_lowercase().replace('-', ""))
        );
    }
}
