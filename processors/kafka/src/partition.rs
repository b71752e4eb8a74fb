//! Where a keyed record lands, and how far a consumer has fetched a
//! partition: what the runtime needs to tell "nothing more to read" from
//! "not fetched yet" without a round trip to the broker.

use std::ffi::CString;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};

/// The partition the Java client's default partitioner (and librdkafka's
/// `murmur2_random`, which the producers use) picks for `key`.
pub fn java_partition(key: &[u8], partitions: i32) -> i32 {
    debug_assert!(partitions > 0);
    ((murmur2(key) & 0x7fff_ffff) % partitions as u32) as i32
}

/// Kafka's 32-bit murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`).
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// What the client last learnt of a partition, without asking the broker:
/// the high watermark of its latest fetch response and the consumer's
/// position (past any transaction marker it has read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    /// The log start of the latest fetch response (0 before one).
    pub low_watermark: i64,
    /// `None` before the first fetch response.
    pub high_watermark: Option<i64>,
    /// `None` before anything was consumed from the partition.
    pub position: Option<i64>,
}

/// Reads [`Fetched`] from the client's cache (rdkafka-rs wraps only the
/// network variant of `rd_kafka_get_watermark_offsets` and the position of
/// the whole assignment; this reads one partition, in microseconds).
pub fn fetched<C: ClientContext>(client: &Client<C>, topic: &str, partition: i32) -> Fetched {
    let Ok(name) = CString::new(topic) else {
        return Fetched { low_watermark: 0, high_watermark: None, position: None };
    };
    let (low, high_watermark) = watermarks(client, &name, partition);
    Fetched { low_watermark: low.max(0), high_watermark, position: position_of(client, &name, partition) }
}

/// Only the high watermark of [`fetched`]: no position, so no list to build.
pub fn fetched_high_watermark<C: ClientContext>(client: &Client<C>, topic: &str, partition: i32) -> Option<i64> {
    let name = CString::new(topic).ok()?;
    watermarks(client, &name, partition).1
}

fn watermarks<C: ClientContext>(client: &Client<C>, name: &CString, partition: i32) -> (i64, Option<i64>) {
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the handle is live for the borrow of `client`; the out
    // pointers are valid locals; librdkafka copies the topic name.
    let err = unsafe {
        rd::rd_kafka_get_watermark_offsets(client.native_ptr(), name.as_ptr(), partition, &mut low, &mut high)
    };
    (low, (err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high))
}

fn position_of<C: ClientContext>(client: &Client<C>, name: &CString, partition: i32) -> Option<i64> {
    // SAFETY: the list is created, read and destroyed here; rd_kafka_position
    // only fills in the offsets of the elements it is given.
    unsafe {
        let list = rd::rd_kafka_topic_partition_list_new(1);
        let element = rd::rd_kafka_topic_partition_list_add(list, name.as_ptr(), partition);
        let ok =
            rd::rd_kafka_position(client.native_ptr(), list) == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR;
        let offset = (*element).offset;
        rd::rd_kafka_topic_partition_list_destroy(list);
        (ok && offset >= 0).then_some(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Printed by kafka-clients 4.1.1: Utils.murmur2 and toPositive(..) % 12.
        let cases: [(&str, i32, i32); 8] = [
            ("", 275_646_681, 9),
            ("a", -1_563_381_124, 4),
            ("abc", 479_470_107, 3),
            ("21", -973_932_308, 0),
            ("foobar", -790_332_482, 6),
            ("booking-0001", -2_131_128_903, 5),
            ("a-little-bit-long-string", -985_981_536, 8),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971, 5),
        ];
        for (key, hash, partition) in cases {
            assert_eq!(murmur2(key.as_bytes()) as i32, hash, "murmur2({key:?})");
            assert_eq!(java_partition(key.as_bytes(), 12), partition, "partition of {key:?}");
        }
        // Kafka's UtilsTest.
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1_486_304_829);
    }
}
