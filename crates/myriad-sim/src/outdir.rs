//! Output folders: created fresh, marked as myriad's, and replaced with
//! `--force` only when myriad marked them, removing only what myriad writes.
//!
//! A folder is myriad's when it holds [`MARKER`], a small JSON file written
//! when the folder is created, naming the command and version. Replacing it
//! removes the output files myriad writes (by name), the run folders nested
//! in it (each marked itself), and the marker; anything else a user put
//! there stays. The working directory, its ancestors, `.` and `..` are never
//! replaced.

use crate::build::InputError;
use crate::error::{Error, FileContext, Result};
use std::path::{Path, PathBuf};

/// The marker file, hidden so that it does not clutter listings.
pub const MARKER: &str = ".myriad-output.json";

/// Every file name myriad writes into an output folder (any command).
const OUTPUT_FILES: &[&str] = &[
    "timeseries.csv",
    "timeseries.parquet",
    "timeseries.png",
    "summary.json",
    "weekly.csv",
    "weekly_cases.png",
    "monthly.csv",
    "unemployment.png",
    "transcript.jsonl",
    "ensemble.csv",
    "ensemble.png",
    "difference.csv",
    "comparison.png",
    "calibration.csv",
    "calibration.json",
    "fitted.toml",
    "fit.png",
    "sweep.csv",
    "personas.csv",
];

/// Folders holding nested marked run folders (ensemble seeds, counterfactual arms).
const NESTED_FOLDERS: &[&str] = &["runs", "baseline", "counterfactual"];

/// `runs/<name><suffix>-<timestamp>`: where outputs go without `--out`
/// (a `-2`, `-3`, ... is added by [`OutChoice::create`] when two runs start in the same second).
pub fn default_out(name: &str, suffix: &str) -> PathBuf {
    default_out_in(Path::new("runs"), name, suffix)
}

/// `<runs>/<name><suffix>-<timestamp>`: [`default_out`] in another folder
/// (the dashboard's `--runs`).
pub fn default_out_in(runs: &Path, name: &str, suffix: &str) -> PathBuf {
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    runs.join(format!("{name}{suffix}-{stamp}"))
}

/// Where a command writes: a folder the user named, or a fresh default one.
#[derive(Clone, Debug)]
pub enum OutChoice {
    /// `--out DIR`.
    Given(PathBuf),
    /// No `--out`: `runs/<name><suffix>-<timestamp>`, made unique.
    Default(PathBuf),
}

impl OutChoice {
    /// From `--out` (if any) and the default.
    pub fn new(given: Option<PathBuf>, name: &str, suffix: &str) -> OutChoice {
        match given {
            Some(p) => OutChoice::Given(p),
            None => OutChoice::Default(default_out(name, suffix)),
        }
    }

    /// Refuse early (before any work) a given folder that exists without
    /// `--force`, or one that `--force` could never replace.
    pub fn check(&self, force: bool) -> Result<()> {
        match self {
            OutChoice::Default(_) => Ok(()),
            OutChoice::Given(dir) => check_replaceable(dir, force).map(|_| ()),
        }
    }

    /// Create the folder (replacing a marked one with `force`) and mark it
    /// as written by `command`; returns the folder's path.
    pub fn create(&self, force: bool, command: &str) -> Result<PathBuf> {
        match self {
            OutChoice::Given(dir) => {
                if check_replaceable(dir, force)? {
                    clear(dir)?;
                }
                std::fs::create_dir_all(dir).doing(|| format!("creating output folder {}", dir.display()))?;
                mark(dir, command)?;
                Ok(dir.clone())
            }
            OutChoice::Default(dir) => {
                let dir = claim_fresh(dir)?;
                mark(&dir, command)?;
                Ok(dir)
            }
        }
    }
}

/// Create `dir`, or `dir-2`, `dir-3`, ... if it exists: `create_dir` is
/// atomic, so two processes never get the same folder.
fn claim_fresh(dir: &Path) -> Result<PathBuf> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).doing(|| format!("creating {}", parent.display()))?;
    }
    let base = dir.as_os_str().to_string_lossy().into_owned();
    for k in 1..10_000 {
        let candidate = if k == 1 {
            dir.to_path_buf()
        } else {
            PathBuf::from(format!("{base}-{k}"))
        };
        match std::fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).doing(|| format!("creating output folder {}", candidate.display())),
        }
    }
    Err(Error::Run(format!(
        "no free output folder name next to {}",
        dir.display()
    )))
}

/// Write the marker naming the command and version.
pub fn mark(dir: &Path, command: &str) -> Result<()> {
    let marker = serde_json::json!({
        "written_by": "myriad",
        "command": command,
        "version": env!("CARGO_PKG_VERSION"),
    });
    let path = dir.join(MARKER);
    std::fs::write(&path, marker.to_string() + "\n").doing(|| format!("writing {}", path.display()))
}

/// The command recorded in `dir`'s marker, if `dir` is a marked folder.
fn marked_command(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(MARKER)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    if v.get("written_by")?.as_str()? != "myriad" {
        return None;
    }
    Some(v.get("command")?.as_str()?.to_string())
}

