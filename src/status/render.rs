//! The status site's pages and feeds, rendered from [`Public`] once per change: HTML from
//! the operator's minijinja templates (`templates/<lang>/status/`), `/status.json`,
//! `/maintenance.ics` (the mailed invitations' VEVENTs, [`crate::notify::maintenance`]) and
//! `/feed.atom`. Rendering is pure: the same data gives the same bytes, so that an
//! unchanged page keeps its ETag.
use jiff::Timestamp;
use minijinja::{Environment, Value};
use serde_json::json;

use super::model::{IncidentView, MaintenanceView, Public};
use crate::config::Config;
use crate::store::announcements::{Maintenance, MaintenanceState};

/// The languages of the site; the first is the default.
pub const LANGS: [&str; 2] = ["de", "en"];

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("status page template {name}: {source}")]
    Template {
        name: String,
        source: minijinja::Error,
    },
    #[error("the status page's stylesheet {path}: {message}")]
    Stylesheet { path: String, message: String },
    #[error("the maintenance calendar: {0}")]
    Ical(#[from] crate::ical::IcalError),
    #[error("status.json: {0}")]
    Json(#[from] serde_json::Error),
}

/// The operator's templates with the filters the pages use, and the stylesheet.
pub struct Renderer {
    env: Environment<'static>,
}

/// `2026-12-16T18:00:00Z` as people read it in `lang` (Berlin time).
fn when(value: String, lang: String) -> Result<String, minijinja::Error> {
    let t: Timestamp = value.parse().map_err(|e: jiff::Error| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
    })?;
    Ok(crate::notify::maintenance::when(
        t,
        &lang,
        &crate::time::berlin_or_utc(),
    ))
}

/// `99,874 %` in German, `99.874 %` in English; two decimals.
fn percent(value: f64, lang: String) -> String {
    let s = format!("{value:.2}");
    let s = if lang == "en" { s } else { s.replace('.', ",") };
    format!("{s}\u{a0}%")
}

const MONATE: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `2026-11` → `November 2026`.
fn month(value: String, lang: String) -> String {
    let Some((year, m)) = value.split_once('-') else {
        return value;
    };
    let names = if lang == "en" { &MONTHS } else { &MONATE };
    match m
        .parse::<usize>()
        .ok()
        .and_then(|m| names.get(m.wrapping_sub(1)))
    {
        Some(name) => format!("{name} {year}"),
        None => value,
    }
}

fn class_name(class: u8, lang: String) -> String {
    crate::notify::incident::class_name(class, &lang).to_string()
}

impl Renderer {
    /// The configuration's templates (cloned, so that the filters stay the status page's)
    /// and `<templates_dir>/status/status.css`.
    pub fn new(config: &Config) -> Result<Renderer, RenderError> {
        let mut env = config.templates.env().clone();
        env.add_filter("when", when);
        env.add_filter("percent", percent);
        env.add_filter("month", month);
        env.add_filter("class_name", class_name);
        let path = format!(
            "{}/status/status.css",
            config.templates.dir.trim_end_matches('/')
        );
        let css = config
            .files
            .read(&path)
            .map_err(|d| RenderError::Stylesheet {
                path: path.clone(),
                message: d.message,
            })?;
        env.add_template_owned("status/status.css", css.text)
            .map_err(|e| RenderError::Template {
                name: path,
                source: e,
            })?;
        Ok(Renderer { env })
    }

    /// Renders `<lang>/status/<name>.html` with `ctx`.
    pub fn page(&self, lang: &str, name: &str, ctx: Value) -> Result<String, RenderError> {
        let name = format!("{lang}/status/{name}.html");
        self.env
            .get_template(&name)
            .and_then(|t| t.render(ctx))
            .map_err(|source| RenderError::Template { name, source })
    }

    pub fn stylesheet(&self, config: &Config) -> Result<String, RenderError> {
        let ctx = Value::from(minijinja::value::Serde(
            json!({ "accent": config.settings.status.accent_colour }),
        ));
        self.env
            .get_template("status/status.css")
            .and_then(|t| t.render(ctx))
            .map_err(|source| RenderError::Template {
                name: "status/status.css".into(),
                source,
            })
    }
}

/// What every page's layout reads: title, links, logo.
pub fn site(config: &Config) -> serde_json::Value {
    let s = &config.settings;
    json!({
        "title": s.status.title.clone().unwrap_or_else(|| s.outbox.from_name.clone()),
        "base": base_path(config),
        "imprint_url": s.status.imprint_url,
        "privacy_url": s.status.privacy_url,
        "logo": s.status.logo_file.is_some(),
        "logo_alt": s.status.logo_alt,
    })
}

