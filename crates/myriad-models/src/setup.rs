//! Set-up shared by the epidemic models: initial stages from a population
//! column, seeding of initial infections, and checks of the layers given.

use myriad_core::model::ModelError;
use myriad_core::model::{Contacts, Layer};
use myriad_core::population::{ColumnData, Population};
use myriad_core::rng::{CounterRng, Stream};

/// Stage codes shared by the epidemic models.
pub const S: u8 = 0;
/// Exposed.
pub const E: u8 = 1;
/// Infectious.
pub const I: u8 = 2;
/// Recovered.
pub const R: u8 = 3;
/// Names of the stages S, E, I, R, by code.
pub const STAGE_LABELS: [&str; 4] = ["susceptible", "exposed", "infectious", "recovered"];

/// Every network layer must have one row per agent.
pub fn check_layer_sizes(layers: &[Layer], n: u32) -> Result<(), ModelError> {
    for l in layers {
        if let Contacts::Network(csr) = &l.contacts {
            if csr.n() != n {
                return Err(ModelError::Infeasible(format!(
                    "layer '{}' has {} agents but the population has {n}",
                    l.name,
                    csr.n()
                )));
            }
        }
    }
    Ok(())
}

/// Put `wanted` uniformly chosen susceptible agents in I.
pub fn seed_infections(stage: &mut [u8], wanted: u64, seed: u64) -> Result<(), ModelError> {
    let susceptible: Vec<u32> = (0..stage.len() as u32).filter(|&i| stage[i as usize] == S).collect();
    for k in seeded(susceptible.len() as u64, wanted, seed)? {
        stage[susceptible[k as usize] as usize] = I;
    }
    Ok(())
}

/// Which of `susceptible` agents (by their rank among the susceptible)
/// [`seed_infections`] puts in I: `wanted` of them, uniformly, sorted. When
/// every agent is susceptible these are the agents' ids, which a process
/// owning part of the agents can use without the others' stages.
pub fn seeded(susceptible: u64, wanted: u64, seed: u64) -> Result<Vec<u64>, ModelError> {
    if wanted > susceptible {
        return Err(ModelError::Infeasible(format!(
            "cannot seed {wanted} initial infections: only {susceptible} agents are susceptible"
        )));
    }
    Ok(choose_distinct(
        susceptible,
        wanted,
        &CounterRng::new(seed, Stream::SEEDING),
    ))
}

/// Read the optional `stage` column into initial stages.
pub fn initial_stages(pop: &Population, latent: bool) -> Result<Vec<u8>, ModelError> {
    let n = pop.size() as usize;
    let Some(col) = pop.column("stage") else {
        return Ok(vec![S; n]);
    };
    let bad = |i: usize, v: String| ModelError::BadColumn {
        column: "stage".into(),
        reason: format!(
            "agent {i} has stage {v}; expected 0..=3 or S, E, I, R{}",
            if latent { "" } else { " (E only in seir)" }
        ),
    };
    let check = |i: usize, s: u8, shown: String| {
        if s > 3 || (!latent && s == E) {
            Err(bad(i, shown))
        } else {
            Ok(s)
        }
    };
    match &col.data {
        ColumnData::Int(v) => v
            .iter()
            .enumerate()
            .map(|(i, &x)| check(i, u8::try_from(x).unwrap_or(u8::MAX), x.to_string()))
            .collect(),
        ColumnData::Text { codes, labels } => {
            let map: Vec<Option<u8>> = labels
                .iter()
                // Letters or the documented numeric codes (a column declared
                // as text keeps "0".."3" as text).
                .map(|l| match l.trim().to_ascii_uppercase().as_str() {
                    "S" | "0" => Some(S),
                    "E" | "1" => Some(E),
                    "I" | "2" => Some(I),
                    "R" | "3" => Some(R),
                    _ => None,
                })
                .collect();
            codes
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    let label = &labels[c as usize];
                    map[c as usize]
                        .ok_or_else(|| bad(i, format!("\"{label}\"")))
                        .and_then(|s| check(i, s, format!("\"{label}\"")))
                })
                .collect()
        }
        ColumnData::Float(_) => Err(ModelError::BadColumn {
            column: "stage".into(),
            reason: "holds decimal numbers; expected whole numbers 0..=3 or the letters S, E, I, R".into(),
        }),
    }
}

/// `k` distinct indices from `0..n`, uniformly, by Floyd's algorithm; sorted.
pub fn choose_distinct(n: u64, k: u64, rng: &CounterRng) -> Vec<u64> {
    let mut chosen = std::collections::HashSet::with_capacity(k as usize);
    for j in n - k..n {
        let t = rng.below(j, 0, j + 1);
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    let mut v: Vec<u64> = chosen.into_iter().collect();
    v.sort_unstable();
    v
}
