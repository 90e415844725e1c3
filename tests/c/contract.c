/* contract: checks libiqa against the C API contract (include/iqa.h, design/C_API.md), using only the header.
 *
 *   contract CALIBRATION_DIR        (data/calibration: dist/I03.bmp ... and ref/I03.bmp ...)
 *
 * Prints one line per check and, last, "N passed, M failed"; exits 0 only when M == 0.
 * Build: cc -std=c99 -Wall -Wextra -Werror -pthread -Iinclude tests/c/contract.c -Ltarget/release -liqa \
 *           -Wl,-rpath,$PWD/target/release -o contract
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iqa.h"

/* ------------------------------------------------------------------------------------------------ checks */

#include "check.h"

static int contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) {
            i++;
        }
        if (i == n) {
            return 1;
        }
    }
    return n == 0;
}

enum { ANY_CASE = 0, EXACT = 1 };

/* Checks a status and the thread's last error: "" after IQA_OK; otherwise non-empty and containing `needle`
 * (when not NULL; `exact` = case-sensitive). */
static void expect_at(int line, IqaStatus got, IqaStatus want, const char *needle, int exact, const char *what) {
    const char *e = iqa_last_error();
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", e ? e : "(NULL)");
    check_at(got == want, line, "%s: status %d (want %d), last error \"%s\"", what, (int)got, (int)want, msg);
    check_at(e != NULL, line, "%s: iqa_last_error() is not NULL", what);
    if (e == NULL) {
        return;
    }
    if (want == IQA_OK) {
        check_at(msg[0] == '\0', line, "%s: iqa_last_error() is \"\" after success (got \"%s\")", what, msg);
        return;
    }
    check_at(msg[0] != '\0', line, "%s: iqa_last_error() is not empty", what);
    if (needle) {
        int found = exact ? strstr(msg, needle) != NULL : contains_ci(msg, needle);
        check_at(found, line, "%s: message mentions \"%s\" (\"%s\")", what, needle, msg);
    }
}

#define EXPECT(got, want, needle, what) expect_at(__LINE__, (got), (want), (needle), ANY_CASE, (what))
#define EXPECT_EXACT(got, want, needle, what) expect_at(__LINE__, (got), (want), (needle), EXACT, (what))

static double rel_err(double a, double b) {
    double d = a - b;
    double m = b < 0 ? -b : b;
    if (d < 0) {
        d = -d;
    }
    return d / (m > 1e-12 ? m : 1e-12);
}

/* ------------------------------------------------------------------------------------------------ data */

static const char *IMAGES[5] = {"I03.bmp", "I04.bmp", "I06.bmp", "I08.bmp", "I19.bmp"};
/* pyiqa 0.1.16, psnr with default options, on the calibration pairs. */
static const double PYIQA_PSNR[5] = {21.113628387451172, 20.98719024658203, 27.01384735107422,
                                     23.300247192382812, 21.61864471435547};
static const double PYIQA_SSIM_I03 = 0.6997367514255921;

static const double SENTINEL = -12345.0;
#define W 64
#define H 64

static const char *g_calib;
static char g_dist_paths[5][4096], g_ref_paths[5][4096];

/* Three pairs of 64x64 RGB8 images: a smooth reference and a deterministic noisy copy. */
static unsigned char g_ref_px[3][H * W * 3], g_dist_px[3][H * W * 3];

static void make_buffers(void) {
    uint32_t state = 12345u;
    for (int p = 0; p < 3; p++) {
        for (int y = 0; y < H; y++) {
            for (int x = 0; x < W; x++) {
                for (int c = 0; c < 3; c++) {
                    size_t i = ((size_t)y * W + (size_t)x) * 3 + (size_t)c;
                    int v = (x * (3 + c) + y * (2 + p) + 40 * c + 17 * p) % 256;
                    state = state * 1664525u + 1013904223u;
                    int noise = (int)((state >> 24) % 41) - 20;
                    int d = v + noise * (p + 1) / 2;
                    g_ref_px[p][i] = (unsigned char)v;
                    g_dist_px[p][i] = (unsigned char)(d < 0 ? 0 : d > 255 ? 255 : d);
                }
            }
        }
    }
}

static IqaImage rgb8(const unsigned char *px, uint32_t w, uint32_t h) {
    IqaImage im;
    im.data = px;
    im.width = w;
    im.height = h;
    im.stride = 0;
    im.format = IQA_FORMAT_RGB8;
    return im;
}

static IqaMetric *create(const char *name) {
    IqaMetric *m = NULL;
    IqaOptions o;
    iqa_options_default(&o);
    IqaStatus st = iqa_metric_create(name, &o, &m);
    CHECK(st == IQA_OK && m != NULL, "create %s: status %d (%s)", name, (int)st, iqa_last_error());
    return st == IQA_OK ? m : NULL;
}

/* After an error the handle must still give the same score for pair 0. */
static void still_scores_at(int line, IqaMetric *m, double want, const char *after) {
    IqaImage d = rgb8(g_dist_px[0], W, H), r = rgb8(g_ref_px[0], W, H);
    double s = SENTINEL;
    IqaStatus st = iqa_score(m, &d, &r, &s);
    const char *e = iqa_last_error();
    check_at(st == IQA_OK && s == want && e && e[0] == '\0', line,
             "handle still scores after %s: status %d, %.17g (want %.17g), last error \"%s\"", after, (int)st, s,
             want, e ? e : "(NULL)");
}
#define STILL_SCORES(m, want, after) still_scores_at(__LINE__, (m), (want), (after))

/* ------------------------------------------------------------------------------------------------ tests */

static void test_versions(void) {
    printf("== versions, last error\n");
    CHECK(iqa_abi_version() == IQA_ABI_VERSION, "iqa_abi_version() %u == IQA_ABI_VERSION %d",
          (unsigned)iqa_abi_version(), IQA_ABI_VERSION);
    const char *v = iqa_version();
    CHECK(v != NULL && strcmp(v, IQA_VERSION_STRING) == 0, "iqa_version() \"%s\" == IQA_VERSION_STRING \"%s\"",
          v ? v : "(NULL)", IQA_VERSION_STRING);
    char expect[64];
    snprintf(expect, sizeof expect, "%d.%d.%d", IQA_VERSION_MAJOR, IQA_VERSION_MINOR, IQA_VERSION_PATCH);
    CHECK(strcmp(expect, IQA_VERSION_STRING) == 0, "IQA_VERSION_MAJOR.MINOR.PATCH == IQA_VERSION_STRING");
    const char *e = iqa_last_error();
    CHECK(e != NULL && e[0] == '\0', "iqa_last_error() is \"\" before any failure");

    /* An error, then a success: the message is cleared. */
    IqaCacheStats cs;
    EXPECT(iqa_cache_stats(NULL), IQA_ERR_INVALID_ARGUMENT, NULL, "iqa_cache_stats(NULL)");
    EXPECT(iqa_cache_stats(&cs), IQA_OK, NULL, "iqa_cache_stats after an error");

    IqaOptions o;
    memset(&o, 0xAB, sizeof o);
    iqa_options_default(&o);
    CHECK(o.struct_size == sizeof(IqaOptions), "options.struct_size %u == sizeof(IqaOptions) %u",
          (unsigned)o.struct_size, (unsigned)sizeof(IqaOptions));
    CHECK(o.device == IQA_DEVICE_AUTO, "options.device default AUTO (%d)", (int)o.device);
    CHECK(o.device_index == 0, "options.device_index default 0 (%d)", (int)o.device_index);
    if (getenv("IQA_PRECISION") == NULL) {
        CHECK(o.precision == IQA_PRECISION_FP32, "options.precision default FP32 (%d)", (int)o.precision);
    }
    iqa_options_default(NULL);
    CHECK(1, "iqa_options_default(NULL) is a no-op");
}

