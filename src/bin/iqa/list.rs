//! `iqa list` and `iqa info`: what each metric is and whether it is ready here, from `metric_status` (nothing
//! is created or downloaded, so a missing file never stops the listing).
use crate::{Outcome, UsageError};
use iqa::{metric_names, metric_status, pyiqa_catalogue, Availability, FileSource, MetricInfo, MetricStatus, Mode};

#[derive(clap::Args)]
pub struct ListArgs {
    /// Also print where each pretrained file comes from.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(clap::Args)]
pub struct InfoArgs {
    /// A metric name (pyiqa's), e.g. lpips.
    metric: String,
}

fn mode(info: &MetricInfo) -> &'static str {
    if info.mode == Mode::FullReference {
        "FR"
    } else {
        "NR"
    }
}

fn range(info: &MetricInfo) -> String {
    let (lo, hi) = info.score_range;
    if lo.is_nan() || hi.is_nan() {
        "-".to_string()
    } else {
        format!("[{lo}, {hi}]")
    }
}

/// Ready, downloads or missing, in a few words.
pub fn availability(status: &MetricStatus) -> String {
    let names = |want: fn(&FileSource) -> bool| {
        status.files.iter().filter(|f| want(&f.source)).map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
    };
    match status.availability {
        Availability::Ready if status.module.is_some() => "ready (TorchScript module found)".to_string(),
        Availability::Ready if status.files.is_empty() => "ready".to_string(),
        Availability::Ready if status.files.iter().all(|f| f.source == FileSource::BuiltIn) => {
            "ready (parameters built in)".to_string()
        }
        Availability::Ready => "ready (weights found)".to_string(),
        Availability::Download => {
            format!("will download {}", names(|s| matches!(s, FileSource::Download { .. })))
        }
        Availability::Missing => format!("missing {}", names(|s| matches!(s, FileSource::Missing(_)))),
    }
}

pub fn list(args: &ListArgs) -> anyhow::Result<Outcome> {
    let names = metric_names();
    let others: Vec<MetricInfo> = pyiqa_catalogue().into_iter().filter(|m| !names.contains(&m.name)).collect();
    let width = names.iter().map(String::len).chain(others.iter().map(|m| m.name.len())).max().unwrap_or(6);
    println!("{:<width$} {:<4} {:<7} {:<12} availability", "metric", "mode", "better", "range");
    for name in &names {
        let status = metric_status(name)?;
        let info = &status.info;
        println!("{name:<width$} {:<4} {:<7} {:<12} {}", mode(info), better(info), range(info), availability(&status));
        if args.verbose {
            for line in status.describe().lines() {
                println!("    {line}");
            }
        }
    }
    println!();
    println!(
        "pyiqa's other {} metrics are not built in; export one as a TorchScript module with \
         `scripts/export_torchscript.py NAME --out DIR` (needs pyiqa) and run with --weights-dir DIR:",
        others.len()
    );
    for info in &others {
        println!("{:<width$} {:<4} {:<7} {}", info.name, mode(info), better(info), range(info));
    }
    Ok(Outcome::Done)
}

pub fn info(args: &InfoArgs) -> anyhow::Result<Outcome> {
    let name = args.metric.as_str();
    let status = match metric_status(name) {
        Ok(status) => status,
        Err(e) if e.kind == iqa::ErrorKind::UnknownMetric => {
            if let Some(info) = pyiqa_catalogue().into_iter().find(|m| m.name == name) {
                println!("{name}: pyiqa metric, {} ({} is better), range {}", mode(&info), better(&info), range(&info));
                println!("not built into iqa: export it with `scripts/export_torchscript.py {name} --out DIR` (needs");
                println!("pyiqa and its weights), then run iqa with --weights-dir DIR");
                return Ok(Outcome::Done);
            }
            return Err(UsageError(e.message).into());
        }
        Err(e) => return Err(e.into()),
    };
    let info = &status.info;
    let kind = match (info.mode, status.takes_caption) {
        (_, true) => "scored against a caption (--caption, --captions)",
        (Mode::FullReference, _) => "full-reference",
        _ => "no-reference",
    };
    println!("{name}: {kind}, {} is better, range {}", better(info), range(info));
    println!("availability: {}", availability(&status));
    for line in status.describe().lines() {
        println!("  {line}");
    }
    Ok(Outcome::Done)
}

fn better(info: &MetricInfo) -> &'static str {
    if info.lower_better {
        "lower"
    } else {
        "higher"
    }
}
