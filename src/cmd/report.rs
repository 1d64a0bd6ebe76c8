//! `kvc report`: placeholder replaced below.
use crate::cli::ReportArgs;
use crate::Outcome;
use anyhow::Result;

pub fn run(_args: ReportArgs) -> Result<Outcome> {
    anyhow::bail!("not yet")
}
