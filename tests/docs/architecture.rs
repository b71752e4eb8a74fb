//! docs/architecture.md against the tree: its crate table lists exactly the
//! workspace members (package name and path), every repository path it
//! names exists, and every `Type::function` it follows is defined.

use std::collections::BTreeSet;

use crate::transitions::{read, root};

const DOC: &str = "docs/architecture.md";

/// (package name, path) of every workspace member.
fn members() -> BTreeSet<(String, String)> {
    let manifest = read(&root().join("Cargo.toml"));
    let list = manifest.split("members = [").nth(1).and_then(|s| s.split(']').next()).expect("a members list");
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .map(|path| {
            let cargo = read(&root().join(&path).join("Cargo.toml"));
            let name = cargo
                .lines()
                .find_map(|l| l.strip_prefix("name = "))
                .map(|n| n.trim_matches('"').to_owned())
                .unwrap_or_else(|| panic!("{path}/Cargo.toml has no name"));
            (name, path)
        })
        .collect()
}

/// The `| `name` | `path` | … |` rows of the crate table.
fn crate_rows(doc: &str) -> BTreeSet<(String, String)> {
    let section = doc.split("## Crates").nth(1).and_then(|s| s.split("\n## ").next()).expect("a Crates section");
    section
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            let name = cells.first()?.strip_prefix("| `")?.strip_suffix('`')?;
            let path = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name.to_owned(), path.to_owned()))
        })
        .collect()
}

/// Backticked spans of the page.
fn spans(doc: &str) -> Vec<&str> {
    doc.split('`').skip(1).step_by(2).collect()
}

fn is_repo_path(span: &str) -> bool {
    (["processors/", "tests/", "scripts/", "docs/", "schemas/", "helm/"].iter().any(|r| span.starts_with(r))
        && !span.contains('<'))
        || span == "topics.yaml"
}

fn defines(tree: &[String], function: &str) -> bool {
    let needle = format!("fn {function}");
    tree.iter().any(|text| {
        text.match_indices(&needle).any(|(i, _)| {
            let next = text[i + needle.len()..].chars().next();
            matches!(next, Some('(' | '<'))
        })
    })
}

fn rust_files(dir: &std::path::Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(read(&path));
        }
    }
}

#[test]
fn the_architecture_page_matches_the_tree() {
    let doc = read(&root().join(DOC));
    assert_eq!(crate_rows(&doc), members(), "{DOC}'s crate table (left) vs the workspace members (right)");

    let missing: Vec<&str> = spans(&doc).into_iter().filter(|s| is_repo_path(s) && !root().join(s).exists()).collect();
    assert!(missing.is_empty(), "{DOC} names paths that do not exist: {missing:?}");

    let mut tree = Vec::new();
    rust_files(&root().join("processors"), &mut tree);
    let undefined: Vec<&str> = spans(&doc)
        .into_iter()
        .filter_map(|s| {
            let (ty, f) = s.split_once("::")?;
            let plain = |x: &str| !x.is_empty() && x.chars().all(|c| c.is_alphanumeric() || c == '_');
            (plain(ty) && ty.starts_with(char::is_uppercase) && plain(f) && !defines(&tree, f)).then_some(s)
        })
        .collect();
    assert!(undefined.is_empty(), "{DOC} follows functions that are not defined: {undefined:?}");
}
