//! A mutation fuzzer for everything a user hands myriad: scenario files,
//! population files and edge lists. Every shipped scenario (shrunk to a few
//! hundred agents and a few steps, LLM endpoints pointed at a local server)
//! is mutated the way a hostile but fair user would (numbers set to 0, -1,
//! ±1e308, NaN, ±inf, 2^64; type swaps; deleted and duplicated lines; huge
//! strings; damaged bytes), then validated and run. For each input the
//! outcome must be a clear error (exit 2, or 1 for a failure while running)
//! or a finished run (exit 0): never a panic (101), an abort or a crash (a
//! signal), and never a hang: a run still going after its time budget must
//! stop within seconds of Ctrl-C.
//!
//! The inputs are a pure function of a seed, so a failure can be replayed:
//! `MYRIAD_FUZZ_SEED=<seed> MYRIAD_FUZZ_SECONDS=<s> cargo test --test fuzz`.
//! CI runs it for `MYRIAD_FUZZ_SECONDS` (default 150 s); inputs that fail
//! are kept in `target/fuzz-failures/`.

mod common;
use common::serve_v1;

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A small deterministic generator (SplitMix64): the fuzzer's inputs are
/// reproducible from the seed alone.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// Values a number may become.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "18446744073709551616",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "0.5",
    "1e-300",
    "2.5",
    "100000",
    "3",
];

/// Values any value may become (type swaps).
const SWAPS: &[&str] = &[
    "\"text\"",
    "true",
    "[1, 2]",
    "[]",
    "{ a = 1 }",
    "\"\"",
    "\"../../../../etc/passwd\"",
    "\"/dev/zero\"",
    "\"http://\"",
    "\"http://user:pw@127.0.0.1:9/v1\"",
    "\"U19\"",
    "-0.0",
    "[\"SI\", \"XX\"]",
];

/// Keys a scenario may hold, to insert with hostile values where the
/// shipped scenarios do not set them (an `[llm]` timeout, a layer's mean).
const KEYS: &[&str] = &[
    "timeout_seconds",
    "requests_per_second",
    "max_tokens",
    "max_concurrency",
    "max_retries",
    "batch",
    "temperature",
    "samples",
    "reasks",
    "smoothing",
    "memory_turns",
    "max_agents",
    "fallback",
    "mean_degree",
    "mean",
    "dispersion",
    "degree",
    "k",
    "m",
    "size",
    "sizes",
    "weight",
    "start",
    "end",
    "value",
    "scale",
    "steps",
    "seed",
    "memory_gb",
    "class_size",
    "initial_infected",
    "beta",
    "cache",
    "mode",
    "endpoint",
];

/// One mutation of a scenario's text.
fn mutate_scenario(text: &str, rng: &mut Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        return text.to_string();
    }
    let i = rng.below(lines.len());
    match rng.below(11) {
        // A key inserted with a hostile value, under a random table.
        9 | 10 => {
            let tables: Vec<usize> = (0..lines.len()).filter(|&k| lines[k].starts_with('[')).collect();
            let at = tables.get(rng.below(tables.len().max(1))).map_or(0, |&k| k + 1);
            let value = if rng.below(2) == 0 {
                rng.pick(NUMBERS)
            } else {
                rng.pick(SWAPS)
            };
            lines.insert(at, format!("{} = {value}", rng.pick(KEYS)));
        }
        // A number on a line becomes an extreme one.
        0..=2 => {
            let line = &lines[i];
            let starts: Vec<usize> = line
                .char_indices()
                .filter(|&(k, c)| c.is_ascii_digit() && (k == 0 || !line.as_bytes()[k - 1].is_ascii_alphanumeric()))
                .map(|(k, _)| k)
                .collect();
            if let Some(&k) = starts.get(rng.below(starts.len().max(1))) {
                let end = line[k..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' || c == '+'))
                    .map_or(line.len(), |e| k + e);
                lines[i] = format!("{}{}{}", &line[..k], rng.pick(NUMBERS), &line[end..]);
            }
        }
        // A value changes type.
        3 | 4 => {
            if let Some(eq) = lines[i].find('=') {
                lines[i] = format!("{}= {}", &lines[i][..eq], rng.pick(SWAPS));
            }
        }
        5 => {
            lines.remove(i);
        }
        6 => {
            let l = lines[i].clone();
            lines.insert(i, l);
        }
        // A huge string.
        7 => {
            if let Some(eq) = lines[i].find('=') {
                let huge = "x".repeat([100, 100_000][rng.below(2)]);
                lines[i] = format!("{}= \"{huge}\"", &lines[i][..eq]);
            }
        }
        // Damaged bytes: cut the file short.
        _ => {
            let joined = lines.join("\n");
            let cut = rng.below(joined.len());
            let mut end = cut;
            while !joined.is_char_boundary(end) {
                end -= 1;
            }
            return joined[..end].to_string();
        }
    }
    lines.join("\n") + "\n"
}

