//! The `wordcount` binary as a user runs it: parallelism 4 gives the same counts as 1.

use std::collections::BTreeMap;
use std::process::Command;

/// Runs `wordcount run --parallelism P --input PATH` and returns its stdout lines.
fn wordcount(parallelism: usize, input: &std::path::Path) -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_wordcount"))
        .args(["run", "--parallelism", &parallelism.to_string(), "--input"])
        .arg(input)
        .output()
        .expect("wordcount runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "wordcount failed:\n{stderr}");
    assert!(stderr.contains("finished in"), "a summary is printed:\n{stderr}");
    String::from_utf8(output.stdout).unwrap().lines().map(str::to_string).collect()
}

/// Parses `("word", 3)` after an optional `N> ` subtask prefix.
fn parse(line: &str) -> (String, u64) {
    let record = line.split_once("> ").map_or(line, |(_, rest)| rest);
    let inner = record.trim_start_matches('(').trim_end_matches(')');
    let (word, count) = inner.split_once(", ").unwrap_or_else(|| panic!("bad line {line:?}"));
    (word.trim_matches('"').to_string(), count.parse().unwrap())
}

fn finals(lines: &[String]) -> BTreeMap<String, u64> {
    let mut finals = BTreeMap::new();
    for (word, count) in lines.iter().map(|l| parse(l)) {
        let entry = finals.entry(word).or_insert(0);
        *entry = count.max(*entry);
    }
    finals
}

#[test]
fn parallel_word_count_equals_sequential() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("words.txt");
    let mut text = String::new();
    for i in 0..3000 {
        text.push_str(&format!("Word{} to be or not to BE, line {}\n", i % 37, i % 11));
    }
    std::fs::write(&input, &text).unwrap();

    let sequential = wordcount(1, &input);
    let parallel = wordcount(4, &input);
    let total_words: usize = text.lines().map(|l| weir_examples::tokenize(l).len()).sum();
    assert_eq!(sequential.len(), total_words, "one rolling update per word");
    assert_eq!(parallel.len(), total_words);
    assert!(sequential.iter().all(|l| l.starts_with('(')), "no prefix at parallelism 1");
    assert!(
        parallel.iter().all(|l| l.as_bytes()[0].is_ascii_digit() && l.contains("> (")),
        "N> prefix in parallel"
    );
    let counts = finals(&sequential);
    assert_eq!(counts, finals(&parallel));
    assert_eq!(counts["to"], 6000);
    assert_eq!(counts["word0"], 82);
    let mut sorted_seq: Vec<_> = sequential.iter().map(|l| parse(l)).collect();
    let mut sorted_par: Vec<_> = parallel.iter().map(|l| parse(l)).collect();
    sorted_seq.sort();
    sorted_par.sort();
    assert_eq!(sorted_seq, sorted_par, "the same rolling updates, in any order");
}

#[test]
fn missing_input_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_wordcount")).args(["run"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing job parameter --input"), "{stderr}");
}

#[test]
fn nonexistent_file_names_the_path() {
    let output = Command::new(env!("CARGO_BIN_EXE_wordcount"))
        .args(["run", "--input", "/nonexistent/words.txt"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/words.txt"), "{stderr}");
}
