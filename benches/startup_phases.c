/* Where process start -> first score goes, phase by phase (for BENCHMARKS.md's start-up section):
 *
 *     startup_phases path/to/libtorch_cpu.so path/to/libiqa.so METRIC DIST REF
 *
 * prints milliseconds since process start (CLOCK_BOOTTIME minus the start time /proc/self/stat gives, so exec
 * and the dynamic loading of this small program count) after: main() entered, dlopen of libtorch_cpu.so alone
 * (the floor any libtorch user pays), dlopen of libiqa.so (its own code and libtorch's remaining libraries),
 * iqa_metric_create, iqa_score_files. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../include/iqa.h"

static double start_ms;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_BOOTTIME, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* The process's start time in ms since boot (field 22 of /proc/self/stat, in clock ticks). */
static double process_start_ms(void) {
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return now_ms();
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = buf;
    for (char *q = buf; *q; q++)
        if (*q == ')') p = q; /* the command name may contain spaces: count fields after its closing ')' */
    unsigned long long ticks = 0;
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
        if (++field == 22) {
            ticks = strtoull(tok, NULL, 10);
            break;
        }
    }
    return ticks * 1e3 / sysconf(_SC_CLK_TCK);
}

static void mark(const char *what) { printf("%-28s %8.1f ms\n", what, now_ms() - start_ms); }

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: startup_phases libtorch_cpu.so libiqa.so METRIC DIST REF\n");
        return 2;
    }
    start_ms = process_start_ms();
    mark("main");
    if (!dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL)) return fprintf(stderr, "%s\n", dlerror()), 1;
    mark("dlopen libtorch_cpu");
    void *lib = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    if (!lib) return fprintf(stderr, "%s\n", dlerror()), 1;
    mark("dlopen libiqa");
    IqaStatus (*create)(const char *, const IqaOptions *, IqaMetric **) =
        (IqaStatus(*)(const char *, const IqaOptions *, IqaMetric **))dlsym(lib, "iqa_metric_create");
    IqaStatus (*score_files)(IqaMetric *, const char *, const char *, double *) =
        (IqaStatus(*)(IqaMetric *, const char *, const char *, double *))dlsym(lib, "iqa_score_files");
    IqaMetric *m = NULL;
    if (!create || !score_files || create(argv[3], NULL, &m) != IQA_OK) return fprintf(stderr, "create\n"), 1;
    mark("iqa_metric_create");
    double s;
    if (score_files(m, argv[4], argv[5], &s) != IQA_OK) return fprintf(stderr, "score\n"), 1;
    mark("iqa_score_files (first)");
    printf("score %.6f\n", s);
    return 0;
}
