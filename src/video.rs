//! Scoring a video: a [`Stream`] takes (distorted, reference) frame pairs in display order, converts each frame
//! to RGB once for all of its metrics, scores them on worker threads behind a bounded queue (so that a caller's
//! decoding and the metrics overlap), keeps per-frame scores in frame order and pools them.
//!
//! Memory is bounded whatever the length: at most `queue` frames wait and `threads × batch` are being scored
//! (each a packed copy of the pair), and per-frame scores take 8 bytes per metric per scored frame (none with
//! `keep_frame_scores` off, when only the running pooled values are kept).
use crate::api::{create_metric, Metric, Mode, Options};
use crate::error::{catch_panics, Error, ErrorKind, Result};
use crate::image::{frames_to_staged_tensor, Frame, FrameBuf, FrameFormat};
use crate::tensor::StagingTensor;
use parking_lot::{Condvar, Mutex};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use tch::Tensor;

/// How a [`Stream`] scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamOptions {
    /// Device and precision of every metric.
    pub metric: Options,
    /// Score every Nth frame (frames 0, N, 2N, ...); 1 = every frame.
    pub subsample: u32,
    /// Worker threads scoring frames behind [`Stream::push`] (at least 1).
    pub threads: usize,
    /// Frames that may wait for a worker before `push` blocks (at least 1).
    pub queue: usize,
    /// Consecutive frames a worker scores in one forward pass when they are waiting (at least 1).
    pub batch: usize,
    /// Keep every frame's scores (8 bytes per metric per scored frame) for [`Stream::frame_scores`] and
    /// percentiles; off, memory stays constant and only mean, harmonic mean, min and max are available.
    pub keep_frame_scores: bool,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            metric: Options::default(),
            subsample: 1,
            threads: 1,
            queue: 4,
            batch: 1,
            keep_frame_scores: true,
        }
    }
}

/// How per-frame scores are pooled into one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pooling {
    /// Arithmetic mean.
    Mean,
    /// libvmaf's harmonic mean: n / Σ 1/(sᵢ + 1) − 1 (the +1 keeps scores of 0 finite).
    HarmonicMean,
    /// Smallest score.
    Min,
    /// Largest score.
    Max,
    /// The p-th percentile (0 ≤ p ≤ 100), linear between the closest ranks: with the n scores sorted as
    /// s₀ ≤ … ≤ sₙ₋₁ and r = p/100·(n − 1),
    /// s⌊r⌋ + (r − ⌊r⌋)·(s⌈r⌉ − s⌊r⌋) (numpy's default).
    Percentile(f64),
}

/// One metric's pooled scores over a stream's scored frames.
#[derive(Debug, Clone, PartialEq)]
pub struct PooledScores {
    /// The metric's name.
    pub metric: String,
    /// Frames scored.
    pub frames: u64,
    /// See [`Pooling`].
    pub mean: f64,
    /// See [`Pooling::HarmonicMean`].
    pub harmonic_mean: f64,
    /// Smallest score.
    pub min: f64,
    /// Largest score.
    pub max: f64,
}

/// Running pooled values of one metric, in frame order (so sums are the same however the frames were
/// scheduled). A NaN score makes every pooled value NaN.
#[derive(Debug, Clone, Copy)]
struct Accumulator {
    count: u64,
    sum: f64,
    inverse_sum: f64,
    min: f64,
    max: f64,
    nan: bool,
}

impl Accumulator {
    const EMPTY: Accumulator =
        Accumulator { count: 0, sum: 0.0, inverse_sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY, nan: false };

    fn add(&mut self, score: f64) {
        self.count += 1;
        self.sum += score;
        self.inverse_sum += 1.0 / (score + 1.0);
        self.min = self.min.min(score);
        self.max = self.max.max(score);
        self.nan |= score.is_nan();
    }

