//! Progress on stderr (images done, rate, ETA) for runs that last: the bar appears after two seconds, only when
//! stderr is a terminal and `--quiet` was not given, and is cleared at the end.
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How long a run goes before the bar shows.
const SHOW_AFTER: Duration = Duration::from_secs(2);

pub struct Progress {
    bar: ProgressBar,
    start: Instant,
    enabled: bool,
    shown: bool,
}

impl Progress {
    /// A bar for `total` items named `unit` ("images"), drawn only if `enabled` and stderr is a terminal.
    pub fn new(total: u64, unit: &str, enabled: bool) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        let template = format!("{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit}, {{per_sec}}, ETA {{eta}}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress { bar, start: Instant::now(), enabled: enabled && std::io::stderr().is_terminal(), shown: false }
    }

    /// One more item done.
    pub fn inc(&mut self) {
        self.bar.inc(1);
        if self.enabled && !self.shown && self.start.elapsed() >= SHOW_AFTER {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
