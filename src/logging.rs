//! Logging: tracing events, formatted by tracing-subscriber (text or JSON), written to stderr in
//! batches. A request only appends its line to a shared buffer; the buffer goes out in one
//! write when it fills, every 100 ms, and when the returned guard is dropped.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Flush at this many buffered bytes, without waiting for the tick.
const FLUSH_AT: usize = 64 * 1024;
const TICK: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Batch {
    buf: Mutex<Vec<u8>>,
    stopped: AtomicBool,
}

impl Batch {
    fn flush(&self) {
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        if !buf.is_empty() {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(&buf).and_then(|()| err.flush());
            buf.clear();
        }
    }
}

/// Writes what is still buffered, and stops the ticker, when dropped.
pub struct Guard(Arc<Batch>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Relaxed);
        self.0.flush();
    }
}

/// One event's writer: appends to the batch.
pub struct Line<'a>(&'a Batch);

impl Write for Line<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut buf = self.0.buf.lock().unwrap_or_else(|e| e.into_inner());
        buf.extend_from_slice(data);
        if buf.len() >= FLUSH_AT {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(&buf);
            buf.clear();
        }
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
    let _ = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            while !ticker.stopped.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                ticker.flush();
            }
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(Batched(batch.clone()));
    if format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
    Guard(batch)
}
