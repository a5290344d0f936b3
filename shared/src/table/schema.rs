//! The file layout: the signature line, the columns, and the range a
//! latency may take.

use crate::opkey::KEY_COLUMNS;

/// The first line of every table file.
pub const TABLE_SIGNATURE: &str = "# tunas latency table v1";

/// Statistic columns, after the key columns.
pub(crate) const STAT_COLUMNS: [&str; 7] = [
    "median_us",
    "p10_us",
    "p90_us",
    "mean_us",
    "std_us",
    "runs",
    "measured_at",
];

/// The largest latency a table may hold for one op or the constant, µs
/// (1,000 s): above it a value is a unit mistake, and sums of such values
/// lose all precision.
pub(crate) const MAX_OP_US: f64 = 1e9;

/// Every column, key columns first, in file order.
pub(super) fn all_columns() -> Vec<&'static str> {
    KEY_COLUMNS.iter().chain(&STAT_COLUMNS).copied().collect()
}