/// Whether an existing `dir` must be cleared first (`Ok(false)`: it does
/// not exist or is empty); an error if it may not be used.
fn check_replaceable(dir: &Path, force: bool) -> Result<bool> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).doing(|| format!("output folder {}", dir.display())),
    };
    let refuse = |why: String| -> Result<bool> { Err(InputError(why).into()) };
    if !force {
        return refuse(format!(
            "output folder {} already exists; choose another with --out or pass --force to replace it",
            dir.display()
        ));
    }
    if !meta.is_dir() {
        return refuse(format!("--out {} exists and is not a folder", dir.display()));
    }
    if is_cwd_or_ancestor(dir) {
        return refuse(format!(
            "--force refuses to replace {}: it is the working directory or one of its parents",
            dir.display()
        ));
    }
    if std::fs::read_dir(dir)
        .doing(|| format!("reading {}", dir.display()))?
        .next()
        .is_none()
    {
        return Ok(false);
    }
    if marked_command(dir).is_none() {
        return refuse(format!(
            "--force refuses to replace {}: myriad did not create it (no {MARKER} in it)",
            dir.display()
        ));
    }
    Ok(true)
}

/// Is `dir` the working directory or one of its ancestors?
fn is_cwd_or_ancestor(dir: &Path) -> bool {
    let (Ok(d), Ok(cwd)) = (
        dir.canonicalize(),
        std::env::current_dir().and_then(|c| c.canonicalize()),
    ) else {
        // Cannot tell: be safe.
        return true;
    };
    cwd.starts_with(&d)
}

/// Remove what myriad wrote in a marked folder: its output files by name,
/// nested marked folders, and the marker. Other files stay.
fn clear(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).doing(|| format!("reading {}", dir.display()))? {
        let entry = entry.doing(|| format!("reading {}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().doing(|| format!("reading {}", path.display()))?;
        if !kind.is_dir() && OUTPUT_FILES.contains(&name.as_str()) {
            std::fs::remove_file(&path).doing(|| format!("removing {}", path.display()))?;
        } else if kind.is_dir() && NESTED_FOLDERS.contains(&name.as_str()) {
            clear_nested(&path)?;
        }
    }
    let marker = dir.join(MARKER);
    std::fs::remove_file(&marker).doing(|| format!("removing {}", marker.display()))
}

/// A folder of nested runs: marked itself (a counterfactual arm), or
/// holding marked run folders (`runs/seed-N`). Removed when left empty.
fn clear_nested(dir: &Path) -> Result<()> {
    if marked_command(dir).is_some() {
        clear(dir)?;
    } else {
        for entry in std::fs::read_dir(dir).doing(|| format!("reading {}", dir.display()))? {
            let path = entry.doing(|| format!("reading {}", dir.display()))?.path();
            if path.is_dir() && !path.is_symlink() && marked_command(&path).is_some() {
                clear(&path)?;
                let _ = std::fs::remove_dir(&path);
            }
        }
    }
    // Only succeeds when empty: a user's file inside keeps the folder.
    let _ = std::fs::remove_dir(dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marked_folder_loses_only_what_myriad_wrote() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let c = OutChoice::Given(out.clone());
        c.create(false, "run").unwrap();
        std::fs::write(out.join("timeseries.csv"), "x").unwrap();
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        let nested = out.join("runs").join("seed-1");
        std::fs::create_dir_all(&nested).unwrap();
        mark(&nested, "run").unwrap();
        std::fs::write(nested.join("summary.json"), "{}").unwrap();
        assert!(c.check(false).is_err());
        c.create(true, "run").unwrap();
        assert!(!out.join("timeseries.csv").exists());
        assert!(!out.join("runs").exists());
        assert_eq!(std::fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");
        assert!(out.join(MARKER).exists());
    }

    #[test]
    fn unmarked_folders_and_the_working_directory_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let project = d.path().join("project");
        std::fs::create_dir(&project).unwrap();
        std::fs::write(project.join("timeseries.csv"), "mine").unwrap();
        let e = OutChoice::Given(project.clone()).create(true, "run").unwrap_err();
        assert!(e.to_string().contains("did not create it"), "{e}");
        assert!(project.join("timeseries.csv").exists());
        // Even marked, an ancestor of the working directory is refused.
        mark(&project, "run").unwrap();
        for p in [PathBuf::from("."), PathBuf::from(".."), PathBuf::from("/")] {
            let e = OutChoice::Given(p).check(true).unwrap_err();
            assert!(e.to_string().contains("working directory"), "{e}");
        }
    }

    #[test]
    fn default_folders_never_collide() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("runs").join("x-20260101-000000");
        let a = OutChoice::Default(base.clone()).create(false, "run").unwrap();
        let b = OutChoice::Default(base.clone()).create(false, "run").unwrap();
        assert_eq!(a, base);
        assert_ne!(a, b);
        assert!(b.to_string_lossy().ends_with("-2"));
    }
}
