/* frames: checks libiqa's video frame and stream API (IqaFrame, iqa_score_frame(s), iqa_stream_*) using only
 * the header. Frames are made here; where a frame's RGB is simple (4:4:4, or neutral chroma), it is computed
 * here from the documented formulas and scored as an RGB image for comparison.
 *
 *   frames
 *
 * Prints one line per check and, last, "N passed, M failed"; exits 0 only when M == 0.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iqa.h"

/* ------------------------------------------------------------------------------------------------ checks */

#include "check.h"

/* Checks a status and the last error: "" after IQA_OK, else a message containing `needle` (case-sensitive). */
static void expect_at(int line, IqaStatus got, IqaStatus want, const char *needle, const char *what) {
    const char *e = iqa_last_error();
    check_at(got == want, line, "%s: status %d (want %d), last error \"%s\"", what, (int)got, (int)want, e);
    if (want == IQA_OK) {
        check_at(e[0] == '\0', line, "%s: no error message after success", what);
    } else if (needle) {
        check_at(strstr(e, needle) != NULL, line, "%s: message mentions \"%s\" (\"%s\")", what, needle, e);
    }
}

#define EXPECT(got, want, needle, what) expect_at(__LINE__, (got), (want), (needle), (what))

static double rel_err(double a, double b) {
    double d = fabs(a - b), m = fabs(b);
    return d / (m > 1e-12 ? m : 1e-12);
}

static const double SENTINEL = -12345.0;

/* ------------------------------------------------------------------------------------------------ frames */

enum { W = 64, H = 48 };

/* A frame's planes in one allocation with the given padding after each row. */
typedef struct {
    IqaFrame frame;
    unsigned char *buf;
} Owned;

static int is_10bit(IqaFrameFormat f) {
    return f == IQA_FRAME_I420_10 || f == IQA_FRAME_P010 || f == IQA_FRAME_I422_10 || f == IQA_FRAME_I444_10;
}

static int is_semi(IqaFrameFormat f) { return f == IQA_FRAME_NV12 || f == IQA_FRAME_P010; }

/* Chroma subsampling shifts of a format. */
static void shifts(IqaFrameFormat f, int *sx, int *sy) {
    *sx = (f == IQA_FRAME_I444 || f == IQA_FRAME_I444_10) ? 0 : 1;
    *sy = (f == IQA_FRAME_I422 || f == IQA_FRAME_I422_10 || *sx == 0) ? 0 : 1;
}

/* Sets sample (x, y) of plane p (for the UV plane: x counts interleaved samples). */
static void put(Owned *o, int p, int x, int y, unsigned value) {
    unsigned char *row = (unsigned char *)o->frame.planes[p] + (size_t)y * o->frame.strides[p];
    if (is_10bit(o->frame.format)) {
        uint16_t v = (uint16_t)(o->frame.format == IQA_FRAME_P010 ? value << 6 : value);
        row[2 * x] = (unsigned char)(v & 0xff);
        row[2 * x + 1] = (unsigned char)(v >> 8);
    } else {
        row[x] = (unsigned char)value;
    }
}

/* A w x h frame: luma from `luma(x, y)` (in the format's bit depth), both chroma components `chroma`. */
static Owned make(IqaFrameFormat format, uint32_t w, uint32_t h, size_t pad, unsigned (*luma)(int, int, int),
                  int seed, unsigned chroma) {
    Owned o;
    int sx, sy;
    shifts(format, &sx, &sy);
    size_t bps = is_10bit(format) ? 2 : 1;
    size_t cw = w >> sx, ch = h >> sy;
    size_t strides[3] = {w * bps + pad, (is_semi(format) ? 2 * cw : cw) * bps + pad, cw * bps + pad};
    size_t rows[3] = {h, ch, is_semi(format) ? 0 : ch};
    size_t total = strides[0] * rows[0] + strides[1] * rows[1] + strides[2] * rows[2];
    memset(&o.frame, 0, sizeof o.frame);
    o.buf = calloc(total, 1);
    o.frame.struct_size = sizeof(IqaFrame);
    o.frame.width = w;
    o.frame.height = h;
    o.frame.format = format;
    o.frame.range = IQA_RANGE_FULL;
    unsigned char *at = o.buf;
    for (int p = 0; p < 3; p++) {
        o.frame.strides[p] = rows[p] ? strides[p] : 0;
        o.frame.planes[p] = rows[p] ? at : NULL;
        at += strides[p] * rows[p];
    }
    for (int y = 0; y < (int)h; y++) {
        for (int x = 0; x < (int)w; x++) {
            put(&o, 0, x, y, luma(x, y, seed));
        }
    }
    for (int y = 0; y < (int)ch; y++) {
        for (int x = 0; x < (int)(is_semi(format) ? 2 * cw : cw); x++) {
            put(&o, 1, x, y, chroma);
            if (!is_semi(format)) {
                put(&o, 2, x, y, chroma);
            }
        }
    }
    return o;
}

