//! The docs keep up with the code: every finding code (the snake_case names scripts match on,
//! in `findings.rs`) is explained in docs/TROUBLESHOOTING.md. Pure text: no server needed.

use std::path::Path;

#[test]
fn every_finding_code_is_explained_in_troubleshooting() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(root.join("src/findings.rs")).unwrap();
    let doc = std::fs::read_to_string(root.join("../docs/TROUBLESHOOTING.md")).unwrap();
    let codes: Vec<&str> = source
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("Code::")?;
            let name = rest.split_once("=> \"")?.1;
            name.split('"').next()
        })
        .collect();
    assert!(codes.len() > 40, "found only {codes:?}");
    let missing: Vec<&&str> = codes
        .iter()
        .filter(|code| !doc.contains(&format!("`{code}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "finding codes not in docs/TROUBLESHOOTING.md: {missing:?}"
    );
}