/// One mutation of a CSV data file.
fn mutate_csv(text: &str, rng: &mut Rng) -> Vec<u8> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let i = rng.below(lines.len());
    match rng.below(8) {
        0 => {
            let l = &lines[i];
            let k = rng.below(l.len() + 1);
            lines[i] = format!("{}\"{}", &l[..k], &l[k..]);
        }
        1 => {
            let fields: Vec<&str> = lines[i].split(',').collect();
            let j = rng.below(fields.len());
            let mut f: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
            f[j] = rng.pick(NUMBERS).to_string();
            lines[i] = f.join(",");
        }
        2 => {
            lines.remove(i);
        }
        3 => {
            lines[i].push_str(",extra");
        }
        4 => {
            let l = lines[i].clone();
            lines.insert(i, l);
        }
        5 => {
            let text = lines.join("\n");
            return text.as_bytes()[..rng.below(text.len())].to_vec();
        }
        6 => {
            let mut bytes = (lines.join("\n") + "\n").into_bytes();
            let k = rng.below(bytes.len());
            bytes[k] = [0xff, 0x00, b'\r', b'"'][rng.below(4)];
            return bytes;
        }
        _ => lines[i] = "x".repeat(100_000),
    }
    (lines.join("\n") + "\n").into_bytes()
}

