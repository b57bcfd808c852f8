//! OAuth 2.0 access tokens for the mailboxes and the SMTP relay: fetched from a provider's
//! token endpoint (client credentials, or a refresh token that `poststelle auth login` got
//! once by the device-code flow), cached, and fetched anew before they expire. One cache per
//! provider in the process, so that the mailboxes and the sender share a token and a rotated
//! refresh token is used by one of them at a time.
//!
//! No secret or token leaves this module but as [`Redacted`]; errors name the provider, the
//! endpoint and the fix, never what was sent.
pub mod assertion;
pub mod http;
pub mod sasl;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use crate::config::{Grant, OAuthProvider, Redacted};
pub use http::HttpError;

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The provider answered with an OAuth error (RFC 6749 §5.2).
    #[error(
        "OAuth provider \"{provider}\": {endpoint} refused ({status} {error}{description}); fix: {fix}"
    )]
    Refused {
        provider: String,
        endpoint: String,
        status: u16,
        error: String,
        /// `": …"` of the server's error_description, or empty.
        description: String,
        fix: String,
    },
    #[error("OAuth provider \"{provider}\": {source}")]
    Http { provider: String, source: HttpError },
    #[error(
        "OAuth provider \"{provider}\": the answer of {endpoint} ({status}) is no token response: {what}"
    )]
    BadAnswer {
        provider: String,
        endpoint: String,
        status: u16,
        what: String,
    },
    #[error(
        "OAuth provider \"{provider}\": no refresh token in {path}; fix: run `poststelle auth login {provider}` once"
    )]
    NoRefreshToken { provider: String, path: PathBuf },
    #[error("OAuth provider \"{provider}\": {what} {path}: {source}")]
    File {
        provider: String,
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("OAuth provider \"{provider}\" has no device_endpoint; fix: {fix}")]
    NoDeviceEndpoint { provider: String, fix: &'static str },
    #[error("OAuth provider \"{provider}\": the sign-in was not completed: {what}")]
    DeviceLogin { provider: String, what: String },
    #[error(
        "OAuth provider \"{provider}\": no client assertion with the certificate {path}: {what}"
    )]
    Assertion {
        provider: String,
        path: PathBuf,
        what: String,
    },
}

/// An access token and when to stop using it.
#[derive(Debug, Clone)]
pub struct Token {
    pub access: Redacted,
    /// Fetch a new one from here on: 80 % of its lifetime, at most 5 minutes before expiry.
    pub renew_at: Instant,
    pub expires_at: Instant,
}

/// One provider's tokens in this process.
pub struct Tokens {
    provider: OAuthProvider,
    cached: tokio::sync::Mutex<Option<Token>>,
}

type Registry = Mutex<HashMap<String, Arc<Tokens>>>;

/// The token cache of `provider`, shared by everything in the process that uses it.
pub fn tokens(provider: &OAuthProvider) -> Arc<Tokens> {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    // Two configurations (tests run several daemons in one process) share a cache only when
    // they ask the same endpoint for the same client with the same secret or certificate and
    // token file.
    let key = format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n{}",
        provider.name,
        provider.token_endpoint,
        provider.client_id,
        provider.scope,
        provider.refresh_token_file.display(),
        provider
            .client_secret
            .as_ref()
            .map(Redacted::expose)
            .unwrap_or(""),
        provider
            .certificate
            .as_ref()
            .map(|c| format!("{} {}", c.x5t_s256, c.private_key_file.display()))
            .unwrap_or_default()
    );
    let mut map = REGISTRY
        .get_or_init(Registry::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(key)
        .or_insert_with(|| {
            Arc::new(Tokens {
                provider: provider.clone(),
                cached: tokio::sync::Mutex::new(None),
            })
        })
        .clone()
}

impl Tokens {
    pub fn provider(&self) -> &OAuthProvider {
        &self.provider
    }

