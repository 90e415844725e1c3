"""Writes tests/data/clip_tokens.csv: OpenAI CLIP's token ids for a few hundred texts, the reference that
src/nn/clip_tokenizer.rs is tested against.

Run with the project's Python (`make setup-dev`: openai-clip 1.0.1, ftfy, regex come with pyiqa 0.1.16):
`.venv/bin/python scripts/make_clip_tokens.py`. The output is deterministic (fixed texts, a seeded generator).

Texts: every prompt pyiqa 0.1.16 tokenises with CLIP (clipiqa, clipiqa+, maclip, qualiclip, liqe and clipscore's
prefix), then hand-written cases (punctuation, numbers, contractions, HTML entities, whitespace and control
characters, case, accents and non-Latin scripts, emoji, ftfy's fixes, mojibake, text too long for 77 tokens), then
seeded random mixtures of those pieces.

Columns, comma-separated, one text a line (`text` last, so that it may hold commas):
- expect: `equal` where the Rust tokenizer must give the reference's ids; `mojibake` or `html5_entity` where it
  must not, because it leaves out ftfy's mojibake repair or knows only HTML 4.01's entity names (see
  src/nn/clip_tokenizer.rs). Those rows are labelled by running the reference again with the same omissions
  (ftfy's `fix_encoding` off, the smaller entity tables), never by hand.
- source: which pyiqa metric the prompt is from, or `varied` / `random`.
- n_bpe: the length of `SimpleTokenizer().encode(text)` (no start/end tokens, not truncated).
- ids: `clip.tokenize(text, context_length=77, truncate=True)[0]` without its trailing zero padding.
- ids_here: the ids of the reference run with those omissions where they differ from `ids` (the rows not
  `equal`), else empty.
- text: backslash-escaped: `\\\\` is a backslash, `\\u{HEX}` a control, format, separator or other invisible
  character; everything else is the character itself (UTF-8).
"""
import contextlib
import html
import html.entities
import random
import sys
import types
import unicodedata
from functools import partial
from itertools import product
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo_offline  # noqa: E402,F401 (its pkg_resources stand-in, before clip)

import clip  # noqa: E402
import clip.simple_tokenizer as simple_tokenizer  # noqa: E402
import ftfy  # noqa: E402
import ftfy.chardata  # noqa: E402
import ftfy.fixes  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "clip_tokens.csv"
CONTEXT = 77
EOT = 49407

# --- pyiqa 0.1.16's prompts (pyiqa/archs/*.py) ---
CLIPIQA = [  # clipiqa_arch.py and maclip_arch.py: the antonym pairs
    "Good image", "bad image", "Sharp image", "blurry image", "sharp edges", "blurry edges",
    "High resolution image", "low resolution image", "Noise-free image", "noisy image",
]
X16 = " ".join(["X"] * 16) + " "  # PromptLearner's n_ctx=16 placeholder prefix
CLIPIQA_PLUS = [X16 + "Good photo..", X16 + "Bad photo.."]  # clipiqa_arch.py PromptLearner
QUALICLIP = [  # qualiclip_arch.py: the prompts (name_lens) and, with the prefix, the tokenised prompts
    "Good photo.", "Bad photo.", "Sharp image.", "Blurry image.", "Sharp edges.", "Blurry edges.",
    "High-resolution image.", "Low-resolution image.", "Noise-free image.", "Noisy image.",
    "High-quality image.", "Low-quality image.", "Good picture.", "Bad picture.",
]
LIQE_QUALITIES = ["bad", "poor", "fair", "good", "perfect"]
LIQE_SCENES = ["animal", "cityscape", "human", "indoor", "landscape", "night", "plant", "still_life", "others"]
LIQE_DISTORTIONS = [
    "jpeg2000 compression", "jpeg compression", "noise", "blur", "color", "contrast", "overexposure",
    "underexposure", "spatial", "quantization", "other",
]
LIQE = [f"a photo of a {c} with {d} artifacts, which is of {q} quality"
        for q, c, d in product(LIQE_QUALITIES, LIQE_SCENES, LIQE_DISTORTIONS)]
LIQE_SINGLE = [f"a photo with {c} quality" for c in LIQE_QUALITIES]
CLIPSCORE_CAPTIONS = [  # clipscore_arch.py: prefix + ' ' + caption, truncate=True
    "a dog running on the beach", "Two people riding bikes down a street.", "", "A RED CAR",
    "a plate of food with broccoli, rice & chicken", "a very " + "very " * 90 + "long caption",
]
CLIPSCORE = ["A photo depicts " + c for c in CLIPSCORE_CAPTIONS]

LONG_PROSE = (
    "The photograph shows a quiet harbour at dawn: fishing boats rest against the pier, gulls circle above the "
    "masts, and a thin mist hangs over the water while the first light paints the hills orange and pink. "
)

