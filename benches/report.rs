//! Shared by the bench harnesses (included with `#[path]`): settings from the environment, the
//! machine description and the rewrite of one marked section of docs/BENCHMARKS.md.

use std::path::Path;

/// The number in environment variable `name` (a bench's shape), or `default`.
#[allow(dead_code)] // not every harness has settings
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The comma-separated indexes in environment variable `name` (`BENCH_METHODS=0,2`), or every
/// index below `count` when it is unset.
#[allow(dead_code)] // the benches that measure one thing have no list
pub fn env_indexes(name: &str, count: usize) -> Vec<usize> {
    std::env::var(name)
        .map(|list| {
            list.split(',')
                .filter_map(|i| i.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|_| (0..count).collect())
}

/// Runs `bench` to its end on a multi-threaded tokio runtime.
#[allow(dead_code)] // the render bench runs its requests on a runtime of its own
pub fn block_on<F: std::future::Future>(bench: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench)
}

/// `N cores, <CPU model>`.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

/// Replaces the section between `<!-- bench:{name} -->` and `<!-- /bench:{name} -->` of
/// docs/BENCHMARKS.md (under `workspace`) with `body`, or appends it.
pub fn write_section(workspace: &Path, name: &str, body: &str) {
    let start = format!("<!-- bench:{name} -->");
    let end = format!("<!-- /bench:{name} -->");
    let section = format!("{start}\n{}\n{end}", body.trim_end());
    let path = workspace.join("docs/BENCHMARKS.md");
    let existing = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        "# Benchmarks\n\nFigures measured by the bench harnesses; each section is rewritten by the \
         command it names.\n"
            .to_owned()
    });
    let updated = match (existing.find(&start), existing.find(&end)) {
        (Some(s), Some(e)) => format!("{}{section}{}", &existing[..s], &existing[e + end.len()..]),
        _ => format!("{}\n\n{section}\n", existing.trim_end()),
    };
    std::fs::write(&path, updated).unwrap();
    println!("written to {}", path.display());
}
