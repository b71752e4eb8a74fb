//! Local state snapshots: a partition's committed state written to disk
//! when the instance stops cleanly, with the changelog offset it is the
//! state of, so that the next start on the same disk reads only the
//! changelog written after it (Kafka Streams' checkpoint file, for a store
//! that lives in memory).
//!
//! A snapshot stands for "the changelog partition up to `changelog_end`,
//! as of the input offsets in `committed`". It is used only after checks
//! against the cluster (`runner::snapshots`): the changelog still reaches
//! `changelog_end` and starts at or before it, the group's offsets have not
//! gone back, and the `anchor` (the last record before the end, by offset
//! and digest) is still that record, which tells a changelog deleted and
//! created again from the one the snapshot was taken of. Anything else, or
//! a file that does not read back whole, means a restore from the
//! changelog's beginning; a snapshot never makes a restore wrong, only
//! shorter.
//!
//! Format (version 1), one file per partition, written to a temporary name,
//! synced and renamed into place:
//!
//! ```text
//! SGSNAP1\n
//! <header: one line of JSON>\n
//! entries × (u32 LE key length, key, u32 LE value length, value: the changelog's JSON Entry)
//! u64 LE digest of every byte before it
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::changelog::Entry;

const MAGIC: &[u8] = b"SGSNAP1\n";
/// A key or value longer than this is not one the runtime wrote.
const MAX_FIELD: usize = 64 << 20;

/// What a snapshot is the state of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub group: String,
    /// The changelog topic, as named on the cluster.
    pub topic: String,
    pub partition: i32,
    /// The changelog's end (its next offset) when the snapshot was taken:
    /// the state is that of every record before it.
    pub changelog_end: i64,
    /// The last record before `changelog_end`; `None` when there is none (an empty changelog).
    pub anchor: Option<Anchor>,
    /// The group's committed input offsets when it was taken (`topics.yaml`
    /// names; an input the group had read nothing of is absent).
    pub committed: BTreeMap<String, i64>,
    /// When it was written (ms since the epoch).
    pub written_at_ms: i64,
    pub entries: u64,
}

/// A changelog record by offset and digest (of its key and value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub offset: i64,
    pub digest: u64,
}

