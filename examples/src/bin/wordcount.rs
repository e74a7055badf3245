//! Word count over a text file: prints every rolling `(word, count)` update.
//!
//! `cargo run --release -p weir-examples --bin wordcount -- run --parallelism 4 --input FILE`

use std::process::ExitCode;

use weir_examples::word_count;

fn main() -> ExitCode {
    weir::main(|env| {
        let input = env.parameters().required("input")?.to_string();
        word_count(env.read_text_file(input)).print();
        Ok(())
    })
}
