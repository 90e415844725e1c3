//! A new user's machine, through the CLI: HOME, IQA_WEIGHTS_DIR, IQA_CACHE_DIR and TORCH_HOME empty, offline.
//! Every classical metric scores (niqe, brisque and ilniqe from their built-in parameters, equal to the last bit
//! to this process's scores, which read IQA_WEIGHTS_DIR's files under `make test`); the deep ones fail naming the
//! backbone to download and its URL; `iqa list` says which is which. Then, with a torch hub laid out as pyiqa
//! leaves it, the deep metrics score too, offline, equal to the scores from the shared folder.
mod common;
use common::*;
use iqa::{create_metric, metric_names, metric_status, Mode, Options};
use std::process::{Command, Output};

fn iqa_in(machine: &FreshMachine, args: &[&std::ffi::OsStr]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iqa"));
    cmd.args(args).env("IQA_OFFLINE", "1").env_remove("XDG_CACHE_HOME");
    for (k, v) in machine.vars() {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// `iqa score NAME dist [ref]` on I03 in the fresh environment, and this process's score of the same pair.
fn score_both(machine: &FreshMachine, name: &str) -> (Output, impl FnOnce() -> f64) {
    let (d, r) = (calibration("dist", "I03.bmp"), calibration("ref", "I03.bmp"));
    let fr = metric_status(name).unwrap().info.mode == Mode::FullReference;
    let mut args = vec![std::ffi::OsStr::new("score"), name.as_ref(), d.as_os_str()];
    if fr {
        args.push(r.as_os_str());
    }
    let out = iqa_in(machine, &args);
    let name = name.to_string();
    let here = move || {
        let metric = create_metric(&name, &Options::default()).unwrap();
        metric.score_files(&d, fr.then_some(r.as_path())).unwrap()
    };
    (out, here)
}

fn stdout_score(out: &Output, name: &str) -> f64 {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    text.trim().parse().unwrap_or_else(|_| panic!("{name}: stdout {text:?}"))
}

#[test]
fn classical_metrics_score_with_nothing_installed_and_deep_ones_name_their_download() {
    let shared = require_weights_dir();
    let machine = FreshMachine::new(&profile_dir().join(format!("fresh-machine-{}", std::process::id())));
    let names: Vec<String> = metric_names();
    let zoo = zoo_metrics();
    assert_eq!(names.len(), 23 + zoo.len());
    for name in &names {
        let (out, here) = score_both(&machine, name);
        if zoo.contains(name) {
            // The zoo's checkpoints: the error names the first of its files and where it comes from.
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{name}: {err}");
            let file = &metric_status(name).unwrap().files[0].name;
            for needle in [file.as_str(), zoo_store(name)] {
                assert!(err.contains(needle), "{name}: {needle:?} missing from {err}");
            }
        } else if NEEDS_BACKBONE.contains(&name.as_str()) {
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{name}: {err}");
            let backbone = if name.contains("vgg") || name == "dists" {
                "vgg16-397923af.pth"
            } else if name.contains("squeeze") {
                "squeezenet1_1-b8a52dc0.pth"
            } else {
                "alexnet-owt-7be5be79.pth"
            };
            let url = format!("https://download.pytorch.org/models/{backbone}");
            for needle in [backbone, &url, "IQA_OFFLINE=1", &*machine.torch_home.to_string_lossy()] {
                assert!(err.contains(needle), "{name}: {needle:?} missing from {err}");
            }
        } else {
            let (score, here) = (stdout_score(&out, name), here());
            if ["niqe", "brisque", "ilniqe"].contains(&name.as_str()) {
                assert_eq!(score.to_bits(), here.to_bits(), "{name}: built-in parameters give another score");
            } else {
                // No parameter file: nothing differs but the process. vsi gave a score 2.5e-6 relative off in
                // about 1 of 200 fresh processes under heavy load (README "Reliability"), so not to the bit.
                assert!((score - here).abs() <= 1e-5 * here.abs(), "{name}: {score} here {here}");
            }
        }
    }
    // The listing says the same, and nothing was written anywhere.
    let out = iqa_in(&machine, &["list".as_ref(), "--verbose".as_ref()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    for name in &names {
        let line = listing.lines().find(|l| l.split_whitespace().next() == Some(name.as_str())).unwrap();
        let expected = if NEEDS_BACKBONE.contains(&name.as_str()) || zoo.contains(name) { "missing" } else { "ready" };
        assert!(line.contains(expected), "{name}: {line}");
    }
    for needle in ["niqe_modelparameters.mat: built in", "ILNIQE_templateModel.mat: built in"] {
        assert!(listing.contains(needle), "{needle} not in {listing}");
    }
    for d in [&machine.home, &machine.weights, &machine.cache, &machine.torch_home] {
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 0, "{} was written to", d.display());
    }

    // pyiqa's cache: the deep metrics score offline, with the scores of the shared files.
    machine.fill_torch_hub(&shared);
    for name in NEEDS_BACKBONE {
        let (out, here) = score_both(&machine, name);
        let score = stdout_score(&out, name);
        let expected = here();
        // squeezenet's shared copy has fp16-rounded weights either way; all are the same tensors.
        assert_eq!(
            score.to_bits(),
            expected.to_bits(),
            "{name}: {score} from the torch hub, {expected} from the folder"
        );
    }
    let out = iqa_in(&machine, &["list".as_ref(), "--verbose".as_ref()]);
    let listing = String::from_utf8_lossy(&out.stdout);
    let checkpoints = machine.torch_home.join("hub/checkpoints/alexnet-owt-7be5be79.pth");
    assert!(listing.contains(&format!("alexnet-owt-7be5be79.pth: found at {}", checkpoints.display())), "{listing}");
    let _ = std::fs::remove_dir_all(machine.home.parent().unwrap());
}
