//! `iqa score` (and `iqa demo`): images scored by several metrics, in parallel over images with one shared
//! handle per metric (handles are thread-safe), each image decoded once for all metrics; results written as a
//! table, CSV, JSON and streamed JSONL (report.rs), with a progress bar; a bad image is an error row and the
//! run goes on.
use crate::options::RunOptions;
use crate::pairs::{pair, pair_with_one, Pair};
use crate::progress::Progress;
use crate::report::{jsonl_line, MetricColumn, Report, Row, RunInfo};
use crate::{interrupt, Outcome, UsageError};
use iqa::image::{decode_file, decode_pair};
use iqa::{create_metric, metric_names, metric_status, Availability, Metric, Mode, PreparedReference};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

#[derive(clap::Args)]
pub struct ScoreArgs {
    /// Metrics, comma-separated pyiqa names (e.g. ssim,lpips,niqe), or `all` for every metric ready here.
    /// Without -m, the first argument is the metric list (`iqa score ssim DIST REF`).
    #[arg(short, long, value_name = "METRICS")]
    metrics: Option<String>,
    /// DIST [REF]: the distorted image and its reference, each a file or a folder (folders pair by relative
    /// path). No-reference metrics score DIST and ignore REF. With --ref, every path is a DIST.
    #[arg(value_name = "DIST [REF]", num_args = 1.., required = true)]
    paths: Vec<PathBuf>,
    /// One reference image for every DIST (files, or the images of folders): an encoder's quality ladder, a
    /// sweep of restorations. Full-reference metrics prepare it once (LPIPS and DISTS keep its activations).
    #[arg(long = "ref", value_name = "FILE")]
    reference: Option<PathBuf>,
    /// Also take images from subfolders.
    #[arg(short, long)]
    recursive: bool,
    /// Images scored at once (default: one per thread, each metric call then on one thread).
    #[arg(long, value_name = "N")]
    workers: Option<std::num::NonZeroUsize>,
    /// The caption every image is scored against by metrics that take one (clipscore).
    #[arg(long, value_name = "TEXT", conflicts_with = "captions")]
    caption: Option<String>,
    /// Each image's caption for metrics that take one: lines `NAME,CAPTION`, NAME as the output names the image
    /// (its path relative to the DIST folder) or its file name, CAPTION quoted ("...", "" for a quote) where it
    /// holds a comma.
    #[arg(long, value_name = "FILE")]
    captions: Option<PathBuf>,
    #[command(flatten)]
    outputs: Outputs,
}

/// Where captions come from.
#[derive(Default)]
enum Captions {
    #[default]
    None,
    Every(String),
    ByName(std::collections::HashMap<String, String>),
}

impl Captions {
    fn from_args(args: &ScoreArgs) -> anyhow::Result<Captions> {
        if let Some(c) = &args.caption {
            return Ok(Captions::Every(c.clone()));
        }
        let Some(path) = &args.captions else { return Ok(Captions::None) };
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("cannot read the captions file {}: {e}", path.display())))?;
        let mut map = std::collections::HashMap::new();
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let (name, caption) = line
                .split_once(',')
                .ok_or_else(|| UsageError(format!("{} line {}: expected NAME,CAPTION", path.display(), n + 1)))?;
            let caption = match caption.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => caption.to_string(),
            };
            map.insert(name.trim().to_string(), caption);
        }
        Ok(Captions::ByName(map))
    }

    /// The caption of the image the output names `name` (found by that name or by its file name).
    fn of(&self, name: &str) -> Option<&str> {
        match self {
            Captions::None => None,
            Captions::Every(c) => Some(c),
            Captions::ByName(map) => map
                .get(name)
                .or_else(|| Path::new(name).file_name().and_then(|f| map.get(f.to_string_lossy().as_ref())))
                .map(String::as_str),
        }
    }
}

#[derive(clap::Args)]
pub struct DemoArgs {
    /// A folder with dist/ and ref/ subfolders of the same file names.
    #[arg(default_value = "data/calibration")]
    dir: PathBuf,
    #[command(flatten)]
    outputs: Outputs,
}

/// Where results go besides the table (`-` = stdout, which then holds no table).
#[derive(clap::Args, Default)]
pub struct Outputs {
    /// Write one row per image and metric as CSV (dist,ref,metric,score,error).
    #[arg(long, value_name = "PATH|-")]
    csv: Option<String>,
    /// Write the rows, per-metric statistics and the run's settings as one JSON document.
    #[arg(long, value_name = "PATH|-")]
    json: Option<String>,
    /// Stream one JSON line per image as it finishes.
    #[arg(long, value_name = "PATH|-")]
    jsonl: Option<String>,
}