static unsigned luma8(int x, int y, int seed) { return (unsigned)((x * 3 + y * 5 + seed * 17) % 256); }
static unsigned luma10(int x, int y, int seed) { return (unsigned)((x * 13 + y * 21 + seed * 67) % 1024); }

static IqaMetric *create(const char *name) {
    IqaMetric *m = NULL;
    IqaStatus s = iqa_metric_create(name, NULL, &m);
    CHECK(s == IQA_OK && m != NULL, "create %s (%s)", name, iqa_last_error());
    return m;
}

/* psnr of two gray float images. */
static double gray_score(IqaMetric *m, const float *a, const float *b, uint32_t w, uint32_t h) {
    IqaImage ia = {a, w, h, 0, IQA_FORMAT_GRAY_F32}, ib = {b, w, h, 0, IQA_FORMAT_GRAY_F32};
    double s = SENTINEL;
    EXPECT(iqa_score(m, &ia, &ib, &s), IQA_OK, NULL, "score the gray reference");
    return s;
}

/* The luma of a full-range frame with neutral chroma, as the RGB every channel of it becomes. */
static void luma_of(const Owned *o, float *out) {
    double top = is_10bit(o->frame.format) ? 1023.0 : 255.0;
    for (uint32_t y = 0; y < o->frame.height; y++) {
        const unsigned char *row = (const unsigned char *)o->frame.planes[0] + y * o->frame.strides[0];
        for (uint32_t x = 0; x < o->frame.width; x++) {
            unsigned v = row[x];
            if (is_10bit(o->frame.format)) {
                v = (unsigned)(row[2 * x] | row[2 * x + 1] << 8);
                if (o->frame.format == IQA_FRAME_P010) {
                    v >>= 6;
                }
            }
            out[y * o->frame.width + x] = (float)(v / top);
        }
    }
}

static const IqaFrameFormat FORMATS[8] = {IQA_FRAME_I420,    IQA_FRAME_NV12, IQA_FRAME_I422,    IQA_FRAME_I444,
                                          IQA_FRAME_I420_10, IQA_FRAME_P010, IQA_FRAME_I422_10, IQA_FRAME_I444_10};

/* Every format, packed and with padded rows: neutral chroma in full range is the luma alone. */
static void test_formats(void) {
    IqaMetric *psnr = create("psnr");
    static float a[W * H], b[W * H];
    for (int i = 0; i < 8; i++) {
        IqaFrameFormat f = FORMATS[i];
        unsigned neutral = is_10bit(f) ? 512 : 128;
        unsigned (*luma)(int, int, int) = is_10bit(f) ? luma10 : luma8;
        Owned d = make(f, W, H, 0, luma, 1, neutral), r = make(f, W, H, 0, luma, 2, neutral);
        Owned dp = make(f, W, H, 24, luma, 1, neutral);
        double s = SENTINEL, sp = SENTINEL;
        EXPECT(iqa_score_frame(psnr, &d.frame, &r.frame, &s), IQA_OK, NULL, "score a frame");
        EXPECT(iqa_score_frame(psnr, &dp.frame, &r.frame, &sp), IQA_OK, NULL, "score a frame with padded rows");
        luma_of(&d, a);
        luma_of(&r, b);
        double want = gray_score(psnr, a, b, W, H);
        CHECK(rel_err(s, want) < 1e-6, "format %d: psnr of the frame %.9f = psnr of its luma as gray %.9f", (int)f, s,
              want);
        CHECK(s == sp, "format %d: padded rows score the same (%.9f, %.9f)", (int)f, s, sp);
        free(d.buf);
        free(r.buf);
        free(dp.buf);
    }
    iqa_metric_free(psnr);
}

