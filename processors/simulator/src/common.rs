//! What the escrow and the order checkers share: the DLQ ledger, the
//! per-scenario rows, percentiles. Depends on neither checker.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sagastream_contract::Record;
use sagastream_runtime::dlq;
use serde::Serialize;

/// A record's original position, from the DLQ's context headers.
pub type Position = (String, i32, i64);

/// The bad records a run sent and the DLQ records it found, both by the
/// bad record's original position.
#[derive(Debug, Default)]
pub struct DlqLedger {
    poison: BTreeSet<Position>,
    found: BTreeMap<Position, String>,
}

impl DlqLedger {
    pub fn sent(&mut self, position: Position) {
        self.poison.insert(position);
    }

    /// A DLQ record, by the original position its context headers name.
    pub fn found(&mut self, record: &Record) {
        let header =
            |name: &str| record.header(name).map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
        let position = (
            header(dlq::TOPIC),
            header(dlq::PARTITION).parse().unwrap_or(-1),
            header(dlq::OFFSET).parse().unwrap_or(-1),
        );
        self.found.insert(position, header(dlq::EXCEPTION));
    }

    /// Whether the DLQ holds exactly the bad records; problems go to `note`.
    pub fn summary(&self, what: &str, note: &mut dyn FnMut(String)) -> DlqSummary {
        let missing = self.poison.iter().filter(|p| !self.found.contains_key(*p)).count();
        let unexpected: Vec<&Position> = self.found.keys().filter(|p| !self.poison.contains(*p)).collect();
        for p in unexpected.iter().take(5) {
            note(format!("unexpected {what} DLQ record for {}:{}@{} ({})", p.0, p.1, p.2, self.found[*p]));
        }
        if missing > 0 {
            note(format!("{missing} bad {what} records never reached the DLQ"));
        }
        let mut classes = BTreeMap::new();
        for class in self.found.values() {
            *classes.entry(class.clone()).or_default() += 1;
        }
        DlqSummary {
            expected: self.poison.len(),
            found: self.found.len(),
            missing,
            unexpected: unexpected.len(),
            classes,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioRow {
    pub scenario: String,
    pub bookings: usize,
    pub as_expected: usize,
    pub wrong: usize,
    pub unfinished: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DlqSummary {
    /// Bad records the load generator sent.
    pub expected: usize,
    /// DLQ records of this run, de-duplicated by original position.
    pub found: usize,
    pub missing: usize,
    pub unexpected: usize,
    pub classes: BTreeMap<String, usize>,
}

/// The `q` quantile of sorted durations, in ms.
pub fn percentile(sorted: &[Duration], q: f64) -> Option<u64> {
    (!sorted.is_empty()).then(|| {
        let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[i].as_millis() as u64
    })
}

/// The per-scenario rows as a table; `first` and `count` are the first two
/// columns' headings, each with its width.
pub fn scenario_table(first: (&str, usize), count: (&str, usize), rows: &[ScenarioRow]) -> String {
    let ((first, fw), (count, cw)) = (first, count);
    let mut out = format!("{first:<fw$} {count:>cw$} {:>12} {:>7} {:>11}\n", "as expected", "wrong", "unfinished");
    for r in rows {
        out.push_str(&format!(
            "{:<fw$} {:>cw$} {:>12} {:>7} {:>11}\n",
            r.scenario, r.bookings, r.as_expected, r.wrong, r.unfinished
        ));
    }
    out
}
