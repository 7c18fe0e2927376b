//! Parameter sweeps (Mesa's `batch_run`, Agents.jl's `paramscan`): every
//! combination of a grid of `--set` values, times several seeds, each run
//! in memory; one table out, a row per run with the grid values, the seed
//! and every outcome of the model's metrics (see [`crate::outcomes`]).

use crate::build::InputError;
use crate::ensemble;
use crate::error::Result;
use crate::outcomes::{outcomes, reduce};
use crate::scenario::{self, Overrides};
use crate::simulation::{Decisions, SimOptions};
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// One axis of the grid: a key path and the values it takes.
pub type Axis = (String, Vec<String>);

/// Parse `key.path=v1,v2,...` into an axis.
pub fn parse_axis(text: &str) -> Result<Axis, String> {
    let (key, values) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}': expected key.path=value1,value2,..."))?;
    let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
    if key.trim().is_empty() || values.iter().any(|v| v.is_empty()) {
        return Err(format!("'{text}': expected key.path=value1,value2,..."));
    }
    Ok((key.trim().to_string(), values))
}

/// The grid's points: one `key=value` list per combination, the last axis
/// varying fastest.
pub fn points(grid: &[Axis]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = vec![Vec::new()];
    for (key, values) in grid {
        out = out
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push(format!("{key}={v}"));
                    q
                })
            })
            .collect();
    }
    out
}

/// A sweep's result: the header and one row of numbers per run (grid
/// values as given, so a text choice is kept as text).
pub struct SweepTable {
    /// `point`, the grid keys, `seed`, then the outcomes.
    pub header: Vec<String>,
    /// Per run: the grid values as text, then the seed and outcomes.
    pub rows: Vec<(Vec<String>, u64, Vec<f64>)>,
}

impl SweepTable {
    /// As CSV text.
    pub fn csv(&self) -> String {
        let mut text = self.header.join(",") + "\n";
        for (k, (values, seed, outcomes)) in self.rows.iter().enumerate() {
            let nums: Vec<String> = outcomes.iter().map(|x| format!("{x}")).collect();
            text.push_str(&format!("{k},{},{seed},{}\n", values.join(","), nums.join(",")));
        }
        text
    }
}

/// Run every point of `grid` over `seeds` seeds (from the scenario's seed,
/// or `first_seed`), on `threads` workers, the model's rule deciding. Every
/// scenario is checked before the first run. Stops early (keeping finished
/// runs) when `stop` is set.
pub fn sweep(
    file: &Path,
    set: &[String],
    grid: &[Axis],
    seeds: u32,
    first_seed: Option<u64>,
    threads: usize,
    stop: &AtomicBool,
) -> Result<SweepTable> {
    if grid.is_empty() || seeds == 0 {
        return Err(InputError("a sweep needs at least one --grid axis and one seed".into()).into());
    }
    let points = points(grid);
    let mut scenarios = Vec::new();
    for p in &points {
        let all: Vec<String> = set.iter().cloned().chain(p.iter().cloned()).collect();
        let s = scenario::load(
            file,
            &Overrides {
                set: all,
                seed: first_seed,
            },
        )?;
        ensemble::check_seeds(s.seed, seeds)?;
        scenarios.push(s);
    }
    let mut table = SweepTable {
        header: Vec::new(),
        rows: Vec::new(),
    };
    for (p, s) in points.iter().zip(&scenarios) {
        for k in 0..seeds as u64 {
            let mut s = s.clone();
            s.seed += k;
            let opts = SimOptions {
                threads: Some(threads),
                decisions: Decisions::Rule,
                ..SimOptions::default()
            };
            let Some(((header, rows), metrics)) = ensemble::run_in_memory(&s, opts, stop)? else {
                // Stopped mid-run: this point's outcomes would be partial.
                return Ok(table);
            };
            let kinds: Vec<_> = metrics.iter().map(|m| m.kind).collect();
            let list = outcomes(&header, &kinds);
            if table.header.is_empty() {
                table.header = std::iter::once("point".to_string())
                    .chain(grid.iter().map(|(key, _)| key.clone()))
                    .chain(std::iter::once("seed".to_string()))
                    .chain(list.iter().map(|o| o.name.clone()))
                    .collect();
            }
            let values = p
                .iter()
                .map(|kv| kv.split_once('=').map_or("", |x| x.1).to_string())
                .collect();
            table
                .rows
                .push((values, s.seed, list.iter().map(|o| reduce(&rows, o)).collect()));
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_points_vary_the_last_axis_fastest() {
        let grid = vec![parse_axis("a=1,2").unwrap(), parse_axis("b=x,y,z").unwrap()];
        let p = points(&grid);
        assert_eq!(p.len(), 6);
        assert_eq!(p[0], ["a=1", "b=x"]);
        assert_eq!(p[1], ["a=1", "b=y"]);
        assert_eq!(p[5], ["a=2", "b=z"]);
        assert!(parse_axis("a=").is_err());
        assert!(parse_axis("novalue").is_err());
    }
}
