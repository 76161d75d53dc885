//! The event log export: every encounter in scope as an event, in CSV or
//! XES, for process mining tools.

use tokio::sync::mpsc;
use uuid::Uuid;

use super::reading::{Reads, ScopeRequest, time_zone, touchpoints};
use crate::{
    app::{App, Caller, Operation, Parsed, access::permit},
    domain::{
        analysis::{LogFormat, Scope},
        event_log::{CaseSequence, CsvLog, Event, XesLog, utc_offset},
    },
    error::Result,
    store,
};

/// The size of the pieces an export is sent in.
const CHUNK_BYTES: usize = 64 * 1024;

/// An export request.
#[derive(Debug, Clone)]
pub struct LogRequest {
    pub scope: ScopeRequest,
    pub format: LogFormat,
}

/// The log, piece by piece as the database streams it; an error ends it.
pub type LogChunks = mpsc::Receiver<Result<Vec<u8>>>;

impl App {
    /// Streams the event log of a scope. It takes no bulk lane: it goes as
    /// fast as its caller reads, and a lane held meanwhile would hold up
    /// the rest.
    pub async fn export_event_log(
        &self,
        caller: &Caller,
        request: Parsed<LogRequest>,
    ) -> Result<LogChunks> {
        let org = permit(caller, Operation::ExportEventLog)?;
        let LogRequest { scope, format } = request?;
        let (tx, scope) = self.open(org, Ok(scope), Reads::EncountersOnly).await?;
        let (sender, receiver) = mpsc::channel(4);
        tokio::spawn(async move {
            if let Err(error) = write_log(tx.tx, org, scope, format, &sender).await {
                let _ = sender.send(Err(error)).await;
            }
        });
        Ok(receiver)
    }
}

/// Writes the event log of `scope` to `sender` piece by piece as the
/// database streams it. Stops quietly when the caller goes.
async fn write_log(
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    org: Uuid,
    scope: Scope,
    format: LogFormat,
    sender: &mpsc::Sender<Result<Vec<u8>>>,
) -> Result<()> {
    let touchpoints = touchpoints(&mut tx, org).await?;
    let zone = time_zone(&mut tx, org).await?;
    {
        let mut rows = store::analysis::event_log(&mut tx, org, &scope, &zone).await?;
        let mut log = match format {
            LogFormat::Csv => Log::Csv(Box::default()),
            LogFormat::Xes => Log::Xes(XesLog::new()),
        };
        let mut sequence = CaseSequence::default();
        while let Some(row) = rows.next().await? {
            let touchpoint = touchpoints.get(&row.touchpoint_id);
            log.event(&Event {
                case_id: &row.journey_id,
                activity: touchpoint.map_or("", |t| &t.code),
                activity_name: touchpoint.map_or("", |t| &t.display_name),
                time: row.occur_time,
                offset: utc_offset(row.offset_seconds),
                sequence: sequence.next(&row.journey_id),
                resource: row.staff_ref.as_deref(),
            });
            if log.len() >= CHUNK_BYTES && sender.send(Ok(log.take())).await.is_err() {
                return rows.drain().await;
            }
        }
        if sender.send(Ok(log.finish())).await.is_err() {
            return Ok(());
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The log being written, in the format asked for.
enum Log {
    Csv(Box<CsvLog>),
    Xes(XesLog),
}

impl Log {
    fn event(&mut self, event: &Event<'_>) {
        match self {
            Log::Csv(log) => log.event(event),
            Log::Xes(log) => log.event(event),
        }
    }

    fn len(&self) -> usize {
        match self {
            Log::Csv(log) => log.len(),
            Log::Xes(log) => log.len(),
        }
    }

    fn take(&mut self) -> Vec<u8> {
        match self {
            Log::Csv(log) => log.take(),
            Log::Xes(log) => log.take(),
        }
    }

    /// The rest of the log, with its end.
    fn finish(self) -> Vec<u8> {
        match self {
            Log::Csv(mut log) => log.take(),
            Log::Xes(log) => log.finish(),
        }
    }
}