VARIED = [
    # Plain ASCII, case, punctuation, numbers
    "a photo of a cat", "A photo depicts a dog running on the beach.", "The quick brown fox jumps over the lazy dog.",
    "Hello, world!", "HELLO WORLD", "MiXeD CaSe TeXt", "", " ", "a", "A", "!", "!!!", "?!?!", "...", "a.b.c",
    "e-mail: someone@example.com", "https://github.com/openai/CLIP?tab=readme#usage", "C:\\Users\\photo.jpg",
    "snake_case_name and camelCaseName", "#hashtag @mention $100 50% 3.14159 1,000,000", "2024-01-31 12:34:56",
    "1st 2nd 3rd 4th", "0123456789", "1234567890 9876543210 digits are single tokens", "x^2 + y^2 = z^2",
    "(parentheses) [brackets] {braces} <angles>", '"double quotes" and \'single quotes\'',
    "`backticks` ~tilde~ |pipe| \\backslash\\", "a--b---c----d", "!!!???...;;;:::", "word.", "word,word",
    "pneumonoultramicroscopicsilicovolcanoconiosis", "antidisestablishmentarianism", "supercalifragilistic",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "aaaaaaaaaaaaaaaaa bbbbbbbbbb", "qwzxj vbnmk", "IMG_2024_0001.JPG",
    "ISO 100, f/2.8, 1/250s, 50mm", "4K UHD 3840x2160 @ 60fps", "jpeg2000 vs. JPEG-XL vs. WebP", "H.264/AVC",
    # Contractions (the reference's regex splits 's 't 're 've 'm 'll 'd, case-insensitively)
    "it's", "we'll", "I'm", "you're", "they've", "she'd", "can't", "don't", "won't", "IT'S", "We'Ll", "YOU'RE",
    "rock 'n' roll", "'s", "'tis", "o'clock", "it''s", "dogs' toys", "y'all'd've", "I'd've", "'S 'T 'RE 'VE 'M",
    "it’s we’ll can’t", "“Quoted” text ‘with’ curly quotes", "‛reversed‚ „low” ‟double", "ʼmodifier apostropheʼs",
    # HTML entities (ftfy's unescape, then html.unescape twice)
    "fish &amp; chips", "&lt;b&gt;bold&lt;/b&gt;", "&quot;quoted&quot;", "&apos;apostrophe&apos;", "&#39;s",
    "&#x27;s", "it&#8217;s", "caf&eacute;", "&copy; 2024", "&nbsp;non&nbsp;breaking", "AT&T", "R&D", "Q&A",
    "&amp;amp;", "&amp;amp;amp;", "&amp;amp;amp;amp;", "&copy2024", "&notit;", "&EACUTE;", "BUNDESSTRA&SZLIG;E",
    "&ALPHA; &alpha; &Alpha;", "&#0;", "&#1;x", "&#128;", "&#x80;", "&#150;", "&#xD800;", "&#1114112;",
    "&#99999999999999999999;", "&#65;&#x42;&#X43;", "&#65", "&#x41", "&#abc;", "&#;", "&unknown;", "&;",
    "& amp;", "&ampx", "a < b &amp; c", "<p>fish &amp;amp; chips</p>",
    "line1 &amp;amp;\n<b>line2 &amp;amp;</b>\nline3 &amp;amp;", "&amp;amp;\n&amp;amp;\n<br>",
    "&hellip; &mdash; &ndash; &trade; &euro; &bull; &deg;", "&frac12; &sup2; &times; &divide;", "&lang; &rang;",
    "&Sigma;&sigma;&sigmaf;", "&nbsp;", "&#9;tab&#10;newline", "&#13;", "&#x3000;", "&NTILDE; &nTILDE;",
    "&AMP;&LT;&GT;&QUOT;&COPY;&REG;", "&ampamp;", "&lt&gt", "&amp&amp;", "&euro5", "&NOT; &not &noT;",
    "&thetasym; &upsih; &piv;", "&#x1F600;", "&#128512;", "&#x110000;", "&#xFFFE;", "&#xFDD0;", "&#127;",
    "&#x7f;&#x9f;", "&#8232;&#8233;", "&#x41;&#x2019;s", "&amp;#39;", "&amp;lt;tag&amp;gt;",
    "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;", "&ab\u00e9;", "&#0000065;",
    # HTML5-only entity names (not known here: expected to differ)
    "&check; done", "&ltrif; triangle", "&HilbertSpace;", "&Jscr;ohn", "&CHECKMARK;",
    # Whitespace and control characters
    "  leading and trailing  ", "multiple    spaces", "tabs\tand\nnewlines\r\nand\rreturns", "\t\n  \r\n",
    "\u00a0nbsp\u00a0", "\u3000ideographic\u3000space", "\u2028line sep\u2029para sep", "\x85next line",
    "zero\u200bwidth space", "\ufeffBOM at start", "form\x0cfeed\x0bvtab", "\x1cfile sep\x1f", "nul\x00char",
    "bell\x07", "\x1b[31mred\x1b[0m text", "\x1b[1;32mbold green\x1b[m", "\x1b[?25h", "del\x7fete",
    "\u206aarabic\u206f controls", "\ufff9annotation\ufffb", "object\ufffc", "joiner\u200d\u200c", "rtl\u200fmark",
    "en\u2002em\u2003thin\u2009hair\u200a", "narrow\u202fnbsp", "\u1680ogham", "ideographic\u3000\u3000twice",
    "\x93smart quotes\x94 in C1", "\x80 euro", "\x81\x8d\x8f\x90\x9d undefined C1", "\x96 dash \x97",
    # Case: final sigma, dotted I, title-case digraphs, sharp s
    "ΟΔΟΣ ΣΑΣ", "ΣΑΣ.", "Σ", "ΑΣ", "ΣΑ", "Σ1", "ΑΣ'Σ", "İstanbul", "ǅ Dž ǈ ǋ", "ẞ capital sharp s", "STRASSE Straße",
    "ΆΈΉ", "Kelvin \u212a", "Å angstrom \u212b", "ſ long s", "it'ſ", "ＡＢＣ", "ÀÉÎÕÜ", "ĲSSEL", "ǱǲǳǄǅǆ",
    # Accented, decomposed and non-Latin text, symbols, emoji
    "café crème brûlée", "naïve résumé", "Ångström", "cafe\u0301", "A\u030a", "n\u0303", "\u1e9b\u0323",
    "한국어 텍스트", "日本語のテキスト", "中文文本：这是一张高质量的照片。", "这张照片很模糊", "Привет, мир!",
    "Ελληνικά", "العربية", "עברית", "हिन्दी", "ไทย", "Tiếng Việt", "Türkçe ıİ", "Ελληνική ΓΛΩΣΣΑ", "Ωμέγα",
    "I ❤️ NY", "😀😃😄", "👍🏽", "👨‍👩‍👧‍👦 family", "🇺🇸 flag",
    "🏴\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f",
    "½ ¼ ¾", "² ³ ¹", "① ② ③", "Ⅻ roman Ⅻ", "٣٤٥ arabic digits", "१२३", "ｆｕｌｌｗｉｄｔｈ ＴＥＸＴ １２３",
    "ｶﾀｶﾅ halfwidth katakana", "ﾊﾟﾝ", "ﬁne ﬂour ﬀ ﬃ ﬄ ﬅ ﬆ", "Ĳssel", "ŉ", "Ⓐ circled ⓐ", "α\u0345", "x \u0345 y",
    "ᾼ", "ﾠhalfwidth filler", "￠￡￢￣￤￥￦", "→ ← ↑ ↓ ⇒", "∑∫√∞≈≠", "©®™", "§¶†‡", "°C °F", "€ £ ¥ ₹ ₿",
    "\U0001d400\U0001d401 math bold", "𝒥ohn", "\U00010400 deseret", "\U0001f600 grinning", "ä\u0308",
    "\ue000 private use", "\U000f0000 plane 15", "\u0378 unassigned", "\ufffd replacement",
    # Mojibake that ftfy repairs (not repaired here: expected to differ)
    "cafÃ©", "The Mona Lisa doesnâ€™t have eyebrows.", "Ã¼ber", "âœ” No problems",
    "&macr;\\_(ã\x83\x84)_/&macr;", "Ãºnico", "ÐŸÑ€Ð¸Ð²ÐµÑ‚", "Ã¢â‚¬Å“doubleÃ¢â‚¬Â", "sÃ³", "voilÃ le travail",
    # Special tokens written in the text
    "<|startoftext|>", "<|endoftext|>", "a <|endoftext|> b", "<|STARTOFTEXT|>", "<|startoftext|><|endoftext|>",
    "<|ſtartoftext|>", "<|endoftext", "<|endoftext|>>",
    # Too long for 77 tokens (truncated) and around the limit
    LONG_PROSE * 3, "word " * 75, "word " * 76, "word " * 200, "1" * 80, "ab " * 100, "😀" * 80,
    " ".join(str(i) for i in range(40)), "中" * 100, "&amp;" * 100,
]

