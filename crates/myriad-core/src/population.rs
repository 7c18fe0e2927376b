//! Agents as rows, state as typed columns indexed by a dense `u32` agent id.

use std::fmt;

/// The element type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// 64-bit signed integers.
    Int,
    /// 64-bit floats.
    Float,
    /// Categorical text, stored as codes into a list of labels.
    Text,
}

impl ColumnType {
    /// Parse a type name as written in scenario files.
    pub fn parse(name: &str) -> Option<ColumnType> {
        match name {
            "int" | "integer" => Some(ColumnType::Int),
            "float" | "number" => Some(ColumnType::Float),
            "text" | "string" | "category" => Some(ColumnType::Text),
            _ => None,
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ColumnType::Int => "int",
            ColumnType::Float => "float",
            ColumnType::Text => "text",
        })
    }
}

/// The values of one column, one per agent.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnData {
    /// Integers.
    Int(Vec<i64>),
    /// Floats.
    Float(Vec<f64>),
    /// Categories: `labels[codes[i]]` is agent `i`'s value.
    Text {
        /// One code per agent.
        codes: Vec<u32>,
        /// Distinct labels in order of first appearance.
        labels: Vec<String>,
    },
}

impl ColumnData {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Int(v) => v.len(),
            ColumnData::Float(v) => v.len(),
            ColumnData::Text { codes, .. } => codes.len(),
        }
    }

    /// True when the column has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn column_type(&self) -> ColumnType {
        match self {
            ColumnData::Int(_) => ColumnType::Int,
            ColumnData::Float(_) => ColumnType::Float,
            ColumnData::Text { .. } => ColumnType::Text,
        }
    }
}

/// A named column.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// Column name (the header in an imported file).
    pub name: String,
    /// The values.
    pub data: ColumnData,
}

/// Errors assembling a population.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PopulationError {
    /// A column's length differs from the population size.
    #[error("column '{name}' has {len} values but the population has {size} agents")]
    LengthMismatch {
        /// Column name.
        name: String,
        /// Its length.
        len: usize,
        /// Population size.
        size: u32,
    },
    /// Two columns share a name.
    #[error("column '{0}' appears twice")]
    DuplicateColumn(String),
    /// More agents than a `u32` id can address.
    #[error("{0} agents is more than the 4,294,967,295 a u32 agent id can address")]
    TooLarge(u64),
}

/// A population: a size and a set of attribute columns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Population {
    size: u32,
    columns: Vec<Column>,
}

impl Population {
    /// A population of `size` agents with no attributes.
    pub fn synthetic(size: u32) -> Population {
        Population {
            size,
            columns: Vec::new(),
        }
    }

    /// A population from columns, all of length `size`.
    pub fn from_columns(size: u64, columns: Vec<Column>) -> Result<Population, PopulationError> {
        let size = u32::try_from(size).map_err(|_| PopulationError::TooLarge(size))?;
        let mut pop = Population::synthetic(size);
        for c in columns {
            pop.add_column(c)?;
        }
        Ok(pop)
    }

    /// Add a column.
    pub fn add_column(&mut self, column: Column) -> Result<(), PopulationError> {
        if column.data.len() != self.size as usize {
            return Err(PopulationError::LengthMismatch {
                name: column.name,
                len: column.data.len(),
                size: self.size,
            });
        }
        if self.column(&column.name).is_some() {
            return Err(PopulationError::DuplicateColumn(column.name));
        }
        self.columns.push(column);
        Ok(())
    }

    /// Number of agents.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// All columns.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }
}