    fn pooled(&self, pooling: Pooling) -> f64 {
        if self.nan {
            return f64::NAN;
        }
        let n = self.count as f64;
        match pooling {
            Pooling::Mean => self.sum / n,
            Pooling::HarmonicMean => n / self.inverse_sum - 1.0,
            Pooling::Min => self.min,
            Pooling::Max => self.max,
            Pooling::Percentile(_) => unreachable!("percentiles are computed from the kept scores"),
        }
    }
}

/// The p-th percentile of `scores` as [`Pooling::Percentile`] defines it (NaN if any score is NaN).
fn percentile(mut scores: Vec<f64>, p: f64) -> f64 {
    if scores.iter().any(|s| s.is_nan()) {
        return f64::NAN;
    }
    scores.sort_by(f64::total_cmp);
    let rank = p / 100.0 * (scores.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    scores[lo] + (rank - lo as f64) * (scores[hi] - scores[lo])
}

/// A pair of frames waiting to be scored; `ordinal` counts scored frames (frame number / subsample).
struct Job {
    ordinal: u64,
    dist: FrameBuf,
    reference: Option<FrameBuf>,
}

/// What the workers have finished, gathered in frame order.
struct Collected {
    /// Scores of ordinals finished out of order, until the ones before them are in.
    waiting: BTreeMap<u64, Vec<f64>>,
    /// Ordinals 0..in_order are appended to `scores` and `pools`.
    in_order: u64,
    /// Ordinals finished in any way (scored, failed or skipped after a failure).
    done: u64,
    /// Scores of ordinals 0..in_order, metric by metric (when kept).
    scores: Vec<f64>,
    pools: Vec<Accumulator>,
    /// The failure of the lowest ordinal, with its message naming the frame.
    error: Option<(u64, Error)>,
}

/// State shared between the stream and its workers.
struct Shared {
    collected: Mutex<Collected>,
    /// Signalled whenever `done` grows.
    progress: Condvar,
    /// Set after a failure or when the stream is dropped: workers drop the remaining jobs unscored.
    cancel: AtomicBool,
    /// Frame buffers handed back by workers, for `push` to reuse.
    spare: Mutex<Vec<FrameBuf>>,
    keep_frame_scores: bool,
}

/// The metrics of a stream and what each needs.
struct Scorers {
    metrics: Vec<Metric>,
    /// Whether any metric is full-reference.
    needs_reference: bool,
}

/// Shapes fixed by the first pair pushed.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Geometry {
    width: u32,
    height: u32,
    dist_format: FrameFormat,
    ref_format: Option<FrameFormat>,
}

/// A video being scored: see the module documentation. Dropping it stops and joins its workers (frames still
/// queued are dropped unscored).
pub struct Stream {
    scorers: Arc<Scorers>,
    names: Vec<String>,
    options: StreamOptions,
    sender: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
    /// Frames pushed (display order), and pairs sent to the workers.
    pushed: u64,
    queued: u64,
    geometry: Option<Geometry>,
}

impl Stream {
    /// Opens a stream scoring every metric of `names` (pyiqa names or TorchScript modules, as
    /// [`create_metric`] takes them) with `options`.
    pub fn open(names: &[&str], options: &StreamOptions) -> Result<Stream> {
        let metrics = names.iter().map(|name| create_metric(name, &options.metric)).collect::<Result<Vec<_>>>()?;
        Stream::with_metrics(metrics, options)
    }

