//! The dashboards against a real run: a real Prometheus (the Debian
//! package's server, on 127.0.0.1) scrapes the escrow saga every second
//! while the load generator runs thousands of bookings through it. Every
//! panel's query returns data, and the lag panels read above 0 during the
//! load and exactly 0 once it is processed.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sagastream_e2e::deploy::{concrete, dashboard_exprs, tools};
use sagastream_e2e::probe::{binary, free_port, prefix, Probe};
use sagastream_e2e::sim::{log_file, sim, wait, Guard};
use sagastream_e2e::{apply_topics, repo_root};

const BOOKINGS: &str = "4000";
const SAGA_FLAGS: &[&str] =
    &["--hold-timeout", "60s", "--auto-confirm-after", "3s", "--stuck-after", "5m", "--commit-interval", "50ms"];

/// A Prometheus server of the test's own, scraping `target` every second.
struct Prometheus {
    _guard: Guard,
    addr: String,
}

impl Prometheus {
    fn start(name: &str, target: &str) -> Prometheus {
        let dir = repo_root().join(".local/e2e").join(format!("{name}prometheus"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: escrow-saga\n    \
                 static_configs:\n      - targets: ['{target}']\n        labels: {{namespace: e2e}}\n"
            ),
        )
        .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(tools().join("prom/usr/bin/prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        let p = Prometheus { _guard: Guard(child), addr };
        let deadline = Instant::now() + Duration::from_secs(60);
        while sagastream_testkit::get(&p.addr, "/-/ready").is_none_or(|r| r.status != 200) {
            assert!(
                Instant::now() < deadline,
                "Prometheus not ready in 60 s; log: {}",
                dir.join("prometheus.log").display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    /// The instant vector of `query` now: (labels, value) per series.
    fn query(&self, query: &str) -> Vec<(serde_json::Value, f64)> {
        let path = format!("/api/v1/query?query={}", percent_encode(query));
        let r = sagastream_testkit::get(&self.addr, &path).expect("Prometheus answers");
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{query}: {e}: {}", r.body));
        assert_eq!(v["status"], "success", "{query}: {}", r.body);
        v["data"]["result"]
            .as_array()
            .unwrap_or_else(|| panic!("{query}: not a vector: {}", r.body))
            .iter()
            .map(|s| (s["metric"].clone(), s["value"][1].as_str().unwrap().parse::<f64>().unwrap_or(f64::NAN)))
            .collect()
    }

    /// The sum of the series of `query` (0 without any).
    fn sum(&self, query: &str) -> f64 {
        self.query(query).iter().map(|(_, v)| v).sum()
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn every_dashboard_query_returns_data_from_prometheus_scraping_a_real_run() {
    let prefix = prefix("monitoring");
    tokio::runtime::Runtime::new().unwrap().block_on(apply_topics(&prefix));
    let saga_bin: PathBuf = binary("sagastream-escrow-saga", "sagastream-escrow-saga");
    let port = free_port();
    let mut saga = Probe::start_with(&saga_bin, &prefix, "saga-0", port, SAGA_FLAGS);
    saga.wait_ready(Duration::from_secs(90));
    let prometheus = Prometheus::start(&prefix, &format!("127.0.0.1:{port}"));
    let (_participants, sim_log) = sim(&prefix, &["serve", "--latency", "10ms", "--group", "e2e-sim"], "sim");
    let (_, report) = log_file(&prefix, "monitoring-report");
    let report = report.with_extension("json");
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let args = [
        "load",
        "-n",
        BOOKINGS,
        "--run-id",
        "monitoring",
        "--max-in-flight",
        BOOKINGS,
        "--settle-timeout",
        "180s",
        "--saga-metrics",
        &metrics,
        "--report",
        report.to_str().unwrap(),
        "--quiet",
    ];
    let (mut load, load_log) = sim(&prefix, &args, "monitoring-load");

    // During the load: the lag panels read above 0 at some scrape.
    let lag_records = "sum(sagastream_consumer_lag_records{namespace=\"e2e\"})";
    let lag_seconds = "max(sagastream_consumer_lag_seconds{namespace=\"e2e\"})";
    let (mut most_records, mut most_seconds) = (0.0_f64, 0.0_f64);
    let mut held = false;
    while load.0.try_wait().unwrap().is_none() {
        // A saga that keeps up shows no lag at any scrape on a fast machine.
        // Held still for 3 s once the load flows (well under its 10 s
        // session timeout), it falls behind, and the statistics after it
        // resumes report the backlog until it has caught up.
        if !held && saga.metric("sagastream_records_consumed_total") > 0.0 {
            saga.signal("-STOP");
            std::thread::sleep(Duration::from_secs(3));
            saga.signal("-CONT");
            held = true;
        }
        most_records = most_records.max(prometheus.sum(lag_records));
        most_seconds = most_seconds.max(prometheus.sum(lag_seconds));
        std::thread::sleep(Duration::from_millis(250));
    }
    let status = wait(&mut load.0, Duration::from_secs(10), &load_log);
    let text = std::fs::read_to_string(&load_log).unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    crate::escrow::check("monitoring", &report, &text, &sim_log, 4_000);
    assert!(status.success(), "the load generator's verdict is a failure:\n{text}");
    println!("monitoring: during the load, lag read up to {most_records} records and {most_seconds} s");
    assert!(most_records > 0.0, "the records lag never read above 0 during the load");
    assert!(most_seconds > 0.0, "the seconds lag never read above 0 during the load");

    // Processed: both lag panels come down to exactly 0.
    let deadline = Instant::now() + Duration::from_secs(60);
    while prometheus.sum(lag_records) != 0.0 || prometheus.sum(lag_seconds) != 0.0 {
        assert!(Instant::now() < deadline, "the lag panels did not read 0 within 60 s of the load's end");
        std::thread::sleep(Duration::from_millis(500));
    }
    let scraped = prometheus.sum("count(sagastream_consumer_lag_records{namespace=\"e2e\"})");
    assert!(scraped >= 6.0, "every owned input partition is a lag series: {scraped}");

    // Every panel's query returns data.
    let exprs = dashboard_exprs();
    assert!(exprs.len() >= 15, "{exprs:?}");
    for (place, expr) in &exprs {
        let result = prometheus.query(&concrete(expr));
        assert!(!result.is_empty(), "{place}: `{}` returned no data", concrete(expr));
    }
    println!("monitoring: {} dashboard queries returned data from Prometheus", exprs.len());
    assert!(saga.terminate(Duration::from_secs(60)).success());
}