impl Anchor {
    pub fn of(offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Anchor {
        let mut d = Digest::default();
        for part in [key, value] {
            match part {
                Some(bytes) => {
                    d.update(&(bytes.len() as u64).to_le_bytes());
                    d.update(bytes);
                }
                None => d.update(&u64::MAX.to_le_bytes()),
            }
        }
        Anchor { offset, digest: d.finish() }
    }
}

/// Why a snapshot was not written or cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The snapshot is not there, incomplete or not this state's: restore from the changelog.
    #[error("snapshot {path}: {reason}")]
    RestoreInFull { path: PathBuf, reason: String },
    /// The next start restores this partition from the changelog.
    #[error("writing snapshot {path}: {source}")]
    NotWritten {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where partition `partition` of `topic` is kept under `dir`.
pub fn path(dir: &Path, topic: &str, partition: i32) -> PathBuf {
    dir.join(topic).join(format!("{partition}.snapshot"))
}

/// Writes a snapshot (to a temporary file, synced, then renamed over the
/// old one); returns its size in bytes.
pub fn write<S: Serialize>(
    dir: &Path,
    header: &Header,
    state: &HashMap<String, Entry<S>>,
) -> Result<u64, SnapshotError> {
    let target = path(dir, &header.topic, header.partition);
    let tmp = target.with_extension("snapshot.tmp");
    let fail = |source| SnapshotError::NotWritten { path: target.clone(), source };
    std::fs::create_dir_all(target.parent().expect("a topic directory")).map_err(fail)?;
    let file = File::create(&tmp).map_err(fail)?;
    let mut out = Hashing { inner: BufWriter::with_capacity(1 << 20, file), digest: Digest::default(), bytes: 0 };
    let mut header = header.clone();
    header.entries = state.len() as u64;
    let mut value = Vec::with_capacity(512);
    let written = (|| -> std::io::Result<u64> {
        out.write_all(MAGIC)?;
        out.write_all(&serde_json::to_vec(&header)?)?;
        out.write_all(b"\n")?;
        for (key, entry) in state {
            value.clear();
            serde_json::to_writer(&mut value, entry)?;
            out.write_all(&(key.len() as u32).to_le_bytes())?;
            out.write_all(key.as_bytes())?;
            out.write_all(&(value.len() as u32).to_le_bytes())?;
            out.write_all(&value)?;
        }
        let digest = out.digest.clone().finish();
        out.inner.write_all(&digest.to_le_bytes())?;
        let bytes = out.bytes + 8;
        let file = out.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(bytes)
    })();
    let bytes = match written {
        Ok(bytes) => bytes,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(fail(e));
        }
    };
    std::fs::rename(&tmp, &target).map_err(fail)?;
    // The rename is durable once the directory is.
    if let Ok(d) = File::open(target.parent().expect("a topic directory")) {
        let _ = d.sync_all();
    }
    Ok(bytes)
}

/// An open snapshot whose header has been read; its entries are read by [`Reader::entries`].
pub struct Reader {
    path: PathBuf,
    input: Hashing<BufReader<File>>,
    pub header: Header,
}

impl Reader {
    /// Opens the snapshot of `partition` of `topic`; `Ok(None)` when there is none.
    pub fn open(dir: &Path, topic: &str, partition: i32) -> Result<Option<Reader>, SnapshotError> {
        let path = path(dir, topic, partition);
        let unusable = |reason: String| SnapshotError::RestoreInFull { path: path.clone(), reason };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unusable(e.to_string())),
        };
        let mut input = Hashing { inner: BufReader::with_capacity(1 << 20, file), digest: Digest::default(), bytes: 0 };
        let mut magic = [0u8; MAGIC.len()];
        input.read_exact(&mut magic).map_err(|e| unusable(format!("too short: {e}")))?;
        if magic != MAGIC {
            return Err(unusable("not a sagastream snapshot of format version 1".into()));
        }
        let mut line = Vec::new();
        input.read_line(&mut line).map_err(|e| unusable(e.to_string()))?;
        let header: Header =
            serde_json::from_slice(&line).map_err(|e| unusable(format!("header does not decode: {e}")))?;
        if header.topic != topic || header.partition != partition {
            return Err(unusable(format!("holds {}[{}]", header.topic, header.partition)));
        }
        Ok(Some(Reader { path, input, header }))
    }

    /// Reads every entry and checks the digest; any fault rejects the whole snapshot.
    pub fn entries<S: DeserializeOwned>(mut self) -> Result<HashMap<String, Entry<S>>, SnapshotError> {
        let path = self.path.clone();
        let unusable = |reason: String| SnapshotError::RestoreInFull { path: path.clone(), reason };
        let count = usize::try_from(self.header.entries).map_err(|_| unusable("too many entries".into()))?;
        let mut state = HashMap::with_capacity(count.min(1 << 24));
        let mut buf = Vec::with_capacity(512);
        for i in 0..count {
            let key = self.field(&mut buf).map_err(|e| unusable(format!("entry {i}: {e}")))?;
            let key = String::from_utf8(key.to_vec()).map_err(|_| unusable(format!("entry {i}: key is not UTF-8")))?;
            let value = self.field(&mut buf).map_err(|e| unusable(format!("entry {i}: {e}")))?;
            let entry: Entry<S> = serde_json::from_slice(value)
                .map_err(|e| unusable(format!("entry {i} ({key}) does not decode: {e}")))?;
            state.insert(key, entry);
        }
        let expected = self.input.digest.clone().finish();
        let mut trailer = [0u8; 8];
        self.input.inner.read_exact(&mut trailer).map_err(|e| unusable(format!("no digest: {e}")))?;
        if u64::from_le_bytes(trailer) != expected {
            return Err(unusable("digest does not match its content (damaged)".into()));
        }
        let mut rest = [0u8; 1];
        if self.input.inner.read(&mut rest).map_err(|e| unusable(e.to_string()))? != 0 {
            return Err(unusable("bytes after the digest".into()));
        }
        Ok(state)
    }

    fn field<'b>(&mut self, buf: &'b mut Vec<u8>) -> std::io::Result<&'b [u8]> {
        let mut len = [0u8; 4];
        self.input.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_FIELD {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("a field of {len} bytes")));
        }
        buf.resize(len, 0);
        self.input.read_exact(buf)?;
        Ok(buf)
    }
}

/// Removes a partition's snapshot (best effort: a stale one is rejected by its checks anyway).
pub fn remove(dir: &Path, topic: &str, partition: i32) {
    let _ = std::fs::remove_file(path(dir, topic, partition));
}

/// A fast 64-bit digest over 8-byte words, for damage, not for adversaries.
#[derive(Debug, Clone)]
struct Digest {
    h: u64,
    tail: [u8; 8],
    filled: usize,
    len: u64,
}

impl Default for Digest {
    fn default() -> Self {
        Digest { h: 0xcbf2_9ce4_8422_2325, tail: [0; 8], filled: 0, len: 0 }
    }
}

impl Digest {
    fn word(&mut self, w: u64) {
        self.h = (self.h ^ w).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(23);
    }

    fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.filled > 0 {
            let n = (8 - self.filled).min(bytes.len());
            self.tail[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled < 8 {
                return;
            }
            self.word(u64::from_le_bytes(self.tail));
            self.filled = 0;
        }
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.word(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.filled = rest.len();
    }

    fn finish(mut self) -> u64 {
        let mut last = [0u8; 8];
        last[..self.filled].copy_from_slice(&self.tail[..self.filled]);
        self.word(u64::from_le_bytes(last));
        self.word(self.len);
        let mut h = self.h;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }
}

/// A reader or writer that digests what passes through it.
struct Hashing<T> {
    inner: T,
    digest: Digest,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digest.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.update(&buf[..n]);
        Ok(n)
    }
}

