//! The one HTTP request OAuth needs: a form POST to a token (or device) endpoint, over TLS
//! (webpki roots) or, on loopback only, plain HTTP. hyper's HTTP/1.1 client, one connection
//! per request: a token is asked for once an hour.
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::ServerName};

const TIMEOUT: Duration = Duration::from_secs(30);
/// A token response is a few KiB; more is no token server's.
const MAX_BODY: usize = 256 * 1024;

/// Why a request got no answer. Never carries the request's body (it holds the secret).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{url}: {what}")]
    Failed { url: String, what: String },
}

struct Url<'a> {
    tls: bool,
    host: &'a str,
    port: u16,
    path: &'a str,
}

fn parse(url: &str) -> Option<Url<'_>> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        (false, url.strip_prefix("http://")?)
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        let port = after.strip_prefix(':').map(str::parse).transpose().ok()?;
        (h, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse().ok()?)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some(Url {
        tls,
        host,
        port: port.unwrap_or(if tls { 443 } else { 80 }),
        path,
    })
}

/// POSTs `form` (application/x-www-form-urlencoded) and returns the status and body.
pub async fn post_form(url: &str, form: &[(&str, &str)]) -> Result<(u16, Vec<u8>), HttpError> {
    let fail = |what: String| HttpError::Failed {
        url: url.to_string(),
        what,
    };
    let u = parse(url).ok_or_else(|| fail("is no http(s) URL".into()))?;
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let host_header = if u.port == if u.tls { 443 } else { 80 } {
        u.host.to_string()
    } else {
        format!("{}:{}", u.host, u.port)
    };
    let request = hyper::Request::post(u.path)
        .header(hyper::header::HOST, host_header)
        .header(
            hyper::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(hyper::header::ACCEPT, "application/json")
        .header(hyper::header::USER_AGENT, "poststelle")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| fail(format!("building the request failed: {e}")))?;
    let exchange = async {
        let tcp = TcpStream::connect((u.host, u.port))
            .await
            .map_err(|e| fail(format!("connecting failed: {e}")))?;
        if u.tls {
            let tls = tls_connect(u.host, tcp).await.map_err(fail)?;
            send(TokioIo::new(tls), request).await.map_err(fail)
        } else {
            send(TokioIo::new(tcp), request).await.map_err(fail)
        }
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| fail(format!("no answer within {} s", TIMEOUT.as_secs())))?
}

async fn send<T>(io: T, request: hyper::Request<Full<Bytes>>) -> Result<(u16, Vec<u8>), String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let driver = tokio::spawn(conn);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("the request failed: {e}"))?;
    let status = response.status().as_u16();
    let body = http_body_util::Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the answer failed: {e}"))?
        .to_bytes()
        .to_vec();
    driver.abort();
    Ok((status, body))
}

async fn tls_connect(
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string()).map_err(|e| format!("TLS: {host}: {e}"))?;
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_taken_apart() {
        let u = parse("https://login.microsoftonline.com/t/oauth2/v2.0/token").unwrap();
        assert!(u.tls);
        assert_eq!(
            (u.host, u.port, u.path),
            ("login.microsoftonline.com", 443, "/t/oauth2/v2.0/token")
        );
        let u = parse("http://127.0.0.1:18080/token").unwrap();
        assert_eq!(
            (u.tls, u.host, u.port, u.path),
            (false, "127.0.0.1", 18080, "/token")
        );
        let u = parse("http://[::1]:80").unwrap();
        assert_eq!((u.host, u.port, u.path), ("::1", 80, "/"));
        assert!(parse("ftp://x/").is_none());
        assert!(parse("http://:80/").is_none());
    }
}
