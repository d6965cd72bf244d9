//! Access tokens: JWTs per RFC 8725 with the algorithm pinned to HS256, every
//! registered claim required and checked, and a token type so that no other
//! kind of token can pass as an access token.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::db::Id;

pub const ISSUER: &str = "mapce";
pub const AUDIENCE: &str = "mapce-api";
/// Access tokens live 15 minutes at most.
pub const ACCESS_TTL_SECS: i64 = 15 * 60;
/// A login waiting for its second factor has 5 minutes.
pub const CHALLENGE_TTL_SECS: i64 = 5 * 60;
/// Clock skew tolerated on `exp`/`nbf`.
pub const LEEWAY_SECS: u64 = 30;
pub const MIN_SECRET_BYTES: usize = 32;

/// What a token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// Calls the API.
    Access,
    /// Completes a login with the second factor; nothing else.
    SecondFactor,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The session id (access tokens) or the empty string (challenges).
    pub sid: String,
    pub typ: TokenType,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
}

/// The signing key and the validation rules.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    /// Refuses keys shorter than 32 bytes.
    pub fn new(secret: &[u8]) -> Result<Self, String> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the JWT key must be at least {MIN_SECRET_BYTES} bytes (got {})",
                secret.len()
            ));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        Ok(JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        })
    }

    /// Signs a token of `typ` for `user` (and `session`), valid `ttl` seconds from `now`.
    pub fn sign(
        &self,
        typ: TokenType,
        user: Id,
        session: Option<Id>,
        now: i64,
        ttl: i64,
    ) -> Result<String, String> {
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: user.to_string(),
            sid: session.map(|s| s.to_string()).unwrap_or_default(),
            typ,
            iat: now,
            nbf: now,
            exp: now + ttl,
            jti: Id::new().to_string(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| e.to_string())
    }

    /// Checks signature, algorithm, time claims, issuer, audience and type.
    pub fn verify(&self, token: &str, typ: TokenType) -> Result<Claims, String> {
        let data =
            decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| e.to_string())?;
        if data.header.alg != Algorithm::HS256 {
            return Err("unexpected algorithm".into());
        }
        if data.claims.typ != typ {
            return Err("wrong token type".into());
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(&[7u8; 32]).unwrap()
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(JwtKeys::new(&[1u8; 31]).is_err());
    }

    #[test]
    fn round_trip_and_type_check() {
        let k = keys();
        let user = Id::new();
        let token = k
            .sign(TokenType::Access, user, Some(Id::new()), now(), 60)
            .unwrap();
        assert_eq!(
            k.verify(&token, TokenType::Access).unwrap().sub,
            user.to_string()
        );
        assert!(k.verify(&token, TokenType::SecondFactor).is_err());
    }

    #[test]
    fn expired_future_and_foreign_tokens_fail() {
        let k = keys();
        let expired = k
            .sign(TokenType::Access, Id::new(), None, now() - 3600, 60)
            .unwrap();
        assert!(k.verify(&expired, TokenType::Access).is_err());
        let future = k
            .sign(TokenType::Access, Id::new(), None, now() + 3600, 60)
            .unwrap();
        assert!(k.verify(&future, TokenType::Access).is_err());
        let other = JwtKeys::new(&[8u8; 32]).unwrap();
        let foreign = other
            .sign(TokenType::Access, Id::new(), None, now(), 60)
            .unwrap();
        assert!(k.verify(&foreign, TokenType::Access).is_err());
        assert!(k.verify("garbage", TokenType::Access).is_err());
    }
}
