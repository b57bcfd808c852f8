//! `[[oauth]]`: the OAuth 2.0 providers that mailboxes and the SMTP relay log in with
//! (`auth = "oauth2"`, `oauth = "NAME"`), and the secrets' type, which never shows itself.
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::client_cert::ClientCertificate;
use super::{Diagnostics, Files, Secret, SourceText, at, config_path, resolve_secret_named};

/// A secret (client secret, a certificate's private key, client assertion, access or refresh
/// token): `Debug` and `Display` print `[redacted]`, so that no log line, error or `check`
/// output can carry one by accident. [`Redacted::expose`] is the one way to the text, for the
/// wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(String);

impl Redacted {
    pub fn new(s: impl Into<String>) -> Self {
        Redacted(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth {
    name: Spanned<String>,
    preset: Option<Spanned<String>>,
    grant: Option<Spanned<String>>,
    tenant: Option<Spanned<String>>,
    token_endpoint: Option<Spanned<String>>,
    device_endpoint: Option<Spanned<String>>,
    client_id: Option<Spanned<String>>,
    client_secret: Option<String>,
    client_secret_env: Option<Spanned<String>>,
    client_secret_file: Option<Spanned<String>>,
    /// PEM of the certificate (and its key, without `private_key_file`): instead of a secret.
    certificate_file: Option<Spanned<String>>,
    private_key_file: Option<Spanned<String>>,
    scope: Option<String>,
}

/// How poststelle gets its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// App-only: the client's own credentials (Microsoft Entra).
    ClientCredentials,
    /// Delegated: a refresh token that `poststelle auth login` obtained once (device code).
    RefreshToken,
}

/// One `[[oauth]]` provider, presets filled in.
#[derive(Debug, Clone)]
pub struct OAuthProvider {
    pub name: String,
    pub grant: Grant,
    pub token_endpoint: String,
    /// RFC 8628's device authorization endpoint, for `poststelle auth login`.
    pub device_endpoint: Option<String>,
    pub client_id: String,
    /// Public clients (a device-code app of Google's "TV and limited input" kind has one, but
    /// Entra's public clients have none) send no secret.
    pub client_secret: Option<Redacted>,
    /// A certificate instead of the secret (never both): the client proves itself with a JWT
    /// signed by its key (RFC 7523 §2.2).
    pub certificate: Option<ClientCertificate>,
    pub scope: String,
    /// Where the refresh token lives: `<data_dir>/oauth/<name>.refresh-token`, mode 0600.
    pub refresh_token_file: PathBuf,
}

/// The SASL mechanism a mailbox or relay logs in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// Google's and Microsoft's `XOAUTH2`.
    Xoauth2,
    /// RFC 7628.
    OAuthBearer,
}

impl SaslMechanism {
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Xoauth2 => "XOAUTH2",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// A mailbox's or relay's `auth = "oauth2"`: the provider and the mechanism.
#[derive(Debug, Clone)]
pub struct OAuthLogin {
    pub provider: OAuthProvider,
    pub mechanism: SaslMechanism,
}

const MS_SCOPE_APP: &str = "https://outlook.office365.com/.default";
const MS_SCOPE_DELEGATED: &str = "offline_access https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send";
const GOOGLE_SCOPE: &str = "https://mail.google.com/";

pub(super) fn validate(
    raw: &[Spanned<RawOAuth>],
    data_dir: &Path,
    src: &SourceText,
    files: &Files,
    diags: &mut Diagnostics,
) -> Vec<OAuthProvider> {
    let mut out: Vec<OAuthProvider> = Vec::new();
    for r in raw {
        let offset = Some(r.span().start);
        let r = r.get_ref();
        let name = r.name.get_ref().trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            diags.push(
                src,
                at(&r.name),
                format!("oauth name {:?} is empty or has other characters than ASCII letters, digits, '-', '_' or '.'", r.name.get_ref()),
                "give every [[oauth]] a short name such as \"m365\"; mailboxes name it with oauth = \"m365\", and it names the refresh token's file",
            );
            continue;
        }
        if out.iter().any(|o| o.name == name) {
            diags.push(
                src,
                at(&r.name),
                format!("oauth provider \"{name}\" is defined twice"),
                "rename or remove one of the [[oauth]] tables",
            );
            continue;
        }
        let what = format!("oauth provider \"{name}\"");
        let grant = match r.grant.as_ref().map(|g| (g, g.get_ref().trim())) {
            None | Some((_, "client_credentials")) => Grant::ClientCredentials,
            Some((_, "refresh_token")) => Grant::RefreshToken,
            Some((g, other)) => {
                diags.push(
                    src,
                    at(g),
                    format!("{what}: grant \"{other}\" is unknown"),
                    "use \"client_credentials\" (app-only, Microsoft Entra) or \"refresh_token\" (delegated: run poststelle auth login once)",
                );
                Grant::ClientCredentials
            }
        };
        let tenant = r.tenant.as_ref().map(|t| t.get_ref().trim().to_string());
        // (token endpoint, device endpoint, scope) of a preset.
        let preset = match r.preset.as_ref().map(|p| (p, p.get_ref().trim())) {
            None => None,
            Some((p, "microsoft365")) => {
                let Some(tenant) = tenant.as_deref().filter(|t| !t.is_empty()) else {
                    diags.push(
                        src,
                        at(p),
                        format!("{what}: preset \"microsoft365\" needs the tenant"),
                        "add tenant = \"<Directory (tenant) ID>\" or your domain, e.g. tenant = \"kommune.onmicrosoft.com\" (Entra admin center, Overview)",
                    );
                    continue;
                };
                let base = format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0");
                let scope = match grant {
                    Grant::ClientCredentials => MS_SCOPE_APP,
                    Grant::RefreshToken => MS_SCOPE_DELEGATED,
                };
                Some((
                    format!("{base}/token"),
                    Some(format!("{base}/devicecode")),
                    scope,
                ))
            }
            Some((p, "google")) => {
                if grant == Grant::ClientCredentials && r.grant.is_some() {
                    diags.push(
                        src,
                        r.grant.as_ref().and_then(at),
                        format!(
                            "{what}: Google gives Gmail no app-only tokens by client credentials"
                        ),
                        "use grant = \"refresh_token\" and run poststelle auth login once",
                    );
                }
                let _ = p;
                Some((
                    "https://oauth2.googleapis.com/token".to_string(),
                    Some("https://oauth2.googleapis.com/device/code".to_string()),
                    GOOGLE_SCOPE,
                ))
            }
            Some((p, other)) => {
                diags.push(
                    src,
                    at(p),
                    format!("{what}: preset \"{other}\" is unknown"),
                    "use \"microsoft365\" or \"google\", or leave preset out and give token_endpoint and scope",
                );
                continue;
            }
        };
        // Google's preset has only the delegated grant.
        let grant = match (&r.preset, &r.grant) {
            (Some(p), None) if p.get_ref().trim() == "google" => Grant::RefreshToken,
            _ => grant,
        };
        let token_endpoint = match (&r.token_endpoint, &preset) {
            (Some(t), _) => check_endpoint(&what, "token_endpoint", t, src, diags),
            (None, Some((t, _, _))) => Some(t.clone()),
            (None, None) => {
                diags.push(
                    src,
                    offset,
                    format!("{what} has no token_endpoint"),
                    "add preset = \"microsoft365\" or \"google\", or token_endpoint = \"https://…/token\"",
                );
                None
            }
        };
        let device_endpoint = match (&r.device_endpoint, &preset) {
            (Some(t), _) => check_endpoint(&what, "device_endpoint", t, src, diags),
            (None, Some((_, d, _))) => d.clone(),
            (None, None) => None,
        };
        let Some(client_id) = r
            .client_id
            .as_ref()
            .map(|c| c.get_ref().trim().to_string())
            .filter(|c| !c.is_empty())
        else {
            diags.push(
                src,
                offset,
                format!("{what} has no client_id"),
                "add client_id = \"<Application (client) ID>\" of the app registered with the provider",
            );
            continue;
        };
        let certificate = certificate(&what, r, src, files, diags);
        let client_secret = match certificate {
            Some(_) => None,
            None => match resolve_secret_named(
                &what,
                "client_secret",
                r.client_secret.as_deref(),
                r.client_secret_env.as_ref(),
                r.client_secret_file.as_ref(),
                src,
                files,
                diags,
            ) {
                Secret::Given(s) => Some(Redacted::new(s)),
                Secret::Missing
                    if grant == Grant::ClientCredentials && r.certificate_file.is_none() =>
                {
                    diags.push(
                        src,
                        offset,
                        format!("{what}: grant \"client_credentials\" needs the client secret or a certificate"),
                        "add certificate_file = \"$CREDENTIALS_DIRECTORY/oauth-cert.pem\" (the certificate uploaded to the app registration and its key) or client_secret_file = \"$CREDENTIALS_DIRECTORY/oauth-secret\" (systemd LoadCredential=)",
                    );
                    None
                }
                Secret::Missing | Secret::Failed => None,
            },
        };
        let scope = match (&r.scope, &preset) {
            (Some(s), _) => s.trim().to_string(),
            (None, Some((_, _, s))) => s.to_string(),
            (None, None) => String::new(),
        };
        let Some(token_endpoint) = token_endpoint else {
            continue;
        };
        out.push(OAuthProvider {
            refresh_token_file: data_dir.join("oauth").join(format!("{name}.refresh-token")),
            name,
            grant,
            token_endpoint,
            device_endpoint,
            client_id,
            client_secret,
            certificate,
            scope,
        });
    }
    out
}

/// `certificate_file` (and `private_key_file`): read and checked now, so that a wrong file
/// is told by `check` with its line rather than by the provider an hour later.
fn certificate(
    what: &str,
    r: &RawOAuth,
    src: &SourceText,
    files: &Files,
    diags: &mut Diagnostics,
) -> Option<ClientCertificate> {
    let Some(cert) = &r.certificate_file else {
        if let Some(k) = &r.private_key_file {
            diags.push(
                src,
                at(k),
                format!("{what}: private_key_file without certificate_file"),
                "add certificate_file = \"…\" naming the certificate whose key this is",
            );
        }
        return None;
    };
    let secret = [
        ("client_secret", r.client_secret.is_some()),
        ("client_secret_env", r.client_secret_env.is_some()),
        ("client_secret_file", r.client_secret_file.is_some()),
    ];
    if let Some((key, _)) = secret.iter().find(|(_, given)| *given) {
        diags.push(
            src,
            at(cert),
            format!("{what} has both certificate_file and {key}: a client proves itself one way only (RFC 6749 §2.3)"),
            format!("remove {key} to log in with the certificate, or certificate_file to log in with the secret"),
        );
        return None;
    }
    let cert_path = config_path(
        &format!("{what}: certificate_file"),
        cert,
        src,
        files,
        diags,
    )?;
    let key_path = match &r.private_key_file {
        Some(k) => Some(config_path(
            &format!("{what}: private_key_file"),
            k,
            src,
            files,
            diags,
        )?),
        None => None,
    };
    match ClientCertificate::load(&cert_path, key_path.as_deref(), jiff::Timestamp::now()) {
        Ok(c) => Some(c),
        Err(p) => {
            let line = match (&r.private_key_file, p.in_key) {
                (Some(k), true) => at(k),
                _ => at(cert),
            };
            diags.push(src, line, format!("{what}: {}", p.message), p.fix);
            None
        }
    }
}

/// An endpoint must be `https://`, except on loopback (a token server of the tests).
fn check_endpoint(
    what: &str,
    key: &str,
    url: &Spanned<String>,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<String> {
    let u = url.get_ref().trim();
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| {
            u.strip_prefix(p)
                .is_some_and(|r| r.is_empty() || r.starts_with([':', '/']))
        });
    if u.starts_with("https://") && u.len() > "https://".len() || loopback {
        Some(u.to_string())
    } else {
        diags.push(
            src,
            at(url),
            format!("{what}: {key} {u:?} is no https:// URL"),
            "give the provider's https:// endpoint (plain http only on 127.0.0.1, for tests)",
        );
        None
    }
}

/// The `auth`, `oauth` and `sasl` keys of a mailbox or relay: `Ok(None)` for passwords.
pub(super) fn login(
    what: &str,
    auth: Option<&Spanned<String>>,
    oauth: Option<&Spanned<String>>,
    sasl: Option<&Spanned<String>>,
    providers: &[OAuthProvider],
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Result<Option<Box<OAuthLogin>>, ()> {
    match auth.map(|a| (a, a.get_ref().trim())) {
        None | Some((_, "password")) => {
            if let Some(o) = oauth {
                diags.push(
                    src,
                    at(o),
                    format!(
                        "{what} names oauth = \"{}\" but logs in with a password",
                        o.get_ref()
                    ),
                    "add auth = \"oauth2\", or remove oauth",
                );
                return Err(());
            }
            Ok(None)
        }
        Some((a, "oauth2")) => {
            let Some(o) = oauth else {
                diags.push(
                    src,
                    at(a),
                    format!("{what} has auth = \"oauth2\" but names no provider"),
                    "add oauth = \"NAME\" naming an [[oauth]] table",
                );
                return Err(());
            };
            let name = o.get_ref().trim();
            let Some(provider) = providers.iter().find(|p| p.name == name) else {
                let known: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
                diags.push(
                    src,
                    at(o),
                    format!("{what}: oauth = \"{name}\" names no [[oauth]] table"),
                    if known.is_empty() {
                        format!("add an [[oauth]] table with name = \"{name}\" (see README.md, \"OAuth 2.0\")")
                    } else {
                        format!("name one of: {}", known.join(", "))
                    },
                );
                return Err(());
            };
            let mechanism = match sasl.map(|s| (s, s.get_ref().trim().to_ascii_lowercase())) {
                None => SaslMechanism::Xoauth2,
                Some((_, m)) if m == "xoauth2" => SaslMechanism::Xoauth2,
                Some((_, m)) if m == "oauthbearer" => SaslMechanism::OAuthBearer,
                Some((s, m)) => {
                    diags.push(
                        src,
                        at(s),
                        format!("{what}: sasl = \"{m}\" is unknown"),
                        "use \"xoauth2\" (Microsoft 365, Google) or \"oauthbearer\" (RFC 7628)",
                    );
                    return Err(());
                }
            };
            Ok(Some(Box::new(OAuthLogin {
                provider: provider.clone(),
                mechanism,
            })))
        }
        Some((a, other)) => {
            diags.push(
                src,
                at(a),
                format!("{what}: auth = \"{other}\" is unknown"),
                "use \"password\" or \"oauth2\"",
            );
            Err(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_never_shows_itself() {
        let s = Redacted::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "hunter2");
    }
}