static int g_has_entropy;

static void test_names(void) {
    printf("== metric names\n");
    size_t n = iqa_metric_count();
    CHECK(n >= 5, "iqa_metric_count() %zu >= 5", n);
    int psnr = 0, ssim = 0, ms_ssim = 0, all = 1;
    for (size_t i = 0; i < n; i++) {
        const char *name = iqa_metric_name(i);
        if (name == NULL) {
            all = 0;
            continue;
        }
        psnr |= strcmp(name, "psnr") == 0;
        ssim |= strcmp(name, "ssim") == 0;
        ms_ssim |= strcmp(name, "ms_ssim") == 0;
        g_has_entropy |= strcmp(name, "entropy") == 0;
        for (size_t j = 0; j < i; j++) {
            const char *other = iqa_metric_name(j);
            CHECK(other == NULL || strcmp(other, name) != 0, "metric name %zu \"%s\" is unique", i, name);
        }
    }
    CHECK(all, "iqa_metric_name(i) != NULL for every i < count");
    CHECK(iqa_metric_name(n) == NULL, "iqa_metric_name(count) == NULL");
    CHECK(iqa_metric_name((size_t)-1) == NULL, "iqa_metric_name(SIZE_MAX) == NULL");
    CHECK(psnr && ssim && ms_ssim, "names include psnr (%d), ssim (%d), ms_ssim (%d)", psnr, ssim, ms_ssim);
}

static void test_create(void) {
    printf("== iqa_metric_create\n");
    static char sentinel_storage;
    IqaMetric *const sentinel = (IqaMetric *)(void *)&sentinel_storage;
    IqaMetric *out = sentinel;
    IqaOptions o;

    EXPECT(iqa_metric_create(NULL, NULL, &out), IQA_ERR_INVALID_ARGUMENT, "name", "create(NULL name)");
    CHECK(out == sentinel, "create(NULL name) leaves *out untouched");
    EXPECT(iqa_metric_create("ssim", NULL, NULL), IQA_ERR_INVALID_ARGUMENT, "out", "create(NULL out)");

    EXPECT_EXACT(iqa_metric_create("no_such_metric", NULL, &out), IQA_ERR_UNKNOWN_METRIC, "no_such_metric",
                 "create(\"no_such_metric\")");
    CHECK(out == sentinel, "unknown metric leaves *out untouched");

    iqa_options_default(&o);
    o.struct_size = 0;
    EXPECT(iqa_metric_create("ssim", &o, &out), IQA_ERR_INVALID_ARGUMENT, "struct_size", "options.struct_size 0");
    CHECK(out == sentinel, "struct_size 0 leaves *out untouched");

    iqa_options_default(&o);
    o.device = (IqaDeviceKind)42;
    EXPECT(iqa_metric_create("ssim", &o, &out), IQA_ERR_INVALID_ARGUMENT, "device", "options.device 42");
    CHECK(out == sentinel, "device 42 leaves *out untouched");

    iqa_options_default(&o);
    o.precision = (IqaPrecision)7;
    EXPECT(iqa_metric_create("ssim", &o, &out), IQA_ERR_INVALID_ARGUMENT, "precision", "options.precision 7");
    CHECK(out == sentinel, "precision 7 leaves *out untouched");

    /* Whether CUDA is usable: with IQA_DEVICE unset, AUTO resolves to CUDA exactly when it is. */
    int cuda_usable = -1;
    if (getenv("IQA_DEVICE") == NULL) {
        IqaMetric *m = create("psnr");
        IqaDeviceKind kind = (IqaDeviceKind)-1;
        int32_t index = -1;
        EXPECT(iqa_metric_device(m, &kind, &index), IQA_OK, NULL, "iqa_metric_device(AUTO handle)");
        CHECK(kind == IQA_DEVICE_CPU || kind == IQA_DEVICE_CUDA, "AUTO resolved to CPU or CUDA (%d)", (int)kind);
        CHECK(kind != IQA_DEVICE_CPU || index == 0, "CPU device index is 0 (%d)", (int)index);
        EXPECT(iqa_metric_device(m, NULL, NULL), IQA_OK, NULL, "iqa_metric_device(NULL, NULL outs)");
        EXPECT(iqa_metric_device(NULL, &kind, &index), IQA_ERR_INVALID_ARGUMENT, NULL, "iqa_metric_device(NULL)");
        cuda_usable = kind == IQA_DEVICE_CUDA;
        printf("     (AUTO resolved to %s)\n", cuda_usable ? "CUDA" : "CPU");
        iqa_metric_free(m);
    }
    iqa_options_default(&o);
    o.device = IQA_DEVICE_CUDA;
    if (cuda_usable == 0) {
        out = sentinel;
        EXPECT(iqa_metric_create("ssim", &o, &out), IQA_ERR_DEVICE, "cuda", "device CUDA on a CPU-only machine");
        CHECK(out == sentinel, "device CUDA failure leaves *out untouched");
    } else if (cuda_usable == 1) {
        out = NULL;
        EXPECT(iqa_metric_create("ssim", &o, &out), IQA_OK, NULL, "device CUDA where CUDA is usable");
        iqa_metric_free(out);
    }
    o.device_index = 99;
    out = sentinel;
    EXPECT(iqa_metric_create("ssim", &o, &out), IQA_ERR_DEVICE, "cuda", "device CUDA index 99");
    CHECK(out == sentinel, "device CUDA:99 failure leaves *out untouched");

    /* NULL options = defaults; CPU explicitly works everywhere. */
    out = NULL;
    EXPECT(iqa_metric_create("psnr", NULL, &out), IQA_OK, NULL, "create(psnr, NULL options)");
    CHECK(out != NULL, "create with NULL options gives a handle");
    iqa_metric_free(out);
    iqa_options_default(&o);
    o.device = IQA_DEVICE_CPU;
    out = NULL;
    EXPECT(iqa_metric_create("psnr", &o, &out), IQA_OK, NULL, "create(psnr, device CPU)");
    if (out) {
        IqaDeviceKind kind = (IqaDeviceKind)-1;
        EXPECT(iqa_metric_device(out, &kind, NULL), IQA_OK, NULL, "iqa_metric_device(CPU handle)");
        CHECK(kind == IQA_DEVICE_CPU, "explicit CPU handle runs on CPU (%d)", (int)kind);
    }
    iqa_metric_free(out);

    iqa_metric_free(NULL);
    CHECK(1, "iqa_metric_free(NULL) is a no-op");
}

