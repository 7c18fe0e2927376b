//! The synthetic New York City matches its source tables.

use myriad_core::population::{ColumnData, Population};
use myriad_models::nyc::data::{tables, BOROUGHS};
use myriad_models::nyc::{apportion, build_city, columns, CityOptions};
use std::collections::{HashMap, HashSet};

fn ints(p: &Population, name: &str) -> Vec<i64> {
    match &p.column(name).unwrap().data {
        ColumnData::Int(v) => v.clone(),
        other => panic!("{name}: {other:?}"),
    }
}

fn text(p: &Population, name: &str) -> Vec<String> {
    match &p.column(name).unwrap().data {
        ColumnData::Text { codes, labels } => codes.iter().map(|&c| labels[c as usize].clone()).collect(),
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn apportion_is_exact_and_proportional() {
    assert_eq!(apportion(10, &[1.0, 1.0, 1.0]), vec![4, 3, 3]);
    assert_eq!(apportion(7, &[0.0, 2.0, 5.0]), vec![0, 2, 5]);
    let parts = apportion(1_000_003, &[0.1, 0.2, 0.3, 0.4]);
    assert_eq!(parts.iter().sum::<u64>(), 1_000_003);
    assert!(parts
        .iter()
        .zip([0.1, 0.2, 0.3, 0.4])
        .all(|(&p, w)| (p as f64 - w * 1_000_003.0).abs() < 1.0));
}

#[test]
fn whole_city_matches_residents_households_and_labour_force() {
    let t0 = std::time::Instant::now();
    let city = build_city(&CityOptions::default(), 1).unwrap();
    eprintln!("built {} agents in {:.2} s", city.size(), t0.elapsed().as_secs_f64());
    let t = tables();
    assert_eq!(city.size() as u64, t.areas.iter().map(|a| a.people).sum::<u64>());
    assert_eq!(city.size(), 8_550_333);

    let area = text(&city, columns::AREA);
    let borough = text(&city, columns::BOROUGH);
    let household = ints(&city, columns::HOUSEHOLD);
    let age = ints(&city, columns::AGE_GROUP);
    let employment = ints(&city, columns::EMPLOYMENT);
    let class = ints(&city, columns::CLASS);
    let team = ints(&city, columns::WORK_TEAM);

    // Residents and households per area, exactly.
    let mut people: HashMap<&str, u64> = HashMap::new();
    let mut homes: HashMap<&str, HashSet<i64>> = HashMap::new();
    for i in 0..city.size() as usize {
        *people.entry(&area[i]).or_default() += 1;
        homes.entry(&area[i]).or_default().insert(household[i]);
    }
    for a in t.areas.iter().filter(|a| a.people > 0) {
        assert_eq!(people[a.code.as_str()], a.people, "{}", a.code);
        assert_eq!(homes[a.code.as_str()].len() as u64, a.households, "{}", a.code);
    }
    // Household members are contiguous, and almost every household has an adult.
    assert!(household.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1));
    let mut has_adult: HashMap<i64, bool> = HashMap::new();
    for i in 0..household.len() {
        *has_adult.entry(household[i]).or_default() |= age[i] > 0;
    }
    // Only areas with fewer adults than households can have adult-less ones.
    let without = has_adult.values().filter(|&&a| !a).count() as u64;
    let mut adults: HashMap<&str, u64> = HashMap::new();
    for i in 0..household.len() {
        *adults.entry(&area[i]).or_default() += (age[i] > 0) as u64;
    }
    let shortfall: u64 = t
        .areas
        .iter()
        .filter(|a| a.people > 0)
        .map(|a| a.households.saturating_sub(adults[a.code.as_str()]))
        .sum();
    assert_eq!(without, shortfall, "households without an adult");
    assert!(without < 100);

    // Labour force per borough: employed = LF (1 - u), unemployed = LF u, all aged 20-64.
    for (b, code) in BOROUGHS.iter().enumerate() {
        let (force, rate) = t.labour[b];
        let count = |status: i64| {
            (0..household.len())
                .filter(|&i| borough[i] == *code && employment[i] == status)
                .count() as f64
        };
        assert_eq!(count(1), (force * (1.0 - rate / 100.0)).round(), "{code} employed");
        assert_eq!(count(2), (force * rate / 100.0).round(), "{code} unemployed");
    }
    assert!((0..household.len()).all(|i| employment[i] == 0 || (1..=4).contains(&age[i])));

    // Classes hold exactly the under-20s, at most 25 each, within one area;
    // teams hold exactly the employed, within one borough.
    let mut class_size: HashMap<i64, (usize, &str)> = HashMap::new();
    for i in 0..household.len() {
        assert_eq!(class[i] >= 0, age[i] == 0);
        assert_eq!(team[i] >= 0, employment[i] == 1);
        if class[i] >= 0 {
            let e = class_size.entry(class[i]).or_insert((0, area[i].as_str()));
            e.0 += 1;
            assert_eq!(e.1, area[i]);
        }
    }
    assert!(class_size.values().all(|&(s, _)| s <= 25));
}

#[test]
fn brooklyn_areas_follow_their_person_counts() {
    let city = build_city(
        &CityOptions {
            boroughs: vec!["BK".into()],
            ..CityOptions::default()
        },
        3,
    )
    .unwrap();
    let t = tables();
    let area = text(&city, columns::AREA);
    let age = ints(&city, columns::AGE_GROUP);
    assert!(text(&city, columns::BOROUGH).iter().all(|b| b == "BK"));
    // In BK0101 the age-group counts are the person table's shares of the
    // area's residents, apportioned: within one person of the exact share.
    let cells = &t.brooklyn_cells["BK0101"];
    let total: f64 = cells.iter().sum();
    let n = t.areas.iter().find(|a| a.code == "BK0101").unwrap().people as f64;
    for g in 0..6 {
        let share: f64 = cells[g * 12..(g + 1) * 12].iter().sum::<f64>() / total;
        let got = (0..area.len())
            .filter(|&i| area[i] == "BK0101" && age[i] == g as i64)
            .count() as f64;
        assert!((got - share * n).abs() <= 12.0, "age group {g}: {got} vs {}", share * n);
    }
}

#[test]
fn scaled_city_is_deterministic_and_proportional() {
    let opts = CityOptions {
        boroughs: vec!["SI".into(), "MN".into()],
        scale: 0.05,
        ..CityOptions::default()
    };
    let a = build_city(&opts, 5).unwrap();
    let b = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap()
        .install(|| build_city(&opts, 5).unwrap());
    assert_eq!(a, b);
    let expected = (486_586.0 + 1_595_420.0) * 0.05;
    assert!((a.size() as f64 - expected).abs() < 200.0, "{}", a.size());
    assert_ne!(a, build_city(&opts, 6).unwrap());
    assert!(build_city(
        &CityOptions {
            boroughs: vec!["XX".into()],
            ..CityOptions::default()
        },
        1
    )
    .is_err());
}

#[test]
fn observed_series_are_complete_and_consistent_with_the_tables() {
    use myriad_models::nyc::data::{observed_unemployment, observed_weekly_cases, tables};
    let months = observed_unemployment();
    assert_eq!(months.len(), 41);
    assert!(months.iter().flatten().all(|r| r.is_finite() && *r > 0.0 && *r < 100.0));
    // The first month is the one the city's employment is drawn from.
    let labour = tables().labour;
    for b in 0..5 {
        assert_eq!(months[0][b], labour[b].1);
    }
    let weeks = observed_weekly_cases();
    assert_eq!(weeks.len(), 27);
    for (by, total) in &weeks {
        assert!((by.iter().sum::<f64>() - total).abs() < 1e-9, "{by:?} vs {total}");
    }
}
