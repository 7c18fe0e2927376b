//! Dated runs: `start_date`, interventions by date, weeks and months of the
//! calendar in the outputs, and the errors bad dates get.

use myriad_sim::scenario::{parse, Overrides};
use std::path::Path;

fn parse_text(text: &str) -> Result<myriad_sim::Scenario, String> {
    parse(Path::new("test.toml"), text, &Overrides::default()).map_err(|e| e.to_string())
}

const HEAD: &str = "model = \"seir\"\nstart_date = \"2020-03-01\"\n";
const TABLES: &str =
    "[population]\nsize = 2000\n[[layers]]\nname = \"community\"\ntype = \"erdos_renyi\"\nmean_degree = 6\n";

#[test]
fn interventions_by_date_become_steps() {
    let s = parse_text(&format!(
        "{HEAD}steps = 60\n{TABLES}[[interventions]]\nname = \"pause\"\nstart = \"2020-03-22\"\nend = 2020-04-05\nparam = \"beta\"\nscale = 0.5\n"
    ))
    .unwrap();
    let i = &s.schedule.items()[0];
    assert_eq!((i.start, i.end), (22, Some(36)));
    assert_eq!(s.calendar.date(22).unwrap().to_string(), "2020-03-22");
    // end_date instead of steps: both days included.
    let s = parse_text(&format!("{HEAD}end_date = \"2021-02-28\"\n{TABLES}")).unwrap();
    assert_eq!(s.steps, 365);
}

#[test]
fn bad_dates_are_refused_by_key() {
    let cases = [
        (format!("{HEAD}steps = 10\n{TABLES}[[interventions]]\nstart = \"2020-02-30\"\nparam = \"beta\"\nvalue = 0.1\n"), "interventions[0].start"),
        (format!("{HEAD}steps = 10\n{TABLES}[[interventions]]\nstart = \"2020-06-01\"\nparam = \"beta\"\nvalue = 0.1\n"), "never act"),
        (format!("{HEAD}steps = 10\n{TABLES}[[interventions]]\nstart = \"2020-01-01\"\nend = \"2020-02-01\"\nparam = \"beta\"\nvalue = 0.1\n"), "before the run's first day"),
        (HEAD.replace("2020-03-01", "March 1st") + "steps = 5\n" + TABLES, "start_date"),
        (format!("{HEAD}steps = 5\nend_date = \"2020-03-09\"\n{TABLES}"), "not both"),
        (format!("{HEAD}end_date = \"2020-02-09\"\n{TABLES}"), "before start_date"),
    ];
    for (text, expect) in cases {
        let Err(e) = parse_text(&text) else {
            panic!("accepted:\n{text}")
        };
        assert!(e.contains(expect), "{e}\nexpected '{expect}' for:\n{text}");
    }
    let undated = format!("model = \"seir\"\nsteps = 10\n{TABLES}[[interventions]]\nstart = \"2020-03-01\"\nparam = \"beta\"\nvalue = 0.1\n");
    let Err(e) = parse_text(&undated) else {
        panic!("accepted")
    };
    assert!(e.contains("no start_date"), "{e}");
}

#[test]
fn dated_outputs_carry_dates_and_calendar_weeks() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dated.toml");
    // A Wednesday start: the first, partial week is left out of weekly.csv.
    std::fs::write(
        &file,
        format!("{}steps = 30\n{TABLES}", HEAD.replace("2020-03-01", "2020-03-04")),
    )
    .unwrap();
    let s = myriad_sim::load(&file, &Overrides::default()).unwrap();
    let out = dir.path().join("out");
    let opts = myriad_sim::run::RunOptions {
        comm: None,
        checkpoint_every: None,
        resume: None,
        out: Some(out.clone()),
        runs: None,
        force: false,
        threads: Some(1),
        runtime: None,
    };
    myriad_sim::run::run_to_folder(&s, &opts, &std::sync::atomic::AtomicBool::new(false), &mut []).unwrap();
    let ts = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    let mut lines = ts.lines();
    assert!(lines.next().unwrap().starts_with("step,date,"));
    assert!(lines.next().unwrap().starts_with("0,2020-03-03,"));
    assert!(lines.next().unwrap().starts_with("1,2020-03-04,"));
    let weekly = std::fs::read_to_string(out.join("weekly.csv")).unwrap();
    let rows: Vec<&str> = weekly.lines().collect();
    assert!(
        rows[0].starts_with("week,first_step,last_step,week_start,"),
        "{}",
        rows[0]
    );
    // Sundays 2020-03-08, 03-15, 03-22 begin whole weeks within 30 days.
    assert!(rows[1].starts_with("0,5,11,2020-03-08,"), "{}", rows[1]);
    assert_eq!(rows.len(), 4);
}
