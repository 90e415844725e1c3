//! A run's results and the formats they are written in: a table for the terminal, CSV, JSON, and JSONL lines
//! streamed as images finish. One [`Row`] per image and metric: its score, or the error that took its place.
//!
//! CSV: header `dist,ref,metric,score,error`; `score` is the shortest decimal that reads back to the same
//! double (`NaN` where the metric gave NaN), empty on error; `error` is empty on success. Fields holding a
//! comma, quote or line break are quoted (RFC 4180).
//!
//! JSON (one object):
//! ```text
//! { "iqa_version": "0.1.0", "interrupted": false,
//!   "run": { "device": "cpu", "threads": 2, "workers": 2, "threads_per_worker": 1, "preset": "accuracy",
//!            "dist": "DIR", "ref": "DIR" | null, "unix_time": 1700000000, "seconds": 12.5 },
//!   "metrics": [ { "name": "ssim", "mode": "FR" | "NR", "lower_better": false, "range": [0.0, 1.0],
//!                  "device": "cpu", "precision": "fp32" } ],
//!   "results": [ { "dist": "a/x.png", "ref": "a/x.png" | null, "metric": "ssim", "score": 0.93 | null,
//!                  "error": null | "message" } ],
//!   "summary": [ { "metric": "ssim", "count": 200, "errors": 0, "mean": .., "median": .., "min": .., "max": .. } ],
//!   "unpaired": { "dist_only": ["b.png"], "ref_only": [] } }
//! ```
//! `range` bounds are null where pyiqa states none; a NaN score is null with no error. `summary` counts the
//! finite scores (its statistics are null when there are none).
//!
//! JSONL: one object per image as soon as all its metrics are done:
//! `{"dist": "a/x.png", "ref": "a/x.png", "scores": {"ssim": 0.93}, "errors": {"niqe": "message"}}`.
use serde_json::{json, Value};
use std::io::Write;

/// One image scored by one metric.
#[derive(Debug, Clone)]
pub struct Row {
    pub dist: String,
    pub reference: Option<String>,
    pub metric: String,
    pub score: Result<f64, String>,
}

/// A metric as it ran.
#[derive(Debug, Clone)]
pub struct MetricColumn {
    pub name: String,
    pub full_reference: bool,
    pub lower_better: bool,
    pub range: (f64, f64),
    pub device: String,
    pub precision: String,
}

/// How the run was set up.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub device: String,
    pub threads: usize,
    pub workers: usize,
    pub threads_per_worker: usize,
    pub preset: String,
    pub dist: String,
    pub reference: Option<String>,
    pub unix_time: u64,
    pub seconds: f64,
}

/// Everything a run produced.
pub struct Report {
    pub run: RunInfo,
    pub metrics: Vec<MetricColumn>,
    pub rows: Vec<Row>,
    pub dist_only: Vec<String>,
    pub ref_only: Vec<String>,
    pub interrupted: bool,
}

/// Count, errors, mean, median, min and max of one metric's finite scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub metric: String,
    pub count: usize,
    pub errors: usize,
    pub mean: Option<f64>,
    pub median: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