impl<R: BufRead> Hashing<R> {
    fn read_line(&mut self, line: &mut Vec<u8>) -> std::io::Result<()> {
        self.inner.read_until(b'\n', line)?;
        self.digest.update(line);
        if line.pop() != Some(b'\n') {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the header line is cut short"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(n: usize) -> HashMap<String, Entry<u32>> {
        (0..n)
            .map(|i| {
                let mut e = Entry { state: Some(i as u32), ..Entry::default() };
                e.timers.insert("hold".into(), 1_700_000_000_000 + i as i64);
                e.seen.push(&format!("id-{i}"), 32);
                (format!("bk-{i}"), e)
            })
            .collect()
    }

    fn header(partition: i32) -> Header {
        Header {
            group: "g".into(),
            topic: "t.changelog".into(),
            partition,
            changelog_end: 42,
            anchor: Some(Anchor::of(40, Some(b"bk-1"), Some(b"{}"))),
            committed: BTreeMap::from([("booking.events".into(), 7)]),
            written_at_ms: 1_700_000_000_000,
            entries: 0,
        }
    }

    #[test]
    fn round_trip_with_header_and_entries() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(1000);
        let bytes = write(dir.path(), &header(3), &s).unwrap();
        assert_eq!(bytes, std::fs::metadata(path(dir.path(), "t.changelog", 3)).unwrap().len());
        let r = Reader::open(dir.path(), "t.changelog", 3).unwrap().expect("written");
        assert_eq!(r.header, Header { entries: 1000, ..header(3) });
        assert_eq!(r.entries::<u32>().unwrap(), s);
        assert!(Reader::open(dir.path(), "t.changelog", 4).unwrap().is_none(), "no snapshot is not an error");
        // Written again over the old one, with nothing left beside it.
        write(dir.path(), &header(3), &state(2)).unwrap();
        let r = Reader::open(dir.path(), "t.changelog", 3).unwrap().unwrap();
        assert_eq!(r.entries::<u32>().unwrap().len(), 2);
        assert_eq!(std::fs::read_dir(dir.path().join("t.changelog")).unwrap().count(), 1);
    }

    #[test]
    fn any_damage_rejects_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &header(0), &state(50)).unwrap();
        let file = path(dir.path(), "t.changelog", 0);
        let good = std::fs::read(&file).unwrap();
        let rejected = |bytes: &[u8]| -> String {
            std::fs::write(&file, bytes).unwrap();
            match Reader::open(dir.path(), "t.changelog", 0).and_then(|r| r.unwrap().entries::<u32>()) {
                Err(SnapshotError::RestoreInFull { reason, .. }) => reason,
                other => panic!("accepted a damaged snapshot: {:?}", other.map(|s| s.len())),
            }
        };
        let mut flipped = good.clone();
        let at = good.len() / 2;
        flipped[at] ^= 0x20;
        assert!(!rejected(&flipped).is_empty());
        assert!(rejected(&good[..good.len() - 3]).contains("digest"));
        assert!(rejected(&good[..good.len() / 3]).contains("entry"));
        assert!(rejected(&[good.as_slice(), b"x"].concat()).contains("after the digest"));
        assert!(rejected(b"SGSNAP2\n{}\n").contains("format version"));
        // A snapshot of another partition under this one's name.
        write(dir.path(), &header(1), &state(1)).unwrap();
        std::fs::rename(path(dir.path(), "t.changelog", 1), &file).unwrap();
        assert!(rejected(&std::fs::read(&file).unwrap()).contains("holds t.changelog[1]"));
    }

    #[test]
    fn anchors_tell_records_apart() {
        let a = Anchor::of(5, Some(b"k"), Some(b"v"));
        assert_eq!(a, Anchor::of(5, Some(b"k"), Some(b"v")));
        assert_ne!(a.digest, Anchor::of(5, Some(b"k"), None).digest);
        assert_ne!(a.digest, Anchor::of(5, Some(b"kv"), Some(b"")).digest);
        assert_ne!(a.digest, Anchor::of(5, Some(b"k"), Some(b"w")).digest);
    }

    #[test]
    fn the_digest_does_not_depend_on_how_bytes_are_split() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut whole = Digest::default();
        whole.update(&bytes);
        let mut parts = Digest::default();
        for chunk in bytes.chunks(7) {
            parts.update(chunk);
        }
        assert_eq!(whole.finish(), parts.finish());
        let mut other = Digest::default();
        other.update(&bytes[1..]);
        let mut again = Digest::default();
        again.update(&bytes);
        assert_ne!(other.finish(), again.finish());
    }
}
