//! `ddb-archiver schema ddl` and `schema glue`: one layer's table (or the view) as an
//! Athena statement or a Glue `TableInput`.

use std::process::ExitCode;

use ddb_archiver::schema::layer::Layer;

use super::layer_set;
use crate::settings::FormatArg;

/// The flags of `schema ddl` and `schema glue`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["schema", "table"])))]
pub struct TableArgs {
    /// Schema file of the table: standard columns, typed columns and `type_errors`.
    #[arg(long, value_name = "FILE")]
    schema: Option<std::path::PathBuf>,
    /// DynamoDB table name, without a schema: the standard columns only.
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    /// Where the layer's files are: the archive's `s3://bucket/prefix/<table>/` (raw),
    /// the compacted layer's `s3://…/<table>/` (compacted) or `s3://…/ddb-archiver-manifests/<table>/`
    /// (manifests). Not used by the view.
    #[arg(long, value_name = "S3_URL")]
    location: Option<String>,
    /// File format of the raw archive (it decides the raw table's and the view's columns).
    #[arg(long, value_enum)]
    format: FormatArg,
    /// Athena database to create the table in.
    #[arg(long, value_name = "NAME")]
    database: Option<String>,
    /// Athena name of the raw table (default: derived from the DynamoDB table name); the
    /// others are `<name>_compacted`, `<name>_manifests` and the view `<name>_all`.
    #[arg(long, value_name = "NAME")]
    table_name: Option<String>,
    /// Which table: the raw archive, the compacted layer, its manifests, or the view
    /// over all three.
    #[arg(long, value_enum, default_value = "raw")]
    layer: LayerArg,
}

/// `--layer`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LayerArg {
    /// The raw archive's table `<name>`.
    Raw,
    /// The compacted layer's table `<name>_compacted`.
    Compacted,
    /// The compacted layer's manifests, `<name>_manifests`.
    Manifests,
    /// The view `<name>_all`: compacted days from the compacted layer, other days raw.
    View,
}

impl From<LayerArg> for Layer {
    fn from(l: LayerArg) -> Self {
        match l {
            LayerArg::Raw => Layer::Raw,
            LayerArg::Compacted => Layer::Compacted,
            LayerArg::Manifests => Layer::Manifests,
            LayerArg::View => Layer::View,
        }
    }
}

/// Prints the `--layer` table's `CREATE EXTERNAL TABLE` (or the view's statement), or
/// with `glue` its Glue `TableInput`.
pub fn run(args: TableArgs, glue: bool) -> anyhow::Result<ExitCode> {
    let layer = Layer::from(args.layer);
    if layer == Layer::View && glue {
        anyhow::bail!(
            "invalid --layer view: a Glue table cannot hold an Athena view; \
             create the view by running `ddb-archiver schema ddl --layer view` in Athena"
        );
    }
    let set = layer_set(
        args.schema.as_deref(),
        args.table.as_deref(),
        args.format,
        args.database.as_deref(),
        args.table_name.as_deref(),
    )?;
    if layer == Layer::View {
        print!("{}", set.view_sql());
        return Ok(ExitCode::SUCCESS);
    }
    let location = args
        .location
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("--location is required with --layer {}", layer.name()))?;
    let def = set
        .table(layer, location)
        .map_err(|e| anyhow::anyhow!("invalid --location for --layer {}: {e}", layer.name()))?
        .ok_or_else(|| anyhow::anyhow!("--layer {} has no table", layer.name()))?;
    print!("{}", if glue { def.glue_json() } else { def.ddl() });
    Ok(ExitCode::SUCCESS)
}
