//! `ring-perf` prints every documented row, in both output formats.

use std::process::Command;

const ROWS: [&str; 14] = [
    "single SP/SC",
    "single MP/MC",
    "burst 8 SP/SC",
    "burst 32 SP/SC",
    "burst 8 MP/MC",
    "burst 32 MP/MC",
    "bulk 8 SP/SC",
    "bulk 32 SP/SC",
    "bulk 8 MP/MC",
    "bulk 32 MP/MC",
    "two cores bulk 8 SP/SC",
    "two cores bulk 32 SP/SC",
    "two cores bulk 8 MP/MC",
    "two cores bulk 32 MP/MC",
];

#[test]
fn json_lists_every_row_with_positive_cycles() {
    let output = Command::new(env!("CARGO_BIN_EXE_ring-perf"))
        .arg("--json")
        .output()
        .unwrap();
    assert!(output.status.success());
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|row| row["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ROWS);
    for row in &rows {
        assert!(row["cycles_per_elem"].as_f64().unwrap() > 0.0, "{row}");
    }
}

#[test]
fn text_prints_name_colon_cycles_lines() {
    let output = Command::new(env!("CARGO_BIN_EXE_ring-perf"))
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let names: Vec<&str> = text
        .lines()
        .map(|line| line.rsplit_once(": ").unwrap().0)
        .collect();
    assert_eq!(names, ROWS);
    for line in text.lines() {
        let cycles: f64 = line.rsplit_once(": ").unwrap().1.parse().unwrap();
        assert!(cycles > 0.0, "{line}");
    }
}
