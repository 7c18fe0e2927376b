//! Population, edge-list and time-series files: good input round-trips, bad
//! input gives an error naming the file, line and column.

use arrow_array::{ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray};
use myriad_core::metrics::MetricSpec;
use myriad_core::population::{ColumnData, ColumnType};
use myriad_core::Calendar;
use myriad_core::Csr;
use myriad_io::{read_edge_list, read_population, write_timeseries_parquet, IoError, TimeseriesCsv};
use std::path::PathBuf;
use std::sync::Arc;

fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn req(cols: &[(&str, ColumnType)]) -> Vec<(String, ColumnType)> {
    cols.iter().map(|(n, t)| (n.to_string(), *t)).collect()
}

#[test]
fn csv_population_infers_types_and_orders_by_id() {
    let d = tempfile::tempdir().unwrap();
    let p = file(
        &d,
        "pop.csv",
        "id,age,income,borough\n2,30,1.5,BK\n0,41,2,MN\n1,19,3.25,BK\n",
    );
    let pop = read_population(&p, &req(&[("age", ColumnType::Int), ("income", ColumnType::Float)])).unwrap();
    assert_eq!(pop.size(), 3);
    assert_eq!(pop.column("age").unwrap().data, ColumnData::Int(vec![41, 19, 30]));
    assert_eq!(
        pop.column("income").unwrap().data,
        ColumnData::Float(vec![2.0, 3.25, 1.5])
    );
    match &pop.column("borough").unwrap().data {
        ColumnData::Text { codes, labels } => {
            let v: Vec<&str> = codes.iter().map(|&c| labels[c as usize].as_str()).collect();
            assert_eq!(v, ["MN", "BK", "BK"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn csv_population_errors_name_file_line_and_column() {
    let d = tempfile::tempdir().unwrap();
    let ragged = file(&d, "ragged.csv", "age,sex\n30,F\n31\n");
    let e = read_population(&ragged, &[]).unwrap_err();
    assert!(
        matches!(
            e,
            IoError::Ragged {
                line: 3,
                expected: 2,
                found: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().starts_with(&format!("{}:3:", ragged.display())));

    let p = file(&d, "pop.csv", "age,sex\n30,F\nold,M\n");
    let e = read_population(&p, &req(&[("age", ColumnType::Int)])).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}:3: column 'age' must hold int values, found \"old\"", p.display())
    );

    let e = read_population(&p, &req(&[("income", ColumnType::Float)])).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: missing column 'income' (columns present: age, sex)", p.display())
    );

    let p = file(&d, "ids.csv", "id,age\n0,3\n5,4\n");
    let e = read_population(&p, &[]).unwrap_err();
    assert!(
        matches!(
            e,
            IoError::IdOutOfRange {
                line: 3,
                id: 5,
                n: 2,
                ..
            }
        ),
        "{e}"
    );

    let p = file(&d, "dup.csv", "id,age\n0,3\n0,4\n");
    let e = read_population(&p, &[]).unwrap_err();
    assert!(
        matches!(
            e,
            IoError::DuplicateId {
                line: 3,
                first: 2,
                id: 0,
                ..
            }
        ),
        "{e}"
    );

    let p = file(&d, "empty.csv", "id,age\n");
    assert!(matches!(read_population(&p, &[]).unwrap_err(), IoError::Empty { .. }));

    let e = read_population(&d.path().join("nope.csv"), &[]).unwrap_err();
    assert!(e.to_string().contains("nope.csv"), "{e}");

    let p = file(&d, "pop.txt", "a\n1\n");
    assert!(read_population(&p, &[])
        .unwrap_err()
        .to_string()
        .contains("must end in .csv or .parquet"));
}

#[test]
fn parquet_population_reads_like_csv() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("pop.parquet");
    let batch = RecordBatch::try_from_iter(vec![
        ("id", Arc::new(Int32Array::from(vec![1, 0])) as ArrayRef),
        ("age", Arc::new(Int32Array::from(vec![50, 20])) as ArrayRef),
        ("w", Arc::new(Float64Array::from(vec![0.5, 1.5])) as ArrayRef),
        ("group", Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef),
    ])
    .unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&p).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let pop = read_population(&p, &req(&[("age", ColumnType::Int), ("w", ColumnType::Float)])).unwrap();
    assert_eq!(pop.column("age").unwrap().data, ColumnData::Int(vec![20, 50]));
    assert_eq!(pop.column("w").unwrap().data, ColumnData::Float(vec![1.5, 0.5]));
    let e = read_population(&p, &req(&[("group", ColumnType::Int)])).unwrap_err();
    assert!(e.to_string().contains("column 'group' must hold int values"), "{e}");

    let bad = file(&d, "bad.parquet", "this is not parquet");
    assert!(read_population(&bad, &[])
        .unwrap_err()
        .to_string()
        .contains("not a readable Parquet file"));
}

#[test]
fn edge_list_reports_loops_and_duplicates() {
    let d = tempfile::tempdir().unwrap();
    let p = file(&d, "e.csv", "source,target,weight\n0,1,1\n1,0,2\n2,2,1\n1,2,0.5\n");
    let (edges, info) = read_edge_list(&p, 3).unwrap();
    assert_eq!(info.rows, 4);
    assert!(info.weighted);
    let (g, r) = Csr::from_edges(3, edges).unwrap();
    assert_eq!((r.self_loops_removed, r.duplicates_merged, r.edges), (1, 1, 2));
    assert_eq!(g.edge_weights(0).unwrap(), &[2.0]);

    let p = file(&d, "oob.csv", "source,target\n0,1\n1,9\n");
    let e = read_edge_list(&p, 3).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}:3: column 'target' has agent id 9, outside 0..3", p.display())
    );

    let p = file(&d, "neg.csv", "source,target\n-1,1\n");
    assert!(matches!(
        read_edge_list(&p, 3).unwrap_err(),
        IoError::IdOutOfRange { id: -1, .. }
    ));

    let p = file(&d, "nohead.csv", "a,b\n0,1\n");
    assert!(read_edge_list(&p, 3)
        .unwrap_err()
        .to_string()
        .contains("missing column 'source'"));

    let p = file(&d, "ragged.csv", "source,target\n0,1\n1\n");
    assert!(matches!(
        read_edge_list(&p, 3).unwrap_err(),
        IoError::Ragged { line: 3, .. }
    ));

    let p = file(&d, "w.csv", "source,target,weight\n0,1,-2\n");
    assert!(read_edge_list(&p, 3)
        .unwrap_err()
        .to_string()
        .contains("finite non-negative"));
}

