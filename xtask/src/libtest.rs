//! Reads the summary lines of libtest's output.

/// Counts of one or more test runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed, plus runs that ended without a summary.
    pub failed: u64,
    /// Tests skipped because a flag asked for it.
    pub skipped: u64,
}

impl Counts {
    /// Adds another set of counts.
    pub fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

/// Sums every `test result: ... N passed; M failed; ...` line of `output`, and returns how many
/// such lines there were.
pub fn parse_results(output: &str) -> (Counts, usize) {
    let mut counts = Counts::default();
    let mut lines = 0;
    for line in output.lines() {
        let Some(rest) = line.split("test result: ").nth(1) else {
            continue;
        };
        lines += 1;
        for part in rest.split(';') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let (number, label) = match words.as_slice() {
                [_, number, label, ..] if number.parse::<u64>().is_ok() => (*number, *label),
                [number, label, ..] => (*number, *label),
                _ => continue,
            };
            let Ok(number) = number.parse::<u64>() else {
                continue;
            };
            match label {
                "passed" => counts.passed += number,
                "failed" => counts.failed += number,
                _ => {}
            }
        }
    }
    (counts, lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_result_lines() {
        let output = "running 3 tests\n\
            test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s\n\
            test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 5 filtered out\n";
        let (counts, lines) = parse_results(output);
        assert_eq!(lines, 2);
        assert_eq!(counts.passed, 5);
        assert_eq!(counts.failed, 1);
    }

    #[test]
    fn ignores_other_lines() {
        let (counts, lines) = parse_results("test foo ... ok\nall done\n");
        assert_eq!(lines, 0);
        assert_eq!(counts, Counts::default());
    }

    #[test]
    fn reads_lines_behind_console_noise() {
        let (counts, lines) = parse_results(
            "[   12.3] igb 0000:01:00.0: ...\r\ntest result: ok. 7 passed; 0 failed; 0 ignored\r\n",
        );
        assert_eq!(lines, 1);
        assert_eq!(counts.passed, 7);
    }
}
