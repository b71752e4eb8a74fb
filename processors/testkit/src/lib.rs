//! What every harness around a running processor needs, once: a guard that
//! never leaves a child process behind, one HTTP GET for `/metrics`,
//! `/healthz` and `/readyz` (no HTTP client dependency), and the sum of a
//! Prometheus series. Used by the end-to-end tests, the benchmarks and the
//! simulator's load generator; no processor links it.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

/// A child process killed (SIGKILL) and reaped when the guard drops, however
/// the test or bench ends.
#[derive(Debug)]
pub struct Guard(pub Child);

impl Guard {
    /// Asks the child to stop (SIGTERM) and waits for it.
    pub fn stop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }

    /// Panics, with the child's log, if it has exited: a helper that died
    /// must not leave a test waiting on a processor that will never see input.
    pub fn assert_running(&mut self, what: &str, log: &Path) {
        if let Some(status) = self.0.try_wait().ok().flatten() {
            panic!("{what} exited early ({status}); log:\n{}", std::fs::read_to_string(log).unwrap_or_default());
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An HTTP answer: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// One HTTP/1.0 GET of `path` on `host:port` (5 s read timeout); `None` when
/// nothing answers or the answer is not HTTP.
pub fn get(host: &str, path: &str) -> Option<Response> {
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes()).ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(Response { status, body: body.to_owned() })
}

/// [`get`] of a URL `http://host:port/path`.
pub fn get_url(url: &str) -> Option<Response> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    get(host, &path)
}

/// The sum of every sample of the Prometheus text whose line starts with
/// `series` (a name, or a name with the start of its labels); 0 when none.
pub fn sum_metric(text: &str, series: &str) -> f64 {
    let samples = text.lines().filter(|l| l.starts_with(series));
    // 0.0 + : an empty f64 sum is -0.0, which prints as "-0".
    0.0 + samples.filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_sum_over_labels_and_nothing_is_zero() {
        let text = "# TYPE x counter\nx_total{a=\"1\"} 2\nx_total{a=\"2\"} 3.5\nxy_total 100\n";
        assert_eq!(sum_metric(text, "x_total"), 5.5);
        assert_eq!(sum_metric(text, "x_total{a=\"2\""), 3.5);
        assert_eq!(sum_metric(text, "missing").to_string(), "0");
    }

    #[test]
    fn a_get_reads_status_and_body_and_nothing_listening_is_none() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut chunk = [0u8; 512];
            while !request.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut chunk).unwrap();
                assert!(n > 0, "the request ends with an empty line");
                request.extend_from_slice(&chunk[..n]);
            }
            assert!(String::from_utf8_lossy(&request).starts_with("GET /metrics HTTP/1.0\r\n"));
            s.write_all(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nno").unwrap();
        });
        assert_eq!(get_url(&format!("http://{addr}/metrics")), Some(Response { status: 503, body: "no".into() }));
        server.join().unwrap();
        drop(std::net::TcpListener::bind(&addr));
        assert_eq!(get("127.0.0.1:1", "/"), None);
    }
}
