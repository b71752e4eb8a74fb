//! The Avro interoperability peers: `tests/interop/avro_peer.py`
//! (confluent-kafka's AvroSerializer and AvroDeserializer) and
//! `tests/interop/avro_peer.js` (kafkajs with
//! @kafkajs/confluent-schema-registry), run as processes against the same
//! registry and broker as the processors.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sagastream_kafka::BOOTSTRAP_ENV;

use crate::{bootstrap, python, repo_root, run_node_env};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Python,
    Node,
}

impl Peer {
    pub const ALL: [Peer; 2] = [Peer::Python, Peer::Node];
}

/// Runs `peer` with `args` (a command, the registry URL, its operands),
/// `stdin` written to it as JSON when given; its JSON answer, or a panic
/// with its stderr.
pub fn avro_peer(peer: Peer, args: &[&str], stdin: Option<&serde_json::Value>) -> serde_json::Value {
    let mut cmd = match peer {
        Peer::Python => {
            let mut c = Command::new(python());
            c.arg(repo_root().join("tests/interop/avro_peer.py"));
            c
        }
        Peer::Node => {
            let modules = run_node_env();
            let mut c = Command::new("node");
            c.env("NODE_PATH", Path::new(modules).join("node_modules"))
                .arg(repo_root().join("tests/interop/avro_peer.js"));
            c
        }
    };
    let mut child = cmd
        .args(args)
        .env(BOOTSTRAP_ENV, bootstrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("the {peer:?} peer does not start: {e}"));
    let mut input = child.stdin.take().expect("piped");
    if let Some(items) = stdin {
        input.write_all(items.to_string().as_bytes()).expect("the peer reads its input");
    }
    drop(input);
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    // A peer stuck on a request nobody answers fails the test, with what it said so far.
    let deadline = Instant::now() + PEER_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the peer runs") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            panic!(
                "the {peer:?} peer {args:?} did not finish in {PEER_DEADLINE:?}:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    assert!(status.success(), "{peer:?} peer {args:?} failed:\n{}", String::from_utf8_lossy(&stderr));
    serde_json::from_slice(&stdout)
        .unwrap_or_else(|e| panic!("the {peer:?} peer printed no JSON ({e}): {}", String::from_utf8_lossy(&stdout)))
}

/// Longer than any peer call takes (the Python client retries a registry
/// request that times out after 20 s three times).
const PEER_DEADLINE: Duration = Duration::from_secs(180);
