//! Running `sagastream-sim` (the participants and the load generator) next
//! to the processors in end-to-end tests.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use sagastream_kafka::BOOTSTRAP_ENV;

use crate::probe::binary;
use crate::{bootstrap, repo_root};

/// A child process killed when the test ends, however it ends.
pub use sagastream_testkit::Guard;

/// A fresh log file `.local/e2e/<prefix><name>.log`.
pub fn log_file(prefix: &str, name: &str) -> (File, PathBuf) {
    let dir = repo_root().join(".local/e2e");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{prefix}{name}.log"));
    (File::create(&path).unwrap(), path)
}

/// Starts `sagastream-sim` on the prefixed topics, its output in the log `<log>`.
pub fn sim(prefix: &str, args: &[&str], log: &str) -> (Guard, PathBuf) {
    sim_on(bootstrap(), prefix, args, log)
}

/// [`sim`] on a given cluster.
pub fn sim_on(bootstrap: &str, prefix: &str, args: &[&str], log: &str) -> (Guard, PathBuf) {
    let (file, path) = log_file(prefix, log);
    let child = Command::new(binary("sagastream-sim", "sagastream-sim"))
        .args(["--topic-prefix", prefix])
        .args(args)
        .env(BOOTSTRAP_ENV, bootstrap)
        .env("NO_COLOR", "1")
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("sagastream-sim starts");
    (Guard(child), path)
}

/// Waits for a child (the load generator) to exit, failing the test at the deadline.
pub fn wait(child: &mut Child, deadline: Duration, log: &Path) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < deadline,
            "the load generator did not finish within {deadline:?}; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
