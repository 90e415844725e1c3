/* score: compute one image quality metric with libiqa.
 *
 *   score METRIC DIST [REF]
 *
 * REF is required for full-reference metrics (psnr, ssim, ...) and must be omitted for no-reference ones.
 *
 * Build:
 *   cc -std=c99 -Wall -Wextra -Werror -Iinclude examples/score.c \
 *      -Ltarget/release -liqa -Wl,-rpath,$PWD/target/release -o score
 */
#include <stdio.h>
#include <stdlib.h>

#include "iqa.h"

/* Prints the failed status and the library's message, then exits. */
static void fail(IqaStatus status) {
    fprintf(stderr, "error: %d: %s\n", (int)status, iqa_last_error());
    exit(1);
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s METRIC DIST [REF]\n", argv[0]);
        return 2;
    }
    const char *metric_name = argv[1];
    const char *dist_path = argv[2];
    const char *ref_path = argc == 4 ? argv[3] : NULL;

    /* The library actually loaded must speak the ABI this program was compiled against. */
    printf("libiqa %s (ABI %u, header ABI %d)\n", iqa_version(), (unsigned)iqa_abi_version(), IQA_ABI_VERSION);
    if (iqa_abi_version() != IQA_ABI_VERSION) {
        fprintf(stderr, "error: libiqa ABI %u does not match header ABI %d\n", (unsigned)iqa_abi_version(),
                IQA_ABI_VERSION);
        return 1;
    }

    IqaOptions options;
    iqa_options_default(&options); /* then change fields, e.g. options.device = IQA_DEVICE_CPU; */

    IqaMetric *metric = NULL;
    IqaStatus status = iqa_metric_create(metric_name, &options, &metric);
    if (status != IQA_OK) {
        fail(status);
    }

    IqaMetricInfo info;
    status = iqa_metric_info(metric, &info);
    if (status != IQA_OK) {
        iqa_metric_free(metric);
        fail(status);
    }
    printf("metric %s: %s, %s is better, range %g..%g\n", info.name,
           info.mode == IQA_MODE_FR ? "full-reference" : "no-reference", info.lower_better ? "lower" : "higher",
           info.score_min, info.score_max);

    double score = 0.0;
    status = iqa_score_files(metric, dist_path, ref_path, &score);
    if (status != IQA_OK) {
        iqa_metric_free(metric);
        fail(status);
    }
    printf("score %s %.6f\n", metric_name, score);

    iqa_metric_free(metric);
    return 0;
}
