//! Reply tokens (issue 17, item 1): the Reply-To of every mail to staff names its ticket and
//! carries an HMAC-SHA-256 over the ticket number, so that an answer to it can be told from a
//! forged one. Only a holder of the key makes a valid token; a token of one ticket is worth
//! nothing for another.
//!
//! Keys rotate: the current key makes tokens, a retired key is still accepted until its grace
//! time ends, so that answers to copies sent before the rotation keep working for a while.
use hmac::{KeyInit, Mac};
use jiff::Timestamp;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Octets of the MAC kept in a token: 80 bits, written as 20 lower-case hex digits (mail
/// systems may change the case of a local part; hex survives it).
const MAC_BYTES: usize = 10;

/// The shortest key accepted: 128 bits.
pub const MIN_KEY_BYTES: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatternError {
    #[error("the reply address pattern \"{0}\" needs exactly one {{ticket}} and one {{mac}}")]
    Placeholders(String),
    #[error(
        "in the reply address pattern \"{0}\", {{ticket}} and {{mac}} need something between them"
    )]
    Adjacent(String),
    #[error(
        "the reply address pattern \"{0}\" is no address: it needs one @ and a domain after it"
    )]
    NoDomain(String),
}

/// The keys a token is made and checked with.
#[derive(Clone)]
pub struct Keys {
    current: Vec<u8>,
    /// Retired keys, each accepted until its instant.
    retired: Vec<(Vec<u8>, Timestamp)>,
}

impl std::fmt::Debug for Keys {
    // Never a secret in a log or an error.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("retired", &self.retired.len())
            .finish_non_exhaustive()
    }
}

/// What a MAC is made for; the key is shared, the purposes are kept apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The reply address of mail to staff: over the ticket number.
    Reply,
    /// The one-click unsubscribe link of a notice (issue 18): over the notice's token.
    Unsubscribe,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Reply => b"poststelle reply token v1\0",
            Purpose::Unsubscribe => b"poststelle unsubscribe link v1\0",
        }
    }
}

/// What checking a token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// Made with a retired key within its grace time.
    ValidRetiredKey,
    /// Made with a retired key whose grace time has ended.
    Expired,
    Invalid,
}

impl Keys {
    pub fn new(current: Vec<u8>, retired: Vec<(Vec<u8>, Timestamp)>) -> Keys {
        Keys { current, retired }
    }

    fn tag(key: &[u8], purpose: Purpose, data: &str) -> HmacSha256 {
        // HMAC takes keys of any length; the length is checked where keys are loaded.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        // The purpose first: a MAC made for one use is worth nothing for another.
        mac.update(purpose.label());
        mac.update(data.as_bytes());
        mac
    }

    /// The MAC part of the token of ticket `number`.
    pub fn mac(&self, number: &str) -> String {
        self.sign(Purpose::Reply, number)
    }

