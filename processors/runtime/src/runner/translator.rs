//! Translation ahead of the loop, on a thread of its own, for a stateless
//! processor without a repartition step or event-time buffering
//! (`Core::translator`): `Processor::translate` reads nothing but the
//! record, and for ingest it was half of the loop thread's time. The loop
//! hands each polled record over and processes what comes back in the
//! order it went (one thread, one queue). A record's offset counts as
//! processed only once it is back and processed, so a commit never covers
//! one still on its way. After a rewind or an assignment change, whatever
//! is still on its way is forgotten: it comes back tagged with an older
//! epoch and is dropped, and the consumer reads it again from where it was
//! put.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use super::process::Pending;
use super::LoopError;
use crate::processor::{Processor, Translation};

/// How many records may be on their way at once: enough to keep the thread
/// busy while the loop produces, few enough to forget cheaply.
pub(super) const AHEAD: usize = 512;
/// Records handed over together: one wake-up of the thread per batch, not
/// per record (on two cores, waking it per record switched the loop out
/// for it at every record, and the two took turns instead of overlapping).
const BATCH: usize = 32;

/// A polled record on its way.
pub(super) struct Work {
    pub(super) topic: &'static str,
    pub(super) partition: i32,
    pub(super) pending: Pending,
}

/// A record back, with what the processor made of it.
pub(super) struct Translated {
    pub(super) work: Work,
    pub(super) translation: Option<Translation>,
}

pub(super) struct Translator {
    work: Sender<(u64, Vec<Work>)>,
    done: Receiver<(u64, Vec<Translated>)>,
    epoch: u64,
    /// Records handed over (batched, on the thread, or back) and not taken yet.
    in_flight: usize,
    batch: Vec<Work>,
    back: VecDeque<Translated>,
}

fn stopped() -> LoopError {
    LoopError::Setup("the translation thread stopped".into())
}

impl Translator {
    pub(super) fn start<P: Processor>(processor: Arc<P>) -> Result<Translator, LoopError> {
        let (work, inbox) = mpsc::channel::<(u64, Vec<Work>)>();
        let (outbox, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("sagastream-translate".into())
            .spawn(move || {
                // Ends when the loop's side is dropped.
                while let Ok((epoch, batch)) = inbox.recv() {
                    let translated: Vec<Translated> = batch
                        .into_iter()
                        .map(|w| {
                            let translation = processor.translate(&w.pending.record, w.topic);
                            Translated { work: w, translation }
                        })
                        .collect();
                    if outbox.send((epoch, translated)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| LoopError::Setup(format!("starting the translation thread: {e}")))?;
        Ok(Translator { work, done, epoch: 0, in_flight: 0, batch: Vec::with_capacity(BATCH), back: VecDeque::new() })
    }

    pub(super) fn send(&mut self, work: Work) -> Result<(), LoopError> {
        self.batch.push(work);
        self.in_flight += 1;
        if self.batch.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands the records batched so far over.
    pub(super) fn flush(&mut self) -> Result<(), LoopError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.work.send((self.epoch, batch)).map_err(|_| stopped())
    }

    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Everything on its way is dropped: what is batched or back at once,
    /// what is on the thread when it comes back.
    pub(super) fn forget(&mut self) {
        self.epoch += 1;
        self.in_flight -= self.batch.len() + self.back.len();
        self.batch.clear();
        self.back.clear();
    }

    /// The next record back that is not forgotten, in the order sent; with
    /// `wait`, hands the batch over and waits for one while any is on its way.
    pub(super) fn next(&mut self, wait: bool) -> Result<Option<Translated>, LoopError> {
        loop {
            if let Some(t) = self.back.pop_front() {
                self.in_flight -= 1;
                return Ok(Some(t));
            }
            if self.in_flight == 0 {
                return Ok(None);
            }
            let received = match wait {
                true => {
                    self.flush()?;
                    self.done.recv().map_err(|_| stopped())?
                }
                false => match self.done.try_recv() {
                    Ok(r) => r,
                    Err(mpsc::TryRecvError::Empty) => return Ok(None),
                    Err(mpsc::TryRecvError::Disconnected) => return Err(stopped()),
                },
            };
            match received {
                (epoch, batch) if epoch == self.epoch => self.back.extend(batch),
                (_, forgotten) => self.in_flight -= forgotten.len(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::{Context, Outcome, Refusal, Spec, Step};
    use sagastream_contract::{Event, Record};

    /// Refuses every record, naming its value: what came back is what went.
    struct Echo;

    impl Processor for Echo {
        type State = ();

        fn spec(&self) -> Spec {
            Spec {
                name: "echo",
                version: "1.0.0",
                inputs: vec!["probe.events"],
                outputs: vec![],
                changelog: None,
                dlq: "probe.dlq",
                repartitions: Vec::new(),
            }
        }

        fn translate(&self, record: &Record, _topic: &str) -> Option<Translation> {
            let message = String::from_utf8(record.value.clone()?).ok()?;
            Some(Translation { platform: "echo", result: Err(Refusal { class: "c", message, scrubbed: None }) })
        }

        fn process(&self, _: Option<&()>, _: &Event, _: &Context<'_>) -> Outcome<()> {
            Ok(Step::keep())
        }
    }

    fn work(offset: i64) -> Work {
        let record = Record { value: Some(offset.to_string().into_bytes()), ..Record::default() };
        Work { topic: "probe.events", partition: 0, pending: Pending { offset, timestamp_ms: None, record } }
    }

    fn message(t: &Translated) -> String {
        match &t.translation {
            Some(Translation { result: Err(r), .. }) => r.message.clone(),
            _ => panic!("not the echo's refusal"),
        }
    }

    #[test]
    fn records_come_back_in_order_and_forgotten_ones_never() {
        let mut t = Translator::start(Arc::new(Echo)).unwrap();
        for offset in 0..3 {
            t.send(work(offset)).unwrap();
        }
        assert!(t.next(false).unwrap().is_none(), "batched, not handed over yet");
        let first = t.next(true).unwrap().expect("on its way");
        assert_eq!((first.work.pending.offset, message(&first)), (0, "0".to_owned()));
        t.forget();
        t.send(work(10)).unwrap();
        // 1 and 2 were back when forgotten: dropped at once.
        let next = t.next(true).unwrap().expect("10 is not forgotten");
        assert_eq!(next.work.pending.offset, 10);
        assert_eq!(t.in_flight(), 0);
        assert!(t.next(true).unwrap().is_none(), "nothing on its way: no wait");
        // 20 is on the thread when forgotten: dropped when it comes back.
        t.send(work(20)).unwrap();
        t.flush().unwrap();
        t.forget();
        t.send(work(21)).unwrap();
        assert_eq!(t.next(true).unwrap().expect("21").work.pending.offset, 21);
        assert_eq!(t.in_flight(), 0);
    }
}
