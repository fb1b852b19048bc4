//! Which requests the studio answers at all: the checks that keep other web pages out.
//!
//! The studio has no login, so anything that can send it a request can use it. Listening on
//! loopback keeps other machines away, but not other web pages open in the user's browser:
//! - **DNS rebinding**: a page on `evil.example` whose name is switched to resolve to 127.0.0.1
//!   reaches the studio as a same-origin page and can read its answers. Its requests still say
//!   `Host: evil.example`, so only Host names of this machine's loopback (and the `--host` name)
//!   are answered ([`Allowed`]).
//! - **Cross-site POSTs**: any page can send a "simple" cross-origin POST (form or `text/plain`
//!   body, no preflight). The browser then says where it came from in `Origin`, so a POST whose
//!   Origin is not the studio's own page is refused. Non-browser clients send no Origin and pass.
//!   Independently, JSON routes take only `application/json` and translate only image types
//!   (see `api.rs`), neither of which a page can send cross-origin without a preflight, which the
//!   studio never grants.

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, uri::Authority, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The Host names the studio answers to.
#[derive(Debug, Clone)]
pub struct Allowed {
    /// The `--host` name or address, normalised (see [`normalise`]).
    bind_host: String,
    /// `--host 0.0.0.0` or `::`: the studio listens on every address, so any IP address is its
    /// own. (A bare IP address cannot be rebound: rebinding needs a name.)
    any_ip: bool,
    /// Where it listens, for the messages.
    local: SocketAddr,
}

impl Allowed {
    /// The loopback names, plus `bind_host` (what `--host` said) for a server listening on `local`.
    pub fn new(bind_host: &str, local: SocketAddr) -> Self {
        let bind_host = normalise(bind_host);
        let any_ip = bind_host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
        Self { bind_host, any_ip, local }
    }

    /// Whether `host` (a Host header's name or address, without the port) names this server.
    pub fn host(&self, host: &str) -> bool {
        let host = normalise(host);
        if host == "localhost" || host.ends_with(".localhost") || host == self.bind_host {
            return true; // browsers resolve *.localhost to loopback themselves (RFC 6761)
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => ip.to_canonical().is_loopback() || self.any_ip,
            Err(_) => false,
        }
    }

    /// What `--host` adds to the loopback names, for the error messages.
    fn extra_names(&self) -> String {
        match self.bind_host.as_str() {
            _ if self.any_ip => format!(" or any IP address of this machine (--host {})", self.bind_host),
            _ if self.host_is_loopback() => String::new(),
            h => format!(" or '{h}' (--host)"),
        }
    }

    fn host_is_loopback(&self) -> bool {
        self.bind_host == "localhost" || self.bind_host.parse::<IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
    }

    /// How to reach the studio, for the error messages.
    fn hint(&self) -> String {
        let port = self.local.port();
        if self.any_ip {
            format!("open http://127.0.0.1:{port}/, or this machine's IP address from elsewhere")
        } else if self.local.ip().is_loopback() {
            format!("open http://{}/ or http://localhost:{port}/", self.local)
        } else if self.bind_host.parse::<IpAddr>().is_ok() {
            format!("open http://{}/", self.local)
        } else {
            format!("open http://{}:{port}/", self.bind_host)
        }
    }
}

/// Lower case, without IPv6 brackets or the trailing dot of a fully qualified name.
fn normalise(host: &str) -> String {
    let h = host.trim().to_ascii_lowercase();
    let h = h.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(&h);
    h.strip_suffix('.').unwrap_or(h).to_string()
}

/// The host and port of an authority (`name`, `name:port`, `[v6]:port`); `None` when it is not
/// one (a Host header never carries `user@`).
fn split_authority(value: &str) -> Option<(String, Option<u16>)> {
    if value.contains('@') {
        return None;
    }
    let a: Authority = value.parse().ok()?;
    Some((a.host().to_string(), a.port_u16()))
}

