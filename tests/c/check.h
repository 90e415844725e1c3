/* The check harness of the C test programs under tests/c: CHECK(cond, fmt, ...) prints "ok" or "FAIL" with the
 * line and counts in g_passed and g_failed, from which each program prints "N passed, M failed" last and takes
 * its exit status. Header-only: each program is one translation unit. */
#ifndef IQA_TEST_CHECK_H
#define IQA_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static int g_passed, g_failed;

static void check_at(int ok, int line, const char *fmt, ...) {
    va_list ap;
    if (ok) {
        g_passed++;
    } else {
        g_failed++;
    }
    printf("%s line %d: ", ok ? "ok  " : "FAIL", line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

#define CHECK(cond, ...) check_at(!!(cond), __LINE__, __VA_ARGS__)

#endif
