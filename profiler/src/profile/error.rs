//! What can stop profiling or validation.

use thiserror::Error;
use tunas_shared::TableError;
use tunas_shared::onnx::OnnxError;
use tunas_shared::table::FieldError;

use crate::runtime::RuntimeError;

/// Anything that can stop profiling or validation.
#[derive(Debug, Error)]
pub enum ProfileError {
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A table could not be read or written.
    #[error(transparent)]
    Table(#[from] TableError),
    /// A model could not be built.
    #[error("cannot build the ONNX model for {what}")]
    Model {
        /// The op key or architecture.
        what: String,
        /// What the builder refused.
        #[source]
        source: OnnxError,
    },
    /// The output exists and overwriting was not asked for (resuming does
    /// not overwrite a finished table).
    #[error(
        "{path} exists and replacing it was not asked for (tables are data: new measurements go to new files)"
    )]
    OutputExists {
        /// The table path.
        path: String,
    },
    /// A journal from an earlier run exists.
    #[error(
        "{journal} holds {rows} rows of an interrupted run, and continuing it was not asked for"
    )]
    JournalExists {
        /// The journal path.
        journal: String,
        /// Rows in it.
        rows: usize,
    },
    /// The journal was measured with other settings.
    #[error(
        "{journal} was measured with {field} = {found}, this run asks for {wanted}; resume with the same settings or delete the journal"
    )]
    ResumeMismatch {
        /// The journal path.
        journal: String,
        /// The differing setting.
        field: &'static str,
        /// In the journal.
        found: String,
        /// Asked for now.
        wanted: String,
    },
    /// A setting is out of range (the command line checks its flags; this
    /// guards other callers of the library).
    #[error("profile settings: {what}")]
    BadSettings {
        /// What is wrong.
        what: String,
    },
    /// The output folder cannot be written.
    #[error("cannot write to {path}")]
    Unwritable {
        /// Path.
        path: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A table's provenance note cannot be read.
    #[error("{table}: a provenance note cannot be read")]
    BadTableNote {
        /// The table path.
        table: String,
        /// The note and what is wrong with it.
        #[source]
        source: FieldError,
    },
    /// A journal's provenance note cannot be read back.
    #[error("{journal}: a provenance note of the interrupted run cannot be read")]
    BadNote {
        /// The journal path.
        journal: String,
        /// The note and what is wrong with it.
        #[source]
        source: FieldError,
    },
}
