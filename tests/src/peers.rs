//! The Avro interoperability peers: `tests/interop/avro_peer.py`
//! (confluent-kafka's AvroSerializer and AvroDeserializer) and
//! `tests/interop/avro_peer.js` (kafkajs with
//! @kafkajs/confluent-schema-registry), run as processes against the same
//! registry and broker as the processors.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

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
    let out = child.wait_with_output().expect("the peer runs");
    assert!(out.status.success(), "{peer:?} peer {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("the {peer:?} peer printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}
