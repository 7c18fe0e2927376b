//! The models and population sources myriad knows: one line each.

use myriad_core::model::ModelSpec;
use myriad_core::source::SourceSpec;

/// Every model, in the order `myriad models` lists them.
pub static MODELS: &[&ModelSpec] = &[
    &crate::epidemic::SIR,
    &crate::epidemic::SEIR,
    &crate::sis::SIS,
    &crate::covid::COVID,
    &crate::games::commons::COMMONS,
    &crate::games::donor::DONOR,
    &crate::games::guess::GUESS,
    &crate::swarm::vicsek::VICSEK,
    &crate::swarm::kuramoto::KURAMOTO,
    &crate::swarm::aggregation::AGGREGATION,
];

/// Every population source (`[population] synthetic = "..."`).
pub static SOURCES: &[&SourceSpec] = &[&crate::nyc::NYC];

/// All models.
pub fn models() -> &'static [&'static ModelSpec] {
    MODELS
}

/// A model by name.
pub fn find(name: &str) -> Option<&'static ModelSpec> {
    MODELS.iter().copied().find(|m| m.name == name)
}

/// A population source by name.
pub fn source(name: &str) -> Option<&'static SourceSpec> {
    SOURCES.iter().copied().find(|s| s.name == name)
}
