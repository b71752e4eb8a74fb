//! More tables and lists against what they describe: the broker settings of
//! docs/broker.md against the server.properties `scripts/broker.sh` writes,
//! and the escrow saga's timers (docs/escrow-saga.md) against its timer
//! names and the defaults of the flags that set them; the README's topic map
//! against topics.yaml (names, keys, partition counts); the stall watch's
//! phases (docs/runtime.md) against the runtime's.

use std::collections::BTreeSet;

use crate::transitions::{read, root};

/// The first cell's backticked names of each row of the table after `header`.
fn first_cells(doc: &str, header: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let text = read(&root().join(doc));
    let table = text.split(header).nth(1).unwrap_or_else(|| panic!("{doc} has no table {header:?}"));
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            let names = cells[0].split('`').skip(1).step_by(2).map(str::to_owned).collect();
            (names, cells.iter().skip(1).map(|c| c.to_string()).collect())
        })
        .collect()
}

#[test]
fn the_broker_settings_table_names_every_setting_the_script_writes() {
    let script = read(&root().join("scripts/broker.sh"));
    let body = script.split("cat > \"$dir/server.properties\" <<EOF\n").nth(1).expect("the server.properties heredoc");
    let written: BTreeSet<String> = body
        .lines()
        .take_while(|l| *l != "EOF")
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_owned()))
        .collect();
    assert!(written.len() > 20, "parsed the heredoc: {written:?}");
    let documented: BTreeSet<String> =
        first_cells("docs/broker.md", "| setting | value | why |").into_iter().flat_map(|(n, _)| n).collect();
    assert_eq!(
        documented, written,
        "docs/broker.md's settings (left) vs scripts/broker.sh's server.properties (right)"
    );
}

#[test]
fn the_escrow_saga_timers_table_is_its_timers_and_their_flag_defaults() {
    use sagastream_escrow_saga::saga::{AUTO_CONFIRM, HOLD_TIMEOUT, PURGE, SETTLE_RETRY, SETTLE_STUCK};
    let flag_of = [
        (HOLD_TIMEOUT, "hold-timeout"),
        (AUTO_CONFIRM, "auto-confirm-after"),
        (SETTLE_STUCK, "stuck-after"),
        (SETTLE_RETRY, "settle-retry-after"),
        (PURGE, "purge-after"),
    ];
    let rows = first_cells("docs/escrow-saga.md", "| timer | default | set by | on fire |");
    let names: BTreeSet<&str> = rows.iter().flat_map(|(n, _)| n.iter().map(String::as_str)).collect();
    assert_eq!(names, flag_of.iter().map(|(t, _)| *t).collect(), "docs/escrow-saga.md's timers vs the saga's");
    let command = sagastream_escrow_saga::cli::command();
    for (names, cells) in &rows {
        let timer = names[0].as_str();
        let flag = flag_of.iter().find(|(t, _)| *t == timer).unwrap().1;
        let default = command
            .get_arguments()
            .find(|a| a.get_long() == Some(flag))
            .and_then(|a| a.get_default_values().first().map(|d| d.to_string_lossy().into_owned()))
            .unwrap_or_else(|| panic!("--{flag} has a default"));
        // "15 min", "24 h", "10 min, doubling", "7 d" against 15m, 24h, 10m, 7d.
        let documented = cells[0].split(',').next().unwrap().replace(" min", "m").replace(" h", "h").replace(" d", "d");
        assert_eq!(documented, default, "{timer}: the table's default vs --{flag}'s");
    }
}

#[test]
fn the_readme_topic_map_is_topics_yaml() {
    let topics = sagastream_topics::Topics::load(&root().join("topics.yaml")).expect("topics.yaml loads");
    let mut mapped = BTreeSet::new();
    for (names, cells) in
        first_cells("README.md", "| topic | key | partitions | written by | read by | co-partitioned with |")
    {
        let keys: Vec<String> = cells[0].split('`').skip(1).step_by(2).map(str::to_owned).collect();
        let partitions: Vec<i32> = cells[1].split(", ").map(|p| p.trim().parse().expect("a partition count")).collect();
        for (i, name) in names.iter().enumerate() {
            let topic = topics.get(name).unwrap_or_else(|| panic!("README.md maps {name}, which topics.yaml lacks"));
            assert_eq!(keys, topic.keys, "README.md: the keys of {name}");
            assert_eq!(
                partitions.get(i).or(partitions.last()),
                Some(&topic.partitions),
                "README.md: {name}'s partitions"
            );
            assert!(mapped.insert(name.clone()), "README.md maps {name} twice");
        }
    }
    let declared: BTreeSet<String> = topics.topics.iter().map(|t| t.name.clone()).collect();
    assert_eq!(mapped, declared, "README.md's topic map (left) vs topics.yaml (right)");
}

#[test]
fn the_stall_watch_phases_in_the_runtime_doc_are_the_loops() {
    let text = read(&root().join("docs/runtime.md")).split_whitespace().collect::<Vec<_>>().join(" ");
    let list = text.split("with the phase it is in (").nth(1).expect("docs/runtime.md lists the phases");
    let list = list.split(')').next().expect("the list ends");
    let documented: Vec<&str> = list.split('`').skip(1).step_by(2).collect();
    let phases: Vec<&str> = sagastream_runtime::http::Phase::ALL.iter().map(|p| p.as_str()).collect();
    assert_eq!(documented, phases, "docs/runtime.md's stall-watch phases (left) vs the runtime's (right)");
}