#[test]
fn timeseries_round_trips_through_csv_and_parquet() {
    let d = tempfile::tempdir().unwrap();
    let specs = vec![MetricSpec::stock("S", ""), MetricSpec::fraction("frac", "agents", "")];
    let csv = d.path().join("ts.csv");
    let mut w = TimeseriesCsv::create(&csv, &specs, &Calendar::undated()).unwrap();
    w.write_row(0, &[10.0, 0.25]).unwrap();
    w.write_row(1, &[9.0, 0.1]).unwrap();
    // Written and flushed row by row: readable before the writer is dropped.
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        "step,S,frac\n0,10,0.25\n1,9,0.1\n"
    );
    drop(w);

    let pq = d.path().join("ts.parquet");
    let rows: Vec<&[f64]> = vec![&[10.0, 0.25], &[9.0, 0.1]];
    write_timeseries_parquet(&pq, &specs, &[0, 1], &rows, &Calendar::undated()).unwrap();
    let back = read_population(&pq, &[]).unwrap();
    assert_eq!(back.column("step").unwrap().data, ColumnData::Int(vec![0, 1]));
    assert_eq!(back.column("S").unwrap().data, ColumnData::Int(vec![10, 9]));
    assert_eq!(back.column("frac").unwrap().data, ColumnData::Float(vec![0.25, 0.1]));
}

