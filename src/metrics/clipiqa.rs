//! CLIP-IQA (Wang, Chan & Loy 2023) as pyiqa 0.1.16 runs it: the whole image, normalised with OpenAI's
//! statistics, through CLIP's image encoder; cosine logits against antonym prompts; per pair the softmax
//! probability of the positive prompt; the mean over pairs.
//!
//! - `clipiqa`: RN50, five fixed pairs (pyiqa assembles "Good/bad image", "Sharp/blurry image", "sharp/blurry
//!   edges", "High/low resolution image", "Noise-free/noisy image"), tokenised with CLIP's BPE; no position
//!   embedding in the attention pool (pyiqa's `pos_embedding=False`), so any size of at least 31 pixels works.
//! - `clipiqa+`: RN50 with CLIP-IQA+'s learned prompts. Each prompt's token embeddings are assembled as the
//!   official code does: start token, the first half of the 16 learned context vectors, the three class tokens
//!   ("good/bad photo ."), the second half, then the rest; the text transformer reads it at the end-of-text
//!   position of "X X … X Good photo..". The start and class/end embeddings are CLIP's.
//! - `clipiqa+_rn50_512`: the same, with context, start and class/end embeddings all from its file, and the
//!   attention pool's position embedding resized to the image (`pos_embedding=True`).
//! - `clipiqa+_vitL14_512`: as `clipiqa+_rn50_512` on ViT-L/14, whose position embedding is resized to the
//!   image's patches (any size of at least one 14×14 patch).
//!
//! QualiCLIP (Agnolucci, Galteri & Bertini 2024) is the same scheme on its own fine-tuned RN50 (QualiCLIP.pth's
//! `clip_model.*`, which replaces every tensor of OpenAI's file in pyiqa, so iqa reads only it), seven antonym
//! pairs and a softmax at temperature 2:
//! - `qualiclip`: the pairs' text features as the file stores them (`prompts_features`);
//! - `qualiclip+`, `-clive`, `-flive`, `-spaq`: learned prompts, 16 context vectors per prompt, each around its
//!   prompt's own BPE tokens.
//!
//! The text features are fixed, so they are computed once when the model is built. Each CLIP file is loaded
//! once and shared by the metrics that use it ([`shared_clip`]; `laion_aes` shares ViT-L/14).
use crate::cache;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{MetricSpec, Mode, Model, ModelKey};
use crate::nn::backbones::Placement;
use crate::nn::clip::{self, Clip, Positions};
use crate::nn::clip_tokenizer;
use crate::nn::layers::{Checkpoint, Normalise};
use crate::tensor::FrozenTensor;
use crate::weights::{self, files, WeightFile};
use std::sync::Arc;
use tch::{Kind, Tensor};

