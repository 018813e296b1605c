use super::plan::{chunk_size, plan};
use super::progress::Progress;
use super::*;
use crate::catalog::model::QualifiedName;
use crate::catalog::published::PublishedTable;
use crate::status::TableState;

fn table(bytes: u64, blocks: u64) -> PublishedTable {
    PublishedTable {
        root: QualifiedName::new("public", "big \"one\""),
        leaf: QualifiedName::new("public", "big \"one\""),
        columns: vec!["id".into(), "Naïve col".into()],
        binary: true,
        bytes,
        blocks,
    }
}

#[test]
fn large_tables_split_into_contiguous_ranges_with_open_ends() {
    let chunks = plan(vec![table(1000, 100), table(50, 5)], Some(300));
    let ranges: Vec<_> = chunks.iter().filter_map(|c| c.range).collect();
    assert_eq!(
        ranges,
        vec![
            (None, Some(25)),
            (Some(25), Some(50)),
            (Some(50), Some(75)),
            (Some(75), None)
        ]
    );
    // The small table is one chunk, queued after the large table's pieces (largest first).
    assert_eq!(chunks.len(), 5);
    assert!(chunks.last().unwrap().range.is_none());
    assert_eq!(
        chunks[1].copy_out(),
        "COPY (SELECT \"id\", \"Naïve col\" FROM ONLY \"public\".\"big \"\"one\"\"\" \
         WHERE ctid >= '(25,0)'::tid AND ctid < '(50,0)'::tid) TO STDOUT (FORMAT binary)"
    );
    assert_eq!(
        chunks[4].copy_in(),
        "COPY \"public\".\"big \"\"one\"\"\" (\"id\", \"Naïve col\") FROM STDIN (FORMAT binary)"
    );
}

#[test]
fn no_split_when_disabled_or_small_and_text_for_user_types() {
    assert_eq!(plan(vec![table(1000, 100)], None).len(), 1);
    assert_eq!(plan(vec![table(1000, 1)], Some(10)).len(), 1);
    let mut t = table(10, 1);
    t.binary = false;
    let chunk = &plan(vec![t], None)[0];
    assert!(!chunk.copy_out().contains("binary"));
    assert!(
        chunk
            .copy_out()
            .starts_with("COPY \"public\".\"big \"\"one\"\"\" (\"id\"")
    );
}

#[test]
fn automatic_chunks_split_only_what_would_outlast_the_other_workers() {
    const MB: u64 = 1024 * 1024;
    let settings = CopySettings {
        fast: true,
        workers: 2,
        split: true,
        chunk_bytes: 0,
        max_standby_lag_bytes: 0,
        max_latency: Duration::ZERO,
        slot_create_timeout: Duration::from_secs(600),
    };
    // 900 MB over 2 workers: a 450 MB share; the 600 MB table is split in two, the
    // 300 MB one is not.
    let tables = vec![table(600 * MB, 600 * 128), table(300 * MB, 300 * 128)];
    let chunk = chunk_size(&settings, &tables);
    assert_eq!(chunk, Some(450 * MB));
    let chunks = plan(tables.clone(), chunk);
    assert_eq!(chunks.iter().filter(|c| c.range.is_some()).count(), 2);
    assert_eq!(chunks.len(), 3);
    // Small data is never split below 64 MB ranges; an explicit size wins; off is off.
    assert_eq!(
        chunk_size(&settings, &[table(10 * MB, 1280)]),
        Some(64 * MB)
    );
    let explicit = CopySettings {
        chunk_bytes: MB,
        ..settings
    };
    assert_eq!(chunk_size(&explicit, &tables), Some(MB));
    let off = CopySettings {
        split: false,
        ..explicit
    };
    assert_eq!(chunk_size(&off, &tables), None);
}

#[test]
fn progress_reports_queued_copying_and_done() {
    let chunks = plan(vec![table(1000, 100)], Some(500));
    let progress = Progress::default();
    progress.plan(&chunks);
    assert_eq!(progress.tables()[0].state, TableState::Init);
    let root = &chunks[0].table.root;
    progress.started(root);
    progress.copied(root, 300);
    let row = &progress.tables()[0];
    assert_eq!(
        (row.state, row.bytes_copied, row.bytes_total),
        (TableState::Copying, 300, 1000)
    );
    progress.finished(root);
    progress.finished(root);
    let row = &progress.tables()[0];
    assert_eq!(
        (row.state, row.bytes_copied),
        (TableState::FinishedCopy, 1000)
    );
}
