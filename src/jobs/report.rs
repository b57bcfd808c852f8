//! The availability report over the store: the class-1 incidents, maintenance windows and
//! reaction clocks of one calendar, handed to the pure computation in [`crate::sla::report`].
use jiff::Timestamp;
use jiff::civil::Date;

use crate::sla::Calendar;
use crate::sla::report::{Incident, ReactionRecord, Records, Report, compute};
use crate::store::{self, Store, StoreError};

/// Loads the class-1 incidents, maintenance windows and reaction clocks of `cal` and computes
/// the report.
pub async fn report(
    store: &Store,
    cal: &Calendar,
    from: Date,
    to: Date,
    target: f64,
    now: Timestamp,
) -> Result<Report, StoreError> {
    let t = Timestamp::from_microsecond;
    let mut records = Records::default();
    for r in store::sla::report_rows(store, cal.name()).await? {
        let received = t(r.received_at)?;
        if r.severity == 1 {
            records.incidents.push(Incident {
                received,
                restored: r.closed_at.map(t).transpose()?,
            });
        }
        records.reactions.push(ReactionRecord {
            severity: r.severity,
            received,
            due: t(r.due_at)?,
            met: r.met.map(|m| m != 0),
        });
    }
    records.maintenance = store::sla::maintenance(store, cal.name())
        .await?
        .into_iter()
        .map(|(start, end)| Ok((t(start)?, t(end)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(compute(cal, from, to, target, now, &records)?)
}
