//! Users' tickets linked to an incident of their platform (issue 16, item 4): by command
//! (`incident open --ticket`, `incident link`) or, while the incident is open, by a rule that
//! names the platform (`then.platform`) when filing opens a ticket or adds a follow-up — in
//! the filing transaction. Linked light reports (class 3) add up: at
//! `incidents.raise_to_class_2_after` of them the incident becomes class 2, betriebsbehindernd
//! ("many light faults together", seed 001 §4.2). Below `announce`, because filing links.
use std::collections::HashMap;

use jiff::Timestamp;
use serde_json::json;
use sqlx::AnyConnection;

use crate::config::Config;
use crate::store::audit::audit;
use crate::store::buffer::WriteBuffer;
use crate::store::incidents::{self as stored, EventKind, Incident, IncidentState};
use crate::store::{Backend, StoreError};

/// The class of a light report (leichte Störung), and the class many of them make.
const LIGHT: u8 = 3;
const RAISED: u8 = 2;

/// Links ticket `ticket_id` (number `number`) to `incident` in the caller's transaction,
/// audited on the ticket, and raises the incident's class when the linked light reports
/// reach the configured count. Whether the link is new.
#[allow(clippy::too_many_arguments)]
pub async fn link(
    conn: &mut AnyConnection,
    config: &Config,
    incident: &mut Incident,
    ticket_id: i64,
    number: &str,
    linked_by: &str,
    actor: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let at = now.as_microsecond();
    if !stored::link_ticket(conn, incident.id, ticket_id, linked_by, at).await? {
        return Ok(false);
    }
    let mut buf = WriteBuffer::default();
    audit(
        &mut buf,
        at,
        Some(ticket_id),
        None,
        actor,
        "incident_linked",
        &json!({ "incident": incident.id, "platform": incident.platform, "by": linked_by }),
    );
    tracing::info!(
        incident = incident.id,
        platform = %incident.platform,
        ticket = number,
        by = linked_by,
        "ticket linked to incident"
    );
    raise_if_due(conn, &mut buf, config, incident, actor, at).await?;
    buf.flush(conn, Backend::of(conn)).await?;
    Ok(true)
}

/// Raises an open incident of class 3 or 4 to class 2 once
/// `incidents.raise_to_class_2_after` light reports are linked to it: recorded in its
/// timeline, audited and logged. Whether it did.
async fn raise_if_due(
    conn: &mut AnyConnection,
    buf: &mut WriteBuffer,
    config: &Config,
    incident: &mut Incident,
    actor: &str,
    at: i64,
) -> Result<bool, StoreError> {
    let threshold = config.settings.incidents.raise_to_class_2_after;
    if threshold == 0 || incident.class <= RAISED || incident.state != IncidentState::Open {
        return Ok(false);
    }
    let light = stored::linked_of_class(conn, incident.id, LIGHT).await?;
    if light < i64::from(threshold) {
        return Ok(false);
    }
    let from = incident.class;
    incident.class = RAISED;
    incident.raised_at = Some(at);
    incident.changed_at = at;
    stored::update_incident(conn, incident).await?;
    let why = format!(
        "class {from} → {RAISED}: {light} light reports (class {LIGHT}) linked, \
         incidents.raise_to_class_2_after = {threshold}"
    );
    stored::add_event(conn, incident.id, EventKind::Raised, &why, actor, at).await?;
    audit(
        buf,
        at,
        None,
        None,
        actor,
        "incident_class_raised",
        &json!({ "incident": incident.id, "platform": incident.platform, "from": from,
                 "to": RAISED, "light_reports": light, "threshold": threshold }),
    );
    tracing::warn!(
        incident = incident.id,
        platform = %incident.platform,
        from,
        to = RAISED,
        light_reports = light,
        threshold,
        "incident raised to class 2 by its linked light reports"
    );
    Ok(true)
}

/// Filing's hook: each (ticket number, platform) filed in this transaction — a new ticket or
/// a follow-up whose rules named a platform — is linked to the platform's open incident, if
/// there is one. Nothing is read for a batch without such tickets.
pub async fn on_filed(
    conn: &mut AnyConnection,
    config: &Config,
    filed: &[(&str, &str)],
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut open: HashMap<&str, Option<Incident>> = HashMap::new();
    for &(number, platform) in filed {
        if !open.contains_key(platform) {
            let incident = stored::open_incident_of(conn, platform).await?;
            open.insert(platform, incident);
        }
        let Some(Some(incident)) = open.get_mut(platform) else {
            continue;
        };
        let Some(ticket_id) = stored::ticket_id(conn, number).await? else {
            continue;
        };
        link(
            conn,
            config,
            incident,
            ticket_id,
            number,
            "rule",
            "poststelle",
            now,
        )
        .await?;
    }
    Ok(())
}