#[test]
fn population_parquet_round_trips_every_column_type() {
    use myriad_core::population::{Column, Population};
    let d = tempfile::tempdir().unwrap();
    let n = 2_500_000u64; // more than one row group
    let labels: Vec<String> = ["BK", "BX", "MN", "unused"].iter().map(|s| s.to_string()).collect();
    let pop = Population::from_columns(
        n,
        vec![
            Column {
                name: "household".into(),
                data: ColumnData::Int((0..n as i64).map(|i| i / 3 - 1).collect()),
            },
            Column {
                name: "weight".into(),
                data: ColumnData::Float((0..n).map(|i| i as f64 * 0.25).collect()),
            },
            Column {
                name: "borough".into(),
                data: ColumnData::Text {
                    codes: (0..n).map(|i| ((i * 7) % 3) as u32).collect(),
                    labels: labels.clone(),
                },
            },
        ],
    )
    .unwrap();
    let path = d.path().join("pop.parquet");
    myriad_io::write_population_parquet(&path, &pop).unwrap();
    let back = read_population(&path, &[]).unwrap();
    // Same columns, values, text codes and label order (unused labels too),
    // so a model sees exactly the population that was saved.
    assert_eq!(back.size(), pop.size());
    for (a, b) in back.columns().iter().zip(pop.columns()) {
        assert_eq!(a.name, b.name);
        if let (ColumnData::Text { labels: la, .. }, ColumnData::Text { labels: lb, .. }) = (&a.data, &b.data) {
            assert_eq!(la, lb, "labels of {}", a.name);
        }
        assert!(a.data == b.data, "column {} differs after the round trip", a.name);
    }
    assert_eq!(back.columns().len(), pop.columns().len());
}

#[test]
fn an_unclosed_quote_is_refused_at_the_line_where_it_opens() {
    // Regression: one stray quote in a free-text column made the rest of
    // the file a single value, and 2,000 rows loaded as a handful of agents.
    let d = tempfile::tempdir().unwrap();
    let mut text = String::from("age,note\n");
    for i in 0..2000 {
        let note = if i == 5 { "\"oops" } else { "fine" };
        text.push_str(&format!("{},{note}\n", i % 90));
    }
    let p = file(&d, "people.csv", &text);
    let e = read_population(&p, &[]).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("{}:7:", p.display())), "{msg}");
    assert!(msg.contains("column 'note'") && msg.contains("not closed"), "{msg}");

    let edges = file(&d, "edges.csv", "source,target\n0,1\n\"1,2\n2,3\n");
    let e = read_edge_list(&edges, 10).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:3:", edges.display())), "{e}");

    // Quoted values that close on their line are fine.
    let p = file(&d, "ok.csv", "age,note\n1,\"a, b\"\n2,\"c\"\n");
    assert_eq!(read_population(&p, &[]).unwrap().size(), 2);
}

#[test]
fn values_echoed_in_errors_are_bounded() {
    let d = tempfile::tempdir().unwrap();
    let huge = "x".repeat(100_000);
    let p = file(&d, "pop.csv", &format!("age\n{huge}\n"));
    let e = read_population(&p, &req(&[("age", ColumnType::Int)]))
        .unwrap_err()
        .to_string();
    assert!(e.len() < 400, "{} characters", e.len());
    assert!(e.contains("(100000 characters)"), "{e}");
}

#[test]
fn a_failed_write_leaves_only_whole_lines() {
    // /dev/full fails every write; a regular file then shows the rule.
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let specs = vec![MetricSpec::stock("S", "")];
    let e = TimeseriesCsv::create(std::path::Path::new("/dev/full"), &specs, &Calendar::undated())
        .err()
        .unwrap();
    assert!(e.is_write(), "{e}");
    assert!(e.to_string().starts_with("cannot write /dev/full"), "{e}");
}