/* A full-range BT.601 4:4:4 frame converted here (no upsampling involved) scores as that RGB. */
static void test_matrix_and_range(void) {
    IqaMetric *psnr = create("psnr");
    static float rgb[2][W * H * 3];
    Owned o[2];
    for (int k = 0; k < 2; k++) {
        o[k] = make(IQA_FRAME_I444, W, H, 0, luma8, k, 128);
        o[k].frame.matrix = IQA_MATRIX_BT601;
        for (int y = 0; y < H; y++) {
            for (int x = 0; x < W; x++) {
                unsigned u = (unsigned)(64 + (x * 7 + y * 3 + k * 11) % 128);
                unsigned v = (unsigned)(64 + (x * 5 + y * 9) % 128);
                put(&o[k], 1, x, y, u);
                put(&o[k], 2, x, y, v);
                double Y = luma8(x, y, k) / 255.0, pb = (u - 128.0) / 255.0, pr = (v - 128.0) / 255.0;
                double kr = 0.299, kb = 0.114, kg = 1 - kr - kb;
                double c[3] = {Y + 2 * (1 - kr) * pr, Y - 2 * kb * (1 - kb) / kg * pb - 2 * kr * (1 - kr) / kg * pr,
                               Y + 2 * (1 - kb) * pb};
                for (int j = 0; j < 3; j++) {
                    rgb[k][(y * W + x) * 3 + j] = (float)(c[j] < 0 ? 0 : c[j] > 1 ? 1 : c[j]);
                }
            }
        }
    }
    double s = SENTINEL, want = SENTINEL;
    EXPECT(iqa_score_frame(psnr, &o[0].frame, &o[1].frame, &s), IQA_OK, NULL, "score BT.601 full-range frames");
    IqaImage a = {rgb[0], W, H, 0, IQA_FORMAT_RGB_F32}, b = {rgb[1], W, H, 0, IQA_FORMAT_RGB_F32};
    EXPECT(iqa_score(psnr, &a, &b, &want), IQA_OK, NULL, "score their RGB");
    CHECK(rel_err(s, want) < 1e-6, "BT.601 full range: frame psnr %.9f = RGB psnr %.9f", s, want);
    /* The same samples read as BT.709 or limited range are other images. */
    o[0].frame.matrix = o[1].frame.matrix = IQA_MATRIX_BT709;
    double s709 = SENTINEL;
    EXPECT(iqa_score_frame(psnr, &o[0].frame, &o[1].frame, &s709), IQA_OK, NULL, "score as BT.709");
    CHECK(fabs(s709 - s) > 1e-3, "BT.709 differs from BT.601 (%.6f vs %.6f)", s709, s);
    free(o[0].buf);
    free(o[1].buf);
    iqa_metric_free(psnr);
}

