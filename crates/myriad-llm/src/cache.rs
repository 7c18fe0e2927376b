//! The persistent answer cache: one JSON line per answer, keyed by a hash of
//! (model, API, prompt, sampling parameters, sample index). Appending one line
//! per answer, flushed at once, means a crash or a full disk loses at most
//! the answer being written; a torn last line is skipped on the next load.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How the cache is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Ask the endpoint every time; no cache.
    Live,
    /// Answer from the cache when possible, ask the endpoint otherwise and
    /// store the answer.
    Record,
    /// Answer only from the cache; a prompt not in it is an error.
    Replay,
}

impl Mode {
    /// Parse `live`, `record` or `replay`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "live" => Some(Mode::Live),
            "record" => Some(Mode::Record),
            "replay" => Some(Mode::Replay),
            _ => None,
        }
    }
}

/// One stored answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The cache key (hex SHA-256).
    pub key: String,
    /// Model name.
    pub model: String,
    /// Sample index.
    pub sample: u32,
    /// The prompt, for people reading the file.
    pub prompt: String,
    /// The answer text.
    pub text: String,
    /// Prompt tokens reported by the endpoint.
    pub tokens_in: u64,
    /// Completion tokens reported by the endpoint.
    pub tokens_out: u64,
}

/// What identifies an answer.
#[derive(Clone, Debug, Serialize)]
pub struct Key<'a> {
    /// Model name.
    pub model: &'a str,
    /// `chat` or `completions`.
    pub api: &'a str,
    /// The prompt.
    pub prompt: &'a str,
    /// Sampling temperature.
    pub temperature: f64,
    /// Token limit.
    pub max_tokens: u32,
    /// Sample index (several independent answers to one prompt).
    pub sample: u32,
}

impl Key<'_> {
    /// Hex SHA-256 of the key's canonical JSON.
    pub fn hash(&self) -> String {
        let json = serde_json::to_string(self).expect("a key serialises");
        let digest = Sha256::digest(json.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Cache errors name the file and line.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Reading or writing the file failed.
    #[error("LLM cache {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line in the middle of the file is not an entry.
    #[error("LLM cache {path}:{line}: not a cache entry ({reason})")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Parser message.
        reason: String,
    },
}

/// The in-memory index of a cache file, and the file appended to.
pub struct Cache {
    path: PathBuf,
    entries: Mutex<HashMap<String, Entry>>,
    file: Mutex<File>,
    repaired: Option<String>,
}

/// Read every entry of a cache file's bytes into `entries`. Returns how
/// many bytes to keep (everything up to the end of the last complete entry)
/// and, when a torn last line is dropped, a note saying so.
fn load_entries(
    path: &Path,
    bytes: &[u8],
    entries: &mut HashMap<String, Entry>,
) -> Result<(u64, Option<String>), CacheError> {
    let mut start = 0usize;
    let mut line_no = 0usize;
    while start < bytes.len() {
        line_no += 1;
        let end = bytes[start..].iter().position(|&b| b == b'\n').map(|k| start + k);
        let line = &bytes[start..end.unwrap_or(bytes.len())];
        let is_last = end.is_none_or(|e| e + 1 >= bytes.len());
        let parsed = std::str::from_utf8(line).map_err(|e| e.to_string()).and_then(|t| {
            if t.trim().is_empty() {
                Ok(None)
            } else {
                serde_json::from_str::<Entry>(t).map(Some).map_err(|e| e.to_string())
            }
        });
        match (parsed, end) {
            (Ok(Some(e)), Some(_)) => {
                entries.insert(e.key.clone(), e);
            }
            (Ok(None), Some(_)) => {}
            // A complete entry whose newline never reached the disk: keep
            // it and add the newline, so the next answer starts a new line.
            (Ok(Some(e)), None) => {
                entries.insert(e.key.clone(), e);
                return Ok((
                    bytes.len() as u64,
                    Some(format!(
                        "{}:{line_no}: the last entry had no line end; added one",
                        path.display()
                    )),
                ));
            }
            // Trailing blanks without a line end: JSON allows leading
            // blanks, so the next entry appended after them still reads.
            (Ok(None), None) => return Ok((bytes.len() as u64, None)),
            (Err(reason), _) if is_last => {
                return Ok((
                    start as u64,
                    Some(format!(
                        "{}:{line_no}: removed a torn last line of {} bytes (an answer cut off while it was written: {reason})",
                        path.display(),
                        line.len()
                    )),
                ));
            }
            (Err(reason), _) => {
                return Err(CacheError::Corrupt {
                    path: path.to_path_buf(),
                    line: line_no,
                    reason,
                })
            }
        }
        start = end.map_or(bytes.len(), |e| e + 1);
    }
    Ok((bytes.len() as u64, None))
}