    /// The MAC of `data` for `purpose` with the current key, as 20 hex digits.
    pub fn sign(&self, purpose: Purpose, data: &str) -> String {
        let full = Self::tag(&self.current, purpose, data)
            .finalize()
            .into_bytes();
        full[..MAC_BYTES]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Checks `mac` for ticket `number` at `now`, in constant time per key.
    pub fn verify(&self, number: &str, mac: &str, now: Timestamp) -> Verdict {
        self.check(Purpose::Reply, number, mac, now)
    }

    /// Checks `mac` of `data` for `purpose` at `now`, in constant time per key.
    pub fn check(&self, purpose: Purpose, data: &str, mac: &str, now: Timestamp) -> Verdict {
        let Some(bytes) = unhex(mac) else {
            return Verdict::Invalid;
        };
        if bytes.len() != MAC_BYTES {
            return Verdict::Invalid;
        }
        if Self::tag(&self.current, purpose, data)
            .verify_truncated_left(&bytes)
            .is_ok()
        {
            return Verdict::Valid;
        }
        for (key, until) in &self.retired {
            if Self::tag(key, purpose, data)
                .verify_truncated_left(&bytes)
                .is_ok()
            {
                return if now <= *until {
                    Verdict::ValidRetiredKey
                } else {
                    Verdict::Expired
                };
            }
        }
        Verdict::Invalid
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Where the token sits in the reply address: `support+t{ticket}.{mac}@example.org` by default
/// (plus-addressing), or e.g. `support-t{ticket}-{mac}@example.org` on a server that delivers
/// such addresses by a catch-all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The text before, between and after the two placeholders, and whether the ticket number
    /// comes first.
    before: String,
    between: String,
    after: String,
    ticket_first: bool,
}

impl Pattern {
    pub fn parse(pattern: &str) -> Result<Pattern, PatternError> {
        let count = |p: &str| pattern.matches(p).count();
        if count("{ticket}") != 1 || count("{mac}") != 1 {
            return Err(PatternError::Placeholders(pattern.into()));
        }
        let (local, domain) = pattern
            .rsplit_once('@')
            .ok_or_else(|| PatternError::NoDomain(pattern.into()))?;
        if domain.is_empty() || domain.contains('{') || !local.contains("{mac}") {
            return Err(PatternError::NoDomain(pattern.into()));
        }
        let t = pattern.find("{ticket}").unwrap_or_default();
        let m = pattern.find("{mac}").unwrap_or_default();
        let ticket_first = t < m;
        let (first, first_len, second, second_len) = if ticket_first {
            (t, "{ticket}".len(), m, "{mac}".len())
        } else {
            (m, "{mac}".len(), t, "{ticket}".len())
        };
        let between = &pattern[first + first_len..second];
        if between.is_empty() {
            return Err(PatternError::Adjacent(pattern.into()));
        }
        Ok(Pattern {
            before: pattern[..first].to_string(),
            between: between.to_string(),
            after: pattern[second + second_len..].to_string(),
            ticket_first,
        })
    }

    /// The default on the support address: `support+t{ticket}.{mac}@domain`.
    pub fn plus_addressing(support: &str) -> Result<Pattern, PatternError> {
        let (local, domain) = support
            .rsplit_once('@')
            .ok_or_else(|| PatternError::NoDomain(support.into()))?;
        Pattern::parse(&format!("{local}+t{{ticket}}.{{mac}}@{domain}"))
    }

    /// The reply address of ticket `number`.
    pub fn address(&self, keys: &Keys, number: &str) -> String {
        let mac = keys.mac(number);
        let (a, b) = if self.ticket_first {
            (number, mac.as_str())
        } else {
            (mac.as_str(), number)
        };
        format!("{}{a}{}{b}{}", self.before, self.between, self.after)
    }

    /// The (ticket number, MAC) an address carries, if it has this pattern's shape; whether
    /// the MAC is right is [`Keys::verify`]'s to say. Compared without regard to case.
    pub fn read(&self, address: &str) -> Option<(String, String)> {
        let a = address.trim().trim_matches(['<', '>']).to_ascii_lowercase();
        let rest = a.strip_prefix(&self.before.to_ascii_lowercase())?;
        let rest = rest.strip_suffix(&self.after.to_ascii_lowercase())?;
        let (first, second) = rest.split_once(&self.between.to_ascii_lowercase())?;
        let (number, mac) = if self.ticket_first {
            (first, second)
        } else {
            (second, first)
        };
        let ok = !number.is_empty()
            && number.len() <= 32
            && number.bytes().all(|b| b.is_ascii_digit())
            && mac.len() == 2 * MAC_BYTES
            && mac.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| (number.to_string(), mac.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(b"0123456789abcdef-current".to_vec(), Vec::new())
    }

    #[test]
    fn a_token_is_valid_for_its_ticket_only() {
        let k = keys();
        let p = Pattern::plus_addressing("support@kommunal-it.example").expect("pattern");
        let a = p.address(&k, "2026120400017");
        assert!(
            a.starts_with("support+t2026120400017.") && a.ends_with("@kommunal-it.example"),
            "{a}"
        );
        let (number, mac) = p.read(&a.to_uppercase()).expect("reads back");
        assert_eq!(number, "2026120400017");
        let now = Timestamp::now();
        assert_eq!(k.verify(&number, &mac, now), Verdict::Valid);
        assert_eq!(k.verify("2026120400018", &mac, now), Verdict::Invalid);
        // One flipped digit of the MAC.
        let mut tampered = mac.clone().into_bytes();
        tampered[0] = if tampered[0] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert_eq!(k.verify(&number, &tampered, now), Verdict::Invalid);
        assert_eq!(k.verify(&number, "xyz", now), Verdict::Invalid);
        // Another key makes other tokens.
        let other = Keys::new(b"another key of sixteen".to_vec(), Vec::new());
        assert_eq!(other.verify(&number, &mac, now), Verdict::Invalid);
    }

    #[test]
    fn a_mac_made_for_one_purpose_is_refused_for_another() {
        let k = keys();
        let now = Timestamp::now();
        let token = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        let link = k.sign(Purpose::Unsubscribe, token);
        assert_eq!(
            k.check(Purpose::Unsubscribe, token, &link, now),
            Verdict::Valid
        );
        assert_eq!(k.check(Purpose::Reply, token, &link, now), Verdict::Invalid);
        assert_ne!(link, k.mac(token));
    }

    #[test]
    fn a_retired_key_is_accepted_until_its_grace_time_ends() {
        let old = keys();
        let mac = old.mac("42");
        let until: Timestamp = "2026-12-10T00:00:00Z".parse().expect("ts");
        let rotated = Keys::new(
            b"the new current key".to_vec(),
            vec![(b"0123456789abcdef-current".to_vec(), until)],
        );
        let before: Timestamp = "2026-12-09T23:59:59Z".parse().expect("ts");
        let after: Timestamp = "2026-12-10T00:00:01Z".parse().expect("ts");
        assert_eq!(rotated.verify("42", &mac, before), Verdict::ValidRetiredKey);
        assert_eq!(rotated.verify("42", &mac, after), Verdict::Expired);
        assert_eq!(
            rotated.verify("42", &rotated.mac("42"), after),
            Verdict::Valid
        );
        assert!(!format!("{rotated:?}").contains("current"));
    }

    #[test]
    fn patterns_for_servers_without_plus_addressing() {
        let k = keys();
        let p = Pattern::parse("helpdesk-{mac}-t{ticket}@desk.example").expect("pattern");
        let a = p.address(&k, "7");
        assert_eq!(a, format!("helpdesk-{}-t7@desk.example", k.mac("7")));
        assert_eq!(p.read(&a), Some(("7".into(), k.mac("7"))));
        assert_eq!(p.read("helpdesk@desk.example"), None);
        assert_eq!(p.read(&a.replace("desk.example", "other.example")), None);
        assert_eq!(p.read("helpdesk-zz-t7@desk.example"), None);
        for bad in [
            "support@desk.example",
            "support+{ticket}{mac}@desk.example",
            "support+{ticket}.{mac}",
            "support+{ticket}@{mac}.example",
            "s+{ticket}.{ticket}.{mac}@desk.example",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }
}
