//! Addresses that bring a token back to us by plus-addressing (issue 16, item 6): the envelope
//! sender of a notice (VERP), so that a bounce names the mail it returns, and the `mailto:` of
//! its `List-Unsubscribe`, so that a member's unsubscribe mail names the list and the member.
//!
//! The token is the local part of the notice's own Message-ID (a UUIDv7: 74 random bits), so
//! it is unguessable for anyone who did not receive that mail, needs no column of its own and
//! is found by the unique index on the outbox's Message-IDs. `base` is the address the tokens
//! are added to (`outbox.bounce_address`, by default the support address): `support@example.org`
//! gives `support+b0193…@example.org` for bounces and `support+u0193…@example.org` for
//! unsubscribing.

use jiff::Timestamp;

use crate::reply_token::{Keys, Purpose, Verdict};

/// What a token address asks for; the value is the local part of an outbox row's Message-ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Bounce(String),
    Unsubscribe(String),
}

impl Token {
    /// The Message-ID of the outbox row the token names, given `outbox.message_id_domain`.
    pub fn message_id(&self, domain: &str) -> String {
        match self {
            Token::Bounce(t) | Token::Unsubscribe(t) => format!("{t}@{domain}"),
        }
    }
}

const SEPARATOR: char = '+';
/// A Message-ID's local part as we make them (UUID text); anything else is no token of ours.
const MAX_TOKEN: usize = 40;

fn valid_token(t: &str) -> bool {
    !t.is_empty() && t.len() <= MAX_TOKEN && t.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn tagged(base: &str, tag: char, message_id: &str) -> Option<String> {
    let (local, domain) = base.rsplit_once('@')?;
    let token = message_id.split('@').next()?;
    valid_token(token).then(|| format!("{local}{SEPARATOR}{tag}{token}@{domain}"))
}

/// The envelope sender (Return-Path) of the mail with `message_id`; `None` when the base is
/// no address or the Message-ID none of ours (then the base itself is the envelope sender).
pub fn bounce_address(base: &str, message_id: &str) -> Option<String> {
    tagged(base, 'b', message_id)
}

/// The `mailto:` address that unsubscribes the recipient of the mail with `message_id`.
pub fn unsubscribe_address(base: &str, message_id: &str) -> Option<String> {
    tagged(base, 'u', message_id)
}

/// RFC 8058's one-click link of the mail with `message_id`: `<base>/<token>.<mac>`, the MAC
/// made with the reply key for [`Purpose::Unsubscribe`]. A Message-ID alone (which a member's
/// reply or forward may show to others) is not enough to unsubscribe the member by link.
pub fn unsubscribe_link(base: &str, keys: &Keys, message_id: &str) -> Option<String> {
    let token = message_id.split('@').next()?;
    valid_token(token).then(|| {
        format!(
            "{}/{token}.{}",
            base.trim_end_matches('/'),
            keys.sign(Purpose::Unsubscribe, token)
        )
    })
}

/// The token of a one-click link's last path segment (`<token>.<mac>`), if its MAC holds at
/// `now` (made with the current key, or a retired one within its grace time).
pub fn check_unsubscribe_link(keys: &Keys, segment: &str, now: Timestamp) -> Option<String> {
    let (token, mac) = segment.rsplit_once('.')?;
    let token = token.to_ascii_lowercase();
    if !valid_token(&token) {
        return None;
    }
    match keys.check(Purpose::Unsubscribe, &token, &mac.to_ascii_lowercase(), now) {
        Verdict::Valid | Verdict::ValidRetiredKey => Some(token),
        Verdict::Expired | Verdict::Invalid => None,
    }
}

/// The token of `address`, if it is `base` with one of our tags (local part and tag compared
/// without regard to case, as mail systems may change it).
pub fn parse(base: &str, address: &str) -> Option<Token> {
    let (base_local, base_domain) = base.rsplit_once('@')?;
    let (local, domain) = address.trim().trim_matches(['<', '>']).rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(base_domain) {
        return None;
    }
    // The base's own local part may hold the separator (`support+bounces@…`): strip it whole.
    let prefix = local.get(..base_local.len())?;
    if !prefix.eq_ignore_ascii_case(base_local) {
        return None;
    }
    let detail = local[base_local.len()..].strip_prefix(SEPARATOR)?;
    let mut chars = detail.chars();
    let tag = chars.next()?.to_ascii_lowercase();
    let token = chars.as_str().to_ascii_lowercase();
    if !valid_token(&token) {
        return None;
    }
    match tag {
        'b' => Some(Token::Bounce(token)),
        'u' => Some(Token::Unsubscribe(token)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b@kommunal-it.example";

    #[test]
    fn a_token_address_names_its_mail_and_reads_back() {
        let b = bounce_address("support@kommunal-it.example", ID).expect("address");
        assert_eq!(
            b,
            "support+b0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b@kommunal-it.example"
        );
        let t = parse("support@kommunal-it.example", &b).expect("token");
        assert_eq!(t.message_id("kommunal-it.example"), ID);
        let u = unsubscribe_address("support@kommunal-it.example", ID).expect("address");
        assert!(matches!(
            parse("support@kommunal-it.example", &format!("<{}>", u.to_uppercase())),
            Some(Token::Unsubscribe(t)) if t == "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
        ));
    }

    #[test]
    fn a_one_click_link_holds_only_with_its_mac() {
        let keys = Keys::new(b"0123456789abcdef".to_vec(), Vec::new());
        let link = unsubscribe_link("https://desk.example/unsubscribe/", &keys, ID).expect("link");
        let segment = link
            .strip_prefix("https://desk.example/unsubscribe/")
            .expect("base kept, one slash");
        assert!(segment.starts_with("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b."));
        let now = Timestamp::now();
        assert_eq!(
            check_unsubscribe_link(&keys, segment, now).as_deref(),
            Some("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
        );
        let (token, mac) = segment.rsplit_once('.').expect("dot");
        for bad in [
            token.to_string(),
            format!("{token}.{}", "0".repeat(mac.len())),
            format!("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c.{mac}"),
            format!("../../etc.{mac}"),
        ] {
            assert_eq!(check_unsubscribe_link(&keys, &bad, now), None, "{bad}");
        }
    }

    #[test]
    fn other_addresses_are_no_tokens() {
        let base = "support@kommunal-it.example";
        for a in [
            "support@kommunal-it.example",
            "support+t42.abc@kommunal-it.example",
            "support+b@kommunal-it.example",
            "support+b0193../x@kommunal-it.example",
            "other+b0193a1b2@kommunal-it.example",
            "support+b0193a1b2@elsewhere.example",
            "not an address",
        ] {
            assert_eq!(parse(base, a), None, "{a}");
        }
        assert_eq!(bounce_address(base, "<odd id>@x"), None);
        // A base with a separator of its own reads back whole.
        let plus = "support+bounces@kommunal-it.example";
        let b = bounce_address(plus, ID).expect("address");
        assert_eq!(
            parse(plus, &b).map(|t| t.message_id("kommunal-it.example")),
            Some(ID.to_string())
        );
        assert_eq!(parse(plus, "support+b0193a1b2@kommunal-it.example"), None);
        assert_eq!(bounce_address("no-at-sign", ID), None);
    }
}
