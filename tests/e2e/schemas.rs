//! `sagactl schemas` against a real Schema Registry (Apicurio, or
//! `SCHEMA_REGISTRY_URL`): every schema registered under its
//! TopicRecordNameStrategy subjects and stored as written; this tree's
//! schemas may replace their previous versions (so `make test` fails on an
//! incompatible change); and deliberately breaking edits are refused, each
//! for its reason, while a compatible one passes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use apache_avro::Schema;
use sagastream_e2e::peers::{avro_peer, Peer};
use sagastream_e2e::{repo_root, schema_registry};
use sagastream_testkit::get_url;

fn sagactl(registry: &str, prefix: &str, args: &[&str], dir: &Path) -> Output {
    let bin = sagastream_e2e::probe::binary("sagactl", "sagactl");
    Command::new(bin)
        .current_dir(repo_root())
        .env_remove("SAGASTREAM_TOPIC_PREFIX")
        .arg("schemas")
        .args(args)
        .args(["--registry", registry, "--prefix", prefix, "--dir"])
        .arg(dir)
        .output()
        .expect("sagactl runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A GET of the registry's API, retried until it answers or 30 s pass: on a
/// machine busy with the rest of the suite a first answer can take seconds.
fn registry_get(url: &str) -> sagastream_testkit::Response {
    assert!(url.starts_with("http://"), "{url}: this check reads the registry over plain http://");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match get_url(url) {
            Some(r) => return r,
            None if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(200)),
            None => panic!("GET {url}: no answer in 30 s"),
        }
    }
}

fn git(args: &[&str]) -> Output {
    Command::new("git").current_dir(repo_root()).args(args).output().expect("git runs (the check needs the repository)")
}

/// A copy of `schemas/` in a fresh directory, each file passed through `edit`.
fn copy_schemas(name: &str, edit: impl Fn(&str, String) -> String) -> PathBuf {
    let dir = repo_root().join(".local/e2e-schemas").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(repo_root().join("schemas")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "avsc") {
            let file = path.file_name().unwrap().to_str().unwrap().to_owned();
            let body = std::fs::read_to_string(&path).unwrap();
            std::fs::write(dir.join(&file), edit(&file, body)).unwrap();
        }
    }
    dir
}

/// The previous version of the schemas: `SAGASTREAM_SCHEMA_BASELINE` if
/// set; else HEAD when the working tree's schemas/ differ from it; else the
/// commit before HEAD. A schema the baseline lacks (a new event type) is
/// today's: nothing to compare it with.
fn baseline() -> (String, PathBuf) {
    let shallow = git(&["rev-parse", "--is-shallow-repository"]);
    assert!(shallow.status.success(), "not a git repository: {}", text(&shallow));
    let reference = match std::env::var("SAGASTREAM_SCHEMA_BASELINE") {
        Ok(r) if !r.trim().is_empty() => r,
        _ if !git(&["diff", "--quiet", "HEAD", "--", "schemas"]).status.success() => "HEAD".to_owned(),
        _ => "HEAD~1".to_owned(),
    };
    let resolved = git(&["rev-parse", "--verify", &format!("{reference}^{{commit}}")]);
    assert!(
        resolved.status.success(),
        "the schema baseline {reference} is not in this clone ({}); fetch more history (git fetch --unshallow) or set SAGASTREAM_SCHEMA_BASELINE",
        text(&resolved).trim()
    );
    let commit = String::from_utf8_lossy(&resolved.stdout).trim().to_owned();
    let dir = copy_schemas("baseline", |file, today| {
        let then = git(&["show", &format!("{commit}:schemas/{file}")]);
        match then.status.success() {
            true => String::from_utf8(then.stdout).expect("UTF-8 schema"),
            false => today,
        }
    });
    (format!("{reference} ({})", &commit[..12]), dir)
}