static void test_info(void) {
    printf("== iqa_metric_info\n");
    IqaMetric *m = create("ssim");
    if (!m) {
        return;
    }
    IqaMetricInfo info;
    memset(&info, 0, sizeof info);
    EXPECT(iqa_metric_info(m, &info), IQA_OK, NULL, "iqa_metric_info(ssim)");
    CHECK(info.name && strcmp(info.name, "ssim") == 0, "info.name \"%s\" == \"ssim\"", info.name ? info.name : "(NULL)");
    CHECK(info.mode == IQA_MODE_FR, "ssim is FR (%d)", (int)info.mode);
    CHECK(!info.lower_better, "ssim: higher is better");
    CHECK(info.score_min == 0.0 && info.score_max == 1.0, "ssim range %g..%g == 0..1", info.score_min,
          info.score_max);

    IqaMetricInfo before, untouched;
    memset(&before, 0x5A, sizeof before);
    memcpy(&untouched, &before, sizeof before);
    EXPECT(iqa_metric_info(NULL, &untouched), IQA_ERR_INVALID_ARGUMENT, NULL, "iqa_metric_info(NULL handle)");
    CHECK(memcmp(&before, &untouched, sizeof before) == 0, "iqa_metric_info(NULL handle) leaves *out untouched");
    EXPECT(iqa_metric_info(m, NULL), IQA_ERR_INVALID_ARGUMENT, NULL, "iqa_metric_info(NULL out)");
    iqa_metric_free(m);

    const char *names[] = {"psnr", "ms_ssim"};
    for (int i = 0; i < 2; i++) {
        m = create(names[i]);
        if (!m) {
            continue;
        }
        EXPECT(iqa_metric_info(m, &info), IQA_OK, NULL, names[i]);
        CHECK(info.name && strcmp(info.name, names[i]) == 0, "info.name \"%s\" == \"%s\"",
              info.name ? info.name : "(NULL)", names[i]);
        CHECK(info.mode == IQA_MODE_FR && !info.lower_better, "%s is FR, higher is better", names[i]);
        iqa_metric_free(m);
    }
}

static void test_calibration(void) {
    printf("== iqa_score_files on the calibration pairs\n");
    IqaMetric *m = create("psnr");
    if (!m) {
        return;
    }
    for (int i = 0; i < 5; i++) {
        double s = SENTINEL;
        EXPECT(iqa_score_files(m, g_dist_paths[i], g_ref_paths[i], &s), IQA_OK, NULL, IMAGES[i]);
        CHECK(rel_err(s, PYIQA_PSNR[i]) <= 1e-4, "psnr %s = %.9f vs pyiqa %.9f (rel %.2e)", IMAGES[i], s,
              PYIQA_PSNR[i], rel_err(s, PYIQA_PSNR[i]));
    }
    iqa_metric_free(m);
    m = create("ssim");
    if (!m) {
        return;
    }
    double s = SENTINEL;
    EXPECT(iqa_score_files(m, g_dist_paths[0], g_ref_paths[0], &s), IQA_OK, NULL, "ssim I03");
    CHECK(rel_err(s, PYIQA_SSIM_I03) <= 1e-4, "ssim I03 = %.9f vs pyiqa %.9f (rel %.2e)", s, PYIQA_SSIM_I03,
          rel_err(s, PYIQA_SSIM_I03));
    iqa_metric_free(m);
}

