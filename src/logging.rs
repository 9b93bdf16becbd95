//! Logging: tracing events, formatted by tracing-subscriber (text or JSON), and the access log,
//! one preformatted line per request in the same format, written to stderr in batches. A request
//! only appends its line to a shared buffer; a writer thread sends the buffer out in one write
//! when 64 KiB are waiting and every 100 ms, so a serving thread never waits on stderr.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Wake the writer at this many buffered bytes, without waiting for the tick.
const FLUSH_AT: usize = 64 * 1024;
const TICK: Duration = Duration::from_millis(100);
/// While this much waits unwritten (stderr is slower than the lines come), further lines are
/// dropped and counted, rather than held in memory or making requests wait.
const MAX_WAITING: usize = 8 * 1024 * 1024;

/// Where access-log lines go, once logging is set up.
static ACCESS: OnceLock<(Arc<Batch>, bool)> = OnceLock::new();

#[derive(Default)]
struct Batch {
    buf: Mutex<Vec<u8>>,
    /// Signalled when `FLUSH_AT` bytes are waiting.
    full: Condvar,
    dropped: AtomicU64,
    stopped: AtomicBool,
}

impl Batch {
    fn append(&self, data: &[u8]) {
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        if buf.len() + data.len() > MAX_WAITING {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let before = buf.len();
        buf.extend_from_slice(data);
        if before < FLUSH_AT && buf.len() >= FLUSH_AT {
            self.full.notify_one();
        }
    }

    /// Writes out what is waiting (taken from the buffer, written outside the lock), and says
    /// how many lines were dropped since the last time.
    fn flush(&self, spare: &mut Vec<u8>) {
        {
            let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::swap(&mut *buf, spare);
        }
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            spare.extend_from_slice(
                format!("forgebridge: {dropped} log lines dropped: stderr is too slow\n")
                    .as_bytes(),
            );
        }
        if !spare.is_empty() {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(spare).and_then(|()| err.flush());
            spare.clear();
        }
        // Keep a spare of ordinary size, not the largest burst's.
        if spare.capacity() > 4 * FLUSH_AT {
            *spare = Vec::new();
        }
    }

    /// The writer thread: flushes when woken for a full buffer and at every tick.
    fn write_until_stopped(&self) {
        let mut spare = Vec::new();
        while !self.stopped.load(Ordering::Relaxed) {
            {
                let buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
                let _ = self
                    .full
                    .wait_timeout_while(buf, TICK, |b| {
                        b.len() < FLUSH_AT && !self.stopped.load(Ordering::Relaxed)
                    })
                    .map(|_| ());
            }
            self.flush(&mut spare);
        }
    }
}

/// Stops the writer thread and writes what is still buffered, when dropped.
pub struct Guard(Arc<Batch>, Option<std::thread::JoinHandle<()>>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Relaxed);
        self.0.full.notify_one();
        // The writer's last batch goes out before whatever is still waiting.
        if let Some(writer) = self.1.take() {
            let _ = writer.join();
        }
        self.0.flush(&mut Vec::new());
    }
}

/// One event's writer: appends to the batch.
pub struct Line<'a>(&'a Batch);

impl Write for Line<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.append(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Clone)]
struct Batched(Arc<Batch>);

impl<'a> MakeWriter<'a> for Batched {
    type Writer = Line<'a>;
    fn make_writer(&'a self) -> Line<'a> {
        Line(&self.0)
    }
}

/// Installs the global subscriber: `level` is a tracing filter (RUST_LOG wins when set),
/// `format` is "text" or "json". Keep the guard for as long as the process logs.
pub fn init(level: &str, format: &str) -> Guard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let batch = Arc::new(Batch::default());
    let ticker = batch.clone();
    let writer = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || ticker.write_until_stopped())
        .ok();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(Batched(batch.clone()));
    let json = format == "json";
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
    let _ = ACCESS.set((batch.clone(), json));
    Guard(batch, writer)
}

/// The target access-log lines are filtered by (`RUST_LOG=forgebridge::access=off` silences them).
pub const ACCESS_TARGET: &str = "forgebridge::access";

/// One request, as its access-log line tells it.
#[derive(serde::Serialize)]
pub struct AccessLine<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialect: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    pub status: u16,
    pub latency_ms: f64,
}

