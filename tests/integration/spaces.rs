//! Search spaces and architectures.
