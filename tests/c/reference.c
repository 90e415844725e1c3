/* reference: checks libiqa's prepared references (iqa_reference_create, iqa_score_with_reference,
 * iqa_score_batch_with_reference, iqa_reference_free) using only the header: scores against a prepared
 * reference equal iqa_score's on each pair to the bit, and every misuse is refused with a clear status.
 * Needs IQA_WEIGHTS_DIR (for lpips).
 *
 *   reference
 *
 * Prints one line per check and, last, "N passed, M failed"; exits 0 only when M == 0.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iqa.h"

#include "check.h"

static void expect_at(int line, IqaStatus got, IqaStatus want, const char *needle, const char *what) {
    const char *e = iqa_last_error();
    check_at(got == want, line, "%s: status %d (want %d), last error \"%s\"", what, (int)got, (int)want, e);
    if (want != IQA_OK && needle) {
        check_at(strstr(e, needle) != NULL, line, "%s: message mentions \"%s\" (\"%s\")", what, needle, e);
    }
}

#define EXPECT(got, want, needle, what) expect_at(__LINE__, (got), (want), (needle), (what))

enum { W = 96, H = 80, DISTS = 4 };

static const double SENTINEL = -12345.0;

/* A textured RGB8 image; `level` adds a deterministic distortion (0: the reference). */
static unsigned char *image(int level) {
    unsigned char *p = malloc((size_t)W * H * 3);
    uint32_t s = 2463534242u + (uint32_t)level;
    for (int i = 0; i < W * H * 3; i++) {
        int x = (i / 3) % W, y = (i / 3) / W, c = i % 3;
        double v = 128 + 60 * sin(x / 7.0 + c) * cos(y / 5.0) + ((x / 8 + y / 8) % 2 ? 30 : -30);
        s ^= s << 13, s ^= s >> 17, s ^= s << 5;
        v += level * ((int)(s % 21) - 10);
        p[i] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    return p;
}

static IqaImage view(const unsigned char *p, uint32_t w, uint32_t h) {
    IqaImage img = {p, w, h, 0, IQA_FORMAT_RGB8};
    return img;
}

/* Every distorted image against the prepared reference, one by one and as a batch: bit-equal to iqa_score. */
static void check_metric(const char *name, unsigned char *ref, unsigned char **dists) {
    IqaMetric *m = NULL;
    EXPECT(iqa_metric_create(name, NULL, &m), IQA_OK, NULL, name);
    if (!m) return;
    IqaImage r = view(ref, W, H);
    IqaReference *prepared = NULL;
    EXPECT(iqa_reference_create(m, &r, &prepared), IQA_OK, NULL, "iqa_reference_create");
    IqaImage d[DISTS];
    double alone[DISTS], batch[DISTS];
    for (int i = 0; i < DISTS; i++) {
        d[i] = view(dists[i], W, H);
        EXPECT(iqa_score(m, &d[i], &r, &alone[i]), IQA_OK, NULL, "iqa_score");
    }
    /* The caller's reference buffer may change once prepared: the reference holds a copy. */
    memset(ref, 0, (size_t)W * H * 3);
    for (int i = 0; i < DISTS; i++) {
        double got = SENTINEL;
        EXPECT(iqa_score_with_reference(m, prepared, &d[i], &got), IQA_OK, NULL, "iqa_score_with_reference");
        CHECK(memcmp(&got, &alone[i], sizeof got) == 0, "%s image %d: prepared %.17g == the pair alone %.17g", name, i,
              got, alone[i]);
    }
    EXPECT(iqa_score_batch_with_reference(m, prepared, d, DISTS, batch), IQA_OK, NULL, "batch");
    CHECK(memcmp(batch, alone, sizeof batch) == 0, "%s: the batch against the reference equals the pairs", name);
    CHECK(alone[0] != alone[DISTS - 1], "%s: the distortions score differently (%g, %g)", name, alone[0],
          alone[DISTS - 1]);
    iqa_reference_free(prepared);
    iqa_metric_free(m);
}

int main(void) {
    unsigned char *dists[DISTS];
    for (int i = 0; i < DISTS; i++) dists[i] = image(i + 1);
    const char *metrics[] = {"psnr", "ssim", "lpips"};
    for (int k = 0; k < 3; k++) {
        unsigned char *ref = image(0);
        check_metric(metrics[k], ref, dists);
        free(ref);
    }

    /* Misuse: each refused with its status, outputs untouched, the handles still usable. */
    unsigned char *ref = image(0);
    IqaImage r = view(ref, W, H), d = view(dists[0], W, H), small = view(dists[0], W / 2, H / 2);
    IqaMetric *psnr = NULL, *ssim = NULL, *niqe = NULL;
    iqa_metric_create("psnr", NULL, &psnr);
    iqa_metric_create("ssim", NULL, &ssim);
    iqa_metric_create("niqe", NULL, &niqe);
    IqaReference *prepared = NULL, *untouched = (IqaReference *)&r;
    EXPECT(iqa_reference_create(NULL, &r, &prepared), IQA_ERR_INVALID_ARGUMENT, "metric handle is NULL", "NULL metric");
    EXPECT(iqa_reference_create(psnr, NULL, &prepared), IQA_ERR_INVALID_ARGUMENT, "ref is NULL", "NULL image");
    EXPECT(iqa_reference_create(psnr, &r, NULL), IQA_ERR_INVALID_ARGUMENT, "out_reference is NULL", "NULL out");
    IqaReference *kept = untouched;
    EXPECT(iqa_reference_create(niqe, &r, &kept), IQA_ERR_INVALID_ARGUMENT, "no-reference", "an NR metric");
    CHECK(kept == untouched, "out_reference untouched on error");
    EXPECT(iqa_reference_create(psnr, &r, &prepared), IQA_OK, NULL, "create");

    double score = SENTINEL, scores[2] = {SENTINEL, SENTINEL};
    EXPECT(iqa_score_with_reference(ssim, prepared, &d, &score), IQA_ERR_INVALID_ARGUMENT, "prepared by 'psnr'",
           "another metric's reference");
    EXPECT(iqa_score_with_reference(psnr, NULL, &d, &score), IQA_ERR_INVALID_ARGUMENT, "reference is NULL",
           "NULL reference");
    EXPECT(iqa_score_with_reference(psnr, prepared, &small, &score), IQA_ERR_SHAPE_MISMATCH, "differ in size",
           "a smaller image");
    EXPECT(iqa_score_with_reference(psnr, prepared, NULL, &score), IQA_ERR_INVALID_ARGUMENT, "dist is NULL",
           "NULL image");
    EXPECT(iqa_score_with_reference(psnr, prepared, &d, NULL), IQA_ERR_INVALID_ARGUMENT, "out_score is NULL",
           "NULL out");
    CHECK(score == SENTINEL, "out_score untouched on errors");
    IqaImage two[2] = {d, small};
    EXPECT(iqa_score_batch_with_reference(psnr, prepared, two, 2, scores), IQA_ERR_SHAPE_MISMATCH, "image 1",
           "a batch with one bad image");
    CHECK(scores[0] == SENTINEL && scores[1] == SENTINEL, "no score written when the batch fails");
    EXPECT(iqa_score_batch_with_reference(psnr, prepared, two, 0, scores), IQA_ERR_INVALID_ARGUMENT, "count is 0",
           "count 0");
    EXPECT(iqa_score_with_reference(psnr, prepared, &d, &score), IQA_OK, NULL, "still usable after errors");
    CHECK(score > 0 && score < 80, "psnr against the prepared reference: %g", score);

    iqa_reference_free(prepared);
    iqa_reference_free(NULL);
    iqa_metric_free(psnr);
    iqa_metric_free(ssim);
    iqa_metric_free(niqe);
    free(ref);
    for (int i = 0; i < DISTS; i++) free(dists[i]);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
