//! The client assertion that stands in for a client secret (RFC 7521 §4.2, RFC 7523 §2.2): a
//! JWT naming the client as issuer and subject and the token endpoint as audience, signed
//! with the certificate's private key. Microsoft Entra wants PS256 and the certificate's
//! SHA-256 thumbprint in `x5t#S256`; `x5t` (SHA-1) goes along for servers that know only that.
//! Each assertion has its own `jti` and lives five minutes: a server keeps the `jti`s it has
//! seen until then, so a copied assertion cannot be used again.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::RSA_PSS_SHA256;

use crate::config::{ClientCertificate, Redacted};

/// RFC 7523 §2.2's `client_assertion_type`.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is good for. Entra takes up to ten minutes; the request that
/// carries it is sent at once.
pub const LIFETIME_S: i64 = 300;

/// A signed client assertion for `client_id` at `audience` (the token endpoint), made at `now`.
/// The error tells what failed, never anything of the key.
pub fn client_assertion(
    cert: &ClientCertificate,
    client_id: &str,
    audience: &str,
    now: jiff::Timestamp,
) -> Result<Redacted, String> {
    let header = serde_json::json!({
        "alg": "PS256",
        "typ": "JWT",
        "x5t#S256": cert.x5t_s256,
        "x5t": cert.x5t,
    });
    let iat = now.as_second();
    let claims = serde_json::json!({
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": uuid::Uuid::new_v4().to_string(),
        "iat": iat,
        "nbf": iat,
        "exp": iat + LIFETIME_S,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = cert.key_pair()?;
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PSS_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "signing the client assertion failed".to_string())?;
    Ok(Redacted::new(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    )))
}
