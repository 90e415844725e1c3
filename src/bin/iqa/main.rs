//! The `iqa` command over the public API: score files and folders with several metrics (`score`), list and
//! describe metrics (`list`, `info`), write quality maps (`map`), and the demo on the bundled pairs (`demo`).
//!
//! Structure: [`options::RunOptions`] are the options every subcommand shares (device, precision, threads,
//! preset, weights folder, offline, quiet); [`report`] holds the scored rows and writes them as a table, CSV,
//! JSON or JSONL; [`progress`] is the stderr progress bar; [`interrupt`] turns Ctrl-C into a clean stop.
//! [`score`] drives them for image pairs; [`pairs`] finds and pairs the files.
//!
//! A subcommand is one module and one [`Command`] variant: `mod video;` with `#[derive(clap::Args)] pub struct
//! VideoArgs` and `pub fn run(args: &VideoArgs, options: &RunOptions) -> anyhow::Result<Outcome>`, then
//! `Video(video::VideoArgs)` (its doc comment is its `--help` line) and one arm in `main`. Return
//! [`UsageError`] for a wrong command line (exit 2), `Outcome::Failed` when some item failed (exit 1).
mod interrupt;
mod list;
mod map;
mod options;
mod pairs;
mod progress;
mod report;
mod score;
mod video;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Image quality metrics of pyiqa (IQA-PyTorch), with pyiqa's numbers, as a command.
#[derive(Parser)]
#[command(name = "iqa", version, propagate_version = true, arg_required_else_help = true)]
struct Cli {
    #[command(flatten)]
    run: options::RunOptions,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score images (files, or folders paired by relative path) with one or more metrics.
    Score(score::ScoreArgs),
    /// Every metric: full-reference or not, direction, range, and whether it is ready here.
    List(list::ListArgs),
    /// One metric in detail: what it is and where each of its files comes from.
    Info(list::InfoArgs),
    /// Write a metric's per-pixel map of a pair as a heat map (lpips*, ssim, ssimc, psnr, psnry, gmsd).
    Map(map::MapArgs),
    /// Score DIR/dist against DIR/ref with every metric that is ready (default: the bundled calibration pairs).
    Demo(score::DemoArgs),
    /// Score a video against its reference frame by frame (Y4M, raw .yuv, `-` for a pipe): per-frame and
    /// pooled scores.
    Video(video::VideoArgs),
}

/// How a run ended: 0 all scored, 1 something failed (a row, a metric that could not be created), 2 the
/// command line was wrong, 130 interrupted.
pub enum Outcome {
    Done,
    Failed,
    Usage,
    Interrupted,
}

/// An error that is the user's command line (exit status 2), not a failure while running.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = cli.run.apply().and_then(|()| match &cli.command {
        Command::Score(args) => score::run(args, &cli.run),
        Command::Demo(args) => score::demo(args, &cli.run),
        Command::List(args) => list::list(args),
        Command::Info(args) => list::info(args),
        Command::Map(args) => map::run(args, &cli.run),
        Command::Video(args) => video::run(args, &cli.run),
    });
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::FAILURE,
        Ok(Outcome::Usage) => ExitCode::from(2),
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(e) => {
            eprintln!("iqa: {e:#}");
            ExitCode::from(if e.downcast_ref::<UsageError>().is_some() { 2 } else { 1 })
        }
    }
}
