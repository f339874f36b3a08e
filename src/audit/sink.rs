//! Where audit records go: a pluggable [`AuditSink`], a JSON-lines file with rotation by size,
//! `tracing`, and a [`NonBlocking`] wrapper that keeps the request path from ever waiting.

use super::record::AuditRecord;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Receives every audit record. Implementations must not panic and should not block for
/// long: wrap slow ones in [`NonBlocking`].
pub trait AuditSink: Send + Sync + 'static {
    /// Takes one record.
    fn record(&self, record: AuditRecord);
}

impl<T: AuditSink + ?Sized> AuditSink for Arc<T> {
    fn record(&self, record: AuditRecord) {
        (**self).record(record);
    }
}

/// Emits each record as a `tracing` event (target `fhirwall::audit`, level INFO; refusals at
/// WARN), with the record's JSON in the `record` field.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingSink;

impl AuditSink for TracingSink {
    fn record(&self, record: AuditRecord) {
        if record.decision.outcome == "refused" {
            tracing::warn!(target: "fhirwall::audit", record = %record.to_json());
        } else {
            tracing::info!(target: "fhirwall::audit", record = %record.to_json());
        }
    }
}

/// Keeps records in memory (for tests and demos).
#[derive(Clone, Debug, Default)]
pub struct MemorySink {
    records: Arc<Mutex<Vec<AuditRecord>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The records so far.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl AuditSink for MemorySink {
    fn record(&self, record: AuditRecord) {
        if let Ok(mut r) = self.records.lock() {
            r.push(record);
        }
    }
}

/// Appends one JSON object per line to a file; past `max_bytes` the file is renamed to
/// `<path>.1` (older ones shift to `.2` … up to `keep`, the oldest is removed) and a new one
/// begun.
///
/// Defaults: `max_bytes` 64 MiB, `keep` 5. Write errors are counted ([`errors`](Self::errors)),
/// never raised into the request path.
#[derive(Debug)]
pub struct JsonLinesFile {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    state: Mutex<Option<(File, u64)>>,
    errors: AtomicU64,
}

impl JsonLinesFile {
    /// A sink appending to `path` (created if missing).
    pub fn create(path: impl Into<PathBuf>) -> std::io::Result<Self> {
        let path = path.into();
        let file = open(&path)?;
        let len = file.metadata()?.len();
        Ok(JsonLinesFile {
            path,
            max_bytes: 64 * 1024 * 1024,
            keep: 5,
            state: Mutex::new(Some((file, len))),
            errors: AtomicU64::new(0),
        })
    }

    /// Rotates past this many bytes.
    pub fn max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = n.max(1);
        self
    }

    /// Keeps this many rotated files.
    pub fn keep(mut self, n: usize) -> Self {
        self.keep = n;
        self
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many records could not be written.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    }

    fn rotate(&self) -> std::io::Result<File> {
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(self.rotated(self.keep));
            for n in (1..self.keep).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    std::fs::rename(&from, self.rotated(n + 1))?;
                }
            }
            std::fs::rename(&self.path, self.rotated(1))?;
        }
        open(&self.path)
    }

    fn write_line(&self, line: &[u8]) -> std::io::Result<()> {
        let mut guard = self
            .state
            .lock()
            .map_err(|_| std::io::Error::other("audit file lock poisoned"))?;
        let needs_rotation = guard
            .as_ref()
            .is_some_and(|(_, len)| *len > 0 && len + line.len() as u64 > self.max_bytes);
        if needs_rotation || guard.is_none() {
            *guard = None;
            let file = if needs_rotation {
                self.rotate()?
            } else {
                open(&self.path)?
            };
            let len = file.metadata()?.len();
            *guard = Some((file, len));
        }
        if let Some((file, len)) = guard.as_mut() {
            file.write_all(line)?;
            *len += line.len() as u64;
        }
        Ok(())
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl AuditSink for JsonLinesFile {
    fn record(&self, record: AuditRecord) {
        // One buffer per record, sized for it: the JSON is written straight into it.
        let mut line = Vec::with_capacity(super::record::JSON_CAPACITY);
        record.write_json(&mut line);
        line.push(b'\n');
        if self.write_line(&line).is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Hands records to another sink on a writer thread over a bounded channel, so the request
/// path never waits on I/O.
///
/// When the channel is full the record is dropped and counted; the writer then writes a record
/// of subtype `audit-dropped` whose
/// `decision.reason` is `dropped <n> records`, and [`dropped`](Self::dropped) tells the total.
/// Nothing is lost silently. Default capacity: 8,192 records.
#[derive(Clone, Debug)]
pub struct NonBlocking {
    sender: tokio::sync::mpsc::Sender<AuditRecord>,
    dropped: Arc<AtomicU64>,
}

impl NonBlocking {
    /// Wraps `sink` with a channel of 8,192 records.
    pub fn new<S: AuditSink>(sink: S) -> Self {
        Self::with_capacity(sink, 8192)
    }

    /// Wraps `sink` with a channel of `capacity` records (at least 1).
    pub fn with_capacity<S: AuditSink>(sink: S, capacity: usize) -> Self {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<AuditRecord>(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = dropped.clone();
        // A plain thread: the sink may do blocking I/O, and no async runtime is required.
        let spawned = std::thread::Builder::new()
            .name("fhirwall-audit".into())
            .spawn(move || {
                let mut reported = 0;
                while let Some(record) = receiver.blocking_recv() {
                    report_drops(&sink, &counter, &mut reported);
                    sink.record(record);
                }
                report_drops(&sink, &counter, &mut reported);
            });
        if spawned.is_err() {
            // No writer: every record will be counted as dropped by `record`.
            tracing::error!(target: "fhirwall::audit", "could not start the audit writer thread");
        }
        NonBlocking { sender, dropped }
    }

    /// How many records were dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn report_drops<S: AuditSink>(sink: &S, counter: &AtomicU64, reported: &mut u64) {
    let total = counter.load(Ordering::Relaxed);
    if total > *reported {
        let mut r = AuditRecord::new(std::time::SystemTime::now(), &http::Method::GET);
        r.subtype = String::from("audit-dropped");
        r.action = "E";
        r.outcome = "8";
        r.decision.layer = String::from("audit");
        r.decision.outcome = "refused";
        r.decision.reason = format!("dropped {} records", total - *reported);
        *reported = total;
        sink.record(r);
    }
}

impl AuditSink for NonBlocking {
    fn record(&self, record: AuditRecord) {
        if self.sender.try_send(record).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Power-of-two counts, so a flood doesn't flood the log too.
            if n.is_power_of_two() {
                tracing::warn!(target: "fhirwall::audit", dropped = n, "audit records dropped");
            }
        }
    }
}