/* Error paths of iqa_score on one FR metric; `small_ok`: whether 8x8 images are fine for it. */
static void test_score_errors(const char *name, int small_ok) {
    printf("== iqa_score errors: %s\n", name);
    IqaMetric *m = create(name);
    if (!m) {
        return;
    }
    IqaImage d = rgb8(g_dist_px[0], W, H), r = rgb8(g_ref_px[0], W, H);
    double base = SENTINEL, s;
    EXPECT(iqa_score(m, &d, &r, &base), IQA_OK, NULL, "baseline");
    CHECK(base != SENTINEL && base == base, "%s baseline score %.9f", name, base);

    s = SENTINEL;
    EXPECT(iqa_score(NULL, &d, &r, &s), IQA_ERR_INVALID_ARGUMENT, NULL, "iqa_score(NULL handle)");
    CHECK(s == SENTINEL, "NULL handle: *out_score untouched");
    STILL_SCORES(m, base, "NULL handle");

    s = SENTINEL;
    EXPECT(iqa_score(m, NULL, &r, &s), IQA_ERR_INVALID_ARGUMENT, "dist", "iqa_score(NULL dist)");
    CHECK(s == SENTINEL, "NULL dist: *out_score untouched");
    STILL_SCORES(m, base, "NULL dist");

    s = SENTINEL;
    EXPECT(iqa_score(m, &d, NULL, &s), IQA_ERR_INVALID_ARGUMENT, "ref", "iqa_score(NULL ref) on an FR metric");
    CHECK(s == SENTINEL, "NULL ref: *out_score untouched");
    STILL_SCORES(m, base, "NULL ref");

    IqaImage bad = d;
    bad.data = NULL;
    s = SENTINEL;
    EXPECT(iqa_score(m, &bad, &r, &s), IQA_ERR_INVALID_ARGUMENT, "data", "dist.data NULL");
    CHECK(s == SENTINEL, "dist.data NULL: *out_score untouched");
    STILL_SCORES(m, base, "dist.data NULL");
    bad = r;
    bad.data = NULL;
    s = SENTINEL;
    EXPECT(iqa_score(m, &d, &bad, &s), IQA_ERR_INVALID_ARGUMENT, "data", "ref.data NULL");
    CHECK(s == SENTINEL, "ref.data NULL: *out_score untouched");
    STILL_SCORES(m, base, "ref.data NULL");

    EXPECT(iqa_score(m, &d, &r, NULL), IQA_ERR_INVALID_ARGUMENT, "out_score", "iqa_score(NULL out_score)");
    STILL_SCORES(m, base, "NULL out_score");

    IqaImage d0 = d, r0 = r;
    d0.width = r0.width = 0;
    s = SENTINEL;
    EXPECT(iqa_score(m, &d0, &r0, &s), IQA_ERR_INVALID_ARGUMENT, "0x64", "width 0 (0x64)");
    CHECK(s == SENTINEL, "width 0: *out_score untouched");
    STILL_SCORES(m, base, "width 0");
    d0 = d;
    r0 = r;
    d0.height = r0.height = 0;
    s = SENTINEL;
    EXPECT(iqa_score(m, &d0, &r0, &s), IQA_ERR_INVALID_ARGUMENT, "64x0", "height 0 (64x0)");
    CHECK(s == SENTINEL, "height 0: *out_score untouched");
    STILL_SCORES(m, base, "height 0");

    bad = d;
    bad.stride = 10;
    s = SENTINEL;
    EXPECT(iqa_score(m, &bad, &r, &s), IQA_ERR_INVALID_ARGUMENT, "stride", "stride 10 < row of 64 RGB8 pixels");
    CHECK(s == SENTINEL, "short stride: *out_score untouched");
    STILL_SCORES(m, base, "short stride");

    bad = d;
    bad.format = (IqaPixelFormat)99;
    s = SENTINEL;
    EXPECT(iqa_score(m, &bad, &r, &s), IQA_ERR_INVALID_ARGUMENT, "format", "pixel format 99");
    CHECK(s == SENTINEL, "format 99: *out_score untouched");
    STILL_SCORES(m, base, "format 99");

    IqaImage half = rgb8(g_ref_px[0], W, H / 2);
    s = SENTINEL;
    EXPECT(iqa_score(m, &d, &half, &s), IQA_ERR_SHAPE_MISMATCH, "64x32", "dist 64x64 vs ref 64x32");
    CHECK(s == SENTINEL, "size mismatch: *out_score untouched");
    STILL_SCORES(m, base, "size mismatch");

    /* 8x8 crops (through the stride of the 64-wide buffers). */
    IqaImage ds = rgb8(g_dist_px[0], 8, 8), rs = rgb8(g_ref_px[0], 8, 8);
    ds.stride = rs.stride = W * 3;
    s = SENTINEL;
    if (small_ok) {
        EXPECT(iqa_score(m, &ds, &rs, &s), IQA_OK, NULL, "8x8 crop");
        CHECK(s != SENTINEL, "8x8 crop scored (%.6f)", s);
    } else {
        EXPECT_EXACT(iqa_score(m, &ds, &rs, &s), IQA_ERR_SHAPE_MISMATCH, "at least", "8x8 image too small");
        CHECK(s == SENTINEL, "too small: *out_score untouched");
    }
    STILL_SCORES(m, base, "8x8 image");

    /* Float pixels: the same image as float32 scores close to the RGB8 one; NaN, Inf, out of range fail. */
    static float fd[H * W * 3], fr[H * W * 3];
    for (size_t i = 0; i < (size_t)H * W * 3; i++) {
        fd[i] = (float)g_dist_px[0][i] / 255.0f;
        fr[i] = (float)g_ref_px[0][i] / 255.0f;
    }
    IqaImage fdi = d, fri = r;
    fdi.data = fd;
    fri.data = fr;
    fdi.format = fri.format = IQA_FORMAT_RGB_F32;
    s = SENTINEL;
    EXPECT(iqa_score(m, &fdi, &fri, &s), IQA_OK, NULL, "RGB_F32 copy");
    CHECK(rel_err(s, base) <= 1e-4, "RGB_F32 copy scores like RGB8 (%.9f vs %.9f)", s, base);
    const float poison[3] = {NAN, INFINITY, 1.5f};
    const char *poison_name[3] = {"NaN", "Inf", "1.5"};
    for (int k = 0; k < 3; k++) {
        float saved = fd[1000];
        fd[1000] = poison[k];
        s = SENTINEL;
        char what[64];
        snprintf(what, sizeof what, "a %s pixel in an RGB_F32 image", poison_name[k]);
        if (k == 0) {
            EXPECT_EXACT(iqa_score(m, &fdi, &fri, &s), IQA_ERR_INVALID_ARGUMENT, "NaN", what);
        } else {
            EXPECT(iqa_score(m, &fdi, &fri, &s), IQA_ERR_INVALID_ARGUMENT, NULL, what);
        }
        CHECK(s == SENTINEL, "%s: *out_score untouched", what);
        fd[1000] = saved;
        STILL_SCORES(m, base, what);
    }

    /* Other layouts of the same pixels give exactly the same score. */
    static unsigned char bgr_d[H * W * 3], bgr_r[H * W * 3], rgba_d[H * W * 4], rgba_r[H * W * 4];
    static unsigned char pad_d[H * (W * 3 + 5)], pad_r[H * (W * 3 + 5)];
    for (size_t p = 0; p < (size_t)H * W; p++) {
        for (int c = 0; c < 3; c++) {
            bgr_d[p * 3 + (size_t)(2 - c)] = g_dist_px[0][p * 3 + (size_t)c];
            bgr_r[p * 3 + (size_t)(2 - c)] = g_ref_px[0][p * 3 + (size_t)c];
            rgba_d[p * 4 + (size_t)c] = g_dist_px[0][p * 3 + (size_t)c];
            rgba_r[p * 4 + (size_t)c] = g_ref_px[0][p * 3 + (size_t)c];
        }
        rgba_d[p * 4 + 3] = (unsigned char)(p * 7);
        rgba_r[p * 4 + 3] = 255;
    }
    memset(pad_d, 0xEE, sizeof pad_d);
    memset(pad_r, 0x11, sizeof pad_r);
    for (size_t y = 0; y < H; y++) {
        memcpy(pad_d + y * (W * 3 + 5), g_dist_px[0] + y * W * 3, W * 3);
        memcpy(pad_r + y * (W * 3 + 5), g_ref_px[0] + y * W * 3, W * 3);
    }
    IqaImage ld = d, lr = r;
    ld.data = bgr_d;
    lr.data = bgr_r;
    ld.format = lr.format = IQA_FORMAT_BGR8;
    s = SENTINEL;
    EXPECT(iqa_score(m, &ld, &lr, &s), IQA_OK, NULL, "BGR8");
    CHECK(s == base, "BGR8 scores exactly like RGB8 (%.17g vs %.17g)", s, base);
    ld.data = rgba_d;
    lr.data = rgba_r;
    ld.format = lr.format = IQA_FORMAT_RGBA8;
    s = SENTINEL;
    EXPECT(iqa_score(m, &ld, &lr, &s), IQA_OK, NULL, "RGBA8");
    CHECK(s == base, "RGBA8 (alpha ignored) scores exactly like RGB8 (%.17g vs %.17g)", s, base);
    ld = d;
    lr = r;
    ld.data = pad_d;
    lr.data = pad_r;
    ld.stride = lr.stride = W * 3 + 5;
    s = SENTINEL;
    EXPECT(iqa_score(m, &ld, &lr, &s), IQA_OK, NULL, "padded stride");
    CHECK(s == base, "a padded stride scores exactly like tight rows (%.17g vs %.17g)", s, base);
    lr = r;
    lr.stride = W * 3;
    s = SENTINEL;
    EXPECT(iqa_score(m, &d, &lr, &s), IQA_OK, NULL, "explicit tight stride");
    CHECK(s == base, "stride W*3 == stride 0");

    iqa_metric_free(m);
}

/* IQA_FORMAT_RGB_F32_PLANAR: three planes of H rows, `stride` bytes apart (also between planes), as one image of a
 * contiguous N×3×H×W float32 tensor. The same pixels score exactly as RGB8 (both become the same tensor); padded
 * rows, a batch of two planar images of one buffer, and every bad stride/size/value is an error naming it. */
