//! The name table: every built-in metric's [`MetricSpec`] (gathered from the metric files' `METRICS` lists),
//! TorchScript modules found in `IQA_WEIGHTS_DIR`, and pyiqa's catalogue for names iqa does not build.
use crate::catalogue::{CatalogueEntry, PYIQA_METRICS};
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::{
    arniqa, brisque, ckdn, clipiqa, clipscore, cnniqa, cw_ssim, dbcnn, deepdc, dists, entropy, fsim, gmsd, hyperiqa,
    ilniqe, laion_aes, liqe, lpips, maclip, mad, maniqa, metaiqa, musiq, nima, niqe, nlpd, nrqm, paq2piq, pieapp, piqe,
    psnr, ssim, topiq, torchscript, tres, unique, vif, vsi, wadiqam,
};
use crate::model::MetricSpec;
use crate::runtime::settings;
use once_cell::sync::Lazy;

/// Every built-in metric, in the order `iqa_metric_name` lists them: one line per metric file.
const METRICS: &[&[MetricSpec]] = &[
    psnr::METRICS,
    ssim::METRICS,
    entropy::METRICS,
    lpips::METRICS,
    dists::METRICS,
    cw_ssim::METRICS,
    fsim::METRICS,
    vsi::METRICS,
    niqe::METRICS,
    ilniqe::METRICS,
    brisque::METRICS,
    piqe::METRICS,
    gmsd::METRICS,
    vif::METRICS,
    nlpd::METRICS,
    mad::METRICS,
    topiq::METRICS,
    cnniqa::METRICS,
    hyperiqa::METRICS,
    arniqa::METRICS,
    dbcnn::METRICS,
    paq2piq::METRICS,
    unique::METRICS,
    metaiqa::METRICS,
    nima::METRICS,
    wadiqam::METRICS,
    ckdn::METRICS,
    deepdc::METRICS,
    pieapp::METRICS,
    nrqm::METRICS,
    clipiqa::METRICS,
    laion_aes::METRICS,
    liqe::METRICS,
    maclip::METRICS,
    clipscore::METRICS,
    musiq::METRICS,
    maniqa::METRICS,
    tres::METRICS,
];

/// The built-in metrics' specs, in listing order.
pub fn builtin() -> impl Iterator<Item = &'static MetricSpec> {
    METRICS.iter().flat_map(|family| family.iter())
}

/// Names of the built-in metrics, in listing order.
pub fn builtin_names() -> &'static [&'static str] {
    static NAMES: Lazy<Vec<&'static str>> = Lazy::new(|| builtin().map(|m| m.name).collect());
    &NAMES
}

/// Every metric name `create_metric` accepts now: the built-in ones, then the TorchScript modules found in
/// `IQA_WEIGHTS_DIR` (sorted) whose names are not built in.
pub fn available_names() -> Vec<String> {
    let mut names: Vec<String> = builtin_names().iter().map(|n| n.to_string()).collect();
    if let Some(dir) = settings::weights_dir() {
        let found = torchscript::discover(&dir);
        names.extend(found.into_iter().filter(|n| !builtin_names().contains(&n.as_str())));
    }
    names
}

/// pyiqa's facts about every metric it has, in its catalogue's order.
pub fn pyiqa_entries() -> impl Iterator<Item = &'static CatalogueEntry> {
    PYIQA_METRICS.iter()
}

/// pyiqa's facts about a metric it has, built in or not.
pub fn pyiqa_entry(name: &str) -> Option<&'static CatalogueEntry> {
    PYIQA_METRICS.iter().find(|e| e.name == name)
}

/// The built-in metric `name`; unknown names and pyiqa metrics iqa does not build are told apart.
pub fn find_builtin(name: &str) -> Result<&'static MetricSpec> {
    if let Some(spec) = builtin().find(|m| m.name == name) {
        return Ok(spec);
    }
    let available = available_names().join(", ");
    Err(Error::new(
        ErrorKind::UnknownMetric,
        match pyiqa_entry(name) {
            Some(_) => format!(
                "metric '{name}' exists in pyiqa but is not built into iqa; export it with \
                 `scripts/export_torchscript.py {name} --out DIR` and set IQA_WEIGHTS_DIR=DIR to use it; \
                 available: {available}"
            ),
            None => format!("unknown metric '{name}'; available: {available}"),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Mode;

    /// Each built-in metric's own description agrees with pyiqa's default config (mode, direction, range);
    /// lpips-squeeze, which pyiqa has no name for, is described like `lpips`.
    #[test]
    fn specs_agree_with_pyiqa_catalogue() {
        let mut names = std::collections::HashSet::new();
        for spec in builtin() {
            assert!(names.insert(spec.name), "{} listed twice", spec.name);
            let pyiqa = pyiqa_entry(if spec.name == "lpips-squeeze" { "lpips" } else { spec.name })
                .unwrap_or_else(|| panic!("{} is not in pyiqa's catalogue", spec.name));
            assert_eq!(spec.mode, pyiqa.mode, "{}", spec.name);
            assert_eq!(spec.lower_better, pyiqa.lower_better, "{}", spec.name);
            let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
            assert!(same(spec.score_range.0, pyiqa.score_range.0), "{}", spec.name);
            assert!(same(spec.score_range.1, pyiqa.score_range.1), "{}", spec.name);
        }
        assert_eq!(builtin().count(), 81);
        assert_eq!(find_builtin("psnr").unwrap().mode, Mode::FullReference);
        let e = find_builtin("uranker").unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnknownMetric);
        assert!(e.message.starts_with("metric 'uranker' exists in pyiqa but is not built into iqa"), "{}", e.message);
        assert!(find_builtin("nope").unwrap_err().message.starts_with("unknown metric 'nope'"));
    }
}
