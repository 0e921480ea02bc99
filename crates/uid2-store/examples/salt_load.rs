//! Load-time check for a full salt snapshot (not a test): parses the salts of a store directory
//! (`salts/metadata.json` and its files) and prints the time and the number of buckets.
//!
//!     cargo run --release -p uid2-store --example salt_load -- <store dir>

use std::time::Instant;

use uid2_store::metadata::parse_salts_metadata;
use uid2_store::salts::SaltStore;
use uid2_store::source::resolve_location;
use uid2_store::{DirSource, StoreSource};

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: salt_load <store dir>");
        std::process::exit(64);
    };
    let source = DirSource::new(&dir);
    let started = Instant::now();
    let metadata = match source
        .read("salts/metadata.json")
        .and_then(|b| parse_salts_metadata(&b))
    {
        Ok(m) => m,
        Err(e) => {
            eprintln!("metadata: {e}");
            std::process::exit(1);
        }
    };
    let mut files = Vec::new();
    for spec in &metadata.snapshots {
        match source.read(resolve_location(&spec.location)) {
            Ok(bytes) => files.push((spec.location.clone(), bytes)),
            Err(e) => {
                eprintln!("salt file: {e}");
                std::process::exit(1);
            }
        }
    }
    let read = started.elapsed();
    let parse_started = Instant::now();
    let store = SaltStore::build(
        &metadata,
        |location| {
            files
                .iter()
                .find(|(l, _)| l == location)
                .map(|(_, b)| b.clone())
                .ok_or_else(|| uid2_store::StoreError::new("salts", uid2_store::Problem::NotUtf8))
        },
        0,
    );
    match store {
        Ok(store) => println!(
            "buckets={} read_s={:.2} parse_s={:.2}",
            store.snapshot_at(0).len(),
            read.as_secs_f64(),
            parse_started.elapsed().as_secs_f64()
        ),
        Err(e) => {
            eprintln!("salts: {e}");
            std::process::exit(1);
        }
    }
}
