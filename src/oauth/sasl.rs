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

#[cfg(test)]
mod tests {
    use super::*;

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