/// The path of `status.public_url` (`https://example.org/status` → `/status`): where the
/// site sits behind a proxy, so that its own links work there. Empty by default.
pub fn base_path(config: &Config) -> String {
    config
        .settings
        .status
        .public_url
        .as_deref()
        .and_then(|u| u.split_once("://"))
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string()
}

/// `/status.json`: the public status, pretty-printed.
pub fn json(public: &Public) -> Result<Vec<u8>, RenderError> {
    let mut out = serde_json::to_vec_pretty(public)?;
    out.push(b'\n');
    Ok(out)
}

/// `/maintenance.ics` in `lang`: every maintenance of a configured platform as its mailed
/// invitation has it (same UID and SEQUENCE; cancelled ones STATUS:CANCELLED), each stamped
/// with its last change, so that the feed's bytes change only when a maintenance does.
pub fn ics(config: &Config, all: &[Maintenance], lang: &str) -> Result<Vec<u8>, RenderError> {
    let mut ordered: Vec<&Maintenance> = all
        .iter()
        .filter(|m| config.settings.platform(&m.platform).is_some())
        .collect();
    ordered.sort_by_key(|m| (m.starts_at, m.id));
    let events: Vec<crate::ical::Event> = ordered
        .into_iter()
        .map(|m| {
            let stamp = crate::time::stored(m.changed_at);
            crate::notify::maintenance::calendar_event(config, m, lang, stamp)
        })
        .collect();
    let title = config
        .settings
        .status
        .title
        .clone()
        .unwrap_or_else(|| config.settings.outbox.from_name.clone());
    let name = if lang == "en" {
        format!("{title}: maintenance")
    } else {
        format!("{title}: Wartungen")
    };
    Ok(crate::ical::feed(&events, &name)?.into_bytes())
}

/// Text for XML: `&`, `<`, `>` and quotes escaped, control characters XML cannot hold dropped.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A stable id of an entry (RFC 4151 tag URI): the same whatever address the site has.
fn tag(config: &Config, what: &str) -> String {
    format!(
        "tag:{},2026:status/{what}",
        config.settings.outbox.message_id_domain
    )
}

struct Entry {
    id: String,
    title: String,
    updated: Timestamp,
    published: Timestamp,
    link: String,
    text: String,
}

fn incident_entry(config: &Config, base: &str, p: &str, i: &IncidentView, lang: &str) -> Entry {
    let en = lang == "en";
    let when =
        |t: Timestamp| crate::notify::maintenance::when(t, lang, &crate::time::berlin_or_utc());
    let state = match (i.resolved_at.is_some(), en) {
        (false, false) => "Störung",
        (true, false) => "Behoben",
        (false, true) => "Disruption",
        (true, true) => "Resolved",
    };
    let mut text = format!(
        "{}: {} ({} {}: {})\n{}: {}\n",
        if en { "Platform" } else { "Plattform" },
        p,
        if en { "class" } else { "Klasse" },
        i.class,
        crate::notify::incident::class_name(i.class, lang),
        if en { "Impact" } else { "Auswirkung" },
        i.impact
    );
    text.push_str(&format!(
        "{} {}",
        if en { "Since" } else { "Seit" },
        when(i.started_at)
    ));
    if let Some(r) = i.resolved_at {
        text.push_str(&format!(
            ", {} {}",
            if en { "resolved" } else { "behoben" },
            when(r)
        ));
    }
    text.push('\n');
    for u in i
        .updates
        .iter()
        .filter(|u| !u.text.is_empty() && u.kind != "opened")
    {
        text.push_str(&format!("\n{}: {}", when(u.at), u.text));
    }
    Entry {
        id: tag(config, &format!("incident-{}", i.id)),
        title: format!("{state} {p}: {}", i.title),
        updated: i.updated_at,
        published: i.started_at,
        link: format!("{base}/platform/{p}{}", if en { "?lang=en" } else { "" }),
        text,
    }
}

fn maintenance_entry(
    config: &Config,
    base: &str,
    p: &str,
    m: &MaintenanceView,
    lang: &str,
) -> Entry {
    let en = lang == "en";
    let when =
        |t: Timestamp| crate::notify::maintenance::when(t, lang, &crate::time::berlin_or_utc());
    let prefix = match (m.state, en) {
        ("cancelled", false) => "Abgesagt: Wartung",
        ("cancelled", true) => "Cancelled: maintenance",
        (_, false) => "Wartung",
        (_, true) => "Maintenance",
    };
    let text = format!(
        "{} – {}\n{}: {}\n{}: {}\n",
        when(m.starts_at),
        when(m.ends_at),
        if en { "Reason" } else { "Grund" },
        m.reason,
        if en {
            "Restrictions"
        } else {
            "Einschränkungen"
        },
        m.impact
    );
    Entry {
        id: tag(config, &format!("maintenance-{}", m.id)),
        title: format!("{prefix} {p}: {}", when(m.starts_at)),
        updated: m.updated_at,
        published: m.updated_at,
        link: format!("{base}/platform/{p}{}", if en { "?lang=en" } else { "" }),
        text,
    }
}