/// Every shipped scenario, shrunk so that one runs in well under a second.
fn base_scenarios(endpoint: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    for p in files {
        let text = std::fs::read_to_string(&p).unwrap();
        // A dated scenario keeps its year: its dated interventions must fall
        // within the run (a few hundred agents make it fast anyway).
        let dated = text.lines().any(|l| l.trim_start().starts_with("start_date"));
        let mut shrunk = Vec::new();
        for line in text.lines() {
            let key = line.split('=').next().unwrap_or("").trim();
            let l = match key {
                "steps" if !dated => "steps = 6".to_string(),
                "size" => "size = 300".to_string(),
                "scale" | "boroughs" => continue,
                "synthetic" => format!("{line}\nboroughs = [\"SI\"]\nscale = 0.003"),
                "endpoint" => format!("endpoint = \"{endpoint}\""),
                _ => line.to_string(),
            };
            shrunk.push(l);
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        out.push((name, shrunk.join("\n") + "\n"));
    }
    out
}

/// An OpenAI-compatible server answering every prompt with a number and a word.
fn serve_llm() -> String {
    let answer = |chat: bool| {
        move |Json(req): Json<Value>| async move {
            let n = req["prompt"].as_array().map_or(1, |a| a.len());
            let choices: Vec<Value> = (0..n)
                .map(|i| {
                    if chat {
                        json!({"index": i, "message": {"role": "assistant", "content": "Yes, 7."}})
                    } else {
                        json!({"index": i, "text": "yes 7"})
                    }
                })
                .collect();
            Json(json!({"choices": choices, "usage": {"prompt_tokens": 3, "completion_tokens": 2}}))
        }
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(answer(true)))
        .route("/v1/completions", post(answer(false)));
    serve_v1(app)
}

/// Run `myriad args` in `dir` with a time budget. Past it, Ctrl-C asks the
/// run to stop after its current step; a step may be long (hundreds of LLM
/// players), so 10 s later a second Ctrl-C, which must end the process at
/// once (as documented). Still running 5 s after that is a hang. The exit
/// code, or why the outcome is a defect.
fn judge(dir: &Path, args: &[&str], budget: Duration) -> Result<i32, String> {
    let mut child = Command::new(common::bin())
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained as it comes: a child blocked on a full pipe would look hung.
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
        text
    });
    let t0 = Instant::now();
    let mut interrupts = 0;
    let pid = child.id().to_string();
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break;
        }
        let late = t0.elapsed().saturating_sub(budget);
        if (interrupts == 0 && t0.elapsed() > budget) || (interrupts == 1 && late > Duration::from_secs(10)) {
            Command::new("kill").args(["-INT", &pid]).status().unwrap();
            interrupts += 1;
        }
        if late > Duration::from_secs(15) {
            let _ = child.kill();
            return Err(format!("hang: still running 5 s after a second Ctrl-C ({args:?})"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let o: Output = child.wait_with_output().unwrap();
    let err = reader.join().unwrap();
    let shown: String = err.chars().take(2000).collect();
    match o.status.code() {
        Some(c @ (0 | 1 | 2 | 130)) if !err.contains("panicked") => {
            if (c == 1 || c == 2) && !err.contains("error: ") {
                return Err(format!("exit {c} without an error message: {shown}"));
            }
            Ok(c)
        }
        Some(c) => Err(format!("exit {c} ({args:?}): {shown}")),
        None => Err(format!(
            "killed by signal {:?} ({args:?}): {shown}",
            std::os::unix::process::ExitStatusExt::signal(&o.status)
        )),
    }
}

/// What one fuzzing worker did.
#[derive(Default)]
struct Tally {
    inputs: u64,
    refused: u64,
    ran: u64,
    failures: Vec<String>,
}

/// The shared material of the fuzzing workers.
struct Corpus {
    bases: Vec<(String, String)>,
    data: PathBuf,
    people: String,
    contacts: String,
    failures_dir: PathBuf,
}

/// Mutate and judge inputs drawn from `rng` until `deadline`.
fn fuzz(corpus: &Corpus, mut rng: Rng, worker: usize, deadline: Instant) -> Tally {
    let mut t = Tally::default();
    while Instant::now() < deadline {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("data")).unwrap();
        // One in four inputs damages a data file instead of the scenario.
        let (name, base) = rng.pick(&corpus.bases).clone();
        let (name, scenario, damaged) = if rng.below(4) == 0 {
            let (file, text) = if rng.below(2) == 0 {
                ("village-people.csv", &corpus.people)
            } else {
                ("village-contacts.csv", &corpus.contacts)
            };
            std::fs::write(d.path().join("data").join(file), mutate_csv(text, &mut rng)).unwrap();
            let imported = corpus.bases.iter().find(|(n, _)| n == "sir-imported.toml").unwrap();
            (imported.0.clone(), imported.1.clone(), Some(file))
        } else {
            let mut text = base.clone();
            for _ in 0..1 + rng.below(3) {
                text = mutate_scenario(&text, &mut rng);
            }
            (name, text, None)
        };
        for f in ["village-people.csv", "village-contacts.csv"] {
            if damaged != Some(f) {
                std::fs::copy(corpus.data.join(f), d.path().join("data").join(f)).unwrap();
            }
        }
        std::fs::write(d.path().join("s.toml"), &scenario).unwrap();
        t.inputs += 1;
        let verdict = match judge(d.path(), &["validate", "s.toml"], Duration::from_secs(60)) {
            Ok(0) => {
                t.ran += 1;
                judge(
                    d.path(),
                    &["run", "s.toml", "--out", "out", "-q"],
                    Duration::from_secs(4),
                )
            }
            Ok(c) => {
                t.refused += 1;
                Ok(c)
            }
            Err(e) => Err(e),
        };
        if let Err(why) = verdict {
            let keep = corpus.failures_dir.join(format!("w{worker}-{}-{name}", t.inputs));
            std::fs::create_dir_all(&keep).unwrap();
            std::fs::write(keep.join("s.toml"), &scenario).unwrap();
            for f in ["village-people.csv", "village-contacts.csv"] {
                let _ = std::fs::copy(d.path().join("data").join(f), keep.join(f));
            }
            t.failures.push(format!("{name} (kept in {}): {why}", keep.display()));
        }
    }
    t
}

#[test]
fn hostile_inputs_get_a_clear_error_or_a_run_never_a_crash_or_a_hang() {
    let seconds: u64 = std::env::var("MYRIAD_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    let seed: u64 = std::env::var("MYRIAD_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2026);
    let workers: usize = std::env::var("MYRIAD_FUZZ_WORKERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/data");
    let corpus = Corpus {
        bases: base_scenarios(&serve_llm()),
        people: std::fs::read_to_string(data.join("village-people.csv")).unwrap(),
        contacts: std::fs::read_to_string(data.join("village-contacts.csv")).unwrap(),
        data,
        failures_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-failures"),
    };
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(seconds);
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let corpus = &corpus;
                // Each worker draws its own stream of inputs from the seed.
                let rng = Rng(seed.wrapping_mul(1_000_003).wrapping_add(w as u64));
                scope.spawn(move || fuzz(corpus, rng, w, deadline))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>();
    let failures: Vec<&String> = tallies.iter().flat_map(|t| &t.failures).collect();
    eprintln!(
        "fuzz: seed {seed}, {workers} workers, {} inputs in {:.0} s: {} refused by validate, {} validated and run, {} failures",
        sum(|t| t.inputs),
        t0.elapsed().as_secs_f64(),
        sum(|t| t.refused),
        sum(|t| t.ran),
        failures.len()
    );
    assert!(sum(|t| t.inputs) > 0);
    assert!(
        failures.is_empty(),
        "{}",
        failures.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
}
