//! Cooperation and strategic games: the GovSim commons ([`commons`]), the
//! Donor Game of cultural evolution ([`donor`]) and guess-2/3-of-the-average
//! ([`guess`]). Each step is one decision period (a month, a generation, a
//! round); players follow a rule given by the parameters, or a behaviour
//! provider (an LLM asked per agent) through the model's decisions.

pub mod commons;
pub mod donor;
pub mod guess;

/// Gini coefficient of non-negative values (0: all equal; 0 for an empty
/// or all-zero list), by the sorted-rank formula.
pub fn gini(values: &[f64]) -> f64 {
    let n = values.len();
    let total: f64 = values.iter().sum();
    if n == 0 || total <= 0.0 {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let weighted: f64 = v
        .iter()
        .enumerate()
        .map(|(i, x)| (2.0 * (i as f64 + 1.0) - n as f64 - 1.0) * x)
        .sum();
    weighted / (n as f64 * total)
}

#[cfg(test)]
mod tests {
    use super::gini;

    #[test]
    fn gini_of_known_distributions() {
        assert_eq!(gini(&[5.0; 4]), 0.0);
        // One holds everything among n: (n - 1) / n.
        assert!((gini(&[0.0, 0.0, 0.0, 8.0]) - 0.75).abs() < 1e-12);
        // 1, 2, 3: mean absolute difference 8/9 over twice the mean 4.
        assert!((gini(&[3.0, 1.0, 2.0]) - 2.0 / 9.0).abs() < 1e-12);
        assert_eq!(gini(&[]), 0.0);
    }
}
