//! kvc: read and manage KV-cache checkpoint directories of local LLM
//! inference engines (ds4-server, ds4-agent, ds4 forks, hanzo-engine).
//!
//! The byte-level reference is FORMAT.md; section numbers in comments refer
//! to it. This library never prints and never exits: it returns typed
//! results and [`Error`]s, and the `kvc` binary decides how to show them.

pub mod bundle;
pub mod enginelog;
pub mod error;
pub mod evict;
pub mod finding;
pub mod format;
pub mod fsutil;
pub mod gc;
pub mod journal;
pub mod lock;
pub mod matching;
pub mod policy;
pub mod prefix;
pub mod report;
pub mod resolve;
pub mod rewrite;
pub mod rm;
pub mod scan;
pub mod size;
pub mod stats;
pub mod sys;
pub mod text;
pub mod tree;
pub mod verify;

pub use error::{Error, Result};
pub use format::checkpoint::{CheckpointFile, Defect, Key};
pub use format::{ExtFlags, Header, Reason};
pub use policy::Policy;
pub use scan::{scan_dir, Checkpoint, Scan, ScanOptions};
