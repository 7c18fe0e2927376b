//! The SIS model of docs/adding-a-model.md against its endemic level.

use myriad_core::model::{step_by_rule, Contacts, Layer, ModelInput};
use myriad_core::params::{ParamSet, ParamValue};
use myriad_core::population::Population;
use myriad_models::sis::{endemic_fraction, SisParams};

#[test]
fn well_mixed_sis_settles_at_its_endemic_level() {
    // R0 = beta N / gamma = 3: the mean-field level solves
    // (1 - i)(1 - (1 - beta)^(i N)) = gamma i, about 0.64.
    let n = 20_000u32;
    let (beta, gamma) = (0.3 / n as f64, 0.1);
    let mut p = ParamSet::defaults(SisParams::specs());
    p.set("beta", ParamValue::Number(beta)).unwrap();
    p.set("gamma", ParamValue::Number(gamma)).unwrap();
    p.set("initial_infected", ParamValue::Number(200.0)).unwrap();
    let mut m = (myriad_models::find("sis").unwrap().build)(ModelInput {
        population: Population::synthetic(n),
        layers: vec![Layer {
            name: "all".into(),
            contacts: Contacts::WellMixed,
            weight: 1.0,
        }],
        params: p.clone(),
        seed: 7,
        split: myriad_core::comm::Split::single(),
    })
    .unwrap();
    let mut row = vec![0.0; 3];
    let mut sum = 0.0;
    for step in 1..=400 {
        step_by_rule(m.as_mut(), step, &p, &[1.0], &mut row);
        assert_eq!(row[0] + row[1], n as f64, "agents are conserved");
        if step > 200 {
            sum += row[1] / n as f64;
        }
    }
    let mean = sum / 200.0;
    let expected = endemic_fraction(beta, gamma, n as f64);
    // The linear-noise sd of the infectious fraction is sqrt(gamma/(beta N) / N)
    // = 0.004; over 200 days with a correlation time of 1/(beta N - gamma) = 5
    // days the mean's sd is about 0.001. Five of those: 0.005.
    assert!((mean - expected).abs() < 0.005, "mean {mean} vs endemic {expected}");
    assert!((0.6..0.7).contains(&expected), "{expected}");
}

#[test]
fn without_transmission_every_infection_ends() {
    let n = 1000u32;
    let mut p = ParamSet::defaults(SisParams::specs());
    p.set("beta", ParamValue::Number(0.0)).unwrap();
    p.set("gamma", ParamValue::Number(0.5)).unwrap();
    let mut m = (myriad_models::find("sis").unwrap().build)(ModelInput {
        population: Population::synthetic(n),
        layers: vec![Layer {
            name: "all".into(),
            contacts: Contacts::WellMixed,
            weight: 1.0,
        }],
        params: p.clone(),
        seed: 1,
        split: myriad_core::comm::Split::single(),
    })
    .unwrap();
    let mut row = vec![0.0; 3];
    for step in 1..=60 {
        step_by_rule(m.as_mut(), step, &p, &[1.0], &mut row);
    }
    assert_eq!(row[1], 0.0);
}