impl Outputs {
    fn to_stdout(&self) -> usize {
        [&self.csv, &self.json, &self.jsonl].iter().filter(|o| o.as_deref() == Some("-")).count()
    }
}

/// An output destination, opened when the run starts (so that a bad path fails before any work).
fn open(target: &str) -> anyhow::Result<Box<dyn Write + Send>> {
    if target == "-" {
        return Ok(Box::new(std::io::stdout()));
    }
    let file = std::fs::File::create(target).map_err(|e| UsageError(format!("cannot write {target}: {e}")))?;
    Ok(Box::new(std::io::BufWriter::new(file)))
}

pub fn run(args: &ScoreArgs, options: &RunOptions) -> anyhow::Result<Outcome> {
    let mut paths = args.paths.clone();
    let metrics = match &args.metrics {
        Some(m) => m.clone(),
        None if paths.len() >= 2 => paths.remove(0).to_string_lossy().into_owned(),
        None => return Err(UsageError("no metric: give -m METRICS (e.g. -m ssim,lpips) or `all`".into()).into()),
    };
    let workers = args.workers.map(std::num::NonZeroUsize::get);
    let captions = Captions::from_args(args)?;
    let job = match &args.reference {
        Some(reference) => {
            if paths.is_empty() {
                return Err(UsageError("no image to score: give DIST files or folders after the metrics".into()).into());
            }
            Job { metrics: &metrics, dists: &paths, reference: Some(reference), shared_reference: true, ..job(args) }
        }
        None if paths.len() > 2 => {
            return Err(UsageError(format!(
                "too many paths: {} (DIST [REF]; to score many images against one reference, use --ref)",
                paths.len()
            ))
            .into())
        }
        None => {
            Job { metrics: &metrics, dists: &paths[..1], reference: paths.get(1).map(PathBuf::as_path), ..job(args) }
        }
    };
    score(&Job { workers, captions, ..job }, &args.outputs, options)
}

/// The job's settings from the arguments, before its paths.
fn job(args: &ScoreArgs) -> Job<'static> {
    Job {
        metrics: "",
        dists: &[],
        reference: None,
        shared_reference: false,
        recursive: args.recursive,
        workers: None,
        captions: Captions::None,
    }
}

pub fn demo(args: &DemoArgs, options: &RunOptions) -> anyhow::Result<Outcome> {
    let (dist, reference) = (args.dir.join("dist"), args.dir.join("ref"));
    let dists = [dist];
    let job = Job {
        metrics: "all",
        dists: &dists,
        reference: Some(&reference),
        shared_reference: false,
        recursive: false,
        workers: None,
        captions: Captions::None,
    };
    score(&job, &args.outputs, options)
}

/// What to score.
struct Job<'a> {
    /// Comma-separated names, or `all`.
    metrics: &'a str,
    /// One path, or with a shared reference any number.
    dists: &'a [PathBuf],
    reference: Option<&'a Path>,
    /// `reference` is the reference of every image (`--ref`), prepared once per metric.
    shared_reference: bool,
    recursive: bool,
    /// Images scored at once; `None`: one per thread.
    workers: Option<usize>,
    captions: Captions,
}

/// The metrics asked for, checked: known, and given a reference if full-reference. `all` is every metric
/// ready here (no download), full-reference ones only with a reference, captioned ones only with captions.
fn select(list: &str, has_reference: bool, has_captions: bool, quiet: bool) -> anyhow::Result<Vec<String>> {
    if list.trim() == "all" {
        let mut chosen = Vec::new();
        let mut skipped = Vec::new();
        for name in metric_names() {
            let status = metric_status(&name)?;
            let fr = status.info.mode == Mode::FullReference;
            match status.availability {
                Availability::Ready if status.takes_caption && !has_captions => {}
                Availability::Ready if !fr || has_reference => chosen.push(name),
                Availability::Ready => {}
                _ => skipped.push(format!("{name} ({})", crate::list::availability(&status))),
            }
        }
        if !skipped.is_empty() && !quiet {
            eprintln!("iqa: not ready here, so not in `all`: {} (see `iqa info NAME`)", skipped.join(", "));
        }
        return Ok(chosen);
    }
    let mut chosen: Vec<String> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let status = metric_status(name).map_err(|e| match e.kind {
            iqa::ErrorKind::UnknownMetric | iqa::ErrorKind::InvalidArgument => {
                anyhow::Error::new(UsageError(e.message))
            }
            _ => e.into(),
        })?;
        if status.info.mode == Mode::FullReference && !has_reference {
            return Err(UsageError(format!(
                "{name} is full-reference: give a reference file or folder after the image (DIST REF)"
            ))
            .into());
        }
        if !chosen.iter().any(|c| c == name) {
            chosen.push(name.to_string());
        }
    }
    if chosen.is_empty() {
        return Err(UsageError("no metric given".into()).into());
    }
    Ok(chosen)
}