    /// Opens a stream over metric handles already created.
    pub fn with_metrics(metrics: Vec<Metric>, options: &StreamOptions) -> Result<Stream> {
        if metrics.is_empty() {
            return Err(Error::invalid("a stream needs at least one metric"));
        }
        for (what, value) in [("threads", options.threads), ("queue", options.queue), ("batch", options.batch)] {
            if value == 0 {
                return Err(Error::invalid(format!("stream option {what} is 0; it must be at least 1")));
            }
        }
        if options.subsample == 0 {
            return Err(Error::invalid("stream option subsample is 0; it must be at least 1 (every frame)"));
        }
        let names = metrics.iter().map(|m| m.info().name.clone()).collect();
        let needs_reference = metrics.iter().any(|m| m.info().mode == Mode::FullReference);
        let shared = Arc::new(Shared {
            collected: Mutex::new(Collected {
                waiting: BTreeMap::new(),
                in_order: 0,
                done: 0,
                scores: Vec::new(),
                pools: vec![Accumulator::EMPTY; metrics.len()],
                error: None,
            }),
            progress: Condvar::new(),
            cancel: AtomicBool::new(false),
            spare: Mutex::new(Vec::new()),
            keep_frame_scores: options.keep_frame_scores,
        });
        let scorers = Arc::new(Scorers { metrics, needs_reference });
        let (sender, receiver) = sync_channel::<Job>(options.queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let mut workers = Vec::with_capacity(options.threads);
        for i in 0..options.threads {
            let (receiver, shared, scorers) = (receiver.clone(), shared.clone(), scorers.clone());
            let (batch, subsample) = (options.batch, options.subsample as u64);
            let spawned = std::thread::Builder::new()
                .name(format!("iqa-stream-{i}"))
                .spawn(move || work(&receiver, &shared, &scorers, batch, subsample));
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(e) => {
                    // The workers already started end when the sender goes with this function's locals.
                    drop(sender);
                    for worker in workers {
                        let _ = worker.join();
                    }
                    return Err(Error::new(ErrorKind::Runtime, format!("cannot start a stream worker thread: {e}")));
                }
            }
        }
        Ok(Stream {
            scorers,
            names,
            options: *options,
            sender: Some(sender),
            workers,
            shared,
            pushed: 0,
            queued: 0,
            geometry: None,
        })
    }

    /// The metrics' names, in the order of every score list.
    pub fn metric_names(&self) -> &[String] {
        &self.names
    }

    /// Frames pushed so far (those skipped by subsampling included).
    pub fn frames_pushed(&self) -> u64 {
        self.pushed
    }

