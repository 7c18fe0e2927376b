//! Swarms: agents in a periodic box or on a ring of phases, each seeing only
//! its neighbourhood, that can run by their classic rule, under a
//! hand-written controller or under a learned policy (the tasks of Cui,
//! Hauck, Fabian and Koeppl, "Learning Decentralized Partially Observable
//! Mean Field Control for Artificial Collective Behavior", ICLR 2024).
//!
//! - [`vicsek`]: heading alignment (Vicsek et al. 1995);
//! - [`kuramoto`]: oscillator synchronisation, all-to-all or on a contact layer;
//! - [`aggregation`]: gathering with bounded speed.

pub mod aggregation;
pub mod kuramoto;
pub mod vicsek;

use myriad_core::rng::CounterRng;
use myriad_core::space::ordered_sum;
use std::f64::consts::PI;

/// Ask the step's provider for every agent's action into `actions`, from
/// the observations `obs` (`agents x doc.obs_dim()`): false when the
/// model's own rule decides this step.
pub fn ask_actions(
    cx: &mut myriad_core::model::Step,
    doc: &'static myriad_core::control::ControlDoc,
    obs: &[f32],
    bounds: &[(f32, f32)],
    actions: &mut [f32],
) -> bool {
    let req = myriad_core::control::ActionRequest {
        step: cx.step,
        obs,
        obs_dim: doc.obs_dim(),
        bounds,
        doc,
    };
    cx.decide.actions(&format!("step {}", cx.step), &req, actions)
}

/// An angle brought into `(-pi, pi]`.
#[inline(always)]
pub fn wrap_angle(a: f64) -> f64 {
    let mut b = a % (2.0 * PI);
    if b > PI {
        b -= 2.0 * PI;
    } else if b <= -PI {
        b += 2.0 * PI;
    }
    b
}

/// A standard normal draw from counter `(a, b)` (Box-Muller on two
/// uniform draws of the counter pair `(a, 2b)`, `(a, 2b + 1)`).
#[inline(always)]
pub fn normal(rng: &CounterRng, a: u64, b: u64) -> f64 {
    rng.normal(a, b)
}

/// The polar order parameter |sum of e^{i theta}| / N and the mean phase,
/// summed in a fixed order (the same bits on any number of threads).
pub fn polar_order(theta: &[f64]) -> (f64, f64) {
    if theta.is_empty() {
        return (0.0, 0.0);
    }
    let [c, s] = ordered_sum(theta.len(), |i| {
        let (s, c) = theta[i].sin_cos();
        [c, s]
    });
    ((c * c + s * s).sqrt() / theta.len() as f64, s.atan2(c))
}

/// Mean of `f(i)` over `0..n` in a fixed order.
pub fn ordered_mean(n: usize, f: impl Fn(usize) -> f64 + Sync) -> f64 {
    if n == 0 {
        return 0.0;
    }
    ordered_sum(n, |i| [f(i)])[0] / n as f64
}

/// The octant (0..8) of the angle with cosine `c` and sine `s`, counted
/// from 0 anticlockwise, without trigonometry.
#[inline(always)]
pub fn octant(c: f64, s: f64) -> usize {
    // Octant boundaries at multiples of pi/4: compare signs and |c| vs |s|.
    match (s >= 0.0, c >= 0.0, c.abs() >= s.abs()) {
        (true, true, true) => 0,
        (true, true, false) => 1,
        (true, false, false) => 2,
        (true, false, true) => 3,
        (false, false, true) => 4,
        (false, false, false) => 5,
        (false, true, false) => 6,
        (false, true, true) => 7,
    }
}

/// The agent count as a model error when a swarm has none.
pub fn require_agents(n: usize) -> Result<(), myriad_core::model::ModelError> {
    if n == 0 {
        Err(myriad_core::model::ModelError::Infeasible(
            "a swarm needs at least one agent ([population] size)".into(),
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octants_match_atan2() {
        for k in 0..720 {
            let a = -PI + (k as f64 + 0.5) * PI / 360.0;
            let (s, c) = a.sin_cos();
            let expect = ((a.rem_euclid(2.0 * PI)) / (PI / 4.0)).floor() as usize % 8;
            assert_eq!(octant(c, s), expect, "angle {a}");
        }
    }

    #[test]
    fn normals_have_unit_variance() {
        let rng = CounterRng::new(1, myriad_core::rng::Stream::custom(1));
        let n = 200_000;
        let (mut m, mut v) = (0.0, 0.0);
        for i in 0..n {
            let x = normal(&rng, i, 0);
            m += x;
            v += x * x;
        }
        m /= n as f64;
        v = v / n as f64 - m * m;
        // Standard errors: 1/sqrt(n) = 0.0022 for the mean, sqrt(2/n) = 0.0032 for the variance.
        assert!(m.abs() < 5.0 * 0.0022, "mean {m}");
        assert!((v - 1.0).abs() < 5.0 * 0.0032, "variance {v}");
    }

    #[test]
    fn wrap_angle_range() {
        assert!((wrap_angle(3.0 * PI) - PI).abs() < 1e-12);
        assert!((wrap_angle(-3.0 * PI / 2.0) - PI / 2.0).abs() < 1e-12);
    }
}
