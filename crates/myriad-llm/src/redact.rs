//! Keeping secrets out of everything the client lets go of.
//!
//! An API key or the credentials in an endpoint URL (`http://user:pass@host`)
//! must never reach an output file, a log line, the cache or a transcript,
//! even when a server echoes them back in an error body (many gateways do).
//! Every string that leaves the client passes through [`Redactor::clean`];
//! endpoints are shown with [`display_url`].

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are not searched for: a one-letter "key" would
/// blank out every occurrence of that letter and protect nothing.
const MIN_SECRET_CHARS: usize = 4;

/// `url` with any user name and password replaced by `***`, for display.
/// Text that does not parse as a URL is returned with anything before an
/// `@` in its authority masked, so nothing that looks like credentials survives.
pub fn display_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_password(None);
            let _ = u.set_username("***");
            u.to_string().trim_end_matches('/').to_string() + if url.ends_with('/') { "/" } else { "" }
        }
        Ok(_) => url.to_string(),
        Err(_) => match (url.find("://"), url.find('@')) {
            (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
            _ => url.to_string(),
        },
    }
}

/// The secrets of one client, and the means to remove them from text.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Secrets: the API key's value and every endpoint's user name and
    /// password (as written and percent-decoded).
    pub fn new(endpoints: &[String], api_key: Option<&str>) -> Redactor {
        let mut secrets: Vec<String> = Vec::new();
        if let Some(k) = api_key {
            secrets.push(k.to_string());
        }
        for e in endpoints {
            if let Ok(u) = reqwest::Url::parse(e) {
                for part in [Some(u.username()), u.password()].into_iter().flatten() {
                    secrets.push(part.to_string());
                    if let Ok(decoded) = percent_decode(part) {
                        secrets.push(decoded);
                    }
                }
            }
        }
        secrets.retain(|s| s.chars().count() >= MIN_SECRET_CHARS);
        // Longest first, so that a secret containing another is removed whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// `text` with every secret replaced by [`REDACTED`].
    pub fn clean(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }

    /// Whether `text` holds a secret (so that the common case costs no copy).
    pub fn finds(&self, text: &str) -> bool {
        self.secrets.iter().any(|s| text.contains(s.as_str()))
    }
}

fn percent_decode(s: &str) -> Result<String, ()> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(display_url("http://user:pa55@host:8000/v1"), "http://***@host:8000/v1");
        assert_eq!(display_url("http://host:8000/v1"), "http://host:8000/v1");
        assert_eq!(display_url("http://u:p@"), "http://***@");
    }

    #[test]
    fn secrets_are_removed_from_any_text() {
        let r = Redactor::new(&["http://alice:s%40cret!@h/v1".to_string()], Some("sk-123456"));
        let t = r.clean("key sk-123456 user alice pass s@cret! raw s%40cret!");
        assert!(
            !t.contains("sk-123456") && !t.contains("alice") && !t.contains("s@cret!"),
            "{t}"
        );
        assert!(!t.contains("s%40cret!"), "{t}");
        assert!(r.finds("xx sk-123456"));
        assert!(!r.finds("nothing here"));
        // A one-letter key is not searched for.
        assert_eq!(Redactor::new(&[], Some("a")).clean("banana"), "banana");
    }
}