fn finite(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

fn opt(v: Option<f64>) -> Value {
    v.map_or(Value::Null, finite)
}

impl Report {
    pub fn summaries(&self) -> Vec<Summary> {
        self.metrics
            .iter()
            .map(|m| {
                let rows = self.rows.iter().filter(|r| r.metric == m.name);
                let errors = rows.clone().filter(|r| r.score.is_err()).count();
                let mut scores: Vec<f64> =
                    rows.filter_map(|r| r.score.clone().ok()).filter(|s| s.is_finite()).collect();
                scores.sort_by(f64::total_cmp);
                let n = scores.len();
                let median = match n {
                    0 => None,
                    _ if n % 2 == 1 => Some(scores[n / 2]),
                    _ => Some((scores[n / 2 - 1] + scores[n / 2]) / 2.0),
                };
                Summary {
                    metric: m.name.clone(),
                    count: n,
                    errors,
                    mean: (n > 0).then(|| scores.iter().sum::<f64>() / n as f64),
                    median,
                    min: scores.first().copied(),
                    max: scores.last().copied(),
                }
            })
            .collect()
    }

    pub fn failed(&self) -> bool {
        self.rows.iter().any(|r| r.score.is_err())
    }

    pub fn write_csv(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "dist,ref,metric,score,error")?;
        for r in &self.rows {
            let (score, error) = match &r.score {
                Ok(s) => (format!("{s}"), String::new()),
                Err(e) => (String::new(), e.clone()),
            };
            let fields = [r.dist.as_str(), r.reference.as_deref().unwrap_or(""), &r.metric, &score, &error];
            writeln!(out, "{}", fields.map(csv_field).join(","))?;
        }
        out.flush()
    }

    pub fn to_json(&self) -> Value {
        let metrics: Vec<Value> = self
            .metrics
            .iter()
            .map(|m| {
                json!({
                    "name": m.name,
                    "mode": if m.full_reference { "FR" } else { "NR" },
                    "lower_better": m.lower_better,
                    "range": [finite(m.range.0), finite(m.range.1)],
                    "device": m.device,
                    "precision": m.precision,
                })
            })
            .collect();
        let results: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "dist": r.dist,
                    "ref": r.reference,
                    "metric": r.metric,
                    "score": r.score.as_ref().map_or(Value::Null, |s| finite(*s)),
                    "error": r.score.as_ref().err(),
                })
            })
            .collect();
        let summary: Vec<Value> = self
            .summaries()
            .into_iter()
            .map(|s| {
                json!({
                    "metric": s.metric, "count": s.count, "errors": s.errors, "mean": opt(s.mean),
                    "median": opt(s.median), "min": opt(s.min), "max": opt(s.max),
                })
            })
            .collect();
        let run = &self.run;
        json!({
            "iqa_version": iqa::VERSION,
            "interrupted": self.interrupted,
            "run": {
                "device": run.device, "threads": run.threads, "workers": run.workers,
                "threads_per_worker": run.threads_per_worker, "preset": run.preset, "dist": run.dist,
                "ref": run.reference, "unix_time": run.unix_time, "seconds": run.seconds,
            },
            "metrics": metrics,
            "results": results,
            "summary": summary,
            "unpaired": { "dist_only": self.dist_only, "ref_only": self.ref_only },
        })
    }

    pub fn write_json(&self, out: &mut dyn Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, &self.to_json())?;
        writeln!(out)?;
        out.flush()
    }

    /// A table of every score (images × metrics, or metrics × images when there are more metrics than images)
    /// for up to `per_image_limit` images, then the summary of each metric.
    pub fn write_table(&self, out: &mut dyn Write, per_image_limit: usize) -> std::io::Result<()> {
        let mut images: Vec<&str> = Vec::new();
        for r in &self.rows {
            if images.last() != Some(&r.dist.as_str()) && !images.contains(&r.dist.as_str()) {
                images.push(&r.dist);
            }
        }
        let cell = |image: &str, metric: &str| -> String {
            match self.rows.iter().find(|r| r.dist == image && r.metric == metric).map(|r| &r.score) {
                Some(Ok(s)) => format!("{s:.6}"),
                Some(Err(_)) => "error".to_string(),
                None => "-".to_string(),
            }
        };
        let names: Vec<&str> = self.metrics.iter().map(|m| m.name.as_str()).collect();
        if !images.is_empty() && images.len() <= per_image_limit {
            let width = images.iter().map(|i| i.len()).max().unwrap_or(5).clamp(5, 40);
            if names.len() <= images.len() || images.len() == 1 && names.len() <= 6 {
                write!(out, "{:<width$}", "image")?;
                for n in &names {
                    write!(out, " {n:>13}")?;
                }
                writeln!(out)?;
                for image in &images {
                    write!(out, "{image:<width$}")?;
                    for n in &names {
                        write!(out, " {:>13}", cell(image, n))?;
                    }
                    writeln!(out)?;
                }
            } else {
                let mwidth = names.iter().map(|n| n.len()).max().unwrap_or(6).max(6);
                write!(out, "{:<mwidth$}", "metric")?;
                for image in &images {
                    write!(out, " {:>13}", shorten(image, 13))?;
                }
                writeln!(out)?;
                for n in &names {
                    write!(out, "{n:<mwidth$}")?;
                    for image in &images {
                        write!(out, " {:>13}", cell(image, n))?;
                    }
                    writeln!(out)?;
                }
            }
            writeln!(out)?;
        }
        let mwidth = names.iter().map(|n| n.len()).max().unwrap_or(6).max(6);
        writeln!(
            out,
            "{:<mwidth$} {:>7} {:>6} {:>13} {:>13} {:>13} {:>13}  better",
            "metric", "count", "errors", "mean", "median", "min", "max"
        )?;
        let num = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.6}"));
        for (s, m) in self.summaries().iter().zip(&self.metrics) {
            writeln!(
                out,
                "{:<mwidth$} {:>7} {:>6} {:>13} {:>13} {:>13} {:>13}  {}",
                s.metric,
                s.count,
                s.errors,
                num(s.mean),
                num(s.median),
                num(s.min),
                num(s.max),
                if m.lower_better { "lower" } else { "higher" }
            )?;
        }
        out.flush()
    }
}