static void test_planar_f32(void) {
    printf("== planar float32\n");
    CHECK(IQA_FORMAT_RGB_F32_PLANAR == 9, "IQA_FORMAT_RGB_F32_PLANAR is 9 (the next free value)");
    IqaMetric *m = create("ssim");
    if (!m) {
        return;
    }
    IqaImage d = rgb8(g_dist_px[0], W, H), r = rgb8(g_ref_px[0], W, H);
    double base = SENTINEL, s = SENTINEL;
    EXPECT(iqa_score(m, &d, &r, &base), IQA_OK, NULL, "RGB8 pair 0");

    /* A 2×3×H×W "tensor" (dist images of pairs 0 and 1) and the reference of pair 0, tight and padded. */
    enum { PAD = 3, PADDED = W + PAD };
    static float batch[2][3][H][W], ref_planes[3][H][W], padded[3][H][PADDED];
    for (int n = 0; n < 2; n++) {
        for (int c = 0; c < 3; c++) {
            for (int y = 0; y < H; y++) {
                for (int x = 0; x < W; x++) {
                    size_t i = ((size_t)y * W + (size_t)x) * 3 + (size_t)c;
                    batch[n][c][y][x] = (float)g_dist_px[n][i] / 255.0f;
                    ref_planes[c][y][x] = (float)g_ref_px[0][i] / 255.0f;
                    padded[c][y][x] = batch[0][c][y][x];
                }
                for (int x = W; x < PADDED; x++) {
                    padded[c][y][x] = NAN; /* padding is never read */
                }
            }
        }
    }
    IqaImage pd = {batch[0], W, H, 0, IQA_FORMAT_RGB_F32_PLANAR};
    IqaImage pr = {ref_planes, W, H, 0, IQA_FORMAT_RGB_F32_PLANAR};
    EXPECT(iqa_score(m, &pd, &pr, &s), IQA_OK, NULL, "RGB_F32_PLANAR pair");
    CHECK(s == base, "planar float32 scores exactly like RGB8 (%.17g vs %.17g)", s, base);
    IqaImage pp = {padded, W, H, PADDED * sizeof(float), IQA_FORMAT_RGB_F32_PLANAR};
    s = SENTINEL;
    EXPECT(iqa_score(m, &pp, &r, &s), IQA_OK, NULL, "padded planar dist, RGB8 ref");
    CHECK(s == base, "padded planar rows score exactly like RGB8 (%.17g vs %.17g)", s, base);

    IqaImage dists[2] = {pd, pd}, refs[2] = {pr, rgb8(g_ref_px[1], W, H)};
    dists[1].data = batch[1];
    double scores[2] = {SENTINEL, SENTINEL}, want1 = SENTINEL;
    IqaImage d1 = rgb8(g_dist_px[1], W, H);
    EXPECT(iqa_score(m, &d1, &refs[1], &want1), IQA_OK, NULL, "RGB8 pair 1");
    EXPECT(iqa_score_batch(m, dists, refs, 2, scores), IQA_OK, NULL, "batch of two planes of one buffer");
    CHECK(scores[0] == base && scores[1] == want1, "batch of planar images: %.17g %.17g (want %.17g %.17g)",
          scores[0], scores[1], base, want1);

    IqaImage bad = pd;
    bad.stride = W * sizeof(float) - 1;
    s = SENTINEL;
    EXPECT(iqa_score(m, &bad, &pr, &s), IQA_ERR_INVALID_ARGUMENT, "stride", "planar stride one byte short of a row");
    CHECK(s == SENTINEL, "short planar stride: *out_score untouched");
    bad = pd;
    bad.stride = SIZE_MAX / 100; /* H rows of it would fit in a size_t, 3*H rows do not */
    s = SENTINEL;
    EXPECT(iqa_score(m, &bad, &pr, &s), IQA_ERR_INVALID_ARGUMENT, "overflow", "planar stride: 3*H rows overflow");
    bad = pd;
    bad.height = 0;
    EXPECT(iqa_score(m, &bad, &pr, &s), IQA_ERR_INVALID_ARGUMENT, "empty", "planar height 0");
    CHECK(s == SENTINEL, "bad planar sizes: *out_score untouched");

    const float poison[3] = {NAN, INFINITY, -0.5f};
    const char *needle[3] = {"NaN", "infinite", "outside [0,1]"};
    for (int k = 0; k < 3; k++) {
        float saved = batch[0][2][5][7];
        batch[0][2][5][7] = poison[k];
        s = SENTINEL;
        char what[96];
        snprintf(what, sizeof what, "a %s value in the B plane at (7, 5)", needle[k]);
        EXPECT_EXACT(iqa_score(m, &pd, &pr, &s), IQA_ERR_INVALID_ARGUMENT, needle[k], what);
        CHECK(strstr(iqa_last_error(), "(7, 5) channel B") != NULL, "%s: message names pixel and channel", what);
        CHECK(s == SENTINEL, "%s: *out_score untouched", what);
        batch[0][2][5][7] = saved;
    }
    STILL_SCORES(m, base, "planar errors");
    iqa_metric_free(m);
}

static void test_ms_ssim_minimum(void) {
    printf("== minimum sizes\n");
    IqaMetric *m = create("ms_ssim");
    if (!m) {
        return;
    }
    IqaImage d = rgb8(g_dist_px[0], W, H), r = rgb8(g_ref_px[0], W, H);
    double s = SENTINEL;
    EXPECT_EXACT(iqa_score(m, &d, &r, &s), IQA_ERR_SHAPE_MISMATCH, "at least", "ms_ssim on 64x64");
    CHECK(s == SENTINEL, "ms_ssim too small: *out_score untouched");
    EXPECT(iqa_score_files(m, g_dist_paths[0], g_ref_paths[0], &s), IQA_OK, NULL, "ms_ssim still scores files");
    iqa_metric_free(m);
}

static void test_nr(void) {
    if (!g_has_entropy) {
        printf("== (no entropy metric listed: NR checks skipped)\n");
        return;
    }
    printf("== NR metric (entropy)\n");
    IqaMetric *m = create("entropy");
    if (!m) {
        return;
    }
    IqaMetricInfo info;
    EXPECT(iqa_metric_info(m, &info), IQA_OK, NULL, "iqa_metric_info(entropy)");
    CHECK(info.mode == IQA_MODE_NR, "entropy is NR (%d)", (int)info.mode);
    IqaImage d = rgb8(g_dist_px[0], W, H), r = rgb8(g_ref_px[0], W, H);
    double s = SENTINEL;
    EXPECT(iqa_score(m, &d, NULL, &s), IQA_OK, NULL, "entropy with ref NULL");
    s = SENTINEL;
    EXPECT(iqa_score(m, &d, &r, &s), IQA_ERR_INVALID_ARGUMENT, "ref", "an NR metric given a ref");
    CHECK(s == SENTINEL, "NR given a ref: *out_score untouched");
    EXPECT(iqa_score_files(m, g_dist_paths[0], g_ref_paths[0], &s), IQA_ERR_INVALID_ARGUMENT, "ref",
           "iqa_score_files: an NR metric given a ref path");
    EXPECT(iqa_score_files(m, g_dist_paths[0], NULL, &s), IQA_OK, NULL, "iqa_score_files NR");
    iqa_metric_free(m);
}

/* The caption entry points on a metric that takes none: every misuse is IQA_ERR_INVALID_ARGUMENT and writes
 * nothing. (clipscore itself needs CLIP's file; tests/zoo.rs scores it against pyiqa.) */