/* Every bad combination the contract names is IQA_ERR_INVALID_ARGUMENT naming the plane and the value. */
static void test_bad_frames(void) {
    IqaMetric *psnr = create("psnr");
    Owned d = make(IQA_FRAME_I420, W, H, 0, luma8, 1, 128), r = make(IQA_FRAME_I420, W, H, 0, luma8, 2, 128);
    double s = SENTINEL;
    IqaFrame bad;
#define BAD(field_change, status, needle)                                                                      \
    do {                                                                                                       \
        bad = d.frame;                                                                                         \
        field_change;                                                                                          \
        s = SENTINEL;                                                                                          \
        EXPECT(iqa_score_frame(psnr, &bad, &r.frame, &s), status, needle, #field_change);                      \
        CHECK(s == SENTINEL, "%s: out_score untouched", #field_change);                                        \
    } while (0)
    EXPECT(iqa_score_frame(psnr, NULL, &r.frame, &s), IQA_ERR_INVALID_ARGUMENT, "dist is NULL", "NULL dist");
    EXPECT(iqa_score_frame(psnr, &d.frame, NULL, &s), IQA_ERR_INVALID_ARGUMENT, "reference", "psnr without ref");
    EXPECT(iqa_score_frame(psnr, &d.frame, &r.frame, NULL), IQA_ERR_INVALID_ARGUMENT, "out_score", "NULL out");
    EXPECT(iqa_score_frame(NULL, &d.frame, &r.frame, &s), IQA_ERR_INVALID_ARGUMENT, "metric handle", "NULL metric");
    BAD(bad.struct_size = 0, IQA_ERR_INVALID_ARGUMENT, "dist->struct_size is 0");
    BAD(bad.struct_size = 40, IQA_ERR_INVALID_ARGUMENT, "set it to sizeof(IqaFrame)");
    BAD(*(uint32_t *)&bad.format = 8, IQA_ERR_INVALID_ARGUMENT, "dist->format 8 is not an IqaFrameFormat");
    BAD(*(uint32_t *)&bad.matrix = 3, IQA_ERR_INVALID_ARGUMENT, "dist->matrix 3 is not an IqaColorMatrix");
    BAD(*(uint32_t *)&bad.range = 2, IQA_ERR_INVALID_ARGUMENT, "dist->range 2 is not an IqaColorRange");
    BAD(*(uint32_t *)&bad.siting = 7, IQA_ERR_INVALID_ARGUMENT, "dist->siting 7 is not an IqaChromaSiting");
    BAD(bad.width = 63, IQA_ERR_INVALID_ARGUMENT, "width 63 is not a multiple of 2: yuv420p");
    BAD(bad.height = 47, IQA_ERR_INVALID_ARGUMENT, "height 47 is not a multiple of 2: yuv420p");
    BAD(bad.width = 0, IQA_ERR_INVALID_ARGUMENT, "frame size 0x48 is empty");
    BAD(bad.planes[0] = NULL, IQA_ERR_INVALID_ARGUMENT, "dist: planes[0] (Y) is NULL");
    BAD(bad.planes[1] = NULL, IQA_ERR_INVALID_ARGUMENT, "dist: planes[1] (U) is NULL");
    BAD(bad.planes[2] = NULL, IQA_ERR_INVALID_ARGUMENT, "dist: planes[2] (V) is NULL");
    BAD(bad.strides[0] = 63, IQA_ERR_INVALID_ARGUMENT, "plane Y: stride 63 bytes is shorter than one row");
    BAD(bad.strides[1] = 31, IQA_ERR_INVALID_ARGUMENT, "plane U: stride 31 bytes is shorter than one row");
    BAD(bad.strides[2] = 16, IQA_ERR_INVALID_ARGUMENT, "plane V: stride 16 bytes");
    BAD(bad.strides[0] = SIZE_MAX / 2, IQA_ERR_INVALID_ARGUMENT, "plane Y");

    /* Formats with other rules. */
    Owned nv = make(IQA_FRAME_NV12, W, H, 0, luma8, 1, 128);
    nv.frame.planes[2] = (const void *)1; /* unused by NV12: never read */
    EXPECT(iqa_score_frame(psnr, &nv.frame, &r.frame, &s), IQA_OK, NULL, "NV12 against I420, planes[2] unused");
    bad = nv.frame;
    bad.planes[1] = NULL;
    EXPECT(iqa_score_frame(psnr, &bad, &r.frame, &s), IQA_ERR_INVALID_ARGUMENT, "planes[1] (UV) is NULL",
           "NV12 UV NULL");
    bad = nv.frame;
    bad.strides[1] = 63;
    EXPECT(iqa_score_frame(psnr, &bad, &r.frame, &s), IQA_ERR_INVALID_ARGUMENT, "plane UV: stride 63",
           "NV12 UV stride");
    Owned i422 = make(IQA_FRAME_I422, W, H, 0, luma8, 1, 128);
    bad = i422.frame;
    bad.width = 63;
    EXPECT(iqa_score_frame(psnr, &bad, &r.frame, &s), IQA_ERR_INVALID_ARGUMENT, "width 63 is not a multiple of 2",
           "I422 odd width");
    bad = i422.frame;
    bad.height = 47; /* 4:2:2 takes odd heights: only the size pair is wrong then */
    EXPECT(iqa_score_frame(psnr, &bad, &r.frame, &s), IQA_ERR_SHAPE_MISMATCH, "differ in size", "I422 odd height");
    Owned odd444 = make(IQA_FRAME_I444, 63, 47, 0, luma8, 1, 128);
    Owned odd444r = make(IQA_FRAME_I444, 63, 47, 0, luma8, 2, 128);
    EXPECT(iqa_score_frame(psnr, &odd444.frame, &odd444r.frame, &s), IQA_OK, NULL, "I444 takes odd sizes");
    Owned p010 = make(IQA_FRAME_P010, W, H, 0, luma10, 1, 512);
    bad = p010.frame;
    bad.height = 47;
    EXPECT(iqa_score_frame(psnr, &bad, &r.frame, &s), IQA_ERR_INVALID_ARGUMENT,
           "height 47 is not a multiple of 2: p010le",
           "P010 odd height");
    bad = p010.frame;
    bad.strides[0] = 100;
    EXPECT(iqa_score_frame(psnr, &bad, &r.frame, &s), IQA_ERR_INVALID_ARGUMENT, "plane Y: stride 100 bytes is shorter",
           "P010 luma stride below 128 bytes");

    /* 10-bit values above 1023, in each plane; P010 words with low bits set. */
    Owned t = make(IQA_FRAME_I420_10, W, H, 0, luma10, 1, 512);
    put(&t, 0, 5, 3, 1024);
    EXPECT(iqa_score_frame(psnr, &t.frame, &r.frame, &s), IQA_ERR_INVALID_ARGUMENT,
           "dist: plane Y: sample at (5, 3) is 1024, above 1023", "10-bit Y 1024");
    put(&t, 0, 5, 3, 1023);
    put(&t, 2, 31, 23, 65535);
    EXPECT(iqa_score_frame(psnr, &t.frame, &r.frame, &s), IQA_ERR_INVALID_ARGUMENT,
           "plane V: sample at (31, 23) is 65535, above 1023", "10-bit V 65535");
    put(&t, 2, 31, 23, 1023);
    EXPECT(iqa_score_frame(psnr, &t.frame, &r.frame, &s), IQA_OK, NULL, "10-bit at 1023 everywhere it was bad");
    Owned t444 = make(IQA_FRAME_I444_10, W, H, 0, luma10, 1, 512);
    put(&t444, 1, 0, 47, 2000);
    EXPECT(iqa_score_frame(psnr, &t444.frame, &r.frame, &s), IQA_ERR_INVALID_ARGUMENT,
           "plane U: sample at (0, 47) is 2000, above 1023", "I444_10 U 2000");
    unsigned char *uv = (unsigned char *)p010.frame.planes[1];
    uv[2 * 3] |= 1; /* UV word 3: the V of chroma sample (1, 0) */
    EXPECT(iqa_score_frame(psnr, &p010.frame, &r.frame, &s), IQA_ERR_INVALID_ARGUMENT,
           "plane UV: V sample at (1, 0) is 0x8001, whose low 6 bits are not zero", "P010 low bits");

    /* Pairs and modes. */
    Owned small = make(IQA_FRAME_I420, 32, 48, 0, luma8, 1, 128);
    EXPECT(iqa_score_frame(psnr, &small.frame, &r.frame, &s), IQA_ERR_SHAPE_MISMATCH,
           "distorted 32x48 and reference 64x48 differ in size", "sizes differ");
    IqaMetric *piqe = create("piqe");
    EXPECT(iqa_score_frame(piqe, &d.frame, &r.frame, &s), IQA_ERR_INVALID_ARGUMENT, "no-reference", "NR given a ref");
    EXPECT(iqa_score_frame(piqe, &d.frame, NULL, &s), IQA_OK, NULL, "NR frame");

    /* Batches: equal to single scores; a bad frame anywhere writes nothing. */
    IqaFrame dists[3] = {d.frame, nv.frame, d.frame}, refs[3] = {r.frame, r.frame, nv.frame};
    double out[3] = {SENTINEL, SENTINEL, SENTINEL}, single;
    EXPECT(iqa_score_frames(psnr, dists, refs, 3, out), IQA_OK, NULL, "score 3 frames");
    for (int i = 0; i < 3; i++) {
        EXPECT(iqa_score_frame(psnr, &dists[i], &refs[i], &single), IQA_OK, NULL, "single frame");
        CHECK(rel_err(out[i], single) < 1e-12, "batch frame %d %.9f = single %.9f", i, out[i], single);
    }
    refs[1].strides[1] = 3;
    out[0] = SENTINEL;
    EXPECT(iqa_score_frames(psnr, dists, refs, 3, out), IQA_ERR_INVALID_ARGUMENT, "refs[1]: plane U: stride 3",
           "bad refs[1]");
    CHECK(out[0] == SENTINEL, "no score written on error");
    EXPECT(iqa_score_frames(psnr, dists, refs, 0, out), IQA_ERR_INVALID_ARGUMENT, "count is 0", "count 0");
    EXPECT(iqa_score_frames(psnr, NULL, refs, 3, out), IQA_ERR_INVALID_ARGUMENT, "dists is NULL", "NULL dists");

    void *bufs[] = {d.buf, r.buf, nv.buf, i422.buf, odd444.buf, odd444r.buf, p010.buf, t.buf, t444.buf, small.buf};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        free(bufs[i]);
    }
    iqa_metric_free(piqe);
    iqa_metric_free(psnr);
#undef BAD
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A stream of psnr and ssim: per-frame scores equal iqa_score_frame's, pooled values their definitions. */
static void test_stream(void) {
    enum { N = 6 };
    IqaMetric *m[2] = {create("psnr"), create("ssim")};
    Owned d[N], r[N];
    double want[2][N];
    for (int i = 0; i < N; i++) {
        d[i] = make(IQA_FRAME_I420_10, W, H, 0, luma10, i, 500 + (unsigned)i);
        r[i] = make(IQA_FRAME_I420, W, H, 8, luma8, i + 3, 128);
        for (int k = 0; k < 2; k++) {
            EXPECT(iqa_score_frame(m[k], &d[i].frame, &r[i].frame, &want[k][i]), IQA_OK, NULL, "direct frame score");
        }
    }
    const char *names[2] = {"psnr", "ssim"};
    IqaStreamOptions options;
    iqa_stream_options_default(&options);
    CHECK(options.struct_size == sizeof options && options.subsample == 1 && options.threads == 1 && options.queue == 4
              && options.batch == 1 && !options.pooled_only && options.metric_options == NULL,
          "iqa_stream_options_default");
    options.threads = 2;
    IqaStream *stream = NULL;
    EXPECT(iqa_stream_open(names, 2, &options, &stream), IQA_OK, NULL, "open psnr+ssim");
    for (int i = 0; i < N; i++) {
        EXPECT(iqa_stream_push(stream, &d[i].frame, &r[i].frame), IQA_OK, NULL, "push a 10-bit/8-bit pair");
    }
    EXPECT(iqa_stream_flush(stream), IQA_OK, NULL, "flush");
    uint64_t pushed = 0, done = 0;
    EXPECT(iqa_stream_progress(stream, &pushed, &done), IQA_OK, NULL, "progress");
    CHECK(pushed == N && done == N, "progress: %llu pushed, %llu done", (unsigned long long)pushed,
          (unsigned long long)done);
    double sum[2] = {0, 0}, inv[2] = {0, 0};
    for (int i = 0; i < N; i++) {
        double got[3] = {SENTINEL, SENTINEL, SENTINEL};
        EXPECT(iqa_stream_frame_scores(stream, (uint64_t)i, got, 3), IQA_OK, NULL, "frame scores");
        for (int k = 0; k < 2; k++) {
            CHECK(rel_err(got[k], want[k][i]) < 1e-12, "frame %d %s: stream %.9f = direct %.9f", i, names[k], got[k],
                  want[k][i]);
            sum[k] += want[k][i];
            inv[k] += 1.0 / (want[k][i] + 1.0);
        }
        CHECK(got[2] == SENTINEL, "only metric_count scores written");
    }
    for (int k = 0; k < 2; k++) {
        double sorted[N], v = SENTINEL;
        memcpy(sorted, want[k], sizeof sorted);
        qsort(sorted, N, sizeof sorted[0], cmp_double);
        EXPECT(iqa_stream_pooled(stream, (size_t)k, IQA_POOL_MEAN, 0, &v), IQA_OK, NULL, "mean");
        CHECK(rel_err(v, sum[k] / N) < 1e-12, "%s mean %.9f", names[k], v);
        EXPECT(iqa_stream_pooled(stream, (size_t)k, IQA_POOL_HARMONIC_MEAN, 0, &v), IQA_OK, NULL, "harmonic mean");
        CHECK(rel_err(v, N / inv[k] - 1.0) < 1e-12, "%s harmonic mean %.9f = n / sum 1/(s+1) - 1", names[k], v);
        EXPECT(iqa_stream_pooled(stream, (size_t)k, IQA_POOL_MIN, 0, &v), IQA_OK, NULL, "min");
        CHECK(v == sorted[0], "%s min %.9f", names[k], v);
        EXPECT(iqa_stream_pooled(stream, (size_t)k, IQA_POOL_MAX, 0, &v), IQA_OK, NULL, "max");
        CHECK(v == sorted[N - 1], "%s max %.9f", names[k], v);
        /* p = 40 of 6 values: rank 2, exactly the third smallest; p = 50: halfway between the 3rd and 4th. */
        EXPECT(iqa_stream_pooled(stream, (size_t)k, IQA_POOL_PERCENTILE, 40, &v), IQA_OK, NULL, "percentile 40");
        CHECK(rel_err(v, sorted[2]) < 1e-12, "%s p40 %.9f", names[k], v);
        EXPECT(iqa_stream_pooled(stream, (size_t)k, IQA_POOL_PERCENTILE, 50, &v), IQA_OK, NULL, "percentile 50");
        CHECK(rel_err(v, (sorted[2] + sorted[3]) / 2) < 1e-12, "%s median %.9f", names[k], v);
    }
    double v = SENTINEL, got[2];
    EXPECT(iqa_stream_pooled(stream, 2, IQA_POOL_MEAN, 0, &v), IQA_ERR_INVALID_ARGUMENT, "metric index 2", "index 2");
    EXPECT(iqa_stream_pooled(stream, 0, 9, 0, &v), IQA_ERR_INVALID_ARGUMENT, "method 9", "method 9");
    EXPECT(iqa_stream_pooled(stream, 0, IQA_POOL_PERCENTILE, 101, &v), IQA_ERR_INVALID_ARGUMENT, "percentile 101",
           "percentile 101");
    CHECK(v == SENTINEL, "out untouched on error");
    EXPECT(iqa_stream_frame_scores(stream, N, got, 2), IQA_ERR_INVALID_ARGUMENT, "frame 6 was not pushed", "frame 6");
    EXPECT(iqa_stream_frame_scores(stream, 0, got, 1), IQA_ERR_INVALID_ARGUMENT, "count 1", "count 1");

    /* Bad pushes are refused; the stream goes on. */
    EXPECT(iqa_stream_push(stream, &d[0].frame, NULL), IQA_ERR_INVALID_ARGUMENT, "frame 6: no reference frame",
           "push without ref");
    EXPECT(iqa_stream_push(NULL, &d[0].frame, &r[0].frame), IQA_ERR_INVALID_ARGUMENT, "stream is NULL", "NULL stream");
    Owned small = make(IQA_FRAME_I420, 32, 32, 0, luma8, 1, 128);
    EXPECT(iqa_stream_push(stream, &small.frame, &small.frame), IQA_ERR_SHAPE_MISMATCH,
           "frame 6: the stream's frames are 64x48 yuv420p10le, reference yuv420p", "push another size");
    IqaFrame bad = d[0].frame;
    bad.strides[2] = 1;
    EXPECT(iqa_stream_push(stream, &bad, &r[0].frame), IQA_ERR_INVALID_ARGUMENT, "dist: plane V: stride 1",
           "push a bad frame");
    EXPECT(iqa_stream_push(stream, &d[1].frame, &r[1].frame), IQA_OK, NULL, "push after the refusals");
    EXPECT(iqa_stream_pooled(stream, 0, IQA_POOL_MEAN, 0, &v), IQA_OK, NULL, "mean of 7 frames");
    CHECK(rel_err(v, (sum[0] + want[0][1]) / 7) < 1e-12, "frame 6 counted: mean %.9f", v);
    iqa_stream_close(stream);

    /* Every 2nd frame; pooled values only. */
    options.subsample = 2;
    EXPECT(iqa_stream_open(names, 2, &options, &stream), IQA_OK, NULL, "open with subsample 2");
    for (int i = 0; i < N; i++) {
        EXPECT(iqa_stream_push(stream, &d[i].frame, &r[i].frame), IQA_OK, NULL, "push");
    }
    EXPECT(iqa_stream_pooled(stream, 1, IQA_POOL_MEAN, 0, &v), IQA_OK, NULL, "mean of frames 0, 2, 4");
    CHECK(rel_err(v, (want[1][0] + want[1][2] + want[1][4]) / 3) < 1e-12, "subsampled mean %.9f", v);
    EXPECT(iqa_stream_frame_scores(stream, 3, got, 2), IQA_ERR_INVALID_ARGUMENT, "skipped by subsampling", "frame 3");
    EXPECT(iqa_stream_frame_scores(stream, 4, got, 2), IQA_OK, NULL, "frame 4");
    CHECK(rel_err(got[0], want[0][4]) < 1e-12, "frame 4 psnr");
    iqa_stream_close(stream);
    options.subsample = 0; /* 0 = default: every frame */
    options.pooled_only = true;
    EXPECT(iqa_stream_open(names, 2, &options, &stream), IQA_OK, NULL, "open pooled_only");
    for (int i = 0; i < N; i++) {
        EXPECT(iqa_stream_push(stream, &d[i].frame, &r[i].frame), IQA_OK, NULL, "push");
    }
    EXPECT(iqa_stream_pooled(stream, 0, IQA_POOL_MAX, 0, &v), IQA_OK, NULL, "max");
    double top = want[0][0];
    for (int i = 1; i < N; i++) {
        top = want[0][i] > top ? want[0][i] : top;
    }
    CHECK(v == top, "pooled_only max %.9f", v);
    EXPECT(iqa_stream_pooled(stream, 0, IQA_POOL_PERCENTILE, 50, &v), IQA_ERR_INVALID_ARGUMENT, "keep_frame_scores",
           "percentile of a pooled_only stream");
    EXPECT(iqa_stream_frame_scores(stream, 0, got, 2), IQA_ERR_INVALID_ARGUMENT, "pooled values only",
           "frame scores of a pooled_only stream");
    iqa_stream_close(stream);

    /* Opening errors. */
    const char *unknown[2] = {"psnr", "no_such_metric"}, *null_name[2] = {"psnr", NULL};
    stream = NULL;
    EXPECT(iqa_stream_open(unknown, 2, NULL, &stream), IQA_ERR_UNKNOWN_METRIC, "no_such_metric", "unknown metric");
    EXPECT(iqa_stream_open(null_name, 2, NULL, &stream), IQA_ERR_INVALID_ARGUMENT, "metrics[1] is NULL", "NULL name");
    EXPECT(iqa_stream_open(NULL, 2, NULL, &stream), IQA_ERR_INVALID_ARGUMENT, "metrics is NULL", "NULL list");
    EXPECT(iqa_stream_open(names, 0, NULL, &stream), IQA_ERR_INVALID_ARGUMENT, "metric_count is 0", "no metric");
    EXPECT(iqa_stream_open(names, 2, NULL, NULL), IQA_ERR_INVALID_ARGUMENT, "out is NULL", "NULL out");
    options.struct_size = 8;
    EXPECT(iqa_stream_open(names, 2, &options, &stream), IQA_ERR_INVALID_ARGUMENT, "options->struct_size is 8",
           "short options");
    CHECK(stream == NULL, "*out untouched on error");
    iqa_stream_close(NULL);

    /* Closing with frames still queued returns, and the workers' handles are released. */
    IqaStreamOptions busy;
    iqa_stream_options_default(&busy);
    busy.threads = 2;
    busy.queue = 8;
    Owned bd = make(IQA_FRAME_I420, 256, 192, 0, luma8, 1, 128), br = make(IQA_FRAME_I420, 256, 192, 0, luma8, 2, 128);
    IqaCacheStats before, after;
    iqa_cache_stats(&before);
    EXPECT(iqa_stream_open(names, 2, &busy, &stream), IQA_OK, NULL, "open a busy stream");
    for (int i = 0; i < 10; i++) {
        EXPECT(iqa_stream_push(stream, &bd.frame, &br.frame), IQA_OK, NULL, "push");
    }
    iqa_stream_close(stream);
    iqa_cache_stats(&after);
    CHECK(after.handles_alive == before.handles_alive, "close released the stream's handles (%zu, %zu)",
          after.handles_alive, before.handles_alive);
    free(bd.buf);
    free(br.buf);
    free(small.buf);
    for (int i = 0; i < N; i++) {
        free(d[i].buf);
        free(r[i].buf);
    }
    iqa_metric_free(m[0]);
    iqa_metric_free(m[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(iqa_abi_version() == IQA_ABI_VERSION && IQA_ABI_VERSION == 1, "ABI version unchanged (1)");
    test_formats();
    test_matrix_and_range();
    test_bad_frames();
    test_stream();
    IqaCacheStats end;
    EXPECT(iqa_cache_stats(&end), IQA_OK, NULL, "iqa_cache_stats at the end");
    CHECK(end.handles_alive == 0, "no handle left alive (%zu)", end.handles_alive);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
