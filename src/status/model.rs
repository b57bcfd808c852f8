//! What the status page shows, and nothing else: built from the store's incidents,
//! maintenances, the public part of the incidents' timelines and the availability report, into
//! types that have no field for a ticket, a member, an address, a list or an internal note.
//! This is also the schema of `/status.json` (README, "Public status page").
use std::collections::HashMap;

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use serde::Serialize;

use crate::config::Config;
use crate::sla::report::Report;
use crate::store::announcements::{Maintenance, MaintenanceState};
use crate::store::incidents::{Incident, IncidentState};
use crate::store::status_page::PublicEvent;
use crate::store::{self, Store, StoreError};

/// The version of the JSON's shape: raised when a field changes meaning or goes away.
pub const SCHEMA: &str = "poststelle-status/1";

/// How far back resolved incidents are shown.
const INCIDENT_DAYS: i64 = 90;
/// Months of availability shown, the running one included.
const MONTHS: i32 = 12;

/// The whole public status.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Public {
    pub schema: &'static str,
    /// The latest change of what is shown (RFC 3339, UTC); null when nothing happened yet.
    pub updated_at: Option<Timestamp>,
    pub platforms: Vec<PlatformStatus>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Operational,
    Maintenance,
    Disruption,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlatformStatus {
    pub name: String,
    pub description: String,
    /// Disruption while an incident is open, else maintenance while one runs, else operational.
    pub state: State,
    /// The open incidents' highest class (1 is the gravest); null without one.
    pub class: Option<u8>,
    /// Running, upcoming and cancelled-but-not-yet-past maintenance, the earliest first.
    pub maintenance: Vec<MaintenanceView>,
    /// Open incidents and those of the last 90 days, the latest first.
    pub incidents: Vec<IncidentView>,
    /// Availability per month against the platform's target; null when it cannot be computed.
    pub availability: Option<Availability>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MaintenanceView {
    pub id: i64,
    /// The calendar entry's UID, as in the mailed invitations and `/maintenance.ics`.
    pub uid: String,
    pub sequence: i64,
    /// scheduled | running | cancelled | done
    pub state: &'static str,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub reason: String,
    pub impact: String,
    /// Announced at short notice (outside the lead time).
    pub emergency: bool,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IncidentView {
    pub id: i64,
    pub title: String,
    pub impact: String,
    /// Störungsklasse 1–4.
    pub class: u8,
    /// open | resolved
    pub state: IncidentState,
    pub started_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    /// The latest entry of its timeline.
    pub updated_at: Timestamp,
    /// Its public timeline, oldest first.
    pub updates: Vec<UpdateView>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UpdateView {
    /// opened | update | raised | resolved
    pub kind: String,
    /// What the notice said; empty for `raised` (its reason names reports, which are private).
    pub text: String,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Availability {
    pub calendar: String,
    pub target_percent: f64,
    pub months: Vec<Month>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Month {
    /// `2026-11`
    pub month: String,
    pub availability_percent: f64,
    pub target_met: bool,
    pub outage_seconds: i64,
}

/// What the page is built from, as read from the store.
#[derive(Debug, Default)]
pub struct Inputs {
    pub incidents: Vec<Incident>,
    pub events: Vec<PublicEvent>,
    pub maintenances: Vec<Maintenance>,
    /// Availability report by platform name.
    pub reports: HashMap<String, Report>,
}

fn since(now: Timestamp) -> Timestamp {
    now.checked_sub((INCIDENT_DAYS * 24).hours())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Reads what [`build`] needs at `now`.
pub async fn load(store: &Store, config: &Config, now: Timestamp) -> Result<Inputs, StoreError> {
    let since = since(now).as_microsecond();
    let incidents = store::incidents::incidents(store).await?;
    let events = store::status_page::public_events(store, since).await?;
    let maintenances = store::announcements::maintenances(store).await?;
    let mut reports = HashMap::new();
    let tz = crate::time::berlin_or_utc();
    let today = now.to_zoned(tz).date();
    let from = first_month(today);
    for p in &config.settings.platforms {
        let Some(cal) = config.settings.sla.calendars.get(&p.calendar) else {
            continue;
        };
        match crate::jobs::report::platform_report(
            store,
            p,
            cal,
            from,
            today,
            p.availability_target,
            now,
        )
        .await
        {
            Ok(r) => {
                reports.insert(p.name.clone(), r);
            }
            Err(e) => {
                tracing::warn!(platform = %p.name, error = %e, "status page: availability not computed");
            }
        }
    }
    Ok(Inputs {
        incidents,
        events,
        maintenances,
        reports,
    })
}

/// The first day of the month `MONTHS - 1` months before `today`'s.
fn first_month(today: Date) -> Date {
    today
        .first_of_month()
        .checked_sub((MONTHS - 1).months())
        .unwrap_or(today.first_of_month())
}

fn t(micros: i64) -> Timestamp {
    crate::time::stored(micros)
}

/// The public status at `now` from `inputs`; also the next instant at which it changes
/// without any write (a maintenance starts or ends).
pub fn build(config: &Config, inputs: &Inputs, now: Timestamp) -> (Public, Option<Timestamp>) {
    let now_us = now.as_microsecond();
    let since = since(now).as_microsecond();
    let domain = &config.settings.outbox.message_id_domain;
    let mut next: Option<i64> = None;
    let mut latest: Option<i64> = None;
    let mut seen = |at: i64| latest = Some(latest.map_or(at, |l: i64| l.max(at)));
    let mut platforms = Vec::new();
    for p in &config.settings.platforms {
        let mut maintenance = Vec::new();
        let mut running = false;
        for m in inputs.maintenances.iter().filter(|m| m.platform == p.name) {
            if m.ends_at <= now_us {
                continue;
            }
            let state = match m.state {
                MaintenanceState::Cancelled => "cancelled",
                MaintenanceState::Done => "done",
                MaintenanceState::Scheduled if m.starts_at <= now_us => "running",
                MaintenanceState::Scheduled => "scheduled",
            };
            if m.state == MaintenanceState::Scheduled {
                running |= state == "running";
                let boundary = if m.starts_at > now_us {
                    m.starts_at
                } else {
                    m.ends_at
                };
                next = Some(next.map_or(boundary, |n| n.min(boundary)));
            }
            seen(m.changed_at);
            maintenance.push(MaintenanceView {
                id: m.id,
                uid: crate::ical::maintenance_uid(m.id, domain),
                sequence: m.sequence,
                state,
                starts_at: t(m.starts_at),
                ends_at: t(m.ends_at),
                reason: m.reason.clone(),
                impact: m.impact.clone(),
                emergency: m.emergency,
                updated_at: t(m.changed_at),
            });
        }
        maintenance.sort_by_key(|m| (m.starts_at, m.id));
        let mut incidents = Vec::new();
        for i in inputs.incidents.iter().filter(|i| {
            // An incident monitoring opened is public once an operator confirmed it (or
            // the platform tells its lists at once).
            i.platform == p.name
                && i.confirmed_at.is_some()
                && (i.state == IncidentState::Open
                    || i.started_at >= since
                    || i.resolved_at.is_some_and(|r| r >= since))
        }) {
            let updates: Vec<UpdateView> = inputs
                .events
                .iter()
                .filter(|e| e.incident_id == i.id)
                .map(|e| UpdateView {
                    kind: e.kind.clone(),
                    text: if e.kind == "raised" {
                        String::new()
                    } else {
                        e.text.clone()
                    },
                    at: t(e.at),
                })
                .collect();
            let updated = updates
                .iter()
                .map(|u| u.at.as_microsecond())
                .chain([i.changed_at])
                .max()
                .unwrap_or(i.changed_at);
            seen(updated);
            incidents.push(IncidentView {
                id: i.id,
                title: i.title.clone(),
                impact: i.impact.clone(),
                class: i.class,
                state: i.state,
                started_at: t(i.started_at),
                resolved_at: i.resolved_at.map(t),
                updated_at: t(updated),
                updates,
            });
        }
        let class = incidents
            .iter()
            .filter(|i| i.state == IncidentState::Open)
            .map(|i| i.class)
            .min();
        let state = if class.is_some() {
            State::Disruption
        } else if running {
            State::Maintenance
        } else {
            State::Operational
        };
        let availability = inputs.reports.get(&p.name).map(|r| Availability {
            calendar: r.calendar.clone(),
            target_percent: p.availability_target,
            months: r
                .months
                .iter()
                .map(|m| Month {
                    month: m.period.clone(),
                    availability_percent: m.availability_percent,
                    target_met: m.target_met,
                    outage_seconds: m.outage_seconds,
                })
                .collect(),
        });
        platforms.push(PlatformStatus {
            name: p.name.clone(),
            description: p.description.clone(),
            state,
            class,
            maintenance,
            incidents,
            availability,
        });
    }
    (
        Public {
            schema: SCHEMA,
            updated_at: latest.map(t),
            platforms,
        },
        next.map(t),
    )
}