static void test_captions(void) {
    if (!g_has_entropy) {
        printf("== (no entropy metric listed: caption checks skipped)\n");
        return;
    }
    printf("== captions on a metric that takes none (entropy)\n");
    IqaMetric *m = create("entropy");
    if (!m) {
        return;
    }
    bool takes = true;
    EXPECT(iqa_metric_takes_caption(m, &takes), IQA_OK, NULL, "iqa_metric_takes_caption");
    CHECK(!takes, "entropy takes no caption");
    EXPECT(iqa_metric_takes_caption(NULL, &takes), IQA_ERR_INVALID_ARGUMENT, "NULL", "takes_caption(NULL)");
    EXPECT(iqa_metric_takes_caption(m, NULL), IQA_ERR_INVALID_ARGUMENT, "NULL", "takes_caption out NULL");
    IqaImage d = rgb8(g_dist_px[0], W, H);
    double s = SENTINEL;
    EXPECT(iqa_score_captioned(m, &d, "a caption", &s), IQA_ERR_INVALID_ARGUMENT, "takes no caption",
           "iqa_score_captioned on a metric without captions");
    CHECK(s == SENTINEL, "*out_score untouched");
    EXPECT(iqa_score_captioned(m, &d, NULL, &s), IQA_ERR_INVALID_ARGUMENT, "caption", "caption NULL");
    EXPECT(iqa_score_captioned(m, NULL, "a caption", &s), IQA_ERR_INVALID_ARGUMENT, "image", "image NULL");
    EXPECT(iqa_score_captioned(m, &d, "\xff\xfe", &s), IQA_ERR_INVALID_ARGUMENT, "UTF-8", "caption not UTF-8");
    EXPECT(iqa_score_files_captioned(m, g_dist_paths[0], "a caption", &s), IQA_ERR_INVALID_ARGUMENT,
           "takes no caption", "iqa_score_files_captioned on a metric without captions");
    EXPECT(iqa_score_files_captioned(m, NULL, "a caption", &s), IQA_ERR_INVALID_ARGUMENT, "path", "path NULL");
    IqaImage two[2] = {d, d};
    const char *captions[2] = {"one", NULL};
    double out[2] = {SENTINEL, SENTINEL};
    EXPECT(iqa_score_batch_captioned(m, two, captions, 2, out), IQA_ERR_INVALID_ARGUMENT, "captions[1]",
           "a NULL caption in the batch");
    EXPECT(iqa_score_batch_captioned(m, two, NULL, 2, out), IQA_ERR_INVALID_ARGUMENT, "captions",
           "captions NULL");
    EXPECT(iqa_score_batch_captioned(m, two, captions, 0, out), IQA_ERR_INVALID_ARGUMENT, "count", "count 0");
    CHECK(out[0] == SENTINEL && out[1] == SENTINEL, "no score written");
    EXPECT(iqa_score(m, &d, NULL, &s), IQA_OK, NULL, "entropy still scores after the caption misuse");
    iqa_metric_free(m);
}

static int write_file(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        return 0;
    }
    size_t w = fwrite(bytes, 1, n, f);
    return fclose(f) == 0 && w == n;
}

static void test_files(void) {
    printf("== iqa_score_files errors\n");
    IqaMetric *m = create("ssim");
    if (!m) {
        return;
    }
    IqaImage d = rgb8(g_dist_px[0], W, H), r = rgb8(g_ref_px[0], W, H);
    double base = SENTINEL, s;
    EXPECT(iqa_score(m, &d, &r, &base), IQA_OK, NULL, "baseline");

    char missing[4200];
    snprintf(missing, sizeof missing, "%s/dist/does_not_exist.png", g_calib);
    s = SENTINEL;
    EXPECT_EXACT(iqa_score_files(m, missing, g_ref_paths[0], &s), IQA_ERR_IO, missing, "missing dist file");
    CHECK(s == SENTINEL, "missing file: *out_score untouched");
    STILL_SCORES(m, base, "missing file");
    char missing_ref[4200];
    snprintf(missing_ref, sizeof missing_ref, "%s/ref/does_not_exist.bmp", g_calib);
    s = SENTINEL;
    EXPECT_EXACT(iqa_score_files(m, g_dist_paths[0], missing_ref, &s), IQA_ERR_IO, missing_ref, "missing ref file");
    CHECK(s == SENTINEL, "missing ref file: *out_score untouched");

    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/iqa_contract_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        CHECK(0, "mkdtemp(%s)", dir);
        iqa_metric_free(m);
        return;
    }
    char corrupt[4200], truncated[4200];
    snprintf(corrupt, sizeof corrupt, "%s/x.png", dir);
    snprintf(truncated, sizeof truncated, "%s/truncated.bmp", dir);
    const char garbage[] = "this is not a PNG file at all \x01\x02\x03\xff\xfe garbage garbage garbage";
    CHECK(write_file(corrupt, garbage, sizeof garbage), "write %s", corrupt);

    static unsigned char head[1000];
    size_t got = 0;
    FILE *f = fopen(g_ref_paths[0], "rb");
    if (f) {
        got = fread(head, 1, sizeof head, f);
        fclose(f);
    }
    CHECK(got == sizeof head && write_file(truncated, head, got), "write the first 1000 bytes of %s",
          g_ref_paths[0]);

    s = SENTINEL;
    EXPECT_EXACT(iqa_score_files(m, corrupt, g_ref_paths[0], &s), IQA_ERR_DECODE, corrupt, "corrupt x.png");
    CHECK(s == SENTINEL, "corrupt file: *out_score untouched");
    STILL_SCORES(m, base, "corrupt file");
    s = SENTINEL;
    EXPECT_EXACT(iqa_score_files(m, g_dist_paths[0], truncated, &s), IQA_ERR_DECODE, truncated,
                 "truncated BMP (1000 bytes)");
    CHECK(s == SENTINEL, "truncated file: *out_score untouched");
    STILL_SCORES(m, base, "truncated file");

    s = SENTINEL;
    EXPECT(iqa_score_files(m, NULL, g_ref_paths[0], &s), IQA_ERR_INVALID_ARGUMENT, "dist", "NULL dist_path");
    CHECK(s == SENTINEL, "NULL dist_path: *out_score untouched");
    s = SENTINEL;
    EXPECT(iqa_score_files(m, g_dist_paths[0], NULL, &s), IQA_ERR_INVALID_ARGUMENT, "ref",
           "NULL ref_path on an FR metric");
    CHECK(s == SENTINEL, "NULL ref_path: *out_score untouched");
    EXPECT(iqa_score_files(m, g_dist_paths[0], g_ref_paths[0], NULL), IQA_ERR_INVALID_ARGUMENT, "out_score",
           "iqa_score_files(NULL out_score)");
    s = SENTINEL;
    EXPECT(iqa_score_files(NULL, g_dist_paths[0], g_ref_paths[0], &s), IQA_ERR_INVALID_ARGUMENT, NULL,
           "iqa_score_files(NULL handle)");
    CHECK(s == SENTINEL, "NULL handle: *out_score untouched");
    s = SENTINEL;
    EXPECT(iqa_score_files(m, g_dist_paths[0], g_ref_paths[0], &s), IQA_OK, NULL, "files still score after errors");
    CHECK(rel_err(s, PYIQA_SSIM_I03) <= 1e-4, "ssim I03 after file errors = %.9f", s);
    STILL_SCORES(m, base, "file errors");

    unlink(corrupt);
    unlink(truncated);
    CHECK(rmdir(dir) == 0, "remove %s", dir);
    iqa_metric_free(m);
}

