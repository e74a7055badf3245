//! Word count over lines from a socket: start `nc -lk 9999`, then
//! `cargo run --release -p weir-examples --bin socket-wordcount -- run --port 9999` and type.

use std::process::ExitCode;

use weir_examples::word_count;

fn main() -> ExitCode {
    weir::main(|env| {
        let params = env.parameters();
        let host = params.get("host").unwrap_or("127.0.0.1").to_string();
        let port: u16 = params.parse_or("port", 9999)?;
        word_count(env.socket_text_stream(&host, port)).print();
        Ok(())
    })
}
