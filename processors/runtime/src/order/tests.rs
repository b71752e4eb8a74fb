use super::*;

const IDLE: Duration = Duration::from_millis(500);

fn lanes(now: Instant) -> Lanes<&'static str> {
    let mut l = Lanes::new(vec!["booking.events", "payment.events"], IDLE, 100);
    l.assign(0, now);
    l.assign(1, now);
    l
}

fn rec(topic: &'static str, partition: i32, ts: i64, item: &'static str) -> Buffered<&'static str> {
    Buffered { topic, partition, timestamp_ms: ts, item }
}

fn drain(l: &mut Lanes<&'static str>, now: Instant) -> Vec<&'static str> {
    std::iter::from_fn(|| l.pop(now).map(|(r, _)| r.item)).collect()
}

#[test]
fn a_task_waits_for_a_lane_not_known_to_be_at_its_end() {
    let t0 = Instant::now();
    let mut l = lanes(t0);
    l.push(rec("payment.events", 0, 20, "held"), t0).unwrap();
    assert!(l.pop(t0).is_none(), "the booking lane may still hold older records");
    assert_eq!(l.unknown(false), vec![("booking.events", 0), ("booking.events", 1), ("payment.events", 1)]);
    assert_eq!(l.unknown(true), vec![("booking.events", 0)], "only the lane holding a record back");
    l.push(rec("booking.events", 0, 10, "accepted"), t0).unwrap();
    assert_eq!(drain(&mut l, t0), vec!["accepted"], "the older record goes first; then the booking lane is unknown");
    l.mark_at_end("booking.events", 0);
    assert_eq!(drain(&mut l, t0), vec!["held"]);
}

#[test]
fn history_read_a_topic_at_a_time_comes_out_in_event_time_order() {
    let t0 = Instant::now();
    let mut l = lanes(t0);
    for (ts, item) in [(2, "created"), (3, "held"), (6, "released")] {
        l.push(rec("payment.events", 0, ts, item), t0).unwrap();
    }
    for (ts, item) in [(1, "accepted"), (4, "picked_up"), (5, "confirmed")] {
        l.push(rec("booking.events", 0, ts, item), t0).unwrap();
    }
    let mut got = drain(&mut l, t0);
    l.mark_at_end("booking.events", 0);
    got.extend(drain(&mut l, t0));
    assert_eq!(got, vec!["accepted", "created", "held", "picked_up", "confirmed", "released"]);
    assert_eq!(l.buffered(), 0);
}

#[test]
fn equal_timestamps_go_in_the_declared_topic_order() {
    let t0 = Instant::now();
    let mut l = lanes(t0);
    l.push(rec("payment.events", 0, 7, "payment"), t0).unwrap();
    l.push(rec("booking.events", 0, 7, "booking"), t0).unwrap();
    assert_eq!(l.pop(t0).unwrap().0.item, "booking");
}

#[test]
fn a_silent_lane_holds_its_task_back_for_max_idle_once_the_consumer_has_nothing_else() {
    let t0 = Instant::now();
    let mut l = lanes(t0);
    l.push(rec("payment.events", 1, 5, "late"), t0).unwrap();
    assert!(l.pop(t0 + IDLE * 2).is_none(), "silent while the consumer is busy: its records may be queued");
    let t1 = t0 + IDLE * 2;
    l.starved(t1);
    l.starved(t1 + IDLE / 2);
    assert!(l.pop(t1 + IDLE / 2).is_none());
    assert_eq!(l.next_deadline(), Some(t1 + IDLE), "idle counts from the first empty poll");
    let (r, why) = l.pop(t1 + IDLE).expect("enforced once the lane was silent for max_idle with nothing queued");
    assert_eq!((r.item, why), ("late", Enforced::Idle));
}

#[test]
fn a_silent_lane_holds_its_task_back_at_most_the_cap_while_the_consumer_stays_busy() {
    let t0 = Instant::now();
    let mut l = lanes(t0);
    l.push(rec("payment.events", 1, 5, "late"), t0).unwrap();
    assert_eq!(l.next_deadline(), Some(t0 + IDLE * SILENCE_CAP));
    assert!(l.pop(t0 + IDLE * SILENCE_CAP - Duration::from_millis(1)).is_none());
    assert_eq!(l.pop(t0 + IDLE * SILENCE_CAP).map(|(r, why)| (r.item, why)), Some(("late", Enforced::Idle)));
}

#[test]
fn full_buffers_let_the_oldest_head_go() {
    let t0 = Instant::now();
    let mut l = Lanes::new(vec!["a", "b"], IDLE, 2);
    l.assign(0, t0);
    l.push(rec("a", 0, 2, "second"), t0).unwrap();
    assert!(l.pop(t0).is_none());
    l.push(rec("a", 0, 3, "third"), t0).unwrap();
    let (r, why) = l.pop(t0).unwrap();
    assert_eq!((r.item, why), ("second", Enforced::Full));
}

#[test]
fn tasks_do_not_wait_for_each_other_and_the_oldest_head_goes_first() {
    let t0 = Instant::now();
    let mut l = lanes(t0);
    l.mark_at_end("payment.events", 0);
    l.mark_at_end("payment.events", 1);
    l.push(rec("booking.events", 1, 9, "p1"), t0).unwrap();
    l.push(rec("booking.events", 0, 3, "p0"), t0).unwrap();
    assert_eq!(drain(&mut l, t0), vec!["p0", "p1"]);
}

#[test]
fn records_of_tasks_not_owned_and_topics_not_ordered_are_given_back() {
    let t0 = Instant::now();
    let mut l = lanes(t0);
    assert!(l.push(rec("booking.events", 7, 1, "x"), t0).is_err());
    assert!(l.push(rec("other", 0, 1, "y"), t0).is_err());
    l.push(rec("booking.events", 0, 1, "z"), t0).unwrap();
    assert!(!l.is_drained("booking.events", 0));
    l.revoke(0);
    assert_eq!(l.buffered(), 0);
    assert!(l.is_drained("booking.events", 0));
}

#[test]
fn a_record_clears_at_end_and_a_rewind_forgets_everything() {
    let t0 = Instant::now();
    let mut l = lanes(t0);
    l.mark_at_end("booking.events", 0);
    l.push(rec("booking.events", 0, 1, "a"), t0).unwrap();
    l.mark_at_end("booking.events", 0);
    assert!(!l.unknown(false).contains(&("booking.events", 0)), "marking a lane with records is a no-op");
    l.mark_at_end("payment.events", 0);
    assert_eq!(drain(&mut l, t0), vec!["a"]);
    assert!(l.unknown(false).contains(&("booking.events", 0)), "the record cleared at_end");
    l.push(rec("payment.events", 0, 2, "b"), t0).unwrap();
    l.rewind(t0);
    assert_eq!(l.buffered(), 0);
    assert!(l.unknown(false).contains(&("payment.events", 0)));
}

#[test]
fn timers_fire_just_before_the_next_record_or_up_to_now_once_caught_up() {
    let t0 = Instant::now();
    let now_ms = 1_000_000;
    let mut l = lanes(t0);
    assert_eq!(l.horizon(0, now_ms, t0), i64::MIN, "nothing known yet: no timer may fire");
    l.push(rec("booking.events", 0, 100, "accepted"), t0).unwrap();
    assert_eq!(l.horizon(0, now_ms, t0), 99, "a timer due at 100 or later waits for the record of 100");
    l.mark_at_end("payment.events", 0);
    drain(&mut l, t0);
    assert_eq!(l.horizon(0, now_ms, t0), 100, "the booking lane may have more: the task's time is 100");
    l.mark_at_end("booking.events", 0);
    assert_eq!(l.horizon(0, now_ms, t0), now_ms, "caught up: wall-clock time");
    l.starved(t0);
    assert_eq!(l.horizon(1, now_ms, t0 + IDLE), now_ms, "silent lanes count as caught up after max_idle");
    assert_eq!(l.horizon(9, now_ms, t0), now_ms, "a partition of no task");
}

#[test]
fn a_record_passes_unbuffered_only_when_nothing_of_its_task_can_be_older() {
    let t0 = Instant::now();
    let mut l = lanes(t0);
    assert!(!l.pass("booking.events", 0, 5, t0), "the payment lane is not known yet");
    l.mark_at_end("payment.events", 0);
    assert!(l.pass("booking.events", 0, 5, t0));
    assert!(l.pass("booking.events", 0, 6, t0), "its own lane never holds it back");
    assert_eq!(l.horizon(0, 1_000, t0), 6, "passed records move the task's time");
    assert!(l.unknown(false).contains(&("booking.events", 0)), "more may follow on its lane");
    l.push(rec("booking.events", 1, 1, "waiting"), t0).unwrap();
    l.mark_at_end("booking.events", 1);
    assert!(!l.pass("payment.events", 1, 2, t0), "a task with a buffered record goes through the lanes");
    assert!(!l.pass("other", 0, 1, t0) && !l.pass("booking.events", 9, 1, t0));
}
