//! Pieces shared by the example jobs.

/// Splits a line into lower-case words the way Flink's WordCount example does: on every
/// non-alphanumeric character, dropping empty tokens.
pub fn tokenize(line: &str) -> Vec<String> {
    line.split(|c: char| !c.is_alphanumeric())
        .filter(|token| !token.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_non_word_characters() {
        assert_eq!(tokenize("To be, or NOT to-be!"), ["to", "be", "or", "not", "to", "be"]);
        assert!(tokenize("  ,; ").is_empty());
    }
}
