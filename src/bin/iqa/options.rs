//! The options every subcommand shares. Those the library reads from the environment (threads, preset, weights
//! folder, offline) are set as its variables before the first metric is created, so the command and the
//! library cannot disagree; device and precision go into each handle's [`Options`].
use iqa::{DeviceRequest, Options, Precision, Preset};
use std::num::NonZeroUsize;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct RunOptions {
    /// Where metrics run: auto (CUDA when usable), cpu, cuda, cuda:N.
    #[arg(long, global = true, value_name = "DEVICE", value_parser = parse_device)]
    pub device: Option<DeviceRequest>,
    /// fp32 (pyiqa's numbers), fp16 or bf16 for the metrics that honour it.
    #[arg(long, global = true, value_name = "PRECISION", value_parser = parse_precision)]
    pub precision: Option<Precision>,
    /// CPU threads in all (default: IQA_NUM_THREADS, else every core).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<NonZeroUsize>,
    /// accuracy (default), speed or memory.
    #[arg(long, global = true, value_name = "PRESET", value_parser = parse_preset)]
    pub preset: Option<Preset>,
    /// Folder searched first for pretrained files and TorchScript modules (IQA_WEIGHTS_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub weights_dir: Option<PathBuf>,
    /// Never download pretrained files (IQA_OFFLINE=1).
    #[arg(long, global = true)]
    pub offline: bool,
    /// No progress bar and no notes on stderr (errors are still printed).
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

fn parse_device(text: &str) -> Result<DeviceRequest, String> {
    DeviceRequest::parse(text).ok_or_else(|| format!("{text:?} is not a device; one of auto, cpu, cuda, cuda:N"))
}

fn parse_precision(text: &str) -> Result<Precision, String> {
    Precision::parse(text).ok_or_else(|| format!("{text:?} is not a precision; one of fp32, fp16, bf16"))
}

fn parse_preset(text: &str) -> Result<Preset, String> {
    Preset::parse(text).ok_or_else(|| format!("{text:?} is not a preset; one of accuracy, speed, memory"))
}

impl RunOptions {
    /// Sets the library's variables for the options given (before any metric exists, while the process has one
    /// thread). Threads are set by [`RunOptions::set_threads`], which the scoring command calls once it knows
    /// how to split them.
    pub fn apply(&self) -> anyhow::Result<()> {
        if let Some(preset) = self.preset {
            std::env::set_var("IQA_PRESET", format!("{preset:?}").to_ascii_lowercase());
        }
        if let Some(dir) = &self.weights_dir {
            std::env::set_var("IQA_WEIGHTS_DIR", dir);
        }
        if self.offline {
            std::env::set_var("IQA_OFFLINE", "1");
        }
        Ok(())
    }

    /// CPU threads in all: `--threads`, else IQA_NUM_THREADS, else every core.
    pub fn threads(&self) -> usize {
        self.threads.map(NonZeroUsize::get).unwrap_or_else(|| {
            std::env::var("IQA_NUM_THREADS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .filter(|&n: &usize| n > 0)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
        })
    }

    /// Sets the threads each metric call uses (IQA_NUM_THREADS), before the first metric is created. A malformed
    /// IQA_NUM_THREADS without `--threads` is left as it is, so that the library reports it (naming the variable
    /// and the accepted values) instead of the command silently replacing it.
    pub fn set_threads(&self, per_call: usize) {
        let malformed = std::env::var("IQA_NUM_THREADS")
            .ok()
            .is_some_and(|v| v.trim().parse::<usize>().ok().filter(|&n| n > 0).is_none());
        if self.threads.is_none() && malformed {
            return;
        }
        std::env::set_var("IQA_NUM_THREADS", per_call.max(1).to_string());
    }

    /// The options of every handle.
    pub fn metric_options(&self) -> Options {
        Options { device: self.device.unwrap_or_default(), precision: self.precision }
    }
}
