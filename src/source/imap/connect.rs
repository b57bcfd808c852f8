//! Reaching the server: TCP, TLS (implicit or STARTTLS), the greeting, LOGIN, CAPABILITY.
//! Every error names the server as `host:port`.
use std::sync::Arc;

use async_imap::{Client, Session};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::ServerName};

use super::{COMMAND_TIMEOUT, CONNECT_TIMEOUT, Caps, Conn, Io, WithContext, timed};
use crate::config::{ImapSettings, ImapTls};
use crate::source::SourceError;

pub(super) async fn connect(s: &ImapSettings) -> Result<Session<Conn>, SourceError> {
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
    let session = tokio::time::timeout(COMMAND_TIMEOUT, client.login(&s.username, &s.password))
        .await
        .map_err(|_| SourceError::Protocol(format!("{server}: LOGIN timed out")))?
        .map_err(|(e, _)| e)
        .context(|| format!("{server}: LOGIN as {} failed", s.username))?;
    Ok(session)
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