# Pieces for the seeded random mixtures.
WORDS = [
    "photo", "image", "quality", "blurry", "sharp", "noisy", "the", "a", "of", "with", "High", "LOW", "Resolution",
    "it's", "we'll", "DON'T", "they’re", "café", "Straße", "ΟΔΟΣ", "Привет", "照片", "質", "한국", "😀", "👍🏽",
    "&amp;", "&lt;", "&eacute;", "&#39;", "&#x2019;", "&nbsp;", "&copy", "ﬁ", "ＡＢ", "ｶ", "½", "42", "3.14", "2024",
    "x", "Z", "e\u0301", "İ", "ß", "ΣΑΣ", "ŉ", "jpeg2000", "still_life", "over-exposed", "(", ")", "[", "]", "!", "?",
    ".", ",", ";", ":", "-", "--", "...", "'", "\"", "“", "”", "/", "\\", "#", "@", "$", "%", "^", "*", "+", "=",
    "<", ">", "|", "~", "`", "_", "\x1b[0m", "\x00", "\u200b", "\ufeff",
]
SEPARATORS = [" ", " ", " ", " ", "", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", ", ", ". "]


def random_texts(count, seed=20240613):
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        n = rng.choice([1, 2, 3, 5, 8, 13, 21, 40])
        parts = []
        for _ in range(n):
            word = rng.choice(WORDS)
            if rng.random() < 0.15:
                word = word.upper()
            parts.append(word)
            parts.append(rng.choice(SEPARATORS))
        texts.append("".join(parts))
    return texts


# --- The omissions of the Rust tokenizer, to label rows (src/nn/clip_tokenizer.rs's module docs) ---
# Named entities known there: HTML 4.01's (html.entities.name2codepoint), &apos; and the upper-case legacy names.
KNOWN_NAMES = set(html.entities.name2codepoint) | {"apos", "AMP", "COPY", "GT", "LT", "QUOT", "REG"}
HTML5_FULL = html.entities.html5
HTML5_KNOWN = {k: v for k, v in HTML5_FULL.items() if k.rstrip(";") in KNOWN_NAMES}
FTFY_FULL = ftfy.chardata.HTML_ENTITIES
FTFY_KNOWN = {
    k: v for k, v in FTFY_FULL.items()
    if k[1:-1] in KNOWN_NAMES
    or (k[1:-1] == k[1:-1].upper() and k[1:-1].lower() in KNOWN_NAMES and k[1:] not in HTML5_FULL)
}
assert {k for k in HTML5_FULL if not k.endswith(";")} <= KNOWN_NAMES, "a legacy name is missing"


@contextlib.contextmanager
def omissions(mojibake, entities):
    """The reference with ftfy's mojibake repair off (`mojibake`) and/or only the known entity names."""
    saved = (simple_tokenizer.ftfy, html._html5, ftfy.fixes.HTML_ENTITIES)
    try:
        if mojibake:
            simple_tokenizer.ftfy = types.SimpleNamespace(fix_text=partial(ftfy.fix_text, fix_encoding=False))
        if entities:
            html._html5 = HTML5_KNOWN
            ftfy.fixes.HTML_ENTITIES = FTFY_KNOWN
        yield
    finally:
        simple_tokenizer.ftfy, html._html5, ftfy.fixes.HTML_ENTITIES = saved


def ids(text):
    row = clip.tokenize(text, context_length=CONTEXT, truncate=True)[0].tolist()
    end = len(row) - row[::-1].index(EOT)  # the padding after <|endoftext|> (id 0 is also '!')
    return row[:end]


def escape(text):
    out = []
    for c in text:
        if c == "\\":
            out.append("\\\\")
        elif c != " " and unicodedata.category(c) in ("Cc", "Cf", "Zs", "Zl", "Zp", "Co", "Cn", "Mn", "Me"):
            out.append(f"\\u{{{ord(c):X}}}")
        else:
            out.append(c)
    return "".join(out)


def main():
    rows = [("clipiqa", t) for t in CLIPIQA] + [("clipiqa+", t) for t in CLIPIQA_PLUS]
    rows += [("qualiclip", t) for t in QUALICLIP] + [("qualiclip", X16 + t) for t in QUALICLIP]
    rows += [("liqe", t) for t in LIQE + LIQE_SINGLE] + [("clipscore", t) for t in CLIPSCORE]
    rows += [("varied", t) for t in VARIED] + [("random", t) for t in random_texts(150)]
    seen, lines = set(), ["expect,source,n_bpe,ids,ids_here,text"]
    counts = {}
    encoder = simple_tokenizer.SimpleTokenizer()
    for source, text in rows:
        if text in seen:
            continue
        seen.add(text)
        reference = ids(text)
        with omissions(mojibake=True, entities=True):
            here = ids(text)
        expect = "equal"
        if here != reference:
            with omissions(mojibake=True, entities=False):
                expect = "mojibake" if ids(text) != reference else "html5_entity"
        counts[expect] = counts.get(expect, 0) + 1
        n_bpe = len(encoder.encode(text))
        here_text = "" if here == reference else " ".join(map(str, here))
        lines.append(f"{expect},{source},{n_bpe},{' '.join(map(str, reference))},{here_text},{escape(text)}")
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{OUT.relative_to(ROOT)}: {len(lines) - 1} rows {counts}")


if __name__ == "__main__":
    main()
