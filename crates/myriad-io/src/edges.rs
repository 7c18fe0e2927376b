//! Undirected edge lists from CSV: a header with `source` and `target`
//! (any order, other columns ignored) and an optional `weight`.

use crate::error::IoError;
use myriad_core::EdgeList;
use std::path::Path;

/// What the file held, before self-loops and repeats are removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeListInfo {
    /// Data rows read.
    pub rows: u64,
    /// Whether a `weight` column was present.
    pub weighted: bool,
}

/// Read an edge list over agents `0..n`. Ids must be whole numbers in range;
/// weights finite and non-negative. Self-loops and duplicates are kept here
/// and removed (and counted) when the layer is built.
pub fn read_edge_list(path: &Path, n: u32) -> Result<(EdgeList, EdgeListInfo), IoError> {
    if crate::population::extension(path) != "csv" {
        return Err(IoError::format(
            path,
            None,
            "edge lists must be .csv files with a source,target[,weight] header",
        ));
    }
    let (mut rdr, header) = crate::population::open_csv(path)?;
    let find = |name: &str| header.iter().position(|h| h == name);
    let missing = |name: &str| IoError::MissingColumn {
        path: path.to_path_buf(),
        column: name.into(),
        present: header.clone(),
    };
    let src = find("source").ok_or_else(|| missing("source"))?;
    let dst = find("target").ok_or_else(|| missing("target"))?;
    let wcol = find("weight");
    let mut ends = Vec::new();
    let mut weights = wcol.map(|_| Vec::new());
    let mut rec = csv::StringRecord::new();
    let mut rows = 0u64;
    while rdr.read_record(&mut rec).map_err(|e| IoError::from_csv(path, e))? {
        let line = rec.position().map_or(0, |p| p.line());
        crate::population::check_single_line(path, &rec, &header)?;
        for col in [src, dst] {
            let text = &rec[col];
            let id: i64 = text.parse().map_err(|_| IoError::WrongType {
                path: path.to_path_buf(),
                line: Some(line),
                column: header[col].clone(),
                expected: "agent id (whole number)".into(),
                value: text.into(),
            })?;
            if id < 0 || id >= n as i64 {
                return Err(IoError::IdOutOfRange {
                    path: path.to_path_buf(),
                    line,
                    column: header[col].clone(),
                    id,
                    n: n as u64,
                });
            }
            ends.push(id as u32);
        }
        if let (Some(wc), Some(ws)) = (wcol, weights.as_mut()) {
            let text = &rec[wc];
            match text.parse::<f32>() {
                Ok(w) if w.is_finite() && w >= 0.0 => ws.push(w),
                _ => {
                    return Err(IoError::WrongType {
                        path: path.to_path_buf(),
                        line: Some(line),
                        column: "weight".into(),
                        expected: "finite non-negative number".into(),
                        value: text.into(),
                    })
                }
            }
        }
        rows += 1;
    }
    Ok((
        EdgeList { ends, weights },
        EdgeListInfo {
            rows,
            weighted: wcol.is_some(),
        },
    ))
}
