//! Failures the end-to-end tests inject through hidden `--test-*` flags.
//! Compiled only with the `test-hooks` cargo feature, which the e2e harness
//! builds the processors with; a production build has neither the flags nor
//! the code, and every hook below is an empty function.

#[cfg(feature = "test-hooks")]
use std::time::Duration;

use rdkafka::producer::{Producer, ProducerContext};

use crate::config::RuntimeArgs;

/// An injected failure: abort the transaction and retry, as for a transient error.
#[cfg(feature = "test-hooks")]
#[derive(Debug, thiserror::Error)]
#[error("test hook: {0}")]
pub struct Injected(pub String);

/// Without the feature no hook can fail: the type has no values.
#[cfg(not(feature = "test-hooks"))]
#[derive(Debug)]
pub enum Injected {}

#[derive(Debug, Clone, Default)]
pub struct TestHooks {
    #[cfg(feature = "test-hooks")]
    fail_after_outputs: Option<usize>,
    #[cfg(feature = "test-hooks")]
    hang_after_outputs: Option<usize>,
    #[cfg(feature = "test-hooks")]
    fail_after_repartition: Option<usize>,
    #[cfg(feature = "test-hooks")]
    fail_assignments: usize,
    #[cfg(feature = "test-hooks")]
    fail_every_commit: Option<usize>,
    #[cfg(feature = "test-hooks")]
    commits: usize,
    #[cfg(feature = "test-hooks")]
    restore_record_delay: Option<Duration>,
}

impl TestHooks {
    #[cfg(feature = "test-hooks")]
    pub fn from_args(args: &RuntimeArgs) -> TestHooks {
        TestHooks {
            fail_after_outputs: args.test_fail_after_outputs,
            hang_after_outputs: args.test_hang_after_outputs,
            fail_after_repartition: args.test_fail_after_repartition,
            fail_assignments: args.test_fail_assignments.unwrap_or(0),
            fail_every_commit: args.test_fail_every_commit.filter(|n| *n > 0),
            commits: 0,
            restore_record_delay: args.test_restore_record_delay_ms.map(Duration::from_millis),
        }
    }

    #[cfg(not(feature = "test-hooks"))]
    pub fn from_args(_: &RuntimeArgs) -> TestHooks {
        TestHooks {}
    }

    /// After an output was produced: `--test-fail-after-outputs N` fails the
    /// transaction that reached N outputs (once); `--test-hang-after-outputs N`
    /// hangs with the transaction open after N outputs in all. Both flush
    /// first, so the doomed outputs really are in the log.
    #[allow(unused_variables)]
    pub fn after_output<P: Producer<C>, C: ProducerContext>(
        &mut self,
        producer: &P,
        in_transaction: usize,
        in_all: usize,
    ) -> Result<(), Injected> {
        #[cfg(feature = "test-hooks")]
        {
            if let Some(n) = self.fail_after_outputs.filter(|n| in_transaction >= *n) {
                self.fail_after_outputs = None;
                let _ = producer.flush(Duration::from_secs(30));
                return Err(Injected(format!("injected failure after {n} outputs")));
            }
            if let Some(n) = self.hang_after_outputs.filter(|n| in_all >= *n) {
                let _ = producer.flush(Duration::from_secs(30));
                tracing::warn!(outputs = n, "test hook: hanging with the transaction open");
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
        }
        Ok(())
    }

    /// After the Nth re-keyed record (`--test-fail-after-repartition N`), once.
    #[allow(unused_variables)]
    pub fn after_rekeyed<P: Producer<C>, C: ProducerContext>(
        &mut self,
        producer: &P,
        rekeyed: usize,
    ) -> Result<(), Injected> {
        #[cfg(feature = "test-hooks")]
        if self.fail_after_repartition.is_some_and(|n| rekeyed >= n) {
            self.fail_after_repartition = None;
            let _ = producer.flush(Duration::from_secs(30));
            return Err(Injected(format!("injected failure after re-keyed record {rekeyed}")));
        }
        Ok(())
    }

    /// Before taking up an assignment: the first `--test-fail-assignments N` attempts fail.
    pub fn before_assignment(&mut self) -> Result<(), Injected> {
        #[cfg(feature = "test-hooks")]
        if self.fail_assignments > 0 {
            self.fail_assignments -= 1;
            return Err(Injected("injected failure taking up an assignment".into()));
        }
        Ok(())
    }

    /// Whether the commit about to start is to fail just before EndTxn
    /// (`--test-fail-every-commit N`: every Nth).
    pub fn fail_commit(&mut self) -> Option<Injected> {
        #[cfg(feature = "test-hooks")]
        if let Some(n) = self.fail_every_commit {
            self.commits += 1;
            if self.commits.is_multiple_of(n) {
                return Some(Injected(format!("injected failure before ending commit {}", self.commits)));
            }
        }
        None
    }

    /// After each changelog record a restore reads
    /// (`--test-restore-record-delay-ms N`): a slow restore, to show that it
    /// does not hold the loop.
    pub fn after_restored_record(&self) {
        #[cfg(feature = "test-hooks")]
        if let Some(d) = self.restore_record_delay {
            std::thread::sleep(d);
        }
    }
}