fn device_name(m: &Metric) -> String {
    match format!("{:?}", m.device()).to_ascii_lowercase().as_str() {
        "cpu" => "cpu".to_string(),
        other => other.replace("cuda(", "cuda:").replace(')', ""),
    }
}

/// What each metric prepared of a shared reference (`--ref`): `None` for no-reference metrics.
type Prepared = Vec<Option<Result<PreparedReference, String>>>;

/// The rows of one image: decoded once (its reference once, if a full-reference metric needs it and has not
/// prepared it), then scored by each metric; what fails is an error row.
fn score_pair(pair: &Pair, metrics: &[Metric], prepared: Option<&Prepared>, captions: &Captions) -> Vec<Row> {
    let row = |m: &Metric, score: Result<f64, String>| Row {
        dist: pair.name.clone(),
        reference: pair.ref_name.clone(),
        metric: m.info().name.clone(),
        score,
    };
    let needs_ref = metrics.iter().any(|m| m.info().mode == Mode::FullReference) && prepared.is_none();
    let reference = pair.reference.as_deref().filter(|_| needs_ref);
    let (dist, reference) = decode_pair(&pair.dist, reference);
    let (dist, reference) = (dist.map_err(|e| e.to_string()), reference.map(|r| r.map_err(|e| e.to_string())));
    metrics
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let dist = match &dist {
                Ok(d) => d,
                Err(e) => return row(m, Err(e.clone())),
            };
            let score = if let Some(Some(prepared)) = prepared.map(|p| &p[i]) {
                match prepared {
                    Ok(r) => m.score_with_reference(&[dist.as_image()], r).map(|s| s[0]),
                    Err(e) => return row(m, Err(e.clone())),
                }
            } else if m.takes_caption() {
                match captions.of(&pair.name) {
                    Some(c) => m.score_captioned(&dist.as_image(), c),
                    None => return row(m, Err("no caption for this image (give --caption or --captions)".into())),
                }
            } else if m.info().mode == Mode::FullReference {
                match &reference {
                    Some(Ok(r)) => m.score(&dist.as_image(), Some(&r.as_image())),
                    Some(Err(e)) => return row(m, Err(e.clone())),
                    None => return row(m, Err("no reference image".to_string())),
                }
            } else {
                m.score(&dist.as_image(), None)
            };
            row(m, score.map_err(|e| e.to_string()))
        })
        .collect()
}

/// The shared reference decoded once and prepared by each full-reference metric; a failure becomes every
/// row's error for that metric.
fn prepare(reference: &Path, metrics: &[Metric]) -> Prepared {
    let decoded = decode_file(reference).map_err(|e| e.to_string());
    metrics
        .iter()
        .map(|m| {
            (m.info().mode == Mode::FullReference).then(|| match &decoded {
                Ok(image) => m.prepare_reference(&image.as_image()).map_err(|e| e.to_string()),
                Err(e) => Err(e.clone()),
            })
        })
        .collect()
}