/// `/feed.atom` in `lang` (RFC 4287): one entry per incident and per maintenance shown on
/// the page, each with a stable id and updated in place (`updated` moves with each notice).
pub fn atom(config: &Config, public: &Public, all: &[Maintenance], lang: &str) -> Vec<u8> {
    let base = config
        .settings
        .status
        .public_url
        .clone()
        .unwrap_or_default();
    let site = site(config);
    let title = site["title"].as_str().unwrap_or("").to_string();
    let mut entries = Vec::new();
    for p in &public.platforms {
        for i in &p.incidents {
            entries.push(incident_entry(config, &base, &p.name, i, lang));
        }
        for m in &p.maintenance {
            entries.push(maintenance_entry(config, &base, &p.name, m, lang));
        }
    }
    // Finished maintenance leaves the page but stays in the feed while it is recent.
    let shown: std::collections::HashSet<i64> = public
        .platforms
        .iter()
        .flat_map(|p| p.maintenance.iter().map(|m| m.id))
        .collect();
    let cutoff = public
        .updated_at
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .as_microsecond()
        - 90 * 24 * 3_600_000_000;
    for m in all.iter().filter(|m| {
        !shown.contains(&m.id)
            && m.changed_at >= cutoff
            && m.state != MaintenanceState::Scheduled
            && config.settings.platform(&m.platform).is_some()
    }) {
        let view = MaintenanceView {
            id: m.id,
            uid: String::new(),
            sequence: m.sequence,
            state: m.state.as_str(),
            starts_at: crate::time::stored(m.starts_at),
            ends_at: crate::time::stored(m.ends_at),
            reason: m.reason.clone(),
            impact: m.impact.clone(),
            emergency: m.emergency,
            updated_at: crate::time::stored(m.changed_at),
        };
        entries.push(maintenance_entry(config, &base, &m.platform, &view, lang));
    }
    entries.sort_by(|a, b| b.updated.cmp(&a.updated).then(a.id.cmp(&b.id)));
    let updated = entries
        .iter()
        .map(|e| e.updated)
        .max()
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let en = lang == "en";
    let q = if en { "?lang=en" } else { "" };
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str(&format!(
        "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{lang}\">\n"
    ));
    out.push_str(&format!(
        "<id>{}</id>\n",
        xml(&tag(config, &format!("feed-{lang}")))
    ));
    out.push_str(&format!(
        "<title>{}</title>\n",
        xml(&format!(
            "{title}: {}",
            if en {
                "incidents and maintenance"
            } else {
                "Störungen und Wartungen"
            }
        ))
    ));
    out.push_str(&format!("<updated>{}</updated>\n", rfc3339(updated)));
    out.push_str(&format!("<author><name>{}</name></author>\n", xml(&title)));
    out.push_str(&format!(
        "<link rel=\"alternate\" type=\"text/html\" href=\"{}/{q}\"/>\n",
        xml(&base)
    ));
    if !base.is_empty() {
        out.push_str(&format!(
            "<link rel=\"self\" type=\"application/atom+xml\" href=\"{}/feed.atom{q}\"/>\n",
            xml(&base)
        ));
    }
    for e in &entries {
        out.push_str("<entry>\n");
        out.push_str(&format!("<id>{}</id>\n", xml(&e.id)));
        out.push_str(&format!("<title>{}</title>\n", xml(&e.title)));
        out.push_str(&format!("<updated>{}</updated>\n", rfc3339(e.updated)));
        out.push_str(&format!(
            "<published>{}</published>\n",
            rfc3339(e.published)
        ));
        out.push_str(&format!(
            "<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n",
            xml(&e.link)
        ));
        out.push_str(&format!(
            "<content type=\"text\">{}</content>\n",
            xml(e.text.trim_end())
        ));
        out.push_str("</entry>\n");
    }
    out.push_str("</feed>\n");
    out.into_bytes()
}

/// The context of a page: the site, the language, the status and what the page adds.
pub fn context(config: &Config, public: &Public, lang: &str, extra: serde_json::Value) -> Value {
    let mut ctx = json!({
        "site": site(config),
        "lang": lang,
        "status": public,
    });
    if let (Some(o), serde_json::Value::Object(extra)) = (ctx.as_object_mut(), extra) {
        o.extend(extra);
    }
    Value::from(minijinja::value::Serde(ctx))
}
