/* The floor under any libtorch program's start: a process that only dlopens one library (libtorch_cpu.so, with
 * RTLD_NOW as libiqa's dependencies are bound) and exits. scripts/bench_peers.py times it from spawn to exit
 * beside `iqa score` and ffmpeg.
 *
 *     dlopen_floor path/to/libtorch_cpu.so */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: dlopen_floor path/to/library.so\n");
        return 2;
    }
    if (!dlopen(argv[1], RTLD_NOW | RTLD_LOCAL)) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    return 0;
}
