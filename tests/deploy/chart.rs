//! The Helm chart under helm/sagastream.

use std::collections::BTreeSet;

use crate::{repo_root, run, text, tools};

const CHART: &str = "helm/sagastream";

fn helm(args: &[&str]) -> std::process::Output {
    run(tools().join("helm"), args)
}

fn ci_values() -> Vec<String> {
    let dir = repo_root().join(CHART).join("ci");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("helm/sagastream/ci")
        .map(|e| format!("{CHART}/ci/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| f.ends_with("-values.yaml"))
        .collect();
    files.sort();
    files
}

/// `helm template` with these values; the rendered manifests.
pub(crate) fn render(values: &str, set: &[&str]) -> String {
    let mut args = vec!["template", "t", CHART, "-f", values];
    for s in set {
        args.extend(["--set", s]);
    }
    let out = helm(&args);
    assert!(out.status.success(), "helm template -f {values}:\n{}", text(&out));
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn the_chart_lints_strictly_with_every_ci_values_file() {
    let files = ci_values();
    assert!(files.len() >= 4, "minimal, all processors, TLS and SASL, monitoring: {files:?}");
    for f in &files {
        let out = helm(&["lint", "--strict", CHART, "-f", f]);
        assert!(out.status.success(), "helm lint --strict -f {f}:\n{}", text(&out));
    }
}

#[test]
fn every_rendered_manifest_validates_against_the_kubernetes_schemas() {
    let validator = std::path::Path::new(sagastream_e2e::python()).with_file_name("kubernetes-validate");
    for f in ci_values() {
        let rendered = render(&f, &[]);
        let file = repo_root().join(".local").join(format!("rendered-{}", f.rsplit('/').next().unwrap()));
        std::fs::write(&file, &rendered).unwrap();
        let out = run(&validator, &["--strict", "--quiet", file.to_str().unwrap()]);
        assert!(out.status.success(), "kubernetes-validate --strict on {f}:\n{}", text(&out));
    }
}

#[test]
fn wrong_values_fail_with_the_schemas_message() {
    let f = format!("{CHART}/ci/minimal-values.yaml");
    let cases = [
        ("processors.escrowSaga.replicas=-1", "processors.escrowSaga.replicas: Must be greater than or equal to 0"),
        ("processors.escrowSga.replicas=2", "processors.escrowSga: binary is required"),
        ("processors.escrowSaga.replica=2", "Additional property replica is not allowed"),
        (
            "processors.escrowSaga.binary=sagastream-escrow",
            "processors.escrowSaga.binary: processors.escrowSaga.binary must be one of",
        ),
        ("monitoring.scrape=Prometheus", "monitoring.scrape: monitoring.scrape must be one of"),
        ("kafka.properties.isolation\\.level=read_uncommitted", "kafka.properties"),
    ];
    for (set, message) in cases {
        let out = helm(&["template", "t", CHART, "-f", &f, "--set", set]);
        assert!(!out.status.success(), "--set {set} was accepted");
        assert!(text(&out).contains(message), "--set {set}: expected {message:?} in:\n{}", text(&out));
    }
    let out = helm(&["template", "t", CHART]);
    assert!(text(&out).contains("kafka.bootstrapServers is required"), "{}", text(&out));
}

#[test]
fn the_charts_topics_file_is_the_repositorys() {
    let chart = std::fs::read_to_string(repo_root().join(CHART).join("files/topics.yaml")).unwrap();
    let repo = std::fs::read_to_string(repo_root().join("topics.yaml")).unwrap();
    assert!(
        chart == repo,
        "helm/sagastream/files/topics.yaml differs from topics.yaml: cp topics.yaml helm/sagastream/files/"
    );
}

/// The commands of every container the chart renders, all processors on.
pub(crate) fn commands() -> BTreeSet<String> {
    let rendered = render(&format!("{CHART}/ci/all-processors-values.yaml"), &[]);
    rendered
        .lines()
        .filter_map(|l| l.trim().strip_prefix("command: ["))
        .map(|c| c.trim_end_matches(']').trim_matches('"').to_owned())
        .collect()
}

#[test]
fn static_membership_tls_and_sasl_reach_the_runtimes_properties() {
    let rendered = render(&format!("{CHART}/ci/tls-sasl-values.yaml"), &["pods.staticMembership=true"]);
    let props = rendered
        .lines()
        .skip_while(|l| !l.contains("name: SAGASTREAM_KAFKA_PROPERTIES"))
        .nth(1)
        .expect("the properties variable")
        .to_owned();
    for want in [
        "security.protocol=SASL_SSL",
        "ssl.ca.location=/etc/sagastream/tls/ca.crt",
        "ssl.certificate.location=/etc/sagastream/tls/tls.crt",
        "sasl.mechanism=SCRAM-SHA-512",
        "sasl.password=$(SAGASTREAM_SASL_PASSWORD)",
        "consumer.group.instance.id=$(SAGASTREAM_INSTANCE_ID)",
    ] {
        assert!(props.contains(want), "{want} missing from {props}");
    }
    assert!(
        rendered.contains("secretKeyRef:\n                  name: kafka-client-sasl"),
        "the password comes from the Secret"
    );
}

#[test]
fn a_state_dir_gives_the_processor_a_volume_of_its_own_and_the_runtime_its_path() {
    let rendered = render(&format!("{CHART}/ci/all-processors-values.yaml"), &[]);
    let sets: Vec<&str> = rendered.split("\n---").filter(|d| d.contains("kind: StatefulSet")).collect();
    let escrow = sets.iter().find(|d| d.contains("sagastream-escrow-saga\"]")).expect("the escrow saga's StatefulSet");
    for want in [
        "name: SAGASTREAM_STATE_DIR\n              value: /var/lib/sagastream",
        "- name: state\n              mountPath: /var/lib/sagastream",
        "volumeClaimTemplates:",
        "storageClassName: fast-ssd",
        "storage: 2Gi",
    ] {
        assert!(escrow.contains(want), "{want:?} missing from the escrow saga's StatefulSet:\n{escrow}");
    }
    // Off by default: the others have neither the variable nor a claim.
    for other in sets.iter().filter(|d| !d.contains("sagastream-escrow-saga\"]")) {
        assert!(!other.contains("SAGASTREAM_STATE_DIR") && !other.contains("volumeClaimTemplates"), "{other}");
    }
    let out = helm(&[
        "template",
        "t",
        CHART,
        "-f",
        &format!("{CHART}/ci/minimal-values.yaml"),
        "--set",
        "pods.stateDir.size=lots",
    ]);
    assert!(!out.status.success() && text(&out).contains("pods.stateDir.size"), "{}", text(&out));
}
