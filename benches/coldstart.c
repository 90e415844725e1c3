/* Cold start of one metric through dlopen, for scripts/benchmark.py: dlopen libiqa, create the metric, score a
 * pair of files with iqa_score_files and print the score (the benchmark times the process from spawn to the
 * `score` line), then the process's peak and current resident set (VmHWM, VmRSS from /proc/self/status).
 *
 *     coldstart path/to/libiqa.so METRIC DIST REF [handles]
 *
 * REF is ignored for no-reference metrics (iqa_metric_info says which). With `handles`, it then creates a second
 * handle of the same metric and prints VmRSS after the first handle's score, after the second create and after a
 * score with the second handle, and the model cache counts (handles of one metric share one loaded model).
 * Options: NULL (defaults: IQA_DEVICE, IQA_PRECISION, IQA_NUM_THREADS come from the environment). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../include/iqa.h"

static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long value = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, n) == 0 && line[n] == ':') {
            value = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return value;
}

#define LOAD(var, name)                                                    \
    do {                                                                   \
        *(void **)(&var) = dlsym(lib, name);                               \
        if (!var) {                                                        \
            fprintf(stderr, "dlsym %s: %s\n", name, dlerror());            \
            return 1;                                                      \
        }                                                                  \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 5 && !(argc == 6 && strcmp(argv[5], "handles") == 0)) {
        fprintf(stderr, "usage: coldstart path/to/libiqa.so METRIC DIST REF [handles]\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    IqaStatus (*create)(const char *, const IqaOptions *, IqaMetric **);
    IqaStatus (*info)(const IqaMetric *, IqaMetricInfo *);
    IqaStatus (*score_files)(IqaMetric *, const char *, const char *, double *);
    IqaStatus (*cache_stats)(IqaCacheStats *);
    void (*metric_free)(IqaMetric *);
    const char *(*last_error)(void);
    LOAD(create, "iqa_metric_create");
    LOAD(info, "iqa_metric_info");
    LOAD(score_files, "iqa_score_files");
    LOAD(cache_stats, "iqa_cache_stats");
    LOAD(metric_free, "iqa_metric_free");
    LOAD(last_error, "iqa_last_error");

    IqaMetric *metric = NULL;
    if (create(argv[2], NULL, &metric) != IQA_OK) {
        fprintf(stderr, "iqa_metric_create(%s): %s\n", argv[2], last_error());
        return 1;
    }
    IqaMetricInfo mi;
    if (info(metric, &mi) != IQA_OK) {
        fprintf(stderr, "iqa_metric_info: %s\n", last_error());
        return 1;
    }
    const char *ref = mi.mode == IQA_MODE_FR ? argv[4] : NULL;
    double s = 0.0;
    if (score_files(metric, argv[3], ref, &s) != IQA_OK) {
        fprintf(stderr, "iqa_score_files: %s\n", last_error());
        return 1;
    }
    printf("score %.9g\n", s);
    fflush(stdout);
    printf("vmhwm_kb %ld\nvmrss_kb %ld\n", status_kb("VmHWM"), status_kb("VmRSS"));

    if (argc == 6) {
        long rss1 = status_kb("VmRSS");
        IqaMetric *second = NULL;
        if (create(argv[2], NULL, &second) != IQA_OK) {
            fprintf(stderr, "second iqa_metric_create(%s): %s\n", argv[2], last_error());
            return 1;
        }
        long rss2 = status_kb("VmRSS");
        double s2 = 0.0;
        if (score_files(second, argv[3], ref, &s2) != IQA_OK) {
            fprintf(stderr, "iqa_score_files (second handle): %s\n", last_error());
            return 1;
        }
        long rss3 = status_kb("VmRSS");
        IqaCacheStats cs = {0, 0};
        cache_stats(&cs);
        printf("rss_handle1_kb %ld\nrss_handle2_created_kb %ld\nrss_handle2_scored_kb %ld\n", rss1, rss2, rss3);
        printf("models_alive %zu\nhandles_alive %zu\nscore2 %.9g\n", cs.models_alive, cs.handles_alive, s2);
        metric_free(second);
    }
    metric_free(metric);
    fflush(stdout);
    return 0;
}