fn score(job: &Job<'_>, outputs: &Outputs, options: &RunOptions) -> anyhow::Result<Outcome> {
    let reference = job.reference;
    if outputs.to_stdout() > 1 {
        return Err(UsageError("only one of --csv, --json, --jsonl can write to stdout (-)".into()).into());
    }
    let names = select(job.metrics, reference.is_some(), !matches!(job.captions, Captions::None), options.quiet)?;
    let pairing = match reference {
        Some(r) if job.shared_reference => pair_with_one(job.dists, r, job.recursive)?,
        _ => pair(&job.dists[0], reference, job.recursive)?,
    };
    let dist = job.dists.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
    if !pairing.dist_only.is_empty() || !pairing.ref_only.is_empty() {
        let show = |v: &[String]| {
            let mut s = v.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
            if v.len() > 10 {
                s.push_str(&format!(", ... ({} in all)", v.len()));
            }
            s
        };
        if !pairing.dist_only.is_empty() {
            eprintln!(
                "iqa: no reference for {} image(s), not scored: {}",
                pairing.dist_only.len(),
                show(&pairing.dist_only)
            );
        }
        if !pairing.ref_only.is_empty() {
            eprintln!(
                "iqa: {} reference(s) without an image, not scored: {}",
                pairing.ref_only.len(),
                show(&pairing.ref_only)
            );
        }
    }
    let pairs = pairing.pairs;
    if pairs.is_empty() {
        return Err(UsageError(format!("no image to score in {dist}")).into());
    }

    // Many images: one worker per thread, each metric call single-threaded (cheaper than splitting every
    // call over threads that wait for each other); few images: the threads go into each call.
    let threads = options.threads();
    let workers = job.workers.unwrap_or(threads).min(pairs.len()).max(1);
    let per_worker = (threads / workers).max(1);
    options.set_threads(per_worker);
    let handle_options = options.metric_options();
    let metrics: Vec<Metric> = names.iter().map(|n| create_metric(n, &handle_options)).collect::<Result<_, _>>()?;
    let prepared = match reference {
        Some(r) if job.shared_reference => Some(prepare(r, &metrics)),
        _ => None,
    };

    let mut jsonl = outputs.jsonl.as_deref().map(open).transpose()?;
    let mut csv = outputs.csv.as_deref().map(open).transpose()?;
    let mut json = outputs.json.as_deref().map(open).transpose()?;

    interrupt::install();
    let started = Instant::now();
    let unix_time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut progress = Progress::new(pairs.len() as u64, "images", !options.quiet);
    let mut results: Vec<Option<Vec<Row>>> = vec![None; pairs.len()];
    let next = AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Vec<Row>)>();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for _ in 0..workers {
            let (tx, next, pairs, metrics, prepared) = (tx.clone(), &next, &pairs, &metrics, prepared.as_ref());
            let captions = &job.captions;
            scope.spawn(move || {
                while !interrupt::requested() {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(pair) = pairs.get(i) else { break };
                    if tx.send((i, score_pair(pair, metrics, prepared, captions))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, rows) in rx {
            progress.inc();
            if let Some(out) = jsonl.as_mut() {
                writeln!(out, "{}", jsonl_line(&rows))?;
                out.flush()?;
            }
            results[i] = Some(rows);
        }
        Ok(())
    })?;
    progress.finish();

    let interrupted = interrupt::requested();
    let rows: Vec<Row> = results.into_iter().flatten().flatten().collect();
    for r in &rows {
        if let Err(e) = &r.score {
            eprintln!("iqa: {}: {}: {e}", r.dist, r.metric);
        }
    }
    let columns = metrics
        .iter()
        .map(|m| MetricColumn {
            name: m.info().name.clone(),
            full_reference: m.info().mode == Mode::FullReference,
            lower_better: m.info().lower_better,
            range: m.info().score_range,
            device: device_name(m),
            precision: format!("{:?}", m.precision()).to_ascii_lowercase(),
        })
        .collect();
    let report = Report {
        run: RunInfo {
            device: metrics.first().map(device_name).unwrap_or_default(),
            threads,
            workers,
            threads_per_worker: per_worker,
            preset: format!("{:?}", iqa::current_preset()).to_ascii_lowercase(),
            dist,
            reference: reference.map(|r| r.display().to_string()),
            unix_time,
            seconds: started.elapsed().as_secs_f64(),
        },
        metrics: columns,
        rows,
        dist_only: pairing.dist_only,
        ref_only: pairing.ref_only,
        interrupted,
    };
    if let Some(out) = csv.as_mut() {
        report.write_csv(out)?;
    }
    if let Some(out) = json.as_mut() {
        report.write_json(out)?;
    }
    for (path, what) in [(&outputs.csv, "CSV"), (&outputs.json, "JSON"), (&outputs.jsonl, "JSONL")] {
        match path.as_deref() {
            Some(path) if path != "-" && !options.quiet => {
                eprintln!("iqa: {what} of {} rows written to {path}", report.rows.len())
            }
            _ => {}
        }
    }
    if outputs.to_stdout() == 0 {
        let mut stdout = std::io::stdout().lock();
        match &report.rows[..] {
            // One image, one metric: the number alone, for scripts.
            [Row { score: Ok(s), .. }] => writeln!(stdout, "{s}")?,
            [Row { score: Err(_), .. }] => {}
            _ => report.write_table(&mut stdout, 50)?,
        }
        stdout.flush()?;
    }
    if interrupted {
        eprintln!(
            "iqa: interrupted after {} of {} images; what was scored is written",
            report.rows.len() / metrics.len().max(1),
            pairs.len()
        );
        return Ok(Outcome::Interrupted);
    }
    Ok(if report.failed() { Outcome::Failed } else { Outcome::Done })
}