    /// The first worker failure, as every call after it reports it.
    fn failure(&self) -> Result<()> {
        match &self.shared.collected.lock().error {
            Some((_, e)) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Adds the next pair (the reference only when the stream has full-reference metrics). The frames are
    /// copied; scoring happens behind the call, which blocks only while `queue` frames already wait. A bad pair
    /// is refused here (nothing queued, the stream stays usable); a failure while scoring an earlier frame is
    /// returned here and by every later call, its message naming the frame.
    pub fn push(&mut self, dist: &Frame<'_>, reference: Option<&Frame<'_>>) -> Result<()> {
        self.failure()?;
        let frame = self.pushed;
        self.check_pair(dist, reference).map_err(|e| e.context(format_args!("frame {frame}")))?;
        self.pushed += 1;
        if !frame.is_multiple_of(self.options.subsample as u64) {
            return Ok(());
        }
        let copy = |frame: &Frame<'_>| {
            let mut buf = self.shared.spare.lock().pop().unwrap_or_default();
            buf.copy_from(frame);
            buf
        };
        let job = Job { ordinal: self.queued, dist: copy(dist), reference: reference.map(copy) };
        let sender = self.sender.as_ref().expect("the sender lives until drop");
        sender
            .send(job)
            .map_err(|_| Error::new(ErrorKind::Panic, "internal error (please report it): stream workers are gone"))?;
        self.queued += 1;
        Ok(())
    }

    /// A pair must match the stream's metrics (a reference exactly when one is full-reference) and the shapes
    /// of the first pair; the first pair is checked against every metric's size limits.
    fn check_pair(&mut self, dist: &Frame<'_>, reference: Option<&Frame<'_>>) -> Result<()> {
        let full_reference = || {
            let fr: Vec<&str> = self
                .scorers
                .metrics
                .iter()
                .filter(|m| m.info().mode == Mode::FullReference)
                .map(|m| m.info().name.as_str())
                .collect();
            fr.join(", ")
        };
        match (self.scorers.needs_reference, reference) {
            (true, None) => {
                return Err(Error::invalid(format!(
                    "no reference frame, but the stream's full-reference metrics ({}) need one",
                    full_reference()
                )))
            }
            (false, Some(_)) => {
                return Err(Error::invalid("the stream has only no-reference metrics: push no reference frame"))
            }
            _ => {}
        }
        let geometry = Geometry {
            width: dist.width(),
            height: dist.height(),
            dist_format: dist.format(),
            ref_format: reference.map(|r| r.format()),
        };
        if let Some(r) = reference {
            if (r.width(), r.height()) != (dist.width(), dist.height()) {
                return Err(Error::shape(format!(
                    "distorted {}x{} and reference {}x{} differ in size",
                    dist.width(),
                    dist.height(),
                    r.width(),
                    r.height()
                )));
            }
        }
        match self.geometry {
            Some(first) if first != geometry => {
                let describe = |g: &Geometry| {
                    let reference = g.ref_format.map(|f| format!(", reference {}", f.name())).unwrap_or_default();
                    format!("{}x{} {}{reference}", g.width, g.height, g.dist_format.name())
                };
                Err(Error::shape(format!(
                    "the stream's frames are {} (as frame 0); this pair is {}",
                    describe(&first),
                    describe(&geometry)
                )))
            }
            Some(_) => Ok(()),
            None => {
                for metric in &self.scorers.metrics {
                    let fr = metric.info().mode == Mode::FullReference;
                    metric.check_input(dist.width(), dist.height(), fr)?;
                }
                self.geometry = Some(geometry);
                Ok(())
            }
        }
    }

    /// Waits until every frame pushed is scored; returns the first failure, if any.
    pub fn flush(&mut self) -> Result<()> {
        let mut collected = self.shared.collected.lock();
        while collected.done < self.queued {
            self.shared.progress.wait(&mut collected);
        }
        match &collected.error {
            Some((_, e)) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// How many leading frames (in display order) are final: scored, or skipped by subsampling. Frames below
    /// this number have their scores in [`Stream::frame_scores`]; it reaches [`Stream::frames_pushed`] once
    /// everything pushed is scored.
    pub fn frames_done(&self) -> u64 {
        let in_order = self.shared.collected.lock().in_order;
        if in_order == self.queued {
            self.pushed
        } else {
            in_order * self.options.subsample as u64
        }
    }

    /// The scores of display frame `frame`, one per metric in [`Stream::metric_names`] order: `None` when it is
    /// not scored (skipped by subsampling, not done yet, or scores not kept).
    pub fn frame_scores(&self, frame: u64) -> Option<Vec<f64>> {
        let subsample = self.options.subsample as u64;
        if !self.shared.keep_frame_scores || !frame.is_multiple_of(subsample) {
            return None;
        }
        let ordinal = frame / subsample;
        let collected = self.shared.collected.lock();
        if ordinal >= collected.in_order {
            return None;
        }
        let n = self.names.len();
        let start = ordinal as usize * n;
        Some(collected.scores[start..start + n].to_vec())
    }

    /// Metric `metric`'s (index into [`Stream::metric_names`]) scores pooled over every frame pushed (waits for
    /// them: see [`Stream::flush`]).
    pub fn pooled(&mut self, metric: usize, pooling: Pooling) -> Result<f64> {
        if metric >= self.names.len() {
            return Err(Error::invalid(format!(
                "metric index {metric} is out of range: the stream has {} metric(s)",
                self.names.len()
            )));
        }
        if let Pooling::Percentile(p) = pooling {
            if !(0.0..=100.0).contains(&p) {
                return Err(Error::invalid(format!("percentile {p} is outside 0..100")));
            }
            if !self.shared.keep_frame_scores {
                return Err(Error::invalid(
                    "percentiles need every frame's scores: open the stream with keep_frame_scores",
                ));
            }
        }
        self.flush()?;
        let collected = self.shared.collected.lock();
        let pool = &collected.pools[metric];
        if pool.count == 0 {
            return Err(Error::invalid("no frame scored yet: nothing to pool"));
        }
        Ok(match pooling {
            Pooling::Percentile(p) => {
                let n = self.names.len();
                percentile(collected.scores.iter().skip(metric).step_by(n).copied().collect(), p)
            }
            other => pool.pooled(other),
        })
    }

    /// Every metric's mean, harmonic mean, min and max over every frame pushed (waits for them).
    pub fn summary(&mut self) -> Result<Vec<PooledScores>> {
        self.flush()?;
        let collected = self.shared.collected.lock();
        if collected.in_order == 0 {
            return Err(Error::invalid("no frame scored yet: nothing to pool"));
        }
        Ok(self
            .names
            .iter()
            .zip(&collected.pools)
            .map(|(name, pool)| PooledScores {
                metric: name.clone(),
                frames: pool.count,
                mean: pool.pooled(Pooling::Mean),
                harmonic_mean: pool.pooled(Pooling::HarmonicMean),
                min: pool.pooled(Pooling::Min),
                max: pool.pooled(Pooling::Max),
            })
            .collect())
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.shared.cancel.store(true, Ordering::SeqCst);
        // Without a sender the workers' receive fails once the queue is drained, and they return.
        self.sender = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// A worker: takes up to `batch` waiting jobs at a time, scores them (unless the stream is cancelled) and
/// records the outcome; returns when the stream's sender is gone.
fn work(receiver: &Mutex<Receiver<Job>>, shared: &Shared, scorers: &Scorers, batch: usize, subsample: u64) {
    let mut staging = Staging::default();
    loop {
        let mut jobs = Vec::with_capacity(batch);
        {
            let receiver = receiver.lock();
            match receiver.recv() {
                Ok(job) => jobs.push(job),
                Err(_) => return,
            }
            while jobs.len() < batch {
                match receiver.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        let outcome = if shared.cancel.load(Ordering::SeqCst) {
            None
        } else {
            let scored = catch_panics(|| score_jobs(scorers, &jobs, &mut staging));
            Some(scored.map_err(|e| {
                let (first, last) = (jobs[0].ordinal * subsample, jobs[jobs.len() - 1].ordinal * subsample);
                if first == last {
                    e.context(format_args!("frame {first}"))
                } else {
                    e.context(format_args!("frames {first} to {last}"))
                }
            }))
        };
        record(shared, &jobs, outcome);
        let mut spare = shared.spare.lock();
        for job in jobs {
            spare.push(job.dist);
            spare.extend(job.reference);
        }
    }
}

/// A worker's converted frames, refilled batch after batch.
#[derive(Default)]
struct Staging {
    dist: StagingTensor<f32>,
    reference: StagingTensor<f32>,
}

/// Scores a batch of pairs with every metric: one score list (metric order) per job. Metrics with a frame path
/// of their own take the frames; the others share one conversion of the batch.
fn score_jobs(scorers: &Scorers, jobs: &[Job], staging: &mut Staging) -> Result<Vec<Vec<f64>>> {
    let frames = |pick: &dyn Fn(&Job) -> Option<&FrameBuf>| -> Vec<Frame<'_>> {
        jobs.iter().filter_map(|j| pick(j).and_then(FrameBuf::as_frame)).collect()
    };
    let dist_frames = frames(&|j| Some(&j.dist));
    let ref_frames = frames(&|j| j.reference.as_ref());
    let device = scorers.metrics[0].device();
    let mut tensors: Option<(Tensor, Option<Tensor>)> = None;
    let mut scores = vec![Vec::with_capacity(scorers.metrics.len()); jobs.len()];
    for metric in &scorers.metrics {
        let fr = metric.info().mode == Mode::FullReference;
        let out = match metric.score_frames_direct(&dist_frames, fr.then_some(&ref_frames[..])) {
            Some(out) => out?,
            None => {
                if tensors.is_none() {
                    let dist = frames_to_staged_tensor(&dist_frames, device, &mut staging.dist)?;
                    let reference = if scorers.needs_reference {
                        Some(frames_to_staged_tensor(&ref_frames, device, &mut staging.reference)?)
                    } else {
                        None
                    };
                    tensors = Some((dist, reference));
                }
                let (dist, reference) = tensors.as_ref().expect("converted just above");
                metric.score_tensors(dist, if fr { reference.as_ref() } else { None })?
            }
        };
        for (job_scores, s) in scores.iter_mut().zip(out) {
            job_scores.push(s);
        }
    }
    Ok(scores)
}

/// Records a batch's outcome (`None`: dropped unscored after a cancel) and appends what is now in order.
fn record(shared: &Shared, jobs: &[Job], outcome: Option<Result<Vec<Vec<f64>>>>) {
    let mut collected = shared.collected.lock();
    match outcome {
        Some(Ok(scores)) => {
            for (job, s) in jobs.iter().zip(scores) {
                collected.waiting.insert(job.ordinal, s);
            }
        }
        Some(Err(e)) => {
            shared.cancel.store(true, Ordering::SeqCst);
            let ordinal = jobs[0].ordinal;
            if collected.error.as_ref().is_none_or(|(o, _)| ordinal < *o) {
                collected.error = Some((ordinal, e));
            }
        }
        None => {}
    }
    collected.done += jobs.len() as u64;
    // Append what follows the frames in order; nothing past a failure is appended.
    loop {
        let next = collected.in_order;
        if collected.error.as_ref().is_some_and(|(o, _)| *o <= next) {
            break;
        }
        let Some(scores) = collected.waiting.remove(&next) else { break };
        for (pool, &s) in collected.pools.iter_mut().zip(&scores) {
            pool.add(s);
        }
        if shared.keep_frame_scores {
            collected.scores.extend_from_slice(&scores);
        }
        collected.in_order += 1;
    }
    shared.progress.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_follows_libvmaf_and_numpy_definitions() {
        let scores = [30.0, 40.0, 35.0, 20.0];
        let mut pool = Accumulator::EMPTY;
        scores.iter().for_each(|&s| pool.add(s));
        assert_eq!(pool.pooled(Pooling::Mean), 31.25);
        // 4 / (1/31 + 1/41 + 1/36 + 1/21) − 1, computed by hand from libvmaf's formula.
        let hm = 4.0 / (1.0 / 31.0 + 1.0 / 41.0 + 1.0 / 36.0 + 1.0 / 21.0) - 1.0;
        assert!((pool.pooled(Pooling::HarmonicMean) - hm).abs() < 1e-12);
        // 4 / 0.1320446 − 1 = 29.2927 (the sum of the reciprocals worked out to 7 digits).
        assert!((hm - 29.2927).abs() < 1e-4, "{hm}");
        assert_eq!((pool.pooled(Pooling::Min), pool.pooled(Pooling::Max)), (20.0, 40.0));
        // numpy.percentile([20, 30, 35, 40], p): 0 → 20, 50 → 32.5, 90 → 38.5, 100 → 40.
        for (p, want) in [(0.0, 20.0), (50.0, 32.5), (90.0, 38.5), (100.0, 40.0)] {
            assert!((percentile(scores.to_vec(), p) - want).abs() < 1e-12, "p{p}");
        }
        assert_eq!(percentile(vec![7.0], 50.0), 7.0);
        let mut with_nan = pool;
        with_nan.add(f64::NAN);
        assert!(with_nan.pooled(Pooling::Min).is_nan() && with_nan.pooled(Pooling::Mean).is_nan());
        assert!(percentile(vec![1.0, f64::NAN], 50.0).is_nan());
    }
}