    /// A token valid for a while yet: the cached one, or a new one.
    pub async fn get(&self) -> Result<Token, OAuthError> {
        let mut cached = self.cached.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(t.clone());
        }
        let t = self.fetch().await?;
        *cached = Some(t.clone());
        Ok(t)
    }

    /// After a server refused `rejected`: a new token, unless another task got one meanwhile.
    pub async fn renew(&self, rejected: &Token) -> Result<Token, OAuthError> {
        {
            let mut cached = self.cached.lock().await;
            if cached.as_ref().is_some_and(|t| t.access == rejected.access) {
                *cached = None;
            }
        }
        self.get().await
    }

    async fn fetch(&self) -> Result<Token, OAuthError> {
        let p = &self.provider;
        let refresh = match p.grant {
            Grant::ClientCredentials => None,
            Grant::RefreshToken => Some(read_refresh_token(p)?),
        };
        let mut form: Vec<(&str, &str)> = vec![("client_id", &p.client_id)];
        match &refresh {
            None => form.push(("grant_type", "client_credentials")),
            Some(r) => {
                form.push(("grant_type", "refresh_token"));
                form.push(("refresh_token", r.expose()));
            }
        }
        if !p.scope.is_empty() {
            form.push(("scope", &p.scope));
        }
        let auth = client_auth(p)?;
        form.extend(auth.iter().map(|(k, v)| (*k, v.expose())));
        let answer = token_request(p, &form, &auth).await?;
        tracing::info!(provider = %p.name, lifetime_s = answer.token.expires_at.saturating_duration_since(Instant::now()).as_secs(), "OAuth token obtained");
        if let (Some(new), Some(old)) = (&answer.refresh_token, &refresh)
            && new != old
        {
            save_refresh_token(p, new)?;
            tracing::info!(provider = %p.name, "rotated refresh token saved");
        }
        Ok(answer.token)
    }
}

struct Answer {
    token: Token,
    refresh_token: Option<Redacted>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Without `expires_in` a token is taken to last an hour, the providers' usual lifetime.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// How the client proves itself in one request: its secret, or a new client assertion signed
/// with its certificate (each request its own, as a server refuses an assertion seen before);
/// nothing for a public client.
fn client_auth(p: &OAuthProvider) -> Result<Vec<(&'static str, Redacted)>, OAuthError> {
    if let Some(c) = &p.certificate {
        let signed =
            assertion::client_assertion(c, &p.client_id, &p.token_endpoint, jiff::Timestamp::now())
                .map_err(|what| OAuthError::Assertion {
                    provider: p.name.clone(),
                    path: c.private_key_file.clone(),
                    what,
                })?;
        tracing::debug!(provider = %p.name, thumbprint = %c.thumbprint, "client assertion signed");
        return Ok(vec![
            (
                "client_assertion_type",
                Redacted::new(assertion::ASSERTION_TYPE),
            ),
            ("client_assertion", signed),
        ]);
    }
    Ok(p.client_secret
        .iter()
        .map(|s| ("client_secret", s.clone()))
        .collect())
}

/// `auth`: what of the request is secret, cut from any error the server echoes it into.
async fn token_request(
    p: &OAuthProvider,
    form: &[(&str, &str)],
    auth: &[(&str, Redacted)],
) -> Result<Answer, OAuthError> {
    let started = Instant::now();
    let (status, body) = http::post_form(&p.token_endpoint, form)
        .await
        .map_err(|source| OAuthError::Http {
            provider: p.name.clone(),
            source,
        })?;
    let bad = |what: String| OAuthError::BadAnswer {
        provider: p.name.clone(),
        endpoint: p.token_endpoint.clone(),
        status,
        what,
    };
    let r: TokenResponse =
        serde_json::from_slice(&body).map_err(|e| bad(format!("no JSON object ({e})")))?;
    if let Some(error) = r
        .error
        .filter(|_| status >= 400 || r.access_token.is_none())
    {
        return Err(refused(
            p,
            &p.token_endpoint,
            status,
            error,
            r.error_description,
            auth,
        ));
    }
    let access = r
        .access_token
        .filter(|a| !a.is_empty())
        .ok_or_else(|| bad("it has no access_token".into()))?;
    let lifetime = match r.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64().map(Duration::from_secs),
        // Some servers send it as a string.
        Some(serde_json::Value::String(s)) => s.trim().parse().ok().map(Duration::from_secs),
        _ => None,
    }
    .unwrap_or(DEFAULT_LIFETIME);
    let margin = (lifetime / 5).min(Duration::from_secs(300));
    Ok(Answer {
        token: Token {
            access: Redacted::new(access),
            renew_at: started + lifetime - margin,
            expires_at: started + lifetime,
        },
        refresh_token: r.refresh_token.filter(|t| !t.is_empty()).map(Redacted::new),
    })
}