/// Axum middleware: answers 400/421 for a request not addressed to this server by name, and 403
/// for a cross-origin POST; passes everything else on.
pub async fn check(State(allowed): State<Arc<Allowed>>, req: Request, next: Next) -> Response {
    match admit(&allowed, &req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

fn admit(allowed: &Allowed, req: &Request) -> Result<(), ApiError> {
    let host = request_host(allowed, req)?;
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        check_origin(allowed, req.headers(), &host)?;
    }
    Ok(())
}

/// The request's (host, port), once both its Host header and any absolute URI name this server.
fn request_host(allowed: &Allowed, req: &Request) -> Result<(String, Option<u16>), ApiError> {
    if req.headers().get_all(header::HOST).iter().count() > 1 {
        return Err(ApiError::bad_request("the request has more than one Host header; send one"));
    }
    let value = req.headers().get(header::HOST).ok_or_else(|| {
        ApiError::bad_request(format!("the request has no Host header; HTTP/1.1 requires one, e.g. Host: 127.0.0.1:{}", allowed.local.port()))
    })?;
    let text = value.to_str().unwrap_or("");
    let refuse = |what: &str| {
        ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "the studio answers only requests addressed to localhost or a loopback address{} (this one was for '{}'); {} (other names are refused so that a web page cannot reach the studio through DNS rebinding)",
                allowed.extra_names(),
                what.chars().take(100).collect::<String>(),
                allowed.hint()
            ),
        )
    };
    let host = split_authority(text).filter(|(h, _)| allowed.host(h)).ok_or_else(|| refuse(text))?;
    // An absolute-form target (`POST http://name/...`) names the server too, and wins over Host.
    if let Some(a) = req.uri().authority() {
        if a.as_str().contains('@') || !allowed.host(a.host()) {
            return Err(refuse(a.as_str()));
        }
    }
    Ok(host)
}

/// A POST from a browser page must come from the studio's own page: Origin, when sent, must be
/// http(s)://HOST:PORT of this very request.
fn check_origin(allowed: &Allowed, headers: &HeaderMap, host: &(String, Option<u16>)) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().unwrap_or("");
    if same_origin(origin, host) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        format!(
            "cross-origin request refused: the studio takes POSTs only from its own page, and this one came from '{}'; {}",
            origin.chars().take(100).collect::<String>(),
            allowed.hint()
        ),
    ))
}

/// Whether `origin` (`scheme://host[:port]`) is the same host and port as the request's Host.
fn same_origin(origin: &str, (host, port): &(String, Option<u16>)) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else { return false }; // e.g. "null"
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    let Some((o_host, o_port)) = split_authority(authority) else { return false };
    normalise(&o_host) == normalise(host) && o_port.unwrap_or(default_port) == port.unwrap_or(default_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> Allowed {
        Allowed::new("127.0.0.1", "127.0.0.1:8080".parse().unwrap())
    }

    #[test]
    fn loopback_names_are_allowed_and_others_not() {
        let a = loopback();
        for h in ["localhost", "LocalHost", "localhost.", "studio.localhost", "127.0.0.1", "127.0.0.2", "[::1]", "::1", "[::ffff:127.0.0.1]"] {
            assert!(a.host(h), "{h}");
        }
        for h in ["evil.example", "localhost.evil.example", "127.0.0.1.evil.example", "0.0.0.0", "192.168.1.5", "", "[::]", "localhost@evil"] {
            assert!(!a.host(h), "{h}");
        }
    }

    #[test]
    fn the_host_flag_adds_its_name() {
        let a = Allowed::new("Studio.Lan", "192.168.1.5:8080".parse().unwrap());
        assert!(a.host("studio.lan") && a.host("localhost") && !a.host("192.168.1.5") && !a.host("evil.example"));
        let any = Allowed::new("0.0.0.0", "0.0.0.0:8080".parse().unwrap());
        assert!(any.host("192.168.1.5") && any.host("[fe80::1]") && !any.host("evil.example"));
        assert!(Allowed::new("[::1]", "[::1]:1".parse().unwrap()).host("::1"));
    }

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(split_authority("localhost:8080"), Some(("localhost".into(), Some(8080))));
        assert_eq!(split_authority("[::1]:80"), Some(("[::1]".into(), Some(80))));
        assert_eq!(split_authority("127.0.0.1"), Some(("127.0.0.1".into(), None)));
        assert_eq!(split_authority("user@localhost:80"), None);
        assert_eq!(split_authority(""), None);
        assert_eq!(split_authority("a b"), None);
    }

    #[test]
    fn origins_must_match_host_and_port() {
        let h = ("127.0.0.1".to_string(), Some(8080));
        assert!(same_origin("http://127.0.0.1:8080", &h));
        assert!(same_origin("HTTPS://127.0.0.1:8080", &h));
        for o in ["http://127.0.0.1:9090", "http://localhost:8080", "http://evil.example:8080", "null", "file://", "", "ftp://127.0.0.1:8080"] {
            assert!(!same_origin(o, &h), "{o}");
        }
        let no_port = ("localhost".to_string(), None);
        assert!(same_origin("http://localhost", &no_port) && same_origin("http://localhost:80", &no_port));
        assert!(!same_origin("http://localhost:8080", &no_port));
    }
}
