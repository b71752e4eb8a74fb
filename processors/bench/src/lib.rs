//! What more than one bench needs, beside the processors' binaries in
//! `src/bin`.

pub mod ingest_records;
