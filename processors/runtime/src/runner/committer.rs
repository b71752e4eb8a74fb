//! The thread that ends a stateless processor's transactions in the
//! background (`producer::TxnProducer::commit_in_background`): one for the
//! instance's life, not one per commit, since every fresh thread's stack
//! and allocator heap cost page faults (a profile put them at a tenth of
//! the loop's time with a thread per commit).

use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::time::Duration;

use super::LoopError;

/// How a background commit ended: the time its offsets took to send, or why it failed.
pub(super) type Outcome = Result<Duration, LoopError>;
type Job = Box<dyn FnOnce() -> Outcome + Send>;

pub(super) struct Committer {
    jobs: Sender<Job>,
    done: Receiver<Outcome>,
}

fn stopped() -> LoopError {
    LoopError::Setup("the commit thread stopped".into())
}

impl Committer {
    pub(super) fn start() -> Result<Committer, LoopError> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (outbox, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("sagastream-commit".into())
            .spawn(move || {
                // Ends when the producer side is dropped.
                while let Ok(job) = inbox.recv() {
                    if outbox.send(job()).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| LoopError::Setup(format!("starting the commit thread: {e}")))?;
        Ok(Committer { jobs, done })
    }

    pub(super) fn submit(&self, job: impl FnOnce() -> Outcome + Send + 'static) -> Result<(), LoopError> {
        self.jobs.send(Box::new(job)).map_err(|_| stopped())
    }

    /// The outcome of the job submitted, if it has ended; never waits.
    pub(super) fn try_outcome(&self) -> Option<Outcome> {
        match self.done.try_recv() {
            Ok(outcome) => Some(outcome),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(stopped())),
        }
    }

    /// The outcome of the job submitted, waiting for it.
    pub(super) fn outcome(&self) -> Outcome {
        self.done.recv().unwrap_or_else(|_| Err(stopped()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thread_runs_the_jobs_in_turn_and_reports_each() {
        let c = Committer::start().unwrap();
        c.submit(|| Ok(Duration::from_millis(3))).unwrap();
        assert_eq!(c.outcome().unwrap(), Duration::from_millis(3));
        assert!(c.try_outcome().is_none(), "nothing submitted, nothing ended");
        c.submit(|| Err(LoopError::Setup("no".into()))).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let outcome = loop {
            if let Some(o) = c.try_outcome() {
                break o;
            }
            assert!(std::time::Instant::now() < deadline, "the job never ended");
            std::thread::yield_now();
        };
        assert!(matches!(outcome, Err(LoopError::Setup(m)) if m == "no"));
    }
}
