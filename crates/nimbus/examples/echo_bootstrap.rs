//! A minimal custom-runtime `bootstrap` that echoes each event: the "provided" function of the
//! benchmarks. Standard library only, one kept-alive connection to the Runtime API, so what a
//! benchmark measures is the platform, not the function. An event `{"sleep_ms":N}` is held N
//! milliseconds first (for benchmarks that need environments busy at once).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

fn main() -> std::io::Result<()> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").unwrap_or_else(|_| "127.0.0.1:9001".into());
    let stream = TcpStream::connect(&api)?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let next = format!("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {api}\r\n\r\n");
    loop {
        writer.write_all(next.as_bytes())?;
        let (headers, body) = read_response(&mut reader)?;
        let id = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("lambda-runtime-aws-request-id"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if let Some(ms) = sleep_ms(&body) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let mut post = format!(
            "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nHost: {api}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        // Head and body in one segment: the server wakes once for the whole request.
        post.extend_from_slice(&body);
        writer.write_all(&post)?;
        read_response(&mut reader)?;
    }
}

/// N from an event that is exactly `{"sleep_ms":N}`.
fn sleep_ms(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    text.strip_prefix("{\"sleep_ms\":")?
        .strip_suffix('}')?
        .trim()
        .parse()
        .ok()
}

type Headers = Vec<(String, String)>;

fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<(Headers, Vec<u8>)> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((k, v)) = trimmed.split_once(':') {
            let (k, v) = (k.trim().to_owned(), v.trim().to_owned());
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((headers, body))
}
