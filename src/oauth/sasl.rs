//! The SASL messages of a token login: XOAUTH2 (Google's and Microsoft's) and OAUTHBEARER
//! (RFC 7628). Both are one message from the client; a refusal comes as a challenge with the
//! server's JSON error, to which the client answers with an empty message (XOAUTH2) or a
//! single ^A (OAUTHBEARER) and gets the final NO.
use crate::config::SaslMechanism;

/// The client's first message (before base64).
pub fn initial_response(
    mechanism: SaslMechanism,
    user: &str,
    token: &str,
    host: &str,
    port: u16,
) -> Vec<u8> {
    match mechanism {
        SaslMechanism::Xoauth2 => format!("user={user}\x01auth=Bearer {token}\x01\x01"),
        SaslMechanism::OAuthBearer => {
            // RFC 5801's gs2 header: the authzid's "," and "=" are escaped.
            let authzid = user.replace('=', "=3D").replace(',', "=2C");
            format!("n,a={authzid},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01")
        }
    }
    .into_bytes()
}

/// The answer to the server's error challenge.
pub fn error_ack(mechanism: SaslMechanism) -> &'static [u8] {
    match mechanism {
        SaslMechanism::Xoauth2 => b"",
        SaslMechanism::OAuthBearer => b"\x01",
    }
}

/// The `status` of a server's error challenge (RFC 7628 §3.2.2: base64 of a JSON object such
/// as `{"status":"invalid_token","scope":"…"}`), for the error message: printable ASCII only,
/// so that a server cannot write lines into the log.
pub fn error_status(challenge_base64: &str) -> Option<String> {
    use base64::Engine;
    let json = base64::engine::general_purpose::STANDARD
        .decode(challenge_base64.trim())
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&json).ok()?;
    let status: String = v
        .get("status")?
        .as_str()?
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect();
    (!status.is_empty()).then_some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_challenge_tells_its_status() {
        // RFC 7628 §4.3's example of a failure.
        let challenge = "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwib3BlbmlkLWNvbmZpZ3VyYXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25maWd1cmF0aW9uIn0=";
        assert_eq!(error_status(challenge).as_deref(), Some("invalid_token"));
        assert_eq!(error_status("bm8ganNvbg=="), None);
        // {"status":"bad\r\nline"}
        assert_eq!(
            error_status("eyJzdGF0dXMiOiJiYWRcclxubGluZSJ9").as_deref(),
            Some("badline")
        );
    }

    #[test]
    fn messages_follow_the_specifications() {
        assert_eq!(
            initial_response(SaslMechanism::Xoauth2, "a@b", "T", "h", 1),
            b"user=a@b\x01auth=Bearer T\x01\x01"
        );
        // RFC 7628 §4.1's example, with our host and port.
        assert_eq!(
            initial_response(
                SaslMechanism::OAuthBearer,
                "u=x,y",
                "T",
                "server.example.com",
                143
            ),
            b"n,a=u=3Dx=2Cy,\x01host=server.example.com\x01port=143\x01auth=Bearer T\x01\x01"
        );
    }
}