/// Inserts a field after the record's `"fields": [`.
fn add_field(body: &str, field: &str) -> String {
    let at = body.find("\"fields\": [").expect("a fields array") + "\"fields\": [".len();
    format!("{}{field},{}", &body[..at], &body[at..])
}

const ACCEPTED: &str = "booking.accepted.avsc";

#[test]
fn schemas_are_registered_checked_and_a_breaking_edit_is_refused_for_its_reason() {
    let registry = schema_registry();
    let prefix = sagastream_e2e::probe::prefix("schemas");
    let (baseline_ref, baseline) = baseline();
    let subject = format!("{prefix}booking.events-io.sagastream.events.booking.BookingAccepted");

    // The previous version first, as a registry in use holds it.
    let registered = sagactl(registry, &prefix, &["register"], &baseline);
    assert!(registered.status.success(), "registering the baseline {baseline_ref}: {}", text(&registered));
    let out = text(&registered);
    let topics = sagastream_topics::Topics::load(&repo_root().join("topics.yaml")).unwrap();
    let pairs: usize = topics.topics.iter().map(|t| t.events.len()).sum();
    assert_eq!(out.lines().filter(|l| l.starts_with("new ")).count(), pairs, "a new subject per (topic, type): {out}");

    // This tree's schemas may replace them: the check `make test` fails on.
    let today = repo_root().join("schemas");
    let checked = sagactl(registry, &prefix, &["check"], &today);
    assert!(
        checked.status.success(),
        "a schema of this tree may not replace its version at {baseline_ref}:\n{}",
        text(&checked)
    );
    let registered = sagactl(registry, &prefix, &["register"], &today);
    assert!(registered.status.success(), "{}", text(&registered));

    // The registry holds each schema as written: same canonical form.
    let latest = registry_get(&format!("{registry}/subjects/{subject}/versions/latest"));
    assert_eq!(latest.status, 200, "{}", latest.body);
    let answer: serde_json::Value = serde_json::from_str(&latest.body).unwrap();
    let stored = Schema::parse_str(answer["schema"].as_str().unwrap()).unwrap();
    let file = Schema::parse_str(&std::fs::read_to_string(today.join(ACCEPTED)).unwrap()).unwrap();
    assert_eq!(stored.canonical_form(), file.canonical_form());
    let unchanged = text(&sagactl(registry, &prefix, &["diff"], &today));
    assert!(unchanged.contains(&format!("{subject}: unchanged")), "{unchanged}");

    // A compatible edit: an optional field with its default.
    let optional = copy_schemas("optional", |f, b| match f {
        ACCEPTED => add_field(&b, r#"{"name": "note", "type": ["null", "string"], "default": null}"#),
        _ => b,
    });
    let ok = sagactl(registry, &prefix, &["check"], &optional);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains(&format!("ok   {subject}  (1 compatible change(s))")), "{}", text(&ok));
    let shown = text(&sagactl(registry, &prefix, &["diff"], &optional));
    assert!(shown.contains("+ note: [\"null\",\"string\"] (with a default)"), "{shown}");

    // Breaking edits, each refused for its own reason; the others pass.
    let required = copy_schemas("required", |f, b| match f {
        ACCEPTED => add_field(&b, r#"{"name": "fee_cents", "type": "long"}"#),
        _ => b,
    });
    let removed = copy_schemas("removed", |f, b| match f {
        ACCEPTED => {
            let field = "    {\n      \"name\": \"runner_id\",\n      \"type\": \"string\"\n    },\n";
            assert!(b.contains(field), "the edit must change the file");
            b.replacen(field, "", 1)
        }
        _ => b,
    });
    let retyped = copy_schemas("retyped", |f, b| match f {
        ACCEPTED => {
            let field = "\"name\": \"booking_number\",\n      \"type\": \"string\"";
            assert!(b.contains(field), "the edit must change the file");
            b.replacen(field, "\"name\": \"booking_number\",\n      \"type\": \"long\"", 1)
        }
        _ => b,
    });
    for (dir, reasons) in [
        (
            &required,
            vec!["not BACKWARD compatible (the registry and apache-avro agree)", "`fee_cents` added without a default"],
        ),
        (&removed, vec!["field `runner_id` removed: removing a field needs a new major version"]),
        (&retyped, vec!["not BACKWARD compatible", "field `booking_number` changed type"]),
    ] {
        let refused = sagactl(registry, &prefix, &["check"], dir);
        let out = text(&refused);
        assert!(!refused.status.success(), "{}: a breaking edit passed:\n{out}", dir.display());
        assert!(out.contains(&format!("FAIL {subject}")), "{out}");
        for reason in reasons {
            assert!(out.contains(reason), "{}: missing {reason:?}:\n{out}", dir.display());
        }
        assert_eq!(out.lines().filter(|l| l.starts_with("FAIL ")).count(), 1, "only the edited subject: {out}");
        assert!(out.contains("1 of ") && out.contains(" subjects refused"), "{out}");
    }
    // The registry itself refuses to register the required field (BACKWARD
    // was set on every subject) and registers the rest.
    let refused = sagactl(registry, &prefix, &["register"], &required);
    let out = text(&refused);
    assert!(!refused.status.success(), "{out}");
    assert!(out.contains(&format!("FAIL {subject}")), "{out}");
    assert!(out.contains("the registry refused 1 of "), "{out}");
}

/// Every catalog payload through the Confluent wire format and back, with
/// the registry the tests use: the same payload, under a schema id the
/// registry serves as the compiled-in schema; an unknown id and bytes that
/// are not Avro are the record's fault (a DLQ class); a registry that does
/// not answer is not (retried).
#[test]
fn every_payload_goes_through_the_wire_format_and_back_and_each_failure_is_classified() {
    use sagastream_registry::avro::{schema_id, AvroCodec, AvroError};

    let registry = schema_registry();
    let prefix = sagastream_e2e::probe::prefix("avro");
    let topics = sagastream_topics::Topics::load(&repo_root().join("topics.yaml")).unwrap();
    let codec = AvroCodec::new(registry).unwrap();
    let mut last = None;
    for event in sagastream_contract::samples::one_of_each("avro-wire") {
        let t = event.event_type();
        let topic = topics.topics.iter().find(|topic| topic.events.contains(&t)).expect("a topic carries it");
        let json = event.data.to_json_value();
        let (bytes, id) = codec.encode(&format!("{prefix}{}", topic.name), t.as_str(), json.clone()).unwrap();
        assert_eq!(bytes[0], 0, "magic byte");
        assert_eq!(schema_id(&bytes), Some(id));
        let back = codec.decode(&bytes).unwrap();
        assert_eq!((back.event_type.as_str(), back.schema_id), (t.as_str(), id));
        let payload = sagastream_contract::Payload::from_json(t, &serde_json::to_vec(&back.json).unwrap()).unwrap();
        assert_eq!(payload, event.data, "{t}");
        // What the registry serves under that id is the compiled-in schema.
        let served = registry_get(&format!("{registry}/schemas/ids/{id}"));
        let served: serde_json::Value = serde_json::from_str(&served.body).unwrap();
        let file = repo_root().join(format!("schemas/{}.avsc", t.as_str()));
        assert_eq!(
            Schema::parse_str(served["schema"].as_str().unwrap()).unwrap().canonical_form(),
            Schema::parse_str(&std::fs::read_to_string(file).unwrap()).unwrap().canonical_form(),
            "{t}"
        );
        last = Some((bytes, format!("{prefix}{}", topic.name), t, json));
    }
    let (bytes, topic, t, json) = last.expect("samples");

    // An id the registry never gave out.
    let mut unknown = bytes.clone();
    unknown[1..5].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
    let e = codec.decode(&unknown).unwrap_err();
    assert!(matches!(e, AvroError::UnknownSchemaId { id: 0x7fff_fff0 }), "{e}");
    assert_eq!(e.class(), Some("unknown_schema_id"));
    // A known id with bytes that are not its record; JSON, no wire format at all.
    let mut truncated = bytes.clone();
    truncated.truncate(6);
    truncated.push(0xff);
    assert_eq!(codec.decode(&truncated).unwrap_err().class(), Some("invalid_avro"));
    assert_eq!(codec.decode(br#"{"booking_id":"B-1"}"#).unwrap_err().class(), Some("invalid_avro"));

    // Nobody listens on port 1: the registry's outage, retried, never dead-lettered.
    let down = AvroCodec::new("http://127.0.0.1:1/apis/ccompat/v7").unwrap();
    let e = down.decode(&bytes).unwrap_err();
    assert!(matches!(e, AvroError::RetryLater(_)), "{e}");
    assert_eq!(e.class(), None);
    let e = down.encode(&topic, t.as_str(), json).unwrap_err();
    assert!(matches!(e, AvroError::RetryLater(_)), "{e}");
}

/// A peer reads every payload we write, through the same registry, and
/// our decoder reads what the peer writes: the same payloads both ways.
fn both_ways(peer: Peer, tag: &str) {
    use sagastream_registry::avro::AvroCodec;

    let registry = schema_registry();
    let prefix = sagastream_e2e::probe::prefix(tag);
    let topics = sagastream_topics::Topics::load(&repo_root().join("topics.yaml")).unwrap();
    let codec = AvroCodec::new(registry).unwrap();
    let samples = sagastream_contract::samples::one_of_each(tag);
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for event in &samples {
        let t = event.event_type();
        let topic = format!("{prefix}{}", topics.topics.iter().find(|x| x.events.contains(&t)).unwrap().name);
        let json = event.data.to_json_value();
        let (bytes, _) = codec.encode(&topic, t.as_str(), json.clone()).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        ours.push(serde_json::json!({"topic": topic, "hex": hex}));
        let schema = std::fs::read_to_string(repo_root().join(format!("schemas/{}.avsc", t.as_str()))).unwrap();
        // A topic of its own: the peer registers the schema there itself.
        theirs.push(serde_json::json!({"topic": format!("{topic}.peer"), "schema": schema, "payload": json}));
    }
    let read = avro_peer(peer, &["decode", registry], Some(&serde_json::Value::Array(ours)));
    let written = avro_peer(peer, &["encode", registry], Some(&serde_json::Value::Array(theirs)));
    for (i, event) in samples.iter().enumerate() {
        let t = event.event_type();
        let theirs_read = &read[i];
        let payload = sagastream_contract::Payload::from_json(t, &serde_json::to_vec(theirs_read).unwrap())
            .unwrap_or_else(|e| panic!("{t}: what the {peer:?} peer read is not the payload: {e:?}: {theirs_read}"));
        assert_eq!(payload, event.data, "{t}: the {peer:?} peer read");
        let hex = written[i].as_str().unwrap();
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|j| u8::from_str_radix(&hex[j..j + 2], 16).unwrap()).collect();
        let back =
            codec.decode(&bytes).unwrap_or_else(|e| panic!("{t}: we cannot read the {peer:?} peer's bytes: {e}"));
        assert_eq!(back.event_type, t.as_str());
        let payload = sagastream_contract::Payload::from_json(t, &serde_json::to_vec(&back.json).unwrap()).unwrap();
        assert_eq!(payload, event.data, "{t}: we read the {peer:?} peer's");
    }
}

/// confluent-kafka's Python AvroDeserializer and AvroSerializer.
#[test]
fn confluent_kafkas_python_avro_serializers_read_ours_and_we_read_theirs() {
    both_ways(Peer::Python, "avro-py");
}

/// kafkajs's @kafkajs/confluent-schema-registry (avsc underneath).
#[test]
fn kafkajs_confluent_schema_registry_reads_ours_and_we_read_its() {
    both_ways(Peer::Node, "avro-js");
}
