//! Each saga's transition table (docs/escrow-saga.md, docs/order-saga.md)
//! against its code: every row has a unit test named after it (`row_07_…`,
//! or `rows_03_04_…` for one test of several rows), every such test names a
//! row of the table, and every row the saga's code cites (`Row 5`,
//! `Rows 2, 3, 10-13`, `row 16's aftermath`) exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The row numbers of the table under `## Transition table`: the lines that
/// start with `| <number> |`, up to the next `## ` heading.
fn table_rows(doc: &str) -> BTreeSet<u32> {
    doc.lines()
        .skip_while(|l| l.trim_end() != "## Transition table")
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter_map(|l| l.strip_prefix("| ")?.split(" |").next()?.trim().parse().ok())
        .collect()
}

/// Rows named by unit tests: `fn row_07_x` gives 7, `fn rows_03_04_x` gives 3 and 4.
fn tested_rows(tests: &str) -> BTreeSet<u32> {
    let mut rows = BTreeSet::new();
    for line in tests.lines() {
        let Some(rest) = line.trim_start().strip_prefix("fn row") else { continue };
        let rest = rest.strip_prefix("s_").or_else(|| rest.strip_prefix('_')).unwrap_or("");
        for part in rest.split('_') {
            match part.parse::<u32>() {
                Ok(n) if part.len() == 2 => {
                    rows.insert(n);
                }
                _ => break,
            }
        }
    }
    rows
}

/// Rows cited in the code's comments: `Row 5`, `Rows 2, 3, 10-13`, `Row 6 → 11`,
/// `rows 8, 9`, `row 16's aftermath`, `9's aftermath` is not a citation.
fn cited_rows(code: &str) -> BTreeSet<u32> {
    let mut rows = BTreeSet::new();
    for line in code.lines() {
        let Some(comment) = line.split("//").nth(1) else { continue };
        let words: Vec<&str> = comment.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            if !matches!(w.trim_start_matches('(').to_ascii_lowercase().as_str(), "row" | "rows") {
                continue;
            }
            // The numbers that follow: `2,` `3,` `10-13:` `6` `→` `11` `/` `3`.
            for next in &words[i + 1..] {
                let token = next.trim_end_matches([',', ':', '.', ')', ';']).trim_end_matches("'s");
                if matches!(token, "→" | "/" | "and") {
                    continue;
                }
                let bounds: Vec<Option<u32>> = token.split('-').map(|n| n.parse().ok()).collect();
                match bounds.as_slice() {
                    [Some(n)] => {
                        rows.insert(*n);
                    }
                    [Some(a), Some(b)] if a <= b => rows.extend(*a..=*b),
                    _ => break,
                }
            }
        }
    }
    rows
}

/// The saga's code: every `.rs` file under `dir`, its unit tests (`tests.rs`
/// and the `tests/` beside it) aside.
fn code_files(dir: &str) -> Vec<String> {
    let mut files = Vec::new();
    let mut pending = vec![root().join(dir)];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display())) {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() && name != "tests" {
                pending.push(path);
            } else if name.ends_with(".rs") && name != "tests.rs" {
                files.push(path.to_string_lossy().into_owned());
            }
        }
    }
    files.sort();
    files
}

fn check(doc: &str, code: &[String], tests: &str) -> Result<(), String> {
    let doc_text = read(&root().join(doc));
    let table = table_rows(&doc_text);
    if table.is_empty() {
        return Err(format!("{doc}: no rows found under `## Transition table`"));
    }
    // The tests file and, when it has been split, its child modules beside it.
    let mut tests_text = read(&root().join(tests));
    let children = root().join(tests.trim_end_matches(".rs"));
    if children.is_dir() {
        for entry in std::fs::read_dir(&children).unwrap() {
            tests_text.push_str(&read(&entry.unwrap().path()));
        }
    }
    let tested = tested_rows(&tests_text);
    let mut cited = BTreeSet::new();
    for file in code {
        cited.extend(cited_rows(&read(&root().join(file))));
    }
    let mut problems = Vec::new();
    let untested: Vec<_> = table.difference(&tested).collect();
    if !untested.is_empty() {
        problems.push(format!(
            "rows {untested:?} of {doc} have no unit test in {tests}: name one `fn row_NN_…` (or `fn rows_NN_MM_…`)"
        ));
    }
    let unknown_tests: Vec<_> = tested.difference(&table).collect();
    if !unknown_tests.is_empty() {
        problems.push(format!("{tests} tests rows {unknown_tests:?}, which {doc} does not have"));
    }
    let unknown_cited: Vec<_> = cited.difference(&table).collect();
    if !unknown_cited.is_empty() {
        problems.push(format!("{code:?} cite rows {unknown_cited:?}, which {doc} does not have"));
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems.join("\n")),
    }
}

#[test]
fn the_escrow_saga_table_and_its_code_and_tests_agree() {
    let code = code_files("processors/escrow-saga/src");
    assert!(code.iter().any(|f| f.ends_with("saga/payment.rs")), "the saga's files are found: {code:?}");
    check("docs/escrow-saga.md", &code, "processors/escrow-saga/src/saga/tests.rs").unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_order_saga_table_and_its_code_and_tests_agree() {
    let code = code_files("processors/order-saga/src");
    check("docs/order-saga.md", &code, "processors/order-saga/src/saga/tests.rs").unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_tracking_table_and_its_code_and_tests_agree() {
    let code = code_files("processors/tracking/src");
    check("docs/tracking.md", &code, "processors/tracking/src/tests.rs").unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_runner_presence_table_and_its_code_and_tests_agree() {
    let code = code_files("processors/runner/src");
    check("docs/runner.md", &code, "processors/runner/src/tests.rs").unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_parsers_find_what_they_should() {
    let doc = "x\n## Transition table\n\n| # | a |\n|---|---|\n| 1 | b |\n| 12 | c |\n\n## Money\n| 99 | d |\n";
    assert_eq!(table_rows(doc), BTreeSet::from([1, 12]));
    let tests = "fn row_01_a() {}\n#[test]\nfn rows_03_04_b() {}\nfn row_helper() {}\nfn rows_10_12_c_2() {}\n";
    assert_eq!(tested_rows(tests), BTreeSet::from([1, 3, 4, 10, 12]));
    let code = "// Row 5.\n  x // Rows 2, 3, 10-13: y\n// Row 6 → 11: z\n// (row 16's aftermath)\n// Row 3 / 4.\n";
    assert_eq!(cited_rows(code), BTreeSet::from([2, 3, 4, 5, 6, 10, 11, 12, 13, 16]));
}

/// A table row added without its test fails the check, and says which.
#[test]
fn a_row_without_its_test_is_reported() {
    let dir = std::env::temp_dir().join(format!("sagastream-docs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let doc = dir.join("saga.md");
    std::fs::write(&doc, "## Transition table\n| 1 | a |\n| 2 | b |\n").unwrap();
    let tests = dir.join("tests.rs");
    std::fs::write(&tests, "fn row_01_a() {}\n").unwrap();
    let code = dir.join("saga.rs");
    std::fs::write(&code, "// Row 1.\n").unwrap();
    let err =
        check(doc.to_str().unwrap(), &[code.to_string_lossy().into_owned()], tests.to_str().unwrap()).unwrap_err();
    assert!(err.contains("rows [2]") && err.contains("no unit test"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