fn shorten(text: &str, width: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= width {
        text.to_string()
    } else {
        let tail: String = chars[chars.len() - (width - 1)..].iter().collect();
        format!("…{tail}")
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The JSONL line of one image: its scores and errors by metric.
pub fn jsonl_line(rows: &[Row]) -> String {
    let first = &rows[0];
    let mut scores = serde_json::Map::new();
    let mut errors = serde_json::Map::new();
    for r in rows {
        match &r.score {
            Ok(s) => scores.insert(r.metric.clone(), finite(*s)),
            Err(e) => errors.insert(r.metric.clone(), json!(e)),
        };
    }
    json!({"dist": first.dist, "ref": first.reference, "scores": scores, "errors": errors}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(scores: &[(&str, &str, Result<f64, String>)]) -> Report {
        let metric = |name: &str| MetricColumn {
            name: name.into(),
            full_reference: true,
            lower_better: false,
            range: (0.0, f64::NAN),
            device: "cpu".into(),
            precision: "fp32".into(),
        };
        let mut metrics: Vec<MetricColumn> = Vec::new();
        for (_, m, _) in scores {
            if !metrics.iter().any(|c| c.name == *m) {
                metrics.push(metric(m));
            }
        }
        Report {
            run: RunInfo {
                device: "cpu".into(),
                threads: 2,
                workers: 2,
                threads_per_worker: 1,
                preset: "accuracy".into(),
                dist: "d".into(),
                reference: None,
                unix_time: 0,
                seconds: 0.0,
            },
            metrics,
            rows: scores
                .iter()
                .map(|(d, m, s)| Row { dist: d.to_string(), reference: None, metric: m.to_string(), score: s.clone() })
                .collect(),
            dist_only: vec![],
            ref_only: vec![],
            interrupted: false,
        }
    }

    #[test]
    fn summaries_count_finite_scores_and_errors() {
        let r = report(&[
            ("a", "m", Ok(1.0)),
            ("b", "m", Ok(4.0)),
            ("c", "m", Ok(2.0)),
            ("d", "m", Ok(f64::NAN)),
            ("e", "m", Err("bad".into())),
            ("a", "n", Err("x".into())),
        ]);
        let s = r.summaries();
        assert_eq!(
            s[0],
            Summary {
                metric: "m".into(),
                count: 3,
                errors: 1,
                mean: Some(7.0 / 3.0),
                median: Some(2.0),
                min: Some(1.0),
                max: Some(4.0)
            }
        );
        assert_eq!((s[1].count, s[1].errors, s[1].mean), (0, 1, None));
        let json = r.to_json();
        assert_eq!(json["summary"][1]["mean"], Value::Null);
        assert_eq!(json["metrics"][0]["range"], json!([0.0, null]));
        assert_eq!(json["results"][3]["score"], Value::Null);
        assert_eq!(json["results"][4]["error"], "bad");
    }

    #[test]
    fn csv_quotes_what_needs_it_and_scores_read_back_exactly() {
        let r = report(&[("x,\"y\".png", "m", Ok(0.1 + 0.2)), ("z.png", "m", Err("line\nbreak".into()))]);
        let mut out = Vec::new();
        r.write_csv(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "dist,ref,metric,score,error\n\"x,\"\"y\"\".png\",,m,0.30000000000000004,\n\"z.png\",,m,,\"line\nbreak\"\n"
                .replace("\"z.png\"", "z.png")
        );
        assert_eq!(
            jsonl_line(&r.rows[..1]),
            r#"{"dist":"x,\"y\".png","errors":{},"ref":null,"scores":{"m":0.30000000000000004}}"#
        );
    }
}
