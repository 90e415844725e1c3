/* Time from process start to iqa_version() returning through dlopen: run by scripts/startup_time.sh, which
 * measures whole-process wall time (exec, dynamic loading of libiqa + libtorch, the call) over 10 runs. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: startup path/to/libiqa.so\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    const char *(*version)(void) = (const char *(*)(void))dlsym(lib, "iqa_version");
    if (!version) {
        fprintf(stderr, "dlsym: %s\n", dlerror());
        return 1;
    }
    printf("%s\n", version());
    return 0;
}
