//! Docs tables that describe behaviour, checked against the code, so they
//! cannot drift. No broker involved.

mod architecture;
mod classes;
mod flags;
mod ingest;
mod schemas;
mod tables;
mod transitions;