static void test_batch(void) {
    printf("== iqa_score_batch\n");
    IqaMetric *m = create("ssim");
    if (!m) {
        return;
    }
    IqaImage ds[3], rs[3];
    double single[3], out[3];
    for (int i = 0; i < 3; i++) {
        ds[i] = rgb8(g_dist_px[i], W, H);
        rs[i] = rgb8(g_ref_px[i], W, H);
        single[i] = SENTINEL;
        EXPECT(iqa_score(m, &ds[i], &rs[i], &single[i]), IQA_OK, NULL, "single score");
    }
    CHECK(single[0] != single[1] && single[1] != single[2], "the three pairs score differently (%.6f %.6f %.6f)",
          single[0], single[1], single[2]);

    for (int i = 0; i < 3; i++) {
        out[i] = SENTINEL;
    }
    EXPECT(iqa_score_batch(m, ds, rs, 3, out), IQA_OK, NULL, "batch of 3");
    for (int i = 0; i < 3; i++) {
        CHECK(out[i] == single[i], "batch[%d] %.17g == single %.17g", i, out[i], single[i]);
    }

    /* Mixed sizes: the middle pair is a 64x40 crop. */
    IqaImage md[3] = {ds[0], rgb8(g_dist_px[1], W, 40), ds[2]};
    IqaImage mr[3] = {rs[0], rgb8(g_ref_px[1], W, 40), rs[2]};
    double crop = SENTINEL;
    EXPECT(iqa_score(m, &md[1], &mr[1], &crop), IQA_OK, NULL, "64x40 crop single");
    for (int i = 0; i < 3; i++) {
        out[i] = SENTINEL;
    }
    EXPECT(iqa_score_batch(m, md, mr, 3, out), IQA_OK, NULL, "mixed-size batch");
    CHECK(out[0] == single[0] && out[1] == crop && out[2] == single[2],
          "mixed-size batch equals single scores (%.17g %.17g %.17g)", out[0], out[1], out[2]);

    double one = SENTINEL;
    EXPECT(iqa_score_batch(m, ds, rs, 1, &one), IQA_OK, NULL, "batch of 1");
    CHECK(one == single[0], "batch of 1 equals single");

    for (int i = 0; i < 3; i++) {
        out[i] = SENTINEL;
    }
    EXPECT(iqa_score_batch(m, ds, rs, 0, out), IQA_ERR_INVALID_ARGUMENT, "count", "batch count 0");
    CHECK(out[0] == SENTINEL, "count 0: nothing written");
    EXPECT(iqa_score_batch(m, ds, rs, 3, NULL), IQA_ERR_INVALID_ARGUMENT, "out_scores", "batch NULL out_scores");
    EXPECT(iqa_score_batch(m, NULL, rs, 3, out), IQA_ERR_INVALID_ARGUMENT, "dists", "batch NULL dists");
    EXPECT(iqa_score_batch(m, ds, NULL, 3, out), IQA_ERR_INVALID_ARGUMENT, "ref", "batch NULL refs on FR");
    EXPECT(iqa_score_batch(NULL, ds, rs, 3, out), IQA_ERR_INVALID_ARGUMENT, NULL, "batch NULL handle");
    CHECK(out[0] == SENTINEL && out[1] == SENTINEL && out[2] == SENTINEL, "failed batches write no score");

    /* One bad element: no score at all is written. */
    IqaImage bd[3] = {ds[0], ds[1], ds[2]};
    IqaImage br[3] = {rs[0], rs[1], rgb8(g_ref_px[2], W, H / 2)};
    EXPECT(iqa_score_batch(m, bd, br, 3, out), IQA_ERR_SHAPE_MISMATCH, NULL, "batch with a mismatched pair 2");
    CHECK(out[0] == SENTINEL && out[1] == SENTINEL && out[2] == SENTINEL,
          "a batch failing on its last element writes no score");
    bd[1].format = (IqaPixelFormat)99;
    br[2] = rs[2];
    EXPECT(iqa_score_batch(m, bd, br, 3, out), IQA_ERR_INVALID_ARGUMENT, "format", "batch with a bad format");
    CHECK(out[0] == SENTINEL && out[1] == SENTINEL && out[2] == SENTINEL, "bad-format batch writes no score");

    for (int i = 0; i < 3; i++) {
        out[i] = SENTINEL;
    }
    EXPECT(iqa_score_batch(m, ds, rs, 3, out), IQA_OK, NULL, "batch after errors");
    CHECK(out[0] == single[0] && out[1] == single[1] && out[2] == single[2], "batch after errors unchanged");
    iqa_metric_free(m);
}

static void test_cache(void) {
    printf("== model cache\n");
    IqaCacheStats before, mid, after;
    EXPECT(iqa_cache_stats(&before), IQA_OK, NULL, "iqa_cache_stats before");
    IqaMetric *a = create("ssim");
    IqaMetric *b = create("ssim");
    EXPECT(iqa_cache_stats(&mid), IQA_OK, NULL, "iqa_cache_stats with two ssim handles");
    CHECK(a != b, "two creates give two handles");
    CHECK(mid.models_alive == before.models_alive + 1, "models_alive %zu -> %zu (+1: one shared model)",
          before.models_alive, mid.models_alive);
    CHECK(mid.handles_alive == before.handles_alive + 2, "handles_alive %zu -> %zu (+2)", before.handles_alive,
          mid.handles_alive);
    if (a && b) {
        IqaImage d = rgb8(g_dist_px[0], W, H), r = rgb8(g_ref_px[0], W, H);
        double sa = SENTINEL, sb = SENTINEL;
        EXPECT(iqa_score(a, &d, &r, &sa), IQA_OK, NULL, "score with handle a");
        EXPECT(iqa_score(b, &d, &r, &sb), IQA_OK, NULL, "score with handle b");
        CHECK(sa == sb, "both handles give the same score");
    }
    iqa_metric_free(a);
    EXPECT(iqa_cache_stats(&mid), IQA_OK, NULL, "iqa_cache_stats with one handle freed");
    CHECK(mid.models_alive == before.models_alive + 1 && mid.handles_alive == before.handles_alive + 1,
          "one handle freed: model still alive (%zu models, %zu handles)", mid.models_alive, mid.handles_alive);
    iqa_metric_free(b);
    EXPECT(iqa_cache_stats(&after), IQA_OK, NULL, "iqa_cache_stats after freeing both");
    if (getenv("IQA_CACHE_SIZE") == NULL) {
        CHECK(after.models_alive == before.models_alive, "models_alive back to %zu (%zu)", before.models_alive,
              after.models_alive);
    }
    CHECK(after.handles_alive == before.handles_alive, "handles_alive back to %zu (%zu)", before.handles_alive,
          after.handles_alive);
}

/* ------------------------------------------------------------------------------------------------ threads */

#define THREADS 8
#define ITERATIONS 4

struct worker {
    IqaMetric *metric;
    const double *expected;
    int fresh_error_empty; /* iqa_last_error() was "" in the new thread although the main thread had failed */
    int errors, mismatches, runs;
    IqaStatus first_status;
    double first_bad;
};

static void *worker_main(void *arg) {
    struct worker *w = arg;
    const char *e = iqa_last_error();
    w->fresh_error_empty = e != NULL && e[0] == '\0';
    for (int it = 0; it < ITERATIONS; it++) {
        for (int k = 0; k < 5; k++) {
            int i = (k + it) % 5;
            double s = SENTINEL;
            IqaStatus st = iqa_score_files(w->metric, g_dist_paths[i], g_ref_paths[i], &s);
            w->runs++;
            if (st != IQA_OK) {
                if (w->errors++ == 0) {
                    w->first_status = st;
                }
            } else if (s != w->expected[i]) {
                if (w->mismatches++ == 0) {
                    w->first_bad = s;
                }
            }
        }
    }
    return NULL;
}