/// Now, as RFC 3339 UTC with microseconds (what tracing's text format prints). The part up to
/// the second is formatted once a second per thread; the microseconds are appended.
fn timestamp() -> String {
    thread_local! {
        static SECOND: std::cell::RefCell<(i64, String)> = const {
            std::cell::RefCell::new((i64::MIN, String::new()))
        };
    }
    let now = chrono::Utc::now();
    let micros = now.timestamp_subsec_micros().min(999_999);
    SECOND.with(|second| {
        let mut second = second.borrow_mut();
        if second.0 != now.timestamp() {
            *second = (
                now.timestamp(),
                now.format("%Y-%m-%dT%H:%M:%S.").to_string(),
            );
        }
        let mut stamp = String::with_capacity(second.1.len() + 7);
        stamp.push_str(&second.1);
        let mut digits = itoa::Buffer::new();
        stamp.push_str(&digits.format(1_000_000 + micros)[1..]);
        stamp.push('Z');
        stamp
    })
}

/// Whether access-log lines are wanted (logging is set up and lets INFO of the access target
/// through).
pub fn access_enabled() -> bool {
    ACCESS.get().is_some() && tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO)
}

/// Writes one access-log line, formatted like the tracing events around it but without going
/// through tracing's field machinery: the access log is the one line every request pays for.
pub fn access(line: &AccessLine<'_>) {
    let Some((batch, json)) = ACCESS.get() else {
        return;
    };
    let now = timestamp();
    let mut out = Vec::with_capacity(256);
    if *json {
        #[derive(serde::Serialize)]
        struct Entry<'a> {
            timestamp: &'a str,
            level: &'a str,
            message: &'a str,
            target: &'a str,
            #[serde(flatten)]
            line: &'a AccessLine<'a>,
        }
        let entry = Entry {
            timestamp: &now,
            level: "INFO",
            message: "handled",
            target: ACCESS_TARGET,
            line,
        };
        if serde_json::to_writer(&mut out, &entry).is_err() {
            return;
        }
    } else {
        // The same `key=value` layout as tracing's text format; names of dialects,
        // operations and error kinds are plain identifiers, quoted as they are.
        let mut num = itoa::Buffer::new();
        out.extend_from_slice(now.as_bytes());
        out.extend_from_slice(b"  INFO forgebridge::access: handled method=");
        out.extend_from_slice(line.method.as_bytes());
        out.extend_from_slice(b" path=");
        out.extend_from_slice(line.path.as_bytes());
        out.extend_from_slice(b" request_id=");
        // Ids are mostly plain (`fb-12`); any other goes through Debug's escaping.
        let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':');
        if line.request_id.bytes().all(plain) {
            out.push(b'"');
            out.extend_from_slice(line.request_id.as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(format!("{:?}", line.request_id).as_bytes());
        }
        for (key, value) in [
            (" dialect=\"", line.dialect),
            (" operation=\"", line.operation),
            (" error=\"", line.error),
        ] {
            if let Some(v) = value {
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(v.as_bytes());
                out.push(b'"');
            }
        }
        if let Some(u) = line.upstream_status {
            out.extend_from_slice(b" upstream_status=");
            out.extend_from_slice(num.format(u).as_bytes());
        }
        out.extend_from_slice(b" status=");
        out.extend_from_slice(num.format(line.status).as_bytes());
        out.extend_from_slice(b" latency_ms=");
        let micros = (line.latency_ms * 1000.0).round() as u64;
        out.extend_from_slice(num.format(micros / 1000).as_bytes());
        let frac = (micros % 1000) as u8;
        out.extend_from_slice(&[
            b'.',
            b'0' + frac / 100,
            b'0' + frac / 10 % 10,
            b'0' + frac % 10,
        ]);
    }
    out.push(b'\n');
    batch.append(&out);
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        for _ in 0..3 {
            let before = chrono::Utc::now();
            let stamp = super::timestamp();
            let after = chrono::Utc::now();
            let parsed = chrono::DateTime::parse_from_rfc3339(&stamp).expect("RFC 3339");
            let micros = parsed.timestamp_micros();
            assert!(
                before.timestamp_micros() <= micros && micros <= after.timestamp_micros(),
                "{stamp}"
            );
            let fraction = stamp.rsplit('.').next().unwrap_or_default();
            assert_eq!(fraction.len(), 7, "{stamp}");
            assert!(stamp.ends_with('Z'), "{stamp}");
        }
    }
}
