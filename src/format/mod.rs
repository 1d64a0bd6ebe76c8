//! What is on disk (FORMAT.md, revision 2): the fixed header, defined once
//! with its offsets; the checkpoint reader; the trailers; the DSV4 payload;
//! and the dialects that tell the engines' variants apart.
//!
//! Nothing in here opens a directory or decides what to do with a file: it
//! turns bytes into typed values and says which rules they break.

pub mod checkpoint;
pub mod dialect;
pub mod dsv4;
pub mod header;
pub mod identity;
pub mod trailer;

pub use checkpoint::{CheckpointFile, Defect, Key};
pub use dialect::{DialectId, Engine};
pub use header::*;
