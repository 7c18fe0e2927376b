//! Parameter sweeps: a grid of `--set` values times seeds, one table out.