/// An OAuth error answer, with what the administrator does about it.
fn refused(
    p: &OAuthProvider,
    endpoint: &str,
    status: u16,
    error: String,
    description: Option<String>,
    sent: &[(&str, Redacted)],
) -> OAuthError {
    let fix = match (error.as_str(), &p.certificate) {
        ("invalid_client" | "unauthorized_client", Some(c)) => format!(
            "check client_id of [[oauth]] \"{}\" and that its certificate {} (thumbprint {}, valid until {}) is uploaded to that app registration (Entra: Certificates & secrets → Certificates)",
            p.name,
            c.certificate_file.display(),
            c.thumbprint,
            c.not_after.strftime("%Y-%m-%d"),
        ),
        ("invalid_client" | "unauthorized_client", None) => format!(
            "check client_id and the client secret of [[oauth]] \"{}\" (a secret expires in Entra: make a new one under Certificates & secrets)",
            p.name
        ),
        ("invalid_grant", _) if p.grant == Grant::RefreshToken => format!(
            "the refresh token is no longer valid: run `poststelle auth login {}` again",
            p.name
        ),
        ("invalid_scope", _) => format!("check scope of [[oauth]] \"{}\"", p.name),
        _ => "see the provider's error above".to_string(),
    };
    // A server that echoes what it was sent must not bring the secret into a log line.
    let mut description = description
        .map(|d| format!(": {}", d.lines().next().unwrap_or("").trim()))
        .unwrap_or_default();
    for s in sent
        .iter()
        .filter(|(k, _)| *k != "client_assertion_type")
        .map(|(_, v)| v.expose())
        .filter(|s| !s.is_empty())
    {
        description = description.replace(s, "[redacted]");
    }
    OAuthError::Refused {
        provider: p.name.clone(),
        endpoint: endpoint.to_string(),
        status,
        error,
        description,
        fix,
    }
}