impl Cache {
    /// Open (creating if needed) a cache file and load its entries.
    ///
    /// A torn last line (a crash or a full disk in the middle of writing
    /// an answer) is cut off, so that the next answer starts on a line of
    /// its own; [`Cache::repaired`] then says what was removed. A damaged
    /// line anywhere else is an error naming it.
    pub fn open(path: &Path) -> Result<Cache, CacheError> {
        let io = |source| CacheError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut entries = HashMap::new();
        let mut repaired = None;
        // Only a regular file holds entries: a device or pipe given as the
        // cache (e.g. /dev/full) is written to but never read back.
        if path.is_file() {
            let bytes = std::fs::read(path).map_err(io)?;
            let (kept, note) = load_entries(path, &bytes, &mut entries)?;
            if note.is_some() {
                let mut f = OpenOptions::new().write(true).open(path).map_err(io)?;
                f.set_len(kept).map_err(io)?;
                if kept > 0 && bytes[kept as usize - 1] != b'\n' {
                    use std::io::Seek;
                    f.seek(std::io::SeekFrom::End(0)).map_err(io)?;
                    f.write_all(b"\n").map_err(io)?;
                }
                f.sync_all().map_err(io)?;
                repaired = note;
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
        Ok(Cache {
            path: path.to_path_buf(),
            entries: Mutex::new(entries),
            file: Mutex::new(file),
            repaired,
        })
    }

    /// What opening the file repaired (a torn last line cut off), if anything.
    pub fn repaired(&self) -> Option<&str> {
        self.repaired.as_deref()
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of stored answers.
    pub fn len(&self) -> usize {
        self.entries.lock().expect("cache lock").len()
    }

    /// True if nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A stored answer.
    pub fn get(&self, key: &str) -> Option<Entry> {
        self.entries.lock().expect("cache lock").get(key).cloned()
    }

    /// Store an answer: appended to the file and flushed before returning.
    pub fn put(&self, entry: Entry) -> Result<(), CacheError> {
        let mut line = serde_json::to_string(&entry).expect("an entry serialises");
        line.push('\n');
        {
            let mut f = self.file.lock().expect("cache lock");
            f.write_all(line.as_bytes())
                .and_then(|_| f.flush())
                .map_err(|source| CacheError::Io {
                    path: self.path.clone(),
                    source,
                })?;
        }
        self.entries
            .lock()
            .expect("cache lock")
            .insert(entry.key.clone(), entry);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, text: &str) -> Entry {
        Entry {
            key: key.into(),
            model: "m".into(),
            sample: 0,
            prompt: "p".into(),
            text: text.into(),
            tokens_in: 3,
            tokens_out: 1,
        }
    }

    #[test]
    fn entries_survive_reopening_and_a_torn_last_line() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sub/cache.jsonl");
        let c = Cache::open(&path).unwrap();
        c.put(entry("a", "yes")).unwrap();
        c.put(entry("b", "no")).unwrap();
        drop(c);
        // Simulate a crash in the middle of writing a third entry.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"key\":\"c\",\"mod").unwrap();
        drop(f);
        let c = Cache::open(&path).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("a").unwrap().text, "yes");
        assert!(c.get("c").is_none());
        assert!(c
            .repaired()
            .unwrap()
            .contains("cache.jsonl:3: removed a torn last line"));
        // The next answer starts on a line of its own, so the file stays readable.
        c.put(entry("d", "maybe")).unwrap();
        drop(c);
        let c = Cache::open(&path).unwrap();
        assert_eq!(c.len(), 3);
        assert!(c.repaired().is_none());
        assert_eq!(c.get("d").unwrap().text, "maybe");
    }

    #[test]
    fn a_complete_last_entry_without_its_line_end_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("cache.jsonl");
        let good = serde_json::to_string(&entry("a", "yes")).unwrap();
        std::fs::write(&path, &good).unwrap();
        let c = Cache::open(&path).unwrap();
        assert!(c.repaired().unwrap().contains("no line end"));
        c.put(entry("b", "no")).unwrap();
        drop(c);
        let c = Cache::open(&path).unwrap();
        assert_eq!((c.len(), c.get("a").unwrap().text.as_str()), (2, "yes"));
    }

    #[test]
    fn a_corrupt_middle_line_is_an_error_naming_the_line() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("cache.jsonl");
        let good = serde_json::to_string(&entry("a", "yes")).unwrap();
        std::fs::write(&path, format!("{good}\nnot json\n{good}\n")).unwrap();
        let e = Cache::open(&path).err().unwrap();
        assert!(e.to_string().contains("cache.jsonl:2"), "{e}");
    }

    #[test]
    fn keys_differ_by_every_part() {
        let base = Key {
            model: "m",
            api: "chat",
            prompt: "p",
            temperature: 0.7,
            max_tokens: 8,
            sample: 0,
        };
        let h = base.hash();
        assert_eq!(h.len(), 64);
        assert_eq!(h, base.clone().hash());
        for other in [
            Key {
                model: "m2",
                ..base.clone()
            },
            Key {
                api: "completions",
                ..base.clone()
            },
            Key {
                prompt: "q",
                ..base.clone()
            },
            Key {
                temperature: 0.8,
                ..base.clone()
            },
            Key {
                max_tokens: 9,
                ..base.clone()
            },
            Key {
                sample: 1,
                ..base.clone()
            },
        ] {
            assert_ne!(other.hash(), h);
        }
    }
}
