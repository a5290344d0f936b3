//! Typed errors. Each says what is wrong, where, and what to do.

use thiserror::Error;

/// A search space could not be found, read or accepted.
#[derive(Debug, Error)]
pub enum SpaceError {
    /// No built-in space has this name and it is not a file.
    #[error(
        "unknown search space '{name}': use one of {known}, or a path to a .toml file (see `tunas-profiler spaces --show tiny28` for the format)"
    )]
    Unknown {
        /// The name asked for.
        name: String,
        /// The built-in names.
        known: String,
    },
    /// The file could not be read.
    #[error("cannot read search space file {path}")]
    Io {
        /// File path.
        path: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The TOML did not parse into a space.
    #[error("{origin}: not a valid search space: {message}")]
    Toml {
        /// File path or other origin.
        origin: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The space parsed but breaks an invariant.
    #[error("search space '{space}': {what}")]
    Invalid {
        /// Space name.
        space: String,
        /// What is wrong, naming the field or decision.
        what: String,
    },
}

/// An architecture does not fit its space.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ArchError {
    /// Wrong number of digits.
    #[error(
        "architecture '{text}' has {found} decision digits but space '{space}' has {expected} decisions (one base-36 digit per decision; 'largest' and 'random:SEED' are accepted too)"
    )]
    WrongLength {
        /// Space name.
        space: String,
        /// Decisions in the space.
        expected: usize,
        /// Digits found.
        found: usize,
        /// The text given.
        text: String,
    },
    /// A digit is out of range for its decision.
    #[error(
        "architecture character {column} ('{found}') is not a value of decision '{decision}'; allowed: {allowed}"
    )]
    BadValue {
        /// Decision name.
        decision: String,
        /// 1-based character position.
        column: usize,
        /// The character found.
        found: String,
        /// The allowed digits with their values.
        allowed: String,
    },
    /// `random:SEED` with a seed that is not an integer.
    #[error("'{text}': the seed of random:SEED must be a non-negative integer")]
    BadSeed {
        /// The text given.
        text: String,
    },
}

/// An op key could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum OpKeyError {
    /// A field has a bad value.
    #[error("op key field '{field}' = '{value}': expected {expected}")]
    BadField {
        /// Column name.
        field: &'static str,
        /// The value found.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The canonical text form did not parse.
    #[error(
        "'{text}' is not an op key (expected e.g. bottleneck-14x14x16-o24-m48-k5-s2-se1-swish6-r0-b1)"
    )]
    BadText {
        /// The text given.
        text: String,
    },
}

/// A latency table could not be read, written, or used.
#[derive(Debug, Error)]
pub enum TableError {
    /// The file could not be read or written.
    #[error("{path}: cannot {what}")]
    Io {
        /// File path.
        path: String,
        /// What failed, e.g. `read the latency table`.
        what: &'static str,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The first line is not the table signature.
    #[error(
        "{path}:1: not a tunas latency table (the first line must be '{expected}'); write tables with `tunas-profiler profile`"
    )]
    NotATable {
        /// File path.
        path: String,
        /// The expected first line.
        expected: String,
    },
    /// A provenance line is malformed or names an unknown field.
    #[error("{path}:{line}: provenance: {message}")]
    BadProvenance {
        /// File path.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A required provenance field is absent.
    #[error(
        "{path}: provenance field '{field}' is missing (add a line '# {field} = ...' before the header)"
    )]
    MissingProvenance {
        /// File path.
        path: String,
        /// Field name.
        field: &'static str,
    },
    /// A required column is absent from the header.
    #[error(
        "{path}:{line}: column '{column}' is missing from the header; expected columns: {expected}"
    )]
    MissingColumn {
        /// File path.
        path: String,
        /// 1-based line of the header.
        line: usize,
        /// Column name.
        column: String,
        /// All expected columns.
        expected: String,
    },
    /// The header has a column the schema does not know.
    #[error("{path}:{line}: unknown column '{column}'; expected columns: {expected}")]
    UnknownColumn {
        /// File path.
        path: String,
        /// 1-based line of the header.
        line: usize,
        /// Column name.
        column: String,
        /// All expected columns.
        expected: String,
    },
    /// A cell does not parse or is out of range.
    #[error("{path}:{line}: column '{column}' = '{value}': {message}{key_text}")]
    BadValue {
        /// File path.
        path: String,
        /// 1-based line.
        line: usize,
        /// Column name.
        column: String,
        /// The cell.
        value: String,
        /// What is wrong.
        message: String,
        /// `" (op key ...)"` when the key is known.
        key_text: String,
    },
    /// A row is not valid CSV (wrong field count, bad quoting).
    #[error("{path}:{line}: {message}")]
    BadRow {
        /// File path.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The same op key appears twice.
    #[error(
        "{path}:{line}: op key {key} appears again (first at line {first_line}); a table has one row per op key"
    )]
    DuplicateKey {
        /// File path.
        path: String,
        /// 1-based line of the repeat.
        line: usize,
        /// Line of the first occurrence.
        first_line: usize,
        /// The key's canonical text.
        key: String,
    },
    /// The table was measured for another space.
    #[error(
        "{path}: this table was made for space '{table_space}' (hash {table_hash}), not for '{space}' (hash {space_hash}); profile the space with `tunas-profiler profile --space {space} --out FILE`"
    )]
    SpaceMismatch {
        /// File path.
        path: String,
        /// Space named in the table.
        table_space: String,
        /// Hash recorded in the table.
        table_hash: String,
        /// Space asked for.
        space: String,
        /// Its hash.
        space_hash: String,
    },
    /// An op needed by an architecture has no row.
    #[error(
        "{path}: no latency for op {key}; the table does not cover this architecture; add the missing rows with `tunas-profiler refresh --table {path} --space SPACE` (it measures only what the table lacks)"
    )]
    MissingOp {
        /// File path.
        path: String,
        /// The missing key's canonical text.
        key: String,
    },
}
