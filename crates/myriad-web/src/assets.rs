//! The page's files, compiled into the binary: no CDN, no Node server, so
//! the dashboard works offline and the binary is all there is to install.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// `(path, content type, body)` of every file the page uses.
const FILES: &[(&str, &str, &str)] = &[
    ("/", "text/html; charset=utf-8", include_str!("../assets/index.html")),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "/charts.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/charts.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("../assets/style.css"),
    ),
];

/// The embedded file at `path`, or 404.
pub fn get(path: &str) -> Response {
    match FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, kind, body)) => (
            [(header::CONTENT_TYPE, *kind), (header::CACHE_CONTROL, "no-cache")],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, format!("no such page: {path}")).into_response(),
    }
}
