//! The load run's report: the escrow checker's verdict with the order
//! checker's beside it, and the table people read.

use crate::common::{scenario_table, DlqSummary, ScenarioRow};
use crate::native::IngestReport;
use crate::order_check::OrderReport;
use crate::trips::TripReport;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub bookings: usize,
    pub finished: usize,
    pub scenarios: Vec<ScenarioRow>,
    pub money_conserved: bool,
    pub duplicate_commands: usize,
    /// Re-delivered events (same id) the checker dropped.
    pub duplicate_events_dropped: usize,
    /// Of those, outputs of the saga: commands and facts seen twice by id.
    pub duplicate_outputs_by_id: usize,
    pub dlq: DlqSummary,
    pub elapsed_s: f64,
    pub bookings_per_s: f64,
    pub latency_p50_ms: Option<u64>,
    pub latency_p99_ms: Option<u64>,
    pub final_lag: Option<i64>,
    pub problems: Vec<String>,
    /// The orders started alongside, when there were any.
    pub orders: Option<OrderReport>,
    /// The trips of the happy bookings, with `--trips`.
    pub trips: Option<TripReport>,
    /// What went through the ingest processor, with `--via-ingest-every`.
    pub ingest: Option<IngestReport>,
    pub ok: bool,
}

impl Report {
    fn order_only_table(&self) -> String {
        let orders = self.orders.as_ref().expect("checked by the caller");
        let mut out = orders.table();
        out.push_str(&format!(
            "final consumer lag  {}\n",
            self.final_lag.map_or_else(|| "not measured".to_owned(), |l| format!("{l} records"))
        ));
        out.push_str(if self.ok { "RESULT: every order reached its expected outcome\n" } else { "RESULT: FAILED\n" });
        out
    }
}

impl Report {
    /// The summary table people read.
    pub fn table(&self) -> String {
        let mut out = String::new();
        if self.bookings == 0 && self.orders.is_some() {
            return self.order_only_table();
        }
        out.push_str(&scenario_table(("scenario", 20), ("bookings", 9), &self.scenarios));
        let ms = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v} ms"));
        let classes: Vec<String> = self.dlq.classes.iter().map(|(c, n)| format!("{c} {n}")).collect();
        out.push_str(&format!(
            "\nbookings finished   {}/{}\nmoney conserved     {}\nduplicate commands  {} by content, {} by id\n\
             DLQ records         {} (expected {}, missing {}, unexpected {}){}\n\
             throughput          {:.0} bookings/s over {:.1} s\n\
             end-to-end latency  p50 {}, p99 {} (requested → terminal fact; timer scenarios excluded)\n\
             final consumer lag  {}\n",
            self.finished,
            self.bookings,
            if self.money_conserved { "yes" } else { "NO" },
            self.duplicate_commands,
            self.duplicate_outputs_by_id,
            self.dlq.found,
            self.dlq.expected,
            self.dlq.missing,
            self.dlq.unexpected,
            if classes.is_empty() { String::new() } else { format!(": {}", classes.join(", ")) },
            self.bookings_per_s,
            self.elapsed_s,
            ms(self.latency_p50_ms),
            ms(self.latency_p99_ms),
            self.final_lag.map_or_else(|| "not measured".to_owned(), |l| format!("{l} records")),
        ));
        for p in &self.problems {
            out.push_str(&format!("problem: {p}\n"));
        }
        if let Some(orders) = &self.orders {
            out.push_str(&orders.table());
        }
        if let Some(trips) = &self.trips {
            out.push_str(&trips.table());
        }
        if let Some(ingest) = &self.ingest {
            out.push_str(&ingest.table());
        }
        out.push_str(match (self.ok, self.orders.is_some()) {
            (true, false) => "RESULT: every booking reached its expected outcome\n",
            (true, true) => "RESULT: every booking and every order reached its expected outcome\n",
            (false, _) => "RESULT: FAILED\n",
        });
        out
    }
}