/// Where a variant's prompts come from.
#[derive(Debug, Clone, Copy)]
enum Prompts {
    /// Antonym pairs, encoded as text.
    Antonyms(&'static [&'static str]),
    /// Text features stored in the CLIP file under `prompts_features` (QualiCLIP).
    Stored,
    /// Learned context vectors placed around the class tokens of `templates` (see [`learned_features`]), from
    /// `file`: a bare context tensor whose start and class/end embeddings are CLIP's (`clipiqa+`), or a prompt
    /// learner under `params` (`prompt_learner.{ctx,token_prefix,token_suffix}`).
    Learned { file: &'static WeightFile, templates: &'static [&'static str], class_tokens: ClassTokens },
}

/// How many tokens of a template are its class (they sit between the two halves of the learned context).
#[derive(Debug, Clone, Copy)]
enum ClassTokens {
    /// The same for every template (CLIP-IQA+ hard-codes 3: "good photo .", its extra "." left after).
    Fixed(i64),
    /// As many as the template's BPE tokens (QualiCLIP+).
    Encoded,
}

#[derive(Debug, Clone, Copy)]
struct Variant {
    clip: &'static WeightFile,
    /// Where the CLIP tensors sit in the file ("" in OpenAI's, `clip_model.` in QualiCLIP's).
    clip_prefix: &'static str,
    prompts: Prompts,
    positions: Positions,
    /// The softmax temperature over each pair's logits.
    temperature: f64,
}

/// CLIP-IQA's pairs as pyiqa assembles them (MACLIP uses them too).
pub(crate) const CLIPIQA_ANTONYMS: &[&str] = &[
    "Good image",
    "bad image",
    "Sharp image",
    "blurry image",
    "sharp edges",
    "blurry edges",
    "High resolution image",
    "low resolution image",
    "Noise-free image",
    "noisy image",
];

/// The official CLIP-IQA+ code's templates, with its extra ".".
const CLIPIQA_PLUS_TEMPLATES: &[&str] = &["Good photo..", "Bad photo.."];

const QUALICLIP_TEMPLATES: &[&str] = &[
    "Good photo.",
    "Bad photo.",
    "Sharp image.",
    "Blurry image.",
    "Sharp edges.",
    "Blurry edges.",
    "High-resolution image.",
    "Low-resolution image.",
    "Noise-free image.",
    "Noisy image.",
    "High-quality image.",
    "Low-quality image.",
    "Good picture.",
    "Bad picture.",
];

const fn clipiqa_plus(clip: &'static WeightFile, file: &'static WeightFile, positions: Positions) -> Variant {
    let prompts = Prompts::Learned { file, templates: CLIPIQA_PLUS_TEMPLATES, class_tokens: ClassTokens::Fixed(3) };
    Variant { clip, clip_prefix: "", prompts, positions, temperature: 1.0 }
}

const CLIPIQA: Variant = Variant {
    clip: &files::CLIP_RN50,
    clip_prefix: "",
    prompts: Prompts::Antonyms(CLIPIQA_ANTONYMS),
    positions: Positions::Off,
    temperature: 1.0,
};
const PLUS: Variant = clipiqa_plus(&files::CLIP_RN50, &files::CLIPIQA_PLUS_CONTEXT, Positions::Off);
const PLUS_RN50_512: Variant = clipiqa_plus(&files::CLIP_RN50, &files::CLIPIQA_PLUS_RN50_512, Positions::Resized);
const PLUS_VITL14_512: Variant = clipiqa_plus(&files::CLIP_VITL14, &files::CLIPIQA_PLUS_VITL14_512, Positions::Resized);

const fn qualiclip(prompts: Prompts) -> Variant {
    Variant {
        clip: &files::QUALICLIP,
        clip_prefix: "clip_model.",
        prompts,
        positions: Positions::Off,
        temperature: 2.0,
    }
}

const fn qualiclip_plus(file: &'static WeightFile) -> Variant {
    qualiclip(Prompts::Learned { file, templates: QUALICLIP_TEMPLATES, class_tokens: ClassTokens::Encoded })
}

const QUALICLIP: Variant = qualiclip(Prompts::Stored);
const QUALICLIP_KONIQ: Variant = qualiclip_plus(&files::QUALICLIP_PLUS[0]);
const QUALICLIP_CLIVE: Variant = qualiclip_plus(&files::QUALICLIP_PLUS[1]);
const QUALICLIP_FLIVE: Variant = qualiclip_plus(&files::QUALICLIP_PLUS[2]);
const QUALICLIP_SPAQ: Variant = qualiclip_plus(&files::QUALICLIP_PLUS[3]);

/// RN50 downsamples by 32, its stem conv rounding up: 31 pixels leave one position after layer4.
const RN50_MIN_SIDE: u32 = 31;
/// ViT-L/14 needs one 14×14 patch.
const VITL14_MIN_SIDE: u32 = 14;

const fn spec(name: &'static str, files: &'static [&'static WeightFile], build: crate::model::Builder) -> MetricSpec {
    MetricSpec::new(name, Mode::NoReference, false, (0.0, 1.0), build)
        .min_size(RN50_MIN_SIDE, RN50_MIN_SIDE)
        .weights(files)
}

pub const METRICS: &[MetricSpec] = &[
    spec("clipiqa", &[&files::CLIP_RN50], |k| build(k, CLIPIQA)),
    spec("clipiqa+", &[&files::CLIP_RN50, &files::CLIPIQA_PLUS_CONTEXT], |k| build(k, PLUS)),
    spec("clipiqa+_rn50_512", &[&files::CLIP_RN50, &files::CLIPIQA_PLUS_RN50_512], |k| build(k, PLUS_RN50_512)),
    spec("clipiqa+_vitL14_512", &[&files::CLIP_VITL14, &files::CLIPIQA_PLUS_VITL14_512], |k| build(k, PLUS_VITL14_512))
        .min_size(VITL14_MIN_SIDE, VITL14_MIN_SIDE),
    spec("qualiclip", &[&files::QUALICLIP], |k| build(k, QUALICLIP)),
    spec("qualiclip+", &[&files::QUALICLIP, &files::QUALICLIP_PLUS[0]], |k| build(k, QUALICLIP_KONIQ)),
    spec("qualiclip+-clive", &[&files::QUALICLIP, &files::QUALICLIP_PLUS[1]], |k| build(k, QUALICLIP_CLIVE)),
    spec("qualiclip+-flive", &[&files::QUALICLIP, &files::QUALICLIP_PLUS[2]], |k| build(k, QUALICLIP_FLIVE)),
    spec("qualiclip+-spaq", &[&files::QUALICLIP, &files::QUALICLIP_PLUS[3]], |k| build(k, QUALICLIP_SPAQ)),
];

/// A CLIP file's model, and its QualiCLIP text features where it has them.
pub(crate) struct ClipFile {
    pub clip: Clip,
    stored_prompts: Option<FrozenTensor>,
}

/// The CLIP model under `prefix` in `file` (inside `params` where the file has it) on `key`'s placement, loaded
/// once while any metric holds it.
pub(crate) fn shared_clip(file: &'static WeightFile, prefix: &str, key: &ModelKey) -> Result<Arc<ClipFile>> {
    let shared = ModelKey { name: format!("clip/{}", file.official_name), ..key.clone() };
    cache::acquire(&shared, cache::Kind::SharedPart, || {
        let ck = Checkpoint::unwrap(file.official_name, weights::load(file, &[])?, Some("params"));
        let place = Placement::new(key.device, key.precision);
        let stored_prompts = match ck.shape("prompts_features") {
            Some(shape) => Some(ck.frozen("prompts_features", &shape, place)?),
            None => None,
        };
        Ok::<_, Error>(Arc::new(ClipFile { clip: Clip::load(&ck.sub(prefix), place)?, stored_prompts }))
    })
}

fn weights_error(message: String) -> Error {
    Error::new(ErrorKind::Weights, message)
}

fn build(key: &ModelKey, v: Variant) -> Result<Arc<dyn Model>> {
    let file = shared_clip(v.clip, v.clip_prefix, key)?;
    let clip = &file.clip;
    let _guard = tch::no_grad_guard();
    let tokenizer = clip_tokenizer::shared()?;
    let text_features = match v.prompts {
        Prompts::Antonyms(prompts) => text_features(clip, prompts)?,
        Prompts::Stored => file
            .stored_prompts
            .as_ref()
            .ok_or_else(|| weights_error(format!("'{}' lacks prompts_features", v.clip.official_name)))?
            .shallow_clone(),
        Prompts::Learned { file: learned, templates, class_tokens } => {
            let ck = Checkpoint::unwrap(learned.official_name, weights::load(learned, &[])?, Some("params"));
            let (width, prompts) = (clip.text.width(), templates.len() as i64);
            let (ctx, start, rest) = if ck.has("prompt_learner.ctx") {
                let suffix = ck.shape("prompt_learner.token_suffix").and_then(|s| s.get(1).copied()).unwrap_or(0);
                (
                    learned_context(&ck, "prompt_learner.ctx", prompts, width)?,
                    Some(ck.get("prompt_learner.token_prefix", &[prompts, 1, width])?),
                    Some(ck.get("prompt_learner.token_suffix", &[prompts, suffix, width])?),
                )
            } else {
                (learned_context(&ck, "", prompts, width)?, None, None)
            };
            let class_tokens: Vec<i64> = match class_tokens {
                ClassTokens::Fixed(n) => vec![n; templates.len()],
                ClassTokens::Encoded => templates.iter().map(|t| tokenizer.encode(t).len() as i64).collect(),
            };
            learned_features(clip, tokenizer, templates, &class_tokens, &ctx, start, rest)?
        }
    };
    let place = Placement::new(key.device, key.precision);
    Ok(Arc::new(ClipIqa {
        file: file.clone(),
        text_features: FrozenTensor::new(text_features.f_to_device(key.device)?),
        positions: v.positions,
        temperature: v.temperature,
        normalise: Normalise::new(clip::MEAN, clip::STD, place)?,
    }))
}

/// CLIP's text features of `prompts` (P×embed, float32), tokenised with its BPE.
pub(crate) fn text_features(clip: &Clip, prompts: &[&str]) -> Result<Tensor> {
    let tokenizer = clip_tokenizer::shared()?;
    let context = clip.text.context() as usize;
    let tokens = prompts.iter().map(|p| tokenizer.tokenize(p, context, false)).collect::<Result<Vec<_>>>()?;
    clip.text.encode(&tokens)
}

/// The learned context at `key` ("" for a file that is one bare tensor): prompts×n×width, or n×width shared by
/// every prompt (pyiqa expands a 2-D context).
fn learned_context(ck: &Checkpoint, key: &str, prompts: i64, width: i64) -> Result<Tensor> {
    let shape = ck.shape(key).ok_or_else(|| weights_error(format!("'{}' lacks the learned context", ck.source())))?;
    match shape[..] {
        [p, n, w] if p == prompts && w == width && n >= 2 => ck.get(key, &shape),
        [n, w] if w == width && n >= 2 => Ok(ck.get(key, &shape)?.f_unsqueeze(0)?.f_expand([prompts, n, w], false)?),
        _ => Err(weights_error(format!(
            "'{}': learned context of shape {shape:?}, expected ({prompts}, n, {width}) or (n, {width})",
            ck.source()
        ))),
    }
}

/// The text features of learned prompts, as the official CLIP-IQA+ code assembles them: per template, [start,
/// ctx[..n/2], its class tokens, ctx[n/2..], the rest], read at the end-of-text position of "X X … X template"
/// (n placeholders). `start` (P×1×width) and `rest` (P×(L−1−n)×width) default to CLIP's embeddings of those
/// token sequences.
fn learned_features(
    clip: &Clip,
    tokenizer: &clip_tokenizer::ClipTokenizer,
    templates: &[&str],
    class_tokens: &[i64],
    ctx: &Tensor,
    start: Option<Tensor>,
    rest: Option<Tensor>,
) -> Result<Tensor> {
    let n = ctx.size()[1];
    let context = clip.text.context();
    let placeholders = vec!["X"; n as usize].join(" ");
    let tokens = templates
        .iter()
        .map(|t| tokenizer.tokenize(&format!("{placeholders} {t}"), context as usize, false))
        .collect::<Result<Vec<_>>>()?;
    let embedded = clip.text.embed(&tokens)?;
    let start = match start {
        Some(s) => s,
        None => embedded.f_narrow(1, 0, 1)?,
    };
    let rest = match rest {
        Some(r) => r,
        None => embedded.f_narrow(1, 1 + n, context - 1 - n)?,
    };
    let rest_len = rest.size()[1];
    if start.size()[1] + n + rest_len != context || class_tokens.iter().any(|&c| c > rest_len) {
        return Err(weights_error(format!(
            "learned prompts of {} + {n} + {rest_len} tokens do not make the text encoder's {context}",
            start.size()[1]
        )));
    }
    let half = n / 2;
    let mut prompts = Vec::with_capacity(templates.len());
    for (i, &class) in class_tokens.iter().enumerate() {
        let row = |t: &Tensor| t.f_narrow(0, i as i64, 1);
        let (ctx, rest) = (row(ctx)?, row(&rest)?);
        prompts.push(Tensor::f_cat(
            &[
                row(&start)?,
                ctx.f_narrow(1, 0, half)?,
                rest.f_narrow(1, 0, class)?,
                ctx.f_narrow(1, half, n - half)?,
                rest.f_narrow(1, class, rest_len - class)?,
            ],
            1,
        )?);
    }
    let eot: Vec<i64> = tokens.iter().map(|t| clip::end_of_text(t)).collect();
    clip.text.encode_embeddings(&Tensor::f_cat(&prompts, 0)?.f_to_kind(Kind::Float)?, &eot)
}

struct ClipIqa {
    file: Arc<ClipFile>,
    /// Prompts × embed, float32 on the model's device.
    text_features: FrozenTensor,
    positions: Positions,
    temperature: f64,
    normalise: Normalise,
}

impl Model for ClipIqa {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let clip = &self.file.clip;
        let image = clip.image.forward(&self.normalise.forward(dist)?, self.positions)?;
        let logits = clip.logits(&image, &self.text_features)?.f_div_scalar(self.temperature)?;
        let n = logits.size()[0];
        let probs = logits.f_view([n, -1, 2])?.f_softmax(-1, Kind::Float)?;
        Ok(probs.f_select(2, 0)?.f_mean_dim([1i64].as_slice(), false, None)?)
    }
}
