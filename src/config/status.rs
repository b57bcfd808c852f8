//! `[status]`: the public status page (issue 18) — where it listens, what it links to and how
//! it looks. Off unless `listen` is set.
//!
//! ```toml
//! [status]
//! listen = "127.0.0.1:8088"
//! public_url = "https://status.example.org"
//! imprint_url = "https://www.example.org/impressum"
//! privacy_url = "https://www.example.org/datenschutz"
//! ```
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{Diagnostics, Files, SourceText, at, config_path};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawStatus {
    listen: Option<Spanned<String>>,
    public_url: Option<Spanned<String>>,
    title: Option<String>,
    imprint_url: Option<Spanned<String>>,
    privacy_url: Option<Spanned<String>>,
    logo_file: Option<Spanned<String>>,
    logo_alt: Option<String>,
    accent_colour: Spanned<String>,
    refresh_seconds: Spanned<u64>,
    header_timeout_seconds: Spanned<u64>,
    max_connections: Spanned<u32>,
}

impl Default for RawStatus {
    fn default() -> Self {
        Self {
            listen: None,
            public_url: None,
            title: None,
            imprint_url: None,
            privacy_url: None,
            logo_file: None,
            logo_alt: None,
            accent_colour: Spanned::new(0..0, DEFAULT_ACCENT.to_string()),
            refresh_seconds: Spanned::new(0..0, 2),
            header_timeout_seconds: Spanned::new(0..0, 10),
            max_connections: Spanned::new(0..0, 4096),
        }
    }
}

/// A dark blue: white text on it has a contrast of 8.6:1 (WCAG AA asks 4.5:1).
const DEFAULT_ACCENT: &str = "#004b87";

/// The public status page's settings.
#[derive(Debug, Clone)]
pub struct StatusSettings {
    /// Where the public listener listens; `None`: no status page.
    pub listen: Option<SocketAddr>,
    /// The page's address as the public reaches it (through a proxy): absolute links in the
    /// feeds. `None`: relative links.
    pub public_url: Option<String>,
    /// The page's heading; default: `outbox.from_name`.
    pub title: Option<String>,
    pub imprint_url: String,
    pub privacy_url: String,
    /// A PNG or SVG shown in the header, served at `/logo`.
    pub logo_file: Option<PathBuf>,
    pub logo_alt: String,
    /// `#rrggbb` of the header and links.
    pub accent_colour: String,
    /// How often the data's fingerprint is read: a change shows after at most this long.
    pub refresh: Duration,
    /// A client that has not sent a request's header within this time is disconnected.
    pub header_timeout: Duration,
    /// Connections served at once; more wait in the kernel's queue.
    pub max_connections: u32,
}

fn url(
    key: &str,
    v: &Option<Spanned<String>>,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<String> {
    let v = v.as_ref()?;
    let u = v.get_ref().trim();
    let ok = (u.starts_with("https://") || u.starts_with("http://"))
        && u.len() > "https://".len()
        && u.chars()
            .all(|c| c.is_ascii_graphic() && !"<>\"'`".contains(c));
    if ok {
        Some(u.trim_end_matches('/').to_string())
    } else {
        diags.push(
            src,
            at(v),
            format!("status.{key} = {u:?} is no http(s) URL"),
            "write an absolute address such as \"https://www.example.org/impressum\"",
        );
        None
    }
}

pub(super) fn validate(
    raw: &RawStatus,
    src: &SourceText,
    files: &Files,
    diags: &mut Diagnostics,
) -> StatusSettings {
    let listen = raw
        .listen
        .as_ref()
        .and_then(|l| match l.get_ref().trim().parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                diags.push(
                    src,
                    at(l),
                    format!("status.listen {:?} is no address with port", l.get_ref()),
                    "write e.g. \"127.0.0.1:8088\" (behind a TLS proxy) or \"[::]:8088\"",
                );
                None
            }
        });
    let imprint = url("imprint_url", &raw.imprint_url, src, diags);
    let privacy = url("privacy_url", &raw.privacy_url, src, diags);
    if let Some(l) = &raw.listen {
        // § 5 DDG and Art. 13 GDPR: a German public page links both.
        for (key, given, raw_value) in [
            ("imprint_url", &imprint, &raw.imprint_url),
            ("privacy_url", &privacy, &raw.privacy_url),
        ] {
            if given.is_none() && raw_value.is_none() {
                diags.push(
                    src,
                    at(l),
                    format!("status.listen is set but status.{key} is not"),
                    format!(
                        "a public German web page must link its imprint (Impressum) and privacy \
                         notice (Datenschutzerklärung): add {key} = \"https://…\" to [status]"
                    ),
                );
            }
        }
    }
    let accent = raw.accent_colour.get_ref().trim();
    let hex = accent.len() == 7
        && accent.starts_with('#')
        && accent[1..].chars().all(|c| c.is_ascii_hexdigit());
    if !hex {
        diags.push(
            src,
            at(&raw.accent_colour),
            format!("status.accent_colour = {accent:?} is no colour"),
            format!(
                "write six hex digits such as \"{DEFAULT_ACCENT}\"; white text on it needs a \
                 contrast of at least 4.5:1"
            ),
        );
    }
    let mut seconds = |key: &str, v: &Spanned<u64>, max: u64| -> Duration {
        let n = *v.get_ref();
        if n == 0 || n > max {
            diags.push(
                src,
                at(v),
                format!("status.{key} = {n} is out of range"),
                format!("use 1 to {max} seconds"),
            );
        }
        Duration::from_secs(n.clamp(1, max))
    };
    let refresh = seconds("refresh_seconds", &raw.refresh_seconds, 3600);
    let header_timeout = seconds("header_timeout_seconds", &raw.header_timeout_seconds, 300);
    let max_connections = *raw.max_connections.get_ref();
    if max_connections == 0 {
        diags.push(
            src,
            at(&raw.max_connections),
            "status.max_connections = 0 would serve nobody",
            "leave it out (4096) or give the connections to serve at once",
        );
    }
    StatusSettings {
        listen,
        public_url: url("public_url", &raw.public_url, src, diags),
        title: raw.title.as_ref().map(|t| t.trim().to_string()),
        imprint_url: imprint.unwrap_or_default(),
        privacy_url: privacy.unwrap_or_default(),
        logo_file: raw.logo_file.as_ref().and_then(|p| {
            let path = config_path("status.logo_file", p, src, files, diags)?;
            if logo_type(&path).is_none() {
                diags.push(
                    src,
                    at(p),
                    format!(
                        "status.logo_file {:?} is no PNG, SVG or JPEG file",
                        p.get_ref()
                    ),
                    "name a file ending in .png, .svg, .jpg or .jpeg",
                );
                return None;
            }
            Some(path)
        }),
        logo_alt: raw.logo_alt.clone().unwrap_or_default(),
        accent_colour: if hex {
            accent.to_ascii_lowercase()
        } else {
            DEFAULT_ACCENT.into()
        },
        refresh,
        header_timeout,
        max_connections: max_connections.max(1),
    }
}

/// The MIME type of a logo, by its file name.
pub fn logo_type(path: &std::path::Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "png" => Some("image/png"),
        "svg" => Some("image/svg+xml"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        _ => None,
    }
}
