//! The subcommands, one module each, as in cargo's `src/bin/cargo/commands/`: a module
//! holds its command's flags (a clap `Args` struct) and the glue that runs the command
//! on the library, and no module uses another's.
//!
//! What several commands share stays here: the table-day selection of `compact` and
//! `verify`, the `--schemas` directory, the progress spinner and the summary printing.

pub mod archive;
pub mod baseline;
pub mod compact;
pub mod coverage;
pub mod replay;
pub mod restore;
pub mod restore_athena;
pub mod schema;
pub mod verify;

use std::process::ExitCode;

/// The table-days a command works on.
#[derive(Debug, clap::Args)]
pub struct DaysArgs {
    /// Only this table (default: every table under the source; `_rejected/` objects
    /// belong to no table).
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,

    /// First UTC day (inclusive); `_rejected/` objects by their processing date.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from: Option<chrono::NaiveDate>,

    /// Last UTC day (inclusive).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub to: Option<chrono::NaiveDate>,
}

impl DaysArgs {
    /// Checks `--table` and `--from`/`--to`, naming the flag at fault.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(t) = &self.table {
            ddb_archiver::model::key::validate_table_name(t)
                .map_err(|e| anyhow::anyhow!("invalid --table: {e}"))?;
        }
        if let (Some(f), Some(t)) = (self.from, self.to) {
            if f > t {
                anyhow::bail!("invalid --from/--to: --from {f} is after --to {t}");
            }
        }
        Ok(())
    }
}

/// The schema files of `--schemas`, if given.
pub fn load_schemas(
    dir: Option<&std::path::Path>,
) -> anyhow::Result<Option<ddb_archiver::schema::SchemaSet>> {
    dir.map(|d| {
        ddb_archiver::schema::SchemaSet::load_dir(d)
            .map_err(|e| anyhow::anyhow!("invalid --schemas: {e}"))
    })
    .transpose()
}

/// A spinner on a terminal, nothing otherwise.
pub fn progress_bar(template: &str) -> anyhow::Result<indicatif::ProgressBar> {
    use std::io::IsTerminal as _;
    if !std::io::stderr().is_terminal() {
        return Ok(indicatif::ProgressBar::hidden());
    }
    let bar = indicatif::ProgressBar::new_spinner()
        .with_style(indicatif::ProgressStyle::with_template(template)?);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    Ok(bar)
}

/// A command's summary as printed: pretty JSON and a newline with `--json`, `text`
/// otherwise.
pub fn summary_text(
    json: bool,
    summary: &impl serde::Serialize,
    text: String,
) -> anyhow::Result<String> {
    Ok(if json {
        format!("{}\n", serde_json::to_string_pretty(summary)?)
    } else {
        text
    })
}

/// Prints a command's summary on standard output, as JSON with `--json`.
pub fn print_summary(
    json: bool,
    summary: &impl serde::Serialize,
    text: String,
) -> anyhow::Result<()> {
    print!("{}", summary_text(json, summary, text)?);
    Ok(())
}

/// Prints a command's summary, as JSON with `--json`, and gives its exit status: 0 when
/// `ok`, 1 otherwise.
pub fn finish(
    json: bool,
    summary: &impl serde::Serialize,
    text: String,
    ok: bool,
) -> anyhow::Result<ExitCode> {
    print_summary(json, summary, text)?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
