//! Declaring a model's parameters once: [`crate::params!`] turns one table
//! into the documented specs (ranges, units, defaults; for validation,
//! `describe` and interventions) and a typed struct the model reads, so a
//! misspelt parameter name fails to compile.

/// Declare a model's parameters: a struct with one typed field per
/// parameter, `specs()` (the documented table) and `read(&ParamSet)`.
///
/// Each field is `name: kind(...), "unit";` after its doc comment, where
/// kind is `real(default, min, max)` (an `f64`), `whole(default, min, max)`
/// (a whole number, read as `f64`) with `min` and `max` [`crate::params::Limit`]s,
/// or `choice(default, WORDS)` (a `String` from a list of words).
///
/// ```
/// use myriad_core::params::{Limit::*, ParamSet};
/// myriad_core::params! {
///     /// Parameters of a toy model.
///     pub struct Toy {
///         /// Daily chance of infection per contact.
///         beta: real(0.05, Inclusive(0.0), Inclusive(1.0)), "probability";
///         /// Agents infected at the start.
///         seeds: whole(10.0, Inclusive(0.0), None), "agents";
///         /// How periods are drawn.
///         periods: choice("fixed", &["fixed", "geometric"]), "";
///     }
/// }
/// let p = Toy::read(&ParamSet::defaults(Toy::specs()));
/// assert_eq!((p.beta, p.seeds, p.periods.as_str()), (0.05, 10.0, "fixed"));
/// ```
#[macro_export]
macro_rules! params {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])+
                $field:ident : $kind:ident ( $($arg:expr),* $(,)? ), $unit:literal;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        $vis struct $name {
            $(
                $(#[doc = $doc])+
                pub $field: $crate::params!(@ty $kind),
            )*
        }

        impl $name {
            /// The documented parameter table, in declaration order.
            pub fn specs() -> Vec<$crate::params::ParamSpec> {
                vec![$(
                    $crate::params::ParamSpec {
                        name: stringify!($field),
                        kind: $crate::params!(@kind $kind ($($arg),*)),
                        default: $crate::params!(@default $kind ($($arg),*)),
                        unit: $unit,
                        doc: $crate::params!(@doc $($doc)+),
                    }
                ),*]
            }

            /// The values in force, typed.
            pub fn read(p: &$crate::params::ParamSet) -> $name {
                $name {
                    $($field: $crate::params!(@read $kind, p, stringify!($field)),)*
                }
            }
        }
    };
    (@ty real) => { f64 };
    (@ty whole) => { f64 };
    (@ty choice) => { String };
    (@kind real ($d:expr, $lo:expr, $hi:expr)) => {
        $crate::params::ParamKind::Number { min: $lo, max: $hi, integer: false }
    };
    (@kind whole ($d:expr, $lo:expr, $hi:expr)) => {
        $crate::params::ParamKind::Number { min: $lo, max: $hi, integer: true }
    };
    (@kind choice ($d:expr, $words:expr)) => { $crate::params::ParamKind::Choice($words) };
    (@default real ($d:expr, $lo:expr, $hi:expr)) => { $crate::params::ParamValue::Number($d) };
    (@default whole ($d:expr, $lo:expr, $hi:expr)) => { $crate::params::ParamValue::Number($d) };
    (@default choice ($d:expr, $words:expr)) => { $crate::params::ParamValue::Choice($d.to_string()) };
    (@read real, $p:ident, $n:expr) => { $p.num($n) };
    (@read whole, $p:ident, $n:expr) => { $p.num($n) };
    (@read choice, $p:ident, $n:expr) => { $p.choice($n).to_string() };
    (@doc $first:literal $($rest:literal)*) => { concat!($first $(, "\n", $rest)*).trim_ascii() };
}

/// Declare where named metrics sit in a model's row: a struct of column
/// indices found by name once, so the model writes `row[c.deaths] = ...`
/// instead of counting positions.
///
/// ```
/// use myriad_core::metrics::MetricSpec;
/// myriad_core::metric_columns! {
///     /// Columns of a toy model.
///     struct Cols { s: "S", new_infections: "new_infections" }
/// }
/// let specs = vec![MetricSpec::stock("S", ""), MetricSpec::flow("new_infections", "")];
/// let c = Cols::new(&specs);
/// assert_eq!((c.s, c.new_infections), (0, 1));
/// ```
#[macro_export]
macro_rules! metric_columns {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident { $($field:ident : $metric:literal),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug)]
        $vis struct $name {
            $($field: usize,)*
        }

        impl $name {
            /// The columns of these metrics in `specs` (a model's own list:
            /// a name it did not declare is a bug, and panics in its first test).
            fn new(specs: &[$crate::metrics::MetricSpec]) -> $name {
                let layout = $crate::metrics::RowLayout::new(specs);
                $name { $($field: layout.at($metric),)* }
            }
        }
    };
}
