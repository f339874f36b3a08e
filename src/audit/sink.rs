//! Where audit records go: a pluggable [`AuditSink`], a JSON-lines file with rotation by size,
//! `tracing`, and a [`NonBlocking`] wrapper that keeps the request path from ever waiting.

use super::record::{AuditRecord, JSON_CAPACITY};
use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Receives every audit record. Implementations must not panic and should not block for
/// long: wrap slow ones in [`NonBlocking`].
pub trait AuditSink: Send + Sync + 'static {
    /// Takes one record.
    fn record(&self, record: AuditRecord);

    /// Takes several records, in order (the batches [`NonBlocking`]'s writer thread hands
    /// over). The default passes each to [`record`](Self::record); [`JsonLinesFile`] writes a
    /// batch with one write.
    fn record_batch(&self, records: std::vec::Drain<'_, AuditRecord>) {
        for record in records {
            self.record(record);
        }
    }
}

impl<T: AuditSink + ?Sized> AuditSink for Arc<T> {
    fn record(&self, record: AuditRecord) {
        (**self).record(record);
    }

    fn record_batch(&self, records: std::vec::Drain<'_, AuditRecord>) {
        (**self).record_batch(records);
    }
}

/// Emits each record as a `tracing` event (target `fhirwall::audit`, level INFO; refusals at
/// WARN), with the record's JSON in the `record` field.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingSink;

impl AuditSink for TracingSink {
    fn record(&self, record: AuditRecord) {
        // The JSON is built only when a subscriber takes the event.
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
/// Each record handed to [`record`](AuditSink::record) is written to the file (one `write`,
/// no buffering in the process) before `record` returns, so with the sink used directly a
/// request's line is in the file before its response leaves. That is one system call on the
/// request path per request: behind [`NonBlocking`] the writer thread hands the sink batches
/// instead, each written with one `write`.
///
/// Defaults: `max_bytes` 64 MiB, `keep` 5. Write errors are counted ([`errors`](Self::errors)),
/// never raised into the request path.
pub struct JsonLinesFile {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    state: Mutex<FileState>,
    errors: AtomicU64,
}

struct FileState {
    /// The open file and its length, `None` after a failed open or rotation.
    file: Option<(File, u64)>,
    /// The lines of a batch not yet written (kept for its capacity).
    batch: Vec<u8>,
}

impl std::fmt::Debug for JsonLinesFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesFile")
            .field("path", &self.path)
            .field("max_bytes", &self.max_bytes)
            .field("keep", &self.keep)
            .field("errors", &self.errors())
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// The line buffer of [`JsonLinesFile::record`], reused so a record costs no allocation.
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(JSON_CAPACITY));
}

