//! `/metrics`, `/healthz` and `/readyz` on a small blocking HTTP server: a
//! scrape every few seconds needs no async stack.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::events::InternalEvent;
use crate::metrics::Metrics;

/// What the processing loop is doing, as the stall watch reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Poll,
    Process,
    Timers,
    /// Reading consumer positions past transaction markers.
    Markers,
    Commit,
    SendOffsets,
    /// Waiting for the produced records' acknowledgements.
    Flush,
    EndTransaction,
    Abort,
    RenewProducer,
    Rebalance,
    Restore,
}

impl Phase {
    pub const ALL: [Phase; 12] = [
        Phase::Poll,
        Phase::Process,
        Phase::Timers,
        Phase::Markers,
        Phase::Commit,
        Phase::SendOffsets,
        Phase::Flush,
        Phase::EndTransaction,
        Phase::Abort,
        Phase::RenewProducer,
        Phase::Rebalance,
        Phase::Restore,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Poll => "poll",
            Phase::Process => "process",
            Phase::Timers => "timers",
            Phase::Markers => "markers",
            Phase::Commit => "commit",
            Phase::SendOffsets => "send_offsets",
            Phase::Flush => "flush",
            Phase::EndTransaction => "end_transaction",
            Phase::Abort => "abort",
            Phase::RenewProducer => "renew_producer",
            Phase::Rebalance => "rebalance",
            Phase::Restore => "restore",
        }
    }
}

/// Liveness and readiness, written by the processing loop.
#[derive(Debug)]
pub struct Health {
    started: Instant,
    /// Milliseconds since start at the loop's last iteration.
    heartbeat_ms: AtomicU64,
    ready: AtomicBool,
    /// The loop counts as stuck when it has not beaten for this long.
    stall_after: Duration,
    phase: AtomicU8,
    /// `sagastream_ready`, kept equal to `ready`.
    ready_gauge: Option<prometheus_client::metrics::gauge::Gauge>,
}

impl Health {
    pub fn new(stall_after: Duration) -> Health {
        Health {
            started: Instant::now(),
            heartbeat_ms: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            stall_after,
            phase: AtomicU8::new(Phase::Poll as u8),
            ready_gauge: None,
        }
    }

    /// Readiness is also this gauge (1 or 0).
    pub fn reporting_to(mut self, gauge: prometheus_client::metrics::gauge::Gauge) -> Health {
        gauge.set(i64::from(self.is_ready()));
        self.ready_gauge = Some(gauge);
        self
    }

    /// The loop enters `phase` (cheap: one relaxed store).
    pub fn enter(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    pub fn phase(&self) -> Phase {
        let n = self.phase.load(Ordering::Relaxed);
        Phase::ALL.into_iter().find(|p| *p as u8 == n).unwrap_or(Phase::Poll)
    }

    /// How long since the loop's last iteration.
    pub fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(self.heartbeat_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    pub fn beat(&self) {
        self.heartbeat_ms.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
        if let Some(g) = &self.ready_gauge {
            g.set(i64::from(ready));
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn is_alive(&self) -> bool {
        self.silent_for() < self.stall_after
    }
}

/// Watches the loop from a thread of its own: when it has not come round
/// for `after`, one WARN line says since when and in which phase, and
/// again every `after` while it stays stuck. A hung call then names itself
/// in the log before the liveness probe restarts the process.
pub fn watch(health: Arc<Health>, metrics: Arc<Metrics>, after: Duration) -> io::Result<()> {
    std::thread::Builder::new().name("sagastream-watch".into()).spawn(move || {
        let mut reported = Duration::ZERO;
        loop {
            std::thread::sleep(after / 4);
            let silent = health.silent_for();
            if silent < after {
                reported = Duration::ZERO;
            } else if silent >= reported + after {
                crate::events::LoopStalled { phase: health.phase().as_str(), silent }.emit(&metrics);
                reported = silent;
            }
        }
    })?;
    Ok(())
}

/// Binds and serves on a background thread; returns the bound address.
pub fn serve(addr: SocketAddr, metrics: Arc<Metrics>, health: Arc<Health>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new().name("sagastream-http".into()).spawn(move || {
        for stream in listener.incoming().flatten() {
            if let Err(e) = handle(stream, &metrics, &health) {
                tracing::debug!(error = %e, "metrics request failed");
            }
        }
    })?;
    Ok(bound)
}

fn handle(mut stream: TcpStream, metrics: &Metrics, health: &Health) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let request = String::from_utf8_lossy(&buf);
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => {
            ("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", metrics.encode())
        }
        ("GET", "/healthz") if health.is_alive() => ("200 OK", "text/plain", "ok\n".into()),
        ("GET", "/healthz") => ("503 Service Unavailable", "text/plain", "processing loop stalled\n".into()),
        ("GET", "/readyz") if health.is_ready() => ("200 OK", "text/plain", "ready\n".into()),
        ("GET", "/readyz") => {
            ("503 Service Unavailable", "text/plain", "not ready: joining the group or restoring state\n".into())
        }
        ("GET", _) => ("404 Not Found", "text/plain", "try /metrics, /healthz or /readyz\n".into()),
        _ => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn endpoints() {
        let metrics = Arc::new(Metrics::new("probe", "0"));
        let health = Arc::new(Health::new(Duration::from_secs(60)));
        let addr = serve("127.0.0.1:0".parse().unwrap(), metrics, health.clone()).unwrap();
        assert!(get(addr, "/readyz").starts_with("HTTP/1.1 503"));
        health.set_ready(true);
        assert!(get(addr, "/readyz").starts_with("HTTP/1.1 200"));
        let gauge = prometheus_client::metrics::gauge::Gauge::default();
        let reported = Health::new(Duration::from_secs(60)).reporting_to(gauge.clone());
        assert_eq!(gauge.get(), 0);
        reported.set_ready(true);
        assert_eq!(gauge.get(), 1);
        assert!(get(addr, "/healthz").starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/metrics").contains("sagastream_build_info"));
        assert!(get(addr, "/nope").starts_with("HTTP/1.1 404"));
        let stalled = Health::new(Duration::from_millis(0));
        assert!(!stalled.is_alive());
        for p in Phase::ALL {
            stalled.enter(p);
            assert_eq!(stalled.phase(), p);
        }
    }
}
