//! `sagactl schemas` against a real Schema Registry (Apicurio, or
//! `SCHEMA_REGISTRY_URL`): every schema registered under its
//! TopicRecordNameStrategy subjects and stored as written; this tree's
//! schemas may replace their previous versions (so `make test` fails on an
//! incompatible change); and deliberately breaking edits are refused, each
//! for its reason, while a compatible one passes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use apache_avro::Schema;
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
    let latest = get_url(&format!("{registry}/subjects/{subject}/versions/latest"))
        .unwrap_or_else(|| panic!("GET from {registry} (an http:// URL is needed for this check)"));
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