/// A batch buffer grown past this by a burst is let go rather than kept.
const BATCH_KEEP: usize = 1 << 20;

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
            state: Mutex::new(FileState {
                file: Some((file, len)),
                batch: Vec::new(),
            }),
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

    fn lock(&self) -> MutexGuard<'_, FileState> {
        // The state stays consistent across a panic elsewhere (lengths only grow after a
        // write), so a poisoned lock is taken over rather than given up on.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes sure a file is open, rotating first when `incoming` more bytes would take a
    /// non-empty file past `max_bytes`.
    fn prepare(&self, file: &mut Option<(File, u64)>, incoming: u64) -> std::io::Result<()> {
        let needs_rotation = file
            .as_ref()
            .is_some_and(|(_, len)| *len > 0 && len + incoming > self.max_bytes);
        if needs_rotation || file.is_none() {
            *file = None;
            let f = if needs_rotation {
                self.rotate()?
            } else {
                open(&self.path)?
            };
            let len = f.metadata()?.len();
            *file = Some((f, len));
        }
        Ok(())
    }

    fn write_line(&self, line: &[u8]) -> std::io::Result<()> {
        let mut state = self.lock();
        self.prepare(&mut state.file, line.len() as u64)?;
        append(&mut state.file, line)
    }

    fn count_errors(&self, n: u64) {
        if n > 0 {
            self.errors.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Writes `bytes` to the open file (an error when none is open).
fn append(file: &mut Option<(File, u64)>, bytes: &[u8]) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let (f, len) = file
        .as_mut()
        .ok_or_else(|| std::io::Error::other("no audit file open"))?;
    f.write_all(bytes)?;
    *len += bytes.len() as u64;
    Ok(())
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl AuditSink for JsonLinesFile {
    fn record(&self, record: AuditRecord) {
        let written = LINE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => {
                line.clear();
                record.write_json(&mut line);
                line.push(b'\n');
                let written = self.write_line(&line);
                if line.capacity() > BATCH_KEEP {
                    *line = Vec::with_capacity(JSON_CAPACITY);
                }
                written
            }
            // Not reachable (nothing here re-enters), but a fresh buffer is always right.
            Err(_) => {
                let mut line = Vec::with_capacity(JSON_CAPACITY);
                record.write_json(&mut line);
                line.push(b'\n');
                self.write_line(&line)
            }
        });
        if written.is_err() {
            self.count_errors(1);
        }
    }

    /// The batch's lines with one `write` (two around a rotation), rotating exactly where
    /// record-by-record writing would.
    fn record_batch(&self, records: std::vec::Drain<'_, AuditRecord>) {
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.file.is_none() {
            // Counted below, per record, if it still fails.
            let _ = self.prepare(&mut state.file, 0);
        }
        let batch = &mut state.batch;
        batch.clear();
        // Records serialised into `batch` but not yet written.
        let mut pending: u64 = 0;
        for record in records {
            let start = batch.len();
            record.write_json(batch);
            batch.push(b'\n');
            let line = (batch.len() - start) as u64;
            let before = state.file.as_ref().map(|(_, len)| len + start as u64);
            if before.is_some_and(|b| b > 0 && b + line > self.max_bytes) {
                // This line starts the next file: write what goes before it, then rotate.
                let (head, _) = batch.split_at(start);
                if append(&mut state.file, head).is_err() {
                    self.count_errors(pending);
                }
                pending = 0;
                batch.drain(..start);
                if self.prepare(&mut state.file, line).is_err() {
                    state.file = None;
                }
            }
            pending += 1;
        }
        if append(&mut state.file, batch).is_err() {
            self.count_errors(pending);
        }
        batch.clear();
        if batch.capacity() > BATCH_KEEP {
            *batch = Vec::new();
        }
    }
}

/// Hands records to another sink on a writer thread over a bounded queue, so the request path
/// never waits on I/O.
///
/// The request path only puts the record in the queue (a short lock, no system call) and
/// wakes the writer when it sleeps for want of records, or when the queue is half full. Once
/// awake the writer hands what is queued to the sink as one batch
/// ([`AuditSink::record_batch`]: one write for [`JsonLinesFile`]), then gathers records for
/// up to 1 ms before the next batch, so under load it wakes about a thousand times a second
/// rather than once per request. A record reaches the sink within about a millisecond plus
/// the sink's own time. Dropping the last clone of the `NonBlocking` (when the server and its
/// layers go away at shutdown) waits until the writer has handed every queued record to the
/// sink, at most [`SHUTDOWN_WAIT`](Self::SHUTDOWN_WAIT), so a process that exits after its
/// server stops loses nothing; records still queued when a process dies without dropping it
/// are lost.
///
/// When the queue is full the record is dropped and counted; the writer then writes a record
/// of subtype `audit-dropped` whose
/// `decision.reason` is `dropped <n> records`, and [`dropped`](Self::dropped) tells the total.
/// Nothing is lost silently. Default capacity: 8,192 records.
#[derive(Clone)]
pub struct NonBlocking {
    sender: Arc<Sender>,
}

impl std::fmt::Debug for NonBlocking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonBlocking")
            .field("capacity", &self.sender.shared.capacity)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

/// How long the writer gathers records after a batch before writing the next.
const LINGER: Duration = Duration::from_millis(1);

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when the writer must wake: a record for an idle writer, a half-full queue,
    /// or the last sender gone.
    wake: Condvar,
    /// Signalled when the writer has written its last batch and stopped.
    finished: Condvar,
    capacity: usize,
    /// Queue length at which a gathering writer is woken early.
    high_water: usize,
    dropped: AtomicU64,
}

