/* metric_loop: creates, scores and frees every built-in metric through the C API, CYCLES times each, on a
 * 96x96 synthetic image pair; run under valgrind by tests/reliability_memcheck.rs. Metrics whose weights are
 * not found (IQA_ERR_WEIGHTS) are skipped and named. Prints "N scored, M skipped, K failed"; exits 0 only when
 * K == 0 and the cache counts are back to 0.
 *
 *   metric_loop CYCLES
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "iqa.h"

enum { SIDE = 96 };

int main(int argc, char **argv) {
    int cycles = argc > 1 ? atoi(argv[1]) : 1;
    static uint8_t dist[SIDE * SIDE * 3], ref[SIDE * SIDE * 3];
    for (int i = 0; i < SIDE * SIDE * 3; i++) {
        ref[i] = (uint8_t)((i * 7 + (i / (SIDE * 3)) * 13) % 251);
        dist[i] = (uint8_t)(ref[i] ^ ((i * 31) % 17));
    }
    IqaImage d = {dist, SIDE, SIDE, 0, IQA_FORMAT_RGB8}, r = {ref, SIDE, SIDE, 0, IQA_FORMAT_RGB8};
    int scored = 0, skipped = 0, failed = 0;
    for (size_t m = 0; m < iqa_metric_count(); m++) {
        const char *name = iqa_metric_name(m);
        for (int c = 0; c < cycles; c++) {
            IqaMetric *metric = NULL;
            IqaStatus st = iqa_metric_create(name, NULL, &metric);
            if (st == IQA_ERR_WEIGHTS) {
                printf("skip %s: %s\n", name, iqa_last_error());
                skipped++;
                break;
            }
            if (st != IQA_OK) {
                printf("FAIL create %s: %d %s\n", name, (int)st, iqa_last_error());
                failed++;
                break;
            }
            IqaMetricInfo info;
            double score = 0;
            iqa_metric_info(metric, &info);
            st = iqa_score(metric, &d, info.mode == IQA_MODE_FR ? &r : NULL, &score);
            /* Some metrics refuse 96x96 (IQA_ERR_SHAPE names their minimum): still a full create/score/free. */
            if (st != IQA_OK && st != IQA_ERR_SHAPE_MISMATCH) {
                printf("FAIL score %s: %d %s\n", name, (int)st, iqa_last_error());
                failed++;
            } else if (c == 0) {
                printf("%s %s %.6f\n", name, st == IQA_OK ? "score" : "shape", st == IQA_OK ? score : 0.0);
                scored++;
            }
            iqa_metric_free(metric);
        }
    }
    IqaCacheStats stats;
    iqa_cache_stats(&stats);
    if (stats.handles_alive != 0 || stats.models_alive != 0) {
        printf("FAIL alive after the loop: %zu handles, %zu models\n", stats.handles_alive, stats.models_alive);
        failed++;
    }
    printf("%d scored, %d skipped, %d failed\n", scored, skipped, failed);
    return failed == 0 ? 0 : 1;
}