static void test_threads(void) {
    printf("== %d threads scoring with one handle\n", THREADS);
    IqaMetric *m = create("ssim");
    if (!m) {
        return;
    }
    double expected[5];
    for (int i = 0; i < 5; i++) {
        expected[i] = SENTINEL;
        EXPECT(iqa_score_files(m, g_dist_paths[i], g_ref_paths[i], &expected[i]), IQA_OK, NULL, IMAGES[i]);
    }
    /* Leave an error on the main thread: it must not show in the workers. */
    EXPECT(iqa_score(m, NULL, NULL, NULL), IQA_ERR_INVALID_ARGUMENT, NULL, "error before the threads start");

    pthread_t tid[THREADS];
    struct worker w[THREADS];
    int started[THREADS];
    for (int t = 0; t < THREADS; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t].metric = m;
        w[t].expected = expected;
        started[t] = pthread_create(&tid[t], NULL, worker_main, &w[t]) == 0;
        CHECK(started[t], "start thread %d", t);
    }
    const char *e = iqa_last_error();
    CHECK(e && e[0] != '\0', "the main thread's error is still there while workers run");
    for (int t = 0; t < THREADS; t++) {
        if (!started[t]) {
            continue;
        }
        pthread_join(tid[t], NULL);
        CHECK(w[t].fresh_error_empty, "thread %d: iqa_last_error() starts as \"\" (thread-local)", t);
        CHECK(w[t].runs == ITERATIONS * 5 && w[t].errors == 0 && w[t].mismatches == 0,
              "thread %d: %d scores, %d errors (first status %d), %d differing from single-threaded (first %.17g)",
              t, w[t].runs, w[t].errors, (int)w[t].first_status, w[t].mismatches, w[t].first_bad);
    }
    iqa_metric_free(m);
}

/* ------------------------------------------------------------------------------------------------ status */

static IqaMetricStatus status_sentinel(void) {
    IqaMetricStatus st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof(IqaMetricStatus);
    st.text_len = 777;
    return st;
}

static void test_status(void) {
    IqaMetricStatus st = status_sentinel();
    char text[64];
    EXPECT(iqa_metric_status("psnr", &st, text, sizeof text), IQA_OK, NULL, "status psnr");
    CHECK(st.availability == IQA_AVAILABILITY_READY, "psnr is ready (%d)", (int)st.availability);
    CHECK(st.mode == IQA_MODE_FR && !st.lower_better, "psnr is FR, higher better");
    CHECK(st.score_min == 0.0 && st.score_max == 40.0, "psnr range [%g, %g]", st.score_min, st.score_max);
    CHECK(strcmp(text, "needs no pretrained file") == 0, "psnr text \"%s\"", text);
    CHECK(st.text_len == strlen("needs no pretrained file") + 1, "psnr text_len %zu", st.text_len);
    CHECK(st.struct_size == sizeof(IqaMetricStatus), "struct_size %u", st.struct_size);

    /* Sizing call, then a cut: NUL-terminated within text_size, text_len still the whole size. */
    st = status_sentinel();
    EXPECT(iqa_metric_status("niqe", &st, NULL, 0), IQA_OK, NULL, "status niqe, sizing call");
    CHECK(st.availability == IQA_AVAILABILITY_READY, "niqe is ready (built in) (%d)", (int)st.availability);
    CHECK(st.mode == IQA_MODE_NR && st.lower_better, "niqe is NR, lower better");
    size_t whole = st.text_len;
    CHECK(whole > 26, "niqe text_len %zu", whole);
    memset(text, 'x', sizeof text);
    EXPECT(iqa_metric_status("niqe", &st, text, 5), IQA_OK, NULL, "status niqe, 5-byte buffer");
    CHECK(memcmp(text, "niqe\0", 5) == 0 && text[5] == 'x', "cut to \"niqe\" and nothing past the buffer");
    CHECK(st.text_len == whole, "text_len %zu is the whole size %zu", st.text_len, whole);
    EXPECT(iqa_metric_status("niqe", &st, text, sizeof text), IQA_OK, NULL, "status niqe");
    CHECK(strncmp(text, "niqe_modelparameters.mat: ", 26) == 0, "niqe text \"%s\"", text);

    /* Errors: *out and the text untouched. */
    struct {
        const char *name;
        IqaMetricStatus *out;
        char *text;
        size_t size;
        uint32_t struct_size;
        IqaStatus want;
        const char *needle;
    } cases[] = {
        {NULL, &st, text, sizeof text, sizeof(IqaMetricStatus), IQA_ERR_INVALID_ARGUMENT, "name is NULL"},
        {"psnr", NULL, text, sizeof text, sizeof(IqaMetricStatus), IQA_ERR_INVALID_ARGUMENT, "out is NULL"},
        {"psnr", &st, NULL, 8, sizeof(IqaMetricStatus), IQA_ERR_INVALID_ARGUMENT, "text is NULL"},
        {"psnr", &st, text, sizeof text, 4, IQA_ERR_INVALID_ARGUMENT, "struct_size"},
        {"uranker", &st, text, sizeof text, sizeof(IqaMetricStatus), IQA_ERR_UNKNOWN_METRIC, "not built into iqa"},
        {"no_such_metric", &st, text, sizeof text, sizeof(IqaMetricStatus), IQA_ERR_UNKNOWN_METRIC, "unknown"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st = status_sentinel();
        st.struct_size = cases[i].struct_size;
        memset(text, 'x', sizeof text);
        EXPECT(iqa_metric_status(cases[i].name, cases[i].out, cases[i].text, cases[i].size), cases[i].want,
               cases[i].needle, "status error case");
        CHECK(st.text_len == 777 && text[0] == 'x' && text[sizeof text - 1] == 'x',
              "error case %zu leaves *out and the text untouched", i);
    }
}

/* ------------------------------------------------------------------------------------------------ main */

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s CALIBRATION_DIR\n", argv[0]);
        return 2;
    }
    g_calib = argv[1];
    for (int i = 0; i < 5; i++) {
        snprintf(g_dist_paths[i], sizeof g_dist_paths[i], "%s/dist/%s", g_calib, IMAGES[i]);
        snprintf(g_ref_paths[i], sizeof g_ref_paths[i], "%s/ref/%s", g_calib, IMAGES[i]);
    }
    make_buffers();
    setvbuf(stdout, NULL, _IOLBF, 0);

    test_versions();
    test_names();
    test_cache(); /* first, while no ssim model is alive */
    test_create();
    test_info();
    test_calibration();
    test_score_errors("ssim", 0);
    test_score_errors("psnr", 1);
    test_planar_f32();
    test_ms_ssim_minimum();
    test_nr();
    test_captions();
    test_files();
    test_batch();
    test_threads();
    test_status();

    IqaCacheStats end;
    EXPECT(iqa_cache_stats(&end), IQA_OK, NULL, "iqa_cache_stats at the end");
    CHECK(end.handles_alive == 0, "no handle left alive (%zu): nothing leaked", end.handles_alive);

    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