struct Queue {
    records: Vec<AuditRecord>,
    /// The writer waits for a record (and must be woken for one).
    idle: bool,
    /// The writer waits out [`LINGER`] (and is woken only at `high_water`).
    lingering: bool,
    /// Every sender is gone: write what is queued and stop.
    closed: bool,
    /// A writer thread runs (false when it could not be started: records are then dropped
    /// and counted).
    writer: bool,
    /// The writer has stopped, everything queued written.
    done: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding the lock; should something, the queue is still sound.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The producers' side; when the last clone goes, the writer is told to finish.
struct Sender {
    shared: Arc<Shared>,
}

impl Drop for Sender {
    fn drop(&mut self) {
        let shared = &self.shared;
        let mut q = shared.lock();
        q.closed = true;
        shared.wake.notify_one();
        if !q.writer {
            return;
        }
        // The records queued are the last of a server that is stopping: they are written
        // before this returns (and the process perhaps exits), within a bound.
        let (q, _) = shared
            .finished
            .wait_timeout_while(q, NonBlocking::SHUTDOWN_WAIT, |q| !q.done)
            .unwrap_or_else(PoisonError::into_inner);
        if !q.done {
            tracing::error!(
                target: "fhirwall::audit",
                queued = q.records.len(),
                "the audit writer did not finish writing in time"
            );
        }
    }
}

impl NonBlocking {
    /// How long dropping the last clone waits for the writer to write what is queued (a full
    /// queue of 8,192 records takes milliseconds for a file).
    pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

    /// Wraps `sink` with a queue of 8,192 records.
    pub fn new<S: AuditSink>(sink: S) -> Self {
        Self::with_capacity(sink, 8192)
    }

    /// Wraps `sink` with a queue of `capacity` records (at least 1).
    pub fn with_capacity<S: AuditSink>(sink: S, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                records: Vec::new(),
                idle: false,
                lingering: false,
                closed: false,
                writer: true,
                done: false,
            }),
            wake: Condvar::new(),
            finished: Condvar::new(),
            capacity,
            high_water: capacity.div_ceil(2),
            dropped: AtomicU64::new(0),
        });
        let writer = shared.clone();
        // A plain thread: the sink may do blocking I/O, and no async runtime is required.
        let spawned = std::thread::Builder::new()
            .name("fhirwall-audit".into())
            .spawn(move || write_loop(&writer, &sink));
        if spawned.is_err() {
            shared.lock().writer = false;
            tracing::error!(target: "fhirwall::audit", "could not start the audit writer thread");
        }
        NonBlocking {
            sender: Arc::new(Sender { shared }),
        }
    }

    /// How many records were dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.sender.shared.dropped.load(Ordering::Relaxed)
    }
}

fn write_loop<S: AuditSink>(shared: &Shared, sink: &S) {
    let mut batch: Vec<AuditRecord> = Vec::new();
    let mut reported = 0;
    loop {
        let closed = {
            let mut q = shared.lock();
            while q.records.is_empty() && !q.closed {
                q.idle = true;
                q = shared.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
            q.idle = false;
            std::mem::swap(&mut q.records, &mut batch);
            q.closed
        };
        report_drops(sink, &shared.dropped, &mut reported);
        if !batch.is_empty() {
            sink.record_batch(batch.drain(..));
        }
        if closed {
            // No sender is left to queue more; drops counted since are reported last.
            report_drops(sink, &shared.dropped, &mut reported);
            shared.lock().done = true;
            shared.finished.notify_all();
            return;
        }
        if batch.capacity() > shared.capacity {
            batch = Vec::new();
        }
        // Let records gather so the next wake-up writes a batch, not a record.
        let mut q = shared.lock();
        q.lingering = true;
        let (mut q, _) = shared
            .wake
            .wait_timeout_while(q, LINGER, |q| {
                !q.closed && q.records.len() < shared.high_water
            })
            .unwrap_or_else(PoisonError::into_inner);
        q.lingering = false;
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
        let shared = &self.sender.shared;
        let mut q = shared.lock();
        if !q.writer || q.records.len() >= shared.capacity {
            drop(q);
            let n = shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Power-of-two counts, so a flood doesn't flood the log too.
            if n.is_power_of_two() {
                tracing::warn!(target: "fhirwall::audit", dropped = n, "audit records dropped");
            }
            return;
        }
        q.records.push(record);
        // A system call only when the writer sleeps for want of records, or gathers while
        // the queue fills up: never once per record.
        let wake = q.idle || (q.lingering && q.records.len() == shared.high_water);
        if wake {
            q.idle = false;
            q.lingering = false;
        }
        drop(q);
        if wake {
            shared.wake.notify_one();
        }
    }
}
