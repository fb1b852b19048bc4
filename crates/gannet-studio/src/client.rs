//! A minimal blocking HTTP/1.1 client for loopback: the API tests and `gannet serve --load-test`
//! use it. One request per connection (`Connection: close`), so the answer is everything read.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The body as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Sends one request and reads the whole answer; `timeout` bounds every read and write.
pub fn request(addr: SocketAddr, method: &str, path: &str, content_type: Option<&str>, body: &[u8], timeout: Duration) -> std::io::Result<Response> {
    let headers: Vec<(&str, &str)> = content_type.map(|ct| ("Content-Type", ct)).into_iter().collect();
    request_with(addr, method, path, &headers, body, timeout)
}

/// [`request`] with these headers; `Host: ADDR` unless they name a Host (an empty value sends
/// none: `("Host", "")`).
pub fn request_with(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8], timeout: Duration) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers.iter().filter(|(_, v)| !v.is_empty()) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // Written from another thread while this one reads: a server may answer (e.g. 413) and close
    // before taking the whole body, and the answer must still be read.
    let mut writer = stream.try_clone()?;
    let request = [head.as_bytes(), body].concat();
    let sender = std::thread::spawn(move || writer.write_all(&request));
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    let sent = sender.join().unwrap_or_else(|_| Err(std::io::Error::other("the writer panicked")));
    match parse(&raw) {
        Some(r) => Ok(r),
        None => Err(read.and(sent).err().unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad HTTP answer: {:?}", String::from_utf8_lossy(&raw[..raw.len().min(200)])))
        })),
    }
}

pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    request(addr, "GET", path, None, b"", Duration::from_secs(120))
}

pub fn post_json(addr: SocketAddr, path: &str, body: &serde_json::Value) -> std::io::Result<Response> {
    request(addr, "POST", path, Some("application/json"), body.to_string().as_bytes(), Duration::from_secs(120))
}

fn parse(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Some(Response { status, headers, body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).ok()?.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Decodes the base64 of a `data:` URL (the images of `POST /api/generate`).
pub fn data_url_bytes(url: &str) -> Option<Vec<u8>> {
    let b64 = url.split_once(";base64,")?.1;
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    for chunk in b64.as_bytes().chunks(4) {
        let pads = chunk.iter().filter(|&&c| c == b'=').count();
        let mut n = 0u32;
        for &c in chunk {
            n = n << 6 | if c == b'=' { 0 } else { val(c)? };
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pads]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn data_urls_round_trip_base64() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            let url = format!("data:image/png;base64,{}", crate::render::base64(s.as_bytes()));
            assert_eq!(super::data_url_bytes(&url).unwrap(), s.as_bytes());
        }
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(super::dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(), b"abcde");
    }
}
