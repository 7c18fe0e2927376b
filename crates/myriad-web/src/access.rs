//! The access token. Without one (loopback only) every request passes.
//! With one, a request passes when it carries the token as
//! `Authorization: Bearer <token>`, as the `myriad_token` cookie, or as
//! `?token=` in the address; the page is opened once with `?token=`, and
//! the answer sets the cookie so that the page's own requests (and its
//! event stream, which cannot set headers) carry it.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The cookie that carries the token.
const COOKIE: &str = "myriad_token";

/// Equal strings, compared in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token a request carries, if any, and whether it came in the address.
fn presented(req: &Request) -> Option<(String, bool)> {
    let headers = req.headers();
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Some((t.trim().to_string(), false));
        }
    }
    if let Some(q) = req.uri().query() {
        for pair in q.split('&') {
            if let Some(t) = pair.strip_prefix("token=") {
                return Some((t.to_string(), true));
            }
        }
    }
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for c in v.split(';') {
            if let Some(t) = c.trim().strip_prefix(&format!("{COOKIE}=")) {
                return Some((t.to_string(), false));
            }
        }
    }
    None
}

/// A host name that can only mean this machine.
fn local_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let ip = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost" || ip.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn refuse(status: StatusCode, text: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": text }))).into_response()
}

/// The middleware.
/// - Changes (POST) must say they send JSON: a web page of another site can
///   send a form or plain text to this server without asking, but not JSON,
///   so it cannot start or stop runs behind the user's back.
/// - Without a token (loopback only), the Host header must name this
///   machine: a site whose name is made to point at 127.0.0.1 (DNS
///   rebinding) is refused.
/// - With a token, a request without the right one gets 401 with what to do.
pub async fn check(State(token): State<Arc<Option<String>>>, req: Request, next: Next) -> Response {
    if req.method() == axum::http::Method::POST {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "changes must be sent with Content-Type: application/json".into(),
            );
        }
    }
    let Some(expected) = token.as_ref() else {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !local_host(host) {
            return refuse(
                StatusCode::FORBIDDEN,
                format!(
                    "this server answers only to 127.0.0.1 or localhost (the request named '{host}'); \
                     to serve other machines, start it with --bind and --token"
                ),
            );
        }
        return next.run(req).await;
    };
    match presented(&req) {
        Some((t, from_address)) if same(&t, expected) => {
            let mut resp = next.run(req).await;
            if from_address {
                let cookie = format!("{COOKIE}={t}; Path=/; HttpOnly; SameSite=Strict");
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    resp.headers_mut().insert(header::SET_COOKIE, v);
                }
            }
            resp
        }
        other => {
            let why = if other.is_some() {
                "wrong access token"
            } else {
                "this server needs its access token"
            };
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                axum::Json(serde_json::json!({
                    "error": format!(
                        "{why}: open the address `myriad serve` printed (it ends in ?token=...), \
                         or send the header Authorization: Bearer <token>"
                    )
                })),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn only_this_machines_names_are_local() {
        for h in [
            "127.0.0.1:8080",
            "localhost:1",
            "[::1]:8080",
            "127.0.0.2:80",
            "localhost",
        ] {
            assert!(super::local_host(h), "{h}");
        }
        for h in [
            "evil.example:8080",
            "10.0.0.1:8080",
            "",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
        ] {
            assert!(!super::local_host(h), "{h}");
        }
    }

    #[test]
    fn compares_whole_tokens() {
        assert!(same("abcdef0123456789", "abcdef0123456789"));
        assert!(!same("abcdef0123456789", "abcdef012345678"));
        assert!(!same("abcdef0123456789", "bbcdef0123456789"));
        assert!(!same("", "x"));
    }
}
