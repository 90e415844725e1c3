/* torchscript: checks iqa_metric_create_torchscript and the discovery of NAME.pt + NAME.json against the C API
 * contract, using only include/iqa.h.
 *
 *   torchscript FIXTURE_DIR     (tests/python/make_torchscript_fixtures.py's output; IQA_WEIGHTS_DIR must
 *                                point at the same directory)
 *
 * Prints one line per check and, last, "N passed, M failed"; exits 0 only when M == 0.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iqa.h"

#include "check.h"

static char g_path[4096];
static const char *module_path(const char *dir, const char *file) {
    snprintf(g_path, sizeof g_path, "%s/%s", dir, file);
    return g_path;
}

/* Creation fails with `want`, leaves *out untouched and names `needle` in the message. */
static void expect_create_error(const char *what, IqaStatus got, IqaMetric *out, IqaStatus want, const char *needle) {
    const char *msg = iqa_last_error();
    CHECK(got == want, "%s: status %d (want %d): %s", what, (int)got, (int)want, msg);
    CHECK(out == (IqaMetric *)0x1, "%s: *out untouched", what);
    CHECK(strstr(msg, needle) != NULL, "%s: message names \"%s\": %s", what, needle, msg);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];

    /* A 4x2 RGB8 image whose mean is known exactly, and a reference differing by 51 levels everywhere. */
    unsigned char dist_px[4 * 2 * 3], ref_px[4 * 2 * 3];
    double sum = 0;
    for (int i = 0; i < 4 * 2 * 3; i++) {
        dist_px[i] = (unsigned char)(i * 8);
        ref_px[i] = (unsigned char)(i * 8 + 51);
        sum += dist_px[i];
    }
    const double mean = sum / (4 * 2 * 3) / 255.0;
    IqaImage dist = {dist_px, 4, 2, 0, IQA_FORMAT_RGB8};
    IqaImage ref = {ref_px, 4, 2, 0, IQA_FORMAT_RGB8};

    /* Discovery: modules with a sidecar are listed after the built-in metrics. */
    size_t count = iqa_metric_count();
    int found_brightness = 0, found_orphan = 0;
    for (size_t i = 0; i < count; i++) {
        const char *name = iqa_metric_name(i);
        found_brightness |= strcmp(name, "brightness") == 0;
        found_orphan |= strcmp(name, "orphan") == 0;
    }
    CHECK(found_brightness, "brightness (NAME.pt + NAME.json) is listed among %zu metrics", count);
    CHECK(!found_orphan, "orphan.pt (no sidecar) is not listed");

    /* Created by name like a built-in metric; info from the sidecar. */
    IqaMetric *m = NULL;
    IqaStatus st = iqa_metric_create("brightness", NULL, &m);
    CHECK(st == IQA_OK && m != NULL, "create brightness by name: %d %s", (int)st, iqa_last_error());
    if (m) {
        IqaMetricInfo info;
        CHECK(iqa_metric_info(m, &info) == IQA_OK, "info");
        CHECK(strcmp(info.name, "brightness") == 0 && info.mode == IQA_MODE_NR && !info.lower_better &&
                  info.score_min == 0.0 && info.score_max == 1.0,
              "info from the sidecar: %s mode %d lower_better %d range %g..%g", info.name, (int)info.mode,
              (int)info.lower_better, info.score_min, info.score_max);
        double score = -1;
        st = iqa_score(m, &dist, NULL, &score);
        CHECK(st == IQA_OK && fabs(score - mean) < 1e-6, "brightness score %.9f (want %.9f)", score, mean);
        double untouched = 42;
        st = iqa_score(m, &dist, &ref, &untouched);
        CHECK(st == IQA_ERR_INVALID_ARGUMENT && untouched == 42, "NR module given a reference: %d", (int)st);
        iqa_metric_free(m);
    }

    /* Created by path with a spec: the spec's name and range are what info reports. */
    IqaTorchScriptSpec spec = {sizeof(IqaTorchScriptSpec), "my-absdiff", IQA_MODE_FR, true, 0.0, 1.0};
    m = NULL;
    st = iqa_metric_create_torchscript(module_path(dir, "absdiff.pt"), &spec, NULL, &m);
    CHECK(st == IQA_OK && m != NULL, "create absdiff by path: %d %s", (int)st, iqa_last_error());
    if (m) {
        IqaMetricInfo info;
        iqa_metric_info(m, &info);
        CHECK(strcmp(info.name, "my-absdiff") == 0 && info.mode == IQA_MODE_FR && info.lower_better,
              "info from the spec: %s", info.name);
        double scores[2] = {-1, -1};
        IqaImage dists[2] = {dist, ref}, refs[2] = {ref, ref};
        st = iqa_score_batch(m, dists, refs, 2, scores);
        CHECK(st == IQA_OK && fabs(scores[0] - 51.0 / 255.0) < 1e-6 && fabs(scores[1]) < 1e-7,
              "absdiff batch [N,1] output: %.9f %.9f", scores[0], scores[1]);
        iqa_metric_free(m);
    }

    /* NULL spec: the sidecar next to the file. */
    m = NULL;
    st = iqa_metric_create_torchscript(module_path(dir, "brightness.pt"), NULL, NULL, &m);
    CHECK(st == IQA_OK && m != NULL, "NULL spec reads brightness.json: %d %s", (int)st, iqa_last_error());
    iqa_metric_free(m);

    /* Errors, each at creation, with *out untouched. */
    IqaMetric *out = (IqaMetric *)0x1;
    st = iqa_metric_create_torchscript(NULL, &spec, NULL, &out);
    expect_create_error("NULL path", st, out, IQA_ERR_INVALID_ARGUMENT, "path");
    st = iqa_metric_create_torchscript(module_path(dir, "absdiff.pt"), &spec, NULL, NULL);
    CHECK(st == IQA_ERR_INVALID_ARGUMENT, "NULL out: %d", (int)st);
    st = iqa_metric_create_torchscript(module_path(dir, "missing.pt"), &spec, NULL, &out);
    expect_create_error("missing file", st, out, IQA_ERR_IO, "missing.pt");
    st = iqa_metric_create_torchscript(module_path(dir, "orphan.pt"), NULL, NULL, &out);
    expect_create_error("NULL spec, no sidecar", st, out, IQA_ERR_IO, "orphan.json");
    st = iqa_metric_create_torchscript(module_path(dir, "not_a_module.pt"), &spec, NULL, &out);
    expect_create_error("not a TorchScript archive", st, out, IQA_ERR_WEIGHTS, "not a loadable TorchScript");
    IqaTorchScriptSpec nr = spec;
    nr.mode = IQA_MODE_NR;
    st = iqa_metric_create_torchscript(module_path(dir, "two_arg_nr.pt"), &nr, NULL, &out);
    expect_create_error("NR spec, forward(x, y)", st, out, IQA_ERR_WEIGHTS, "forward(dist) for an NR metric");
    st = iqa_metric_create_torchscript(module_path(dir, "brightness.pt"), &spec, NULL, &out);
    expect_create_error("FR spec, forward(x)", st, out, IQA_ERR_WEIGHTS, "forward(dist, ref) for an FR metric");
    st = iqa_metric_create("one_arg_fr", NULL, &out);
    expect_create_error("FR sidecar, forward(x), by name", st, out, IQA_ERR_WEIGHTS, "one_arg_fr.pt");
    st = iqa_metric_create("not_a_module", NULL, &out);
    expect_create_error("not an archive, by name", st, out, IQA_ERR_WEIGHTS, "not_a_module.pt");
    IqaTorchScriptSpec bad = spec;
    bad.mode = (IqaMode)7;
    st = iqa_metric_create_torchscript(module_path(dir, "absdiff.pt"), &bad, NULL, &out);
    expect_create_error("bad mode", st, out, IQA_ERR_INVALID_ARGUMENT, "spec->mode 7");
    bad = spec;
    bad.struct_size = 4;
    st = iqa_metric_create_torchscript(module_path(dir, "absdiff.pt"), &bad, NULL, &out);
    expect_create_error("short struct_size", st, out, IQA_ERR_INVALID_ARGUMENT, "struct_size");

    IqaCacheStats stats;
    iqa_cache_stats(&stats);
    CHECK(stats.handles_alive == 0 && stats.models_alive == 0, "nothing left alive: %zu handles, %zu models",
          stats.handles_alive, stats.models_alive);

    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
