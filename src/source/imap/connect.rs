//! Reaching the server: TCP, TLS (implicit or STARTTLS), the greeting, LOGIN or AUTHENTICATE
//! with an OAuth token, CAPABILITY. Every error names the server as `host:port`.
use std::sync::Arc;

use async_imap::{Authenticator, Client, Session};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::ServerName};

use super::{COMMAND_TIMEOUT, CONNECT_TIMEOUT, Caps, Conn, Io, WithContext, timed};
use crate::config::{ImapSettings, ImapTls, OAuthLogin, SaslMechanism};
use crate::oauth::{self, Token};
use crate::source::SourceError;

/// A logged-in session, and when its token should be renewed (`None`: a password login).
pub(super) struct Connected {
    pub session: Session<Conn>,
    pub renew_at: Option<tokio::time::Instant>,
}

pub(super) async fn connect(s: &ImapSettings) -> Result<Connected, SourceError> {
    let server = server(s);
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((s.host.as_str(), s.port)),
    )
    .await
    .map_err(|_| SourceError::Protocol(format!("{server}: connecting timed out")))?
    .context(|| format!("{server}: connecting failed"))?;
    tcp.set_nodelay(true)
        .context(|| format!("{server}: setting TCP_NODELAY failed"))?;
    let client: Client<Conn> = match s.tls {
        ImapTls::None => greeted(Client::new(Box::new(tcp) as Conn), &server).await?,
        ImapTls::Implicit => {
            let tls = tls(s, &server, tcp).await?;
            greeted(Client::new(Box::new(tls) as Conn), &server).await?
        }
        ImapTls::Starttls => {
            let mut plain = greeted(Client::new(tcp), &server).await?;
            timed(plain.run_command_and_check_ok("STARTTLS", None))
                .await
                .context(|| format!("{server}: STARTTLS failed"))?;
            Client::new(Box::new(tls(s, &server, plain.into_inner()).await?) as Conn)
        }
    };
    if let Some(o) = &s.oauth {
        return oauth_login(client, s, o, &server).await;
    }
    let session = tokio::time::timeout(COMMAND_TIMEOUT, client.login(&s.username, &s.password))
        .await
        .map_err(|_| SourceError::Protocol(format!("{server}: LOGIN timed out")))?
        .map_err(|(e, _)| e)
        .context(|| format!("{server}: LOGIN as {} failed", s.username))?;
    Ok(Connected {
        session,
        renew_at: None,
    })
}

/// AUTHENTICATE with the provider's token; when the server refuses it, once more with a new
/// token (the cached one may have been revoked), then the error, and the mailbox backs off.
async fn oauth_login(
    client: Client<Conn>,
    s: &ImapSettings,
    o: &OAuthLogin,
    server: &str,
) -> Result<Connected, SourceError> {
    let tokens = oauth::tokens(&o.provider);
    let token = tokens.get().await?;
    let client = match authenticate(client, s, o, &token, server).await {
        Ok(session) => {
            return Ok(Connected {
                session,
                renew_at: Some(token.renew_at),
            });
        }
        Err(Refused::Lost(e)) => return Err(e),
        Err(Refused::Again(e, client)) => {
            tracing::warn!(
                provider = %o.provider.name,
                error = %e,
                "the server refused the OAuth token; trying once more with a new one"
            );
            client
        }
    };
    let token = tokens.renew(&token).await?;
    let session = authenticate(client, s, o, &token, server)
        .await
        .map_err(|r| match r {
            Refused::Again(e, _) | Refused::Lost(e) => e,
        })?;
    Ok(Connected {
        session,
        renew_at: Some(token.renew_at),
    })
}

async fn authenticate(
    client: Client<Conn>,
    s: &ImapSettings,
    o: &OAuthLogin,
    token: &Token,
    server: &str,
) -> Result<Session<Conn>, Refused> {
    let mech = o.mechanism;
    let failed = || {
        format!(
            "{server}: AUTHENTICATE {} as {} with a token of OAuth provider \"{}\" failed",
            mech.name(),
            s.username,
            o.provider.name
        )
    };
    let sasl = Sasl {
        first: Some(oauth::sasl::initial_response(
            mech,
            &s.username,
            token.access.expose(),
            &s.host,
            s.port,
        )),
        mechanism: mech,
    };
    match tokio::time::timeout(COMMAND_TIMEOUT, client.authenticate(mech.name(), sasl)).await {
        // The client went with the future: no second attempt on this connection.
        Err(_) => Err(Refused::Lost(SourceError::Protocol(format!(
            "{server}: AUTHENTICATE {} timed out",
            mech.name()
        )))),
        Ok(Ok(session)) => Ok(session),
        Ok(Err((e, client))) => Err(Refused::Again(
            Err::<(), _>(e).context(failed).unwrap_err(),
            client,
        )),
    }
}

/// Why AUTHENTICATE did not log in, and the connection when it can be tried again.
enum Refused {
    Again(SourceError, Client<Conn>),
    Lost(SourceError),
}

/// async-imap's side of SASL: the initial response to the first (empty) challenge, the
/// mechanism's acknowledgement to the error challenge of a refusal.
struct Sasl {
    first: Option<Vec<u8>>,
    mechanism: SaslMechanism,
}

impl Authenticator for Sasl {
    type Response = Vec<u8>;

    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        self.first
            .take()
            .unwrap_or_else(|| oauth::sasl::error_ack(self.mechanism).to_vec())
    }
}

/// What the server offers, asked once per session.
pub(super) async fn capabilities(
    session: &mut Session<Conn>,
    s: &ImapSettings,
) -> Result<Caps, SourceError> {
    let c = timed(session.capabilities())
        .await
        .context(|| format!("{}: CAPABILITY failed", server(s)))?;
    Ok(Caps {
        idle: c.has_str("IDLE"),
        mv: c.has_str("MOVE"),
        uidplus: c.has_str("UIDPLUS"),
    })
}

fn server(s: &ImapSettings) -> String {
    format!("{}:{}", s.host, s.port)
}

async fn greeted<T: Io>(mut client: Client<T>, server: &str) -> Result<Client<T>, SourceError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, client.read_response()).await {
        Ok(Ok(Some(_))) => Ok(client),
        Ok(Ok(None)) => Err(SourceError::Protocol(format!(
            "{server}: the server closed the connection before its greeting"
        ))),
        Ok(Err(e)) => Err(e).context(|| format!("{server}: reading the greeting failed")),
        Err(_) => Err(SourceError::Protocol(format!(
            "{server}: no greeting from the server"
        ))),
    }
}

async fn tls(
    s: &ImapSettings,
    server: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, SourceError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = &s.ca_file {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let bad_ca = |e: &dyn std::fmt::Display| {
            SourceError::Tls(format!("{server}: CA file {}: {e}", ca.display()))
        };
        let certs = CertificateDer::pem_file_iter(ca).map_err(|e| bad_ca(&e))?;
        for cert in certs {
            let cert = cert.map_err(|e| bad_ca(&e))?;
            roots.add(cert).map_err(|e| bad_ca(&e))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SourceError::Tls(format!("{server}: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(s.host.clone())
        .map_err(|e| SourceError::Tls(format!("{server}: {}: {e}", s.host)))?;
    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .map_err(|_| SourceError::Protocol(format!("{server}: TLS handshake timed out")))?
    .context(|| format!("{server}: TLS handshake failed"))?;
    Ok(stream)
}