fn read_refresh_token(p: &OAuthProvider) -> Result<Redacted, OAuthError> {
    match std::fs::read_to_string(&p.refresh_token_file) {
        Ok(t) if !t.trim().is_empty() => Ok(Redacted::new(t.trim())),
        Ok(_) => Err(OAuthError::NoRefreshToken {
            provider: p.name.clone(),
            path: p.refresh_token_file.clone(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(OAuthError::NoRefreshToken {
            provider: p.name.clone(),
            path: p.refresh_token_file.clone(),
        }),
        Err(source) => Err(OAuthError::File {
            provider: p.name.clone(),
            what: "reading the refresh token",
            path: p.refresh_token_file.clone(),
            source,
        }),
    }
}

/// Writes the refresh token to a new file readable by poststelle alone (0600) and renames it
/// over the old one, so that a crash leaves the old token or the new, never half of one.
pub fn save_refresh_token(p: &OAuthProvider, token: &Redacted) -> Result<(), OAuthError> {
    let path = &p.refresh_token_file;
    let err = |what, source| OAuthError::File {
        provider: p.name.clone(),
        what,
        path: path.clone(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir).map_err(|e| err("creating the directory of", e))?;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let written = (|| {
        let mut f = open_private(&tmp)?;
        f.write_all(token.expose().as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err("saving the refresh token to", e));
    }
    Ok(())
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// What the user is shown to sign in (RFC 8628 §3.2).
#[derive(Debug, Clone)]
pub struct DeviceCode {
    pub user_code: String,
    pub verification_uri: String,
    /// The provider's own sentence, when it sends one (Entra does).
    pub message: Option<String>,
}

#[derive(Deserialize)]
struct DeviceResponse {
    device_code: Option<String>,
    user_code: Option<String>,
    verification_uri: Option<String>,
    /// Google's name of it.
    verification_url: Option<String>,
    expires_in: Option<u64>,
    interval: Option<u64>,
    message: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `poststelle auth login`: the device-code flow (RFC 8628). `show` tells the user where to
/// sign in; when they have, the refresh token is saved and the access token returned.
pub async fn device_login(
    p: &OAuthProvider,
    show: impl FnOnce(&DeviceCode),
) -> Result<Token, OAuthError> {
    let Some(endpoint) = &p.device_endpoint else {
        return Err(OAuthError::NoDeviceEndpoint {
            provider: p.name.clone(),
            fix: "add preset = \"microsoft365\" or \"google\", or device_endpoint = \"https://…\"",
        });
    };
    let mut form: Vec<(&str, &str)> = vec![("client_id", &p.client_id)];
    if !p.scope.is_empty() {
        form.push(("scope", &p.scope));
    }
    let auth = client_auth(p)?;
    form.extend(auth.iter().map(|(k, v)| (*k, v.expose())));
    let (status, body) =
        http::post_form(endpoint, &form)
            .await
            .map_err(|source| OAuthError::Http {
                provider: p.name.clone(),
                source,
            })?;
    let bad = |what: String| OAuthError::BadAnswer {
        provider: p.name.clone(),
        endpoint: endpoint.clone(),
        status,
        what,
    };
    let d: DeviceResponse =
        serde_json::from_slice(&body).map_err(|e| bad(format!("no JSON object ({e})")))?;
    if let Some(error) = d.error {
        return Err(refused(
            p,
            endpoint,
            status,
            error,
            d.error_description,
            &auth,
        ));
    }
    let (Some(device_code), Some(user_code), Some(uri)) = (
        d.device_code,
        d.user_code,
        d.verification_uri.or(d.verification_url),
    ) else {
        return Err(bad(
            "device_code, user_code or verification_uri is missing".into()
        ));
    };
    show(&DeviceCode {
        user_code,
        verification_uri: uri,
        message: d.message,
    });
    let deadline = Instant::now() + Duration::from_secs(d.expires_in.unwrap_or(900));
    let mut interval = Duration::from_secs(d.interval.unwrap_or(5).max(1));
    loop {
        if Instant::now() > deadline {
            return Err(OAuthError::DeviceLogin {
                provider: p.name.clone(),
                what: "the code expired; run the command again".into(),
            });
        }
        tokio::time::sleep(interval).await;
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", &device_code),
            ("client_id", &p.client_id),
        ];
        // A new assertion for every poll: the server refuses one it has seen.
        let auth = client_auth(p)?;
        form.extend(auth.iter().map(|(k, v)| (*k, v.expose())));
        match token_request(p, &form, &auth).await {
            Ok(a) => {
                let Some(refresh) = a.refresh_token else {
                    return Err(OAuthError::DeviceLogin {
                        provider: p.name.clone(),
                        what: "the provider sent no refresh token (Microsoft: add the scope offline_access)".into(),
                    });
                };
                save_refresh_token(p, &refresh)?;
                return Ok(a.token);
            }
            Err(OAuthError::Refused { error, .. }) if error == "authorization_pending" => {}
            Err(OAuthError::Refused { error, .. }) if error == "slow_down" => {
                interval += Duration::from_secs(5);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(dir: &Path) -> OAuthProvider {
        OAuthProvider {
            name: "t".into(),
            grant: Grant::RefreshToken,
            token_endpoint: "http://127.0.0.1:1/token".into(),
            device_endpoint: None,
            client_id: "c".into(),
            client_secret: Some(Redacted::new("s3cr3t")),
            certificate: None,
            scope: String::new(),
            refresh_token_file: dir.join("oauth").join("t.refresh-token"),
        }
    }

    #[test]
    fn refresh_token_is_saved_private_and_whole() {
        let dir = std::env::temp_dir().join(format!("poststelle-oauth-{}", std::process::id()));
        let p = provider(&dir);
        save_refresh_token(&p, &Redacted::new("one")).unwrap();
        save_refresh_token(&p, &Redacted::new("two")).unwrap();
        assert_eq!(read_refresh_token(&p).unwrap().expose(), "two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p.refresh_token_file)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let left: Vec<_> = std::fs::read_dir(dir.join("oauth")).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_echoed_secret_is_cut_from_the_error() {
        let p = provider(Path::new("/nonexistent"));
        let e = refused(
            &p,
            "http://x/token",
            401,
            "invalid_client".into(),
            Some("secret s3cr3t is wrong".into()),
            &[("client_secret", Redacted::new("s3cr3t"))],
        );
        let text = e.to_string();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("OAuth provider \"t\""), "{text}");
        assert!(text.contains("check client_id"), "{text}");
    }
}
