//! myriad-io: reading populations and edge lists from CSV and Parquet, and
//! writing time series to CSV and Parquet. Every error names the file and,
//! where there is one, the line and column.

#![deny(missing_docs)]

pub mod edges;
pub mod error;
pub mod population;
pub mod timeseries;

pub use edges::{read_edge_list, EdgeListInfo};
pub use error::IoError;
pub use population::{read_population, write_agents_parquet, write_population_parquet};
pub use timeseries::{write_timeseries_parquet, TimeseriesCsv};
