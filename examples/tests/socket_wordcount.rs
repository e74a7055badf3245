//! The `socket-wordcount` binary reading from a TCP server, as with `nc -lk PORT`.

use std::io::Write;
use std::net::TcpListener;
use std::process::Command;

#[test]
fn counts_words_typed_into_a_socket() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut connection, _) = listener.accept().unwrap();
        connection.write_all(b"hello weir\r\nhello again\nand hello").unwrap();
        // Dropping the connection ends the stream; the job then finishes.
    });
    let output = Command::new(env!("CARGO_BIN_EXE_socket-wordcount"))
        .args(["run", "--parallelism", "2", "--port", &port.to_string()])
        .output()
        .unwrap();
    server.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let mut updates: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| line.split_once("> ").map_or(line, |(_, record)| record).to_string())
        .collect();
    updates.sort();
    assert_eq!(
        updates,
        [
            r#"("again", 1)"#,
            r#"("and", 1)"#,
            r#"("hello", 1)"#,
            r#"("hello", 2)"#,
            r#"("hello", 3)"#,
            r#"("weir", 1)"#
        ]
    );
}

#[test]
fn unreachable_server_is_reported_with_its_address() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let output = Command::new(env!("CARGO_BIN_EXE_socket-wordcount"))
        .args(["run", "--port", &port.to_string()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
}
