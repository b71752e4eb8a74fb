//! Deterministic ids and trace context for derived events, so that a re-run
//! after a crash or an aborted transaction produces byte-identical records
//! that any consumer can de-duplicate by CloudEvent `id`.

use sagastream_contract::TraceParent;
use uuid::Uuid;

/// Namespace of every sagastream-derived event id (UUID v5).
const NAMESPACE: Uuid = Uuid::from_u128(0x5a6a_57e2_4d1c_4b8e_9f3a_2c71_d0e8_b61f);

/// What caused an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause<'a> {
    Input { event_id: &'a str },
    Timer { key: &'a str, name: &'a str, due_ms: i64 },
}

/// UUID v5 of (processor, cause, event type, a 64-bit FNV-1a digest of the
/// event's JSON data, and how many identical events the step emitted before
/// this one).
///
/// The content is part of the name so that an id always means one event:
/// a re-run of the same input from the same state yields byte-identical
/// twins, and a re-run that decides differently (after a crash the inputs
/// of two topics may interleave in another order) yields new ids instead of
/// reusing the ids of events that were never committed. A consumer that
/// sees aborted records (read_uncommitted, or a broker that leaks them) then
/// never drops a real event as a "duplicate" of a different one.
pub fn derived_id(processor: &str, cause: Cause<'_>, event_type: &str, data: &[u8], occurrence: usize) -> Uuid {
    // Built by hand: this runs for every output, and `format!` costs more
    // than the SHA-1. The layout is part of the id: never change it.
    let mut name = Vec::with_capacity(128);
    name.extend_from_slice(processor.as_bytes());
    match cause {
        Cause::Input { event_id } => {
            name.extend_from_slice(b"\ninput\n");
            name.extend_from_slice(event_id.as_bytes());
        }
        Cause::Timer { key, name: timer, due_ms } => {
            name.extend_from_slice(b"\ntimer\n");
            name.extend_from_slice(key.as_bytes());
            name.push(b'\n');
            name.extend_from_slice(timer.as_bytes());
            name.push(b'\n');
            name.extend_from_slice(itoa_i64(due_ms, &mut [0u8; 20]).as_bytes());
        }
    }
    name.push(b'\n');
    name.extend_from_slice(event_type.as_bytes());
    name.push(b'\n');
    // A stable 64-bit digest of the data instead of the data itself: the
    // SHA-1 of v5 then runs over ~100 bytes, not the whole event.
    name.extend_from_slice(&fnv1a64(data).to_be_bytes());
    name.push(b'\n');
    name.extend_from_slice(itoa_i64(occurrence as i64, &mut [0u8; 20]).as_bytes());
    Uuid::new_v5(&NAMESPACE, &name)
}

/// FNV-1a, 64 bits: stable across Rust versions (unlike `DefaultHasher`),
/// which ids need, since a restart may run a newer binary.
fn fnv1a64(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Decimal text of `n` in `buf`, without the formatting machinery.
fn itoa_i64(n: i64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    std::str::from_utf8(&buf[i..]).expect("ASCII digits")
}

/// A child of the input's trace (same trace id and flags, a span id taken
/// from the derived id), or a new trace whose id comes from the cause.
pub fn child_traceparent(parent: Option<&TraceParent>, derived: Uuid, cause_seed: &str) -> TraceParent {
    let mut buf = [0u8; uuid::fmt::Simple::LENGTH];
    let span = &derived.simple().encode_lower(&mut buf)[..16];
    let mut trace_buf = [0u8; uuid::fmt::Simple::LENGTH];
    let (trace, flags) = match parent {
        Some(p) => (p.trace_id(), &p.as_str()[p.as_str().len() - 2..]),
        None => (&*Uuid::new_v5(&NAMESPACE, cause_seed.as_bytes()).simple().encode_lower(&mut trace_buf), "01"),
    };
    let mut text = String::with_capacity(55);
    for part in ["00-", trace, "-", span, "-", flags] {
        text.push_str(part);
    }
    // Both parts are lower-case hex and never all zero (v5 sets version bits).
    TraceParent::parse_owned(text).unwrap_or_else(|_| TraceParent::new_root())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_their_layout() {
        // The name hashed is part of the id: these must never change.
        // FNV-1a of "{}", as published test vectors compute it.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let digest = fnv1a64(b"{}").to_be_bytes();
        let name = |head: &[u8], tail: &[u8]| [head, &digest, tail].concat();
        let input = Uuid::new_v5(&NAMESPACE, &name(b"p\ninput\ne1\nx.y\n", b"\n12"));
        assert_eq!(derived_id("p", Cause::Input { event_id: "e1" }, "x.y", b"{}", 12), input);
        let timer = Uuid::new_v5(&NAMESPACE, &name(b"p\ntimer\nk\nt\n-1700000000000\nx.y\n", b"\n0"));
        let cause = Cause::Timer { key: "k", name: "t", due_ms: -1_700_000_000_000 };
        assert_eq!(derived_id("p", cause, "x.y", b"{}", 0), timer);
        assert_eq!(itoa_i64(i64::MIN, &mut [0u8; 20]), i64::MIN.to_string());
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let id = |p: &str, c: Cause<'_>, t: &str, d: &[u8], n: usize| derived_id(p, c, t, d, n);
        let e1 = Cause::Input { event_id: "e1" };
        let a = id("p", e1, "x.y", b"{}", 0);
        assert_eq!(a, id("p", e1, "x.y", b"{}", 0), "the same event again is a twin");
        assert_ne!(a, id("p", e1, "x.y", b"{}", 1));
        assert_ne!(a, id("p", e1, "x.z", b"{}", 0), "another type is another event");
        assert_ne!(a, id("p", e1, "x.y", b"{\"a\":1}", 0), "other content is another event");
        assert_ne!(a, id("q", e1, "x.y", b"{}", 0));
        assert_ne!(a, id("p", Cause::Timer { key: "e1", name: "t", due_ms: 0 }, "x.y", b"{}", 0));
        assert_eq!(a.get_version_num(), 5);
    }

    #[test]
    fn trace_is_inherited() {
        let parent = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        let id = derived_id("p", Cause::Input { event_id: "e1" }, "x.y", b"{}", 0);
        let child = child_traceparent(Some(&parent), id, "e1");
        assert_eq!(child.trace_id(), parent.trace_id());
        assert!(child.as_str().ends_with("-00"));
        assert_ne!(child, parent);
        let root = child_traceparent(None, id, "e1");
        assert_eq!(root, child_traceparent(None, id, "e1"));
        assert!(root.as_str().ends_with("-01"));
    }
}
