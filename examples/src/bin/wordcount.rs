//! Word count over a text file: prints every rolling `(word, count)` update.
//!
//! `cargo run --release -p weir-examples --bin wordcount -- run --parallelism 4 --input FILE`

use std::process::ExitCode;

use weir::prelude::*;
use weir_examples::tokenize;

fn main() -> ExitCode {
    weir::main(|env| {
        let input = env.parameters().required("input")?.to_string();
        env.read_text_file(input)
            .flat_map(|line: String| tokenize(&line))
            .name("Tokenizer")
            .map(|word| (word, 1u64))
            .key_by(|(word, _)| word.clone())
            .sum(|(_, count)| count)
            .name("Count")
            .print();
        Ok(())
    })
}
