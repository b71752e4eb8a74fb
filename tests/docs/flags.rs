//! The flag tables of the docs against the binaries' own definitions (clap):
//! the same flags, each with the documented environment variable and, where
//! the binary has one, the documented default. The runtime's flags are in
//! docs/runtime.md; each processor's own in its page.

use std::collections::BTreeMap;

use crate::transitions::{read, root};

/// long flag → (environment variable, default) as a docs table gives them.
type Flags = BTreeMap<String, (String, Option<String>)>;

/// The rows `| `--flag` | `VAR` | default | …` of `doc` after the first
/// `section` (a heading or a table header), up to the next `## `.
fn documented(doc: &str, section: &str) -> Flags {
    let text = read(&root().join(doc));
    let part = text.split(section).nth(1).unwrap_or_else(|| panic!("{doc} has no {section:?}"));
    let part = part.split("\n## ").next().unwrap();
    let mut flags = Flags::new();
    for line in part.lines() {
        let cells: Vec<&str> = line.split(" | ").collect();
        let Some(flag) = cells[0].strip_prefix("| `") else { continue };
        let long = match flag.split('`').next().unwrap() {
            "-X key=value" => "kafka-property".to_owned(),
            f if f.starts_with("--") => f.trim_start_matches("--").to_owned(),
            _ => continue,
        };
        let env = cells[1].split('`').nth(1).unwrap_or("").to_owned();
        let default = cells.get(2).map(|c| c.trim_end_matches(" |").trim());
        let default = default.and_then(|c| match c {
            "empty" => Some(String::new()),
            c if c.starts_with('`') => c.split('`').nth(1).map(str::to_owned),
            _ => None,
        });
        flags.insert(long, (env, default));
    }
    assert!(!flags.is_empty(), "{doc}: no flag rows in {section:?}");
    flags
}

/// The visible long flags of `command`, without those of `except`.
fn defined(command: &clap::Command, except: &clap::Command) -> Flags {
    let skip: Vec<&str> = except.get_arguments().filter_map(|a| a.get_long()).collect();
    command
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| {
            let long = a.get_long()?;
            if skip.contains(&long) || long == "help" || long == "version" {
                return None;
            }
            let env = a.get_env().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
            let default = a.get_default_values().first().map(|d| d.to_string_lossy().into_owned());
            Some((long.to_owned(), (env, default)))
        })
        .collect()
}

fn check(what: &str, documented: Flags, defined: Flags) {
    let names = |f: &Flags| f.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&documented), names(&defined), "{what}: the documented flags (left) vs the binary's (right)");
    for (flag, (env, default)) in &defined {
        let (doc_env, doc_default) = &documented[flag];
        assert_eq!(doc_env, env, "{what}: --{flag}'s environment variable");
        if let Some(default) = default {
            assert_eq!(doc_default.as_ref(), Some(default), "{what}: --{flag}'s default");
        }
    }
}

fn runtime_args() -> clap::Command {
    use clap::Args;
    sagastream_runtime::RuntimeArgs::augment_args(clap::Command::new("runtime"))
}

#[test]
fn the_runtime_flags_table_is_the_runtime_args() {
    check(
        "docs/runtime.md",
        documented("docs/runtime.md", "## Configuration"),
        defined(&runtime_args(), &clap::Command::new("none")),
    );
}

#[test]
fn each_processor_flags_table_is_its_command_line() {
    let runtime = runtime_args();
    for (doc, section, command) in [
        ("docs/escrow-saga.md", "## Configuration", sagastream_escrow_saga::cli::command()),
        ("docs/order-saga.md", "## Configuration", sagastream_order_saga::cli::command()),
        // The inventory page's table has no section of its own.
        ("docs/inventory.md", "| flag | env | default |", sagastream_inventory::cli::command()),
        ("docs/tracking.md", "## Configuration", sagastream_tracking::cli::command()),
        ("docs/runner.md", "## Configuration", sagastream_runner::cli::command()),
    ] {
        check(doc, documented(doc, section), defined(&command, &runtime));
    }
}

#[test]
fn a_flag_missing_from_a_table_is_reported() {
    let mut doc = documented("docs/order-saga.md", "## Configuration");
    doc.remove("purge-after");
    let result = std::panic::catch_unwind(|| {
        check("docs/order-saga.md", doc, defined(&sagastream_order_saga::cli::command(), &runtime_args()))
    });
    assert!(result.is_err(), "a documented table without --purge-after must fail the check");
}
