//! Runs already in the runs folder: what `myriad run` (or the page) left
//! there, read from each folder's `summary.json` and `timeseries.csv`.

use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One line of the runs list.
#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    /// The folder's name: the run's id in the API.
    pub id: String,
    /// The scenario's name.
    pub scenario: String,
    /// The model.
    pub model: String,
    /// Agents.
    pub agents: u64,
    /// Steps completed.
    pub steps: u64,
    /// Steps the scenario asked for.
    pub steps_requested: u64,
    /// building, running, paused, finished, interrupted, failed.
    pub status: String,
    /// Seconds from start to end (so far, for a live run).
    pub wall_seconds: f64,
    /// The run's seed.
    pub seed: u64,
    /// Started from this server and still held in memory (agents can be
    /// inspected while it runs or is paused).
    pub live: bool,
    /// The error that stopped it, if one did.
    pub error: Option<String>,
}

/// A run's time series, one vector per metric.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Series {
    /// Metric names, in column order.
    pub metrics: Vec<String>,
    /// Step of each row.
    pub steps: Vec<u32>,
    /// Date of each row, on a dated run.
    pub dates: Option<Vec<String>>,
    /// Per metric, its value at each row.
    pub values: Vec<Vec<f64>>,
}

/// A name that is one folder inside the runs folder (no separators, no
/// `..`), so that an id from a request can never reach elsewhere.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 200
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Fields of a `summary.json` for the runs list.
pub fn info_from_summary(id: &str, summary: &Value) -> RunInfo {
    let u = |k: &str| summary.get(k).and_then(Value::as_u64).unwrap_or(0);
    let error = summary.get("error").and_then(Value::as_str).map(str::to_string);
    let status = if error.is_some() {
        "failed"
    } else if summary.get("interrupted").and_then(Value::as_bool).unwrap_or(false) {
        "interrupted"
    } else {
        "finished"
    };
    RunInfo {
        id: id.to_string(),
        scenario: summary
            .pointer("/scenario/name")
            .and_then(Value::as_str)
            .unwrap_or(id)
            .to_string(),
        model: summary.get("model").and_then(Value::as_str).unwrap_or("?").to_string(),
        agents: u("agents"),
        steps: u("steps_completed"),
        steps_requested: u("steps_requested"),
        status: status.into(),
        wall_seconds: summary
            .pointer("/timing/wall_seconds")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        seed: u("seed"),
        live: false,
        error,
    }
}

/// Read a run folder's `summary.json`.
pub fn summary(dir: &Path) -> Result<Value, String> {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a summary myriad wrote ({e})", path.display()))
}

/// Every run folder (a folder holding `summary.json`) in `runs`, newest
/// first; folders whose summary cannot be read are left out.
pub fn list(runs: &Path) -> Vec<RunInfo> {
    let Ok(entries) = std::fs::read_dir(runs) else {
        return Vec::new();
    };
    let mut found: Vec<(std::time::SystemTime, RunInfo)> = entries
        .flatten()
        .filter_map(|e| {
            let id = e.file_name().to_str()?.to_string();
            if !valid_id(&id) {
                return None;
            }
            let path = e.path();
            let modified = std::fs::metadata(path.join("summary.json")).ok()?.modified().ok()?;
            let s = summary(&path).ok()?;
            Some((modified, info_from_summary(&id, &s)))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
    found.into_iter().map(|(_, r)| r).collect()
}

/// Read `timeseries.csv` (`step[,date],<metric>...`).
pub fn series(dir: &Path) -> Result<Series, String> {
    let path: PathBuf = dir.join("timeseries.csv");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| format!("{}: empty", path.display()))?
        .split(',')
        .collect();
    let dated = header.get(1) == Some(&"date");
    let first = if dated { 2 } else { 1 };
    let mut s = Series {
        metrics: header[first.min(header.len())..]
            .iter()
            .map(|m| m.to_string())
            .collect(),
        dates: dated.then(Vec::new),
        ..Series::default()
    };
    s.values = vec![Vec::new(); s.metrics.len()];
    for (k, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let bad = || format!("{} line {}: expected {} cells", path.display(), k + 2, header.len());
        if cells.len() != header.len() {
            return Err(bad());
        }
        s.steps.push(cells[0].parse().map_err(|_| bad())?);
        if let Some(d) = &mut s.dates {
            d.push(cells[1].to_string());
        }
        for (v, c) in s.values.iter_mut().zip(&cells[first..]) {
            v.push(c.parse().unwrap_or(f64::NAN));
        }
    }
    Ok(s)
}

/// Fields of a transcript event that name an agent it concerns.
const AGENT_FIELDS: &[&str] = &["agent", "donor", "recipient", "speaker", "target"];

/// Whether an event concerns `agent` (every event for `None`).
pub fn concerns(event: &Value, agent: Option<u64>) -> bool {
    match agent {
        None => true,
        Some(a) => AGENT_FIELDS
            .iter()
            .any(|f| event.get(*f).and_then(Value::as_u64) == Some(a)),
    }
}

/// Events of `transcript.jsonl` concerning `agent` (all of them for `None`),
/// at most `limit`, oldest first.
pub fn transcript(dir: &Path, agent: Option<u64>, limit: usize) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(dir.join("transcript.jsonl")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| concerns(e, agent))
        .take(limit)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_stay_inside_the_runs_folder() {
        assert!(valid_id("seir-city-20261202-101500"));
        assert!(valid_id("a.b_c-2"));
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", "x y", "é"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn reads_a_dated_series_and_refuses_a_ragged_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("timeseries.csv"),
            "step,date,S,I\n0,2020-02-29,10,0\n1,2020-03-01,9,1\n",
        )
        .unwrap();
        let s = series(dir.path()).unwrap();
        assert_eq!(s.metrics, ["S", "I"]);
        assert_eq!(s.steps, [0, 1]);
        assert_eq!(s.dates.as_ref().unwrap()[1], "2020-03-01");
        assert_eq!(s.values[1], [0.0, 1.0]);
        std::fs::write(dir.path().join("timeseries.csv"), "step,S,I\n0,10\n").unwrap();
        let e = series(dir.path()).unwrap_err();
        assert!(e.contains("timeseries.csv line 2"), "{e}");
    }
}
