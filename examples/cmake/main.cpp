// score_cpp: one score with iqa's C++ interface (include/iqa/iqa.hpp).
//   score_cpp METRIC DIST [REF]      REF for full-reference metrics (psnr, ssim, ...), none for no-reference ones
#include <iqa/iqa.hpp>

#include <cstdio>

int main(int argc, char** argv) {
    if (argc < 3 || argc > 4) {
        std::fprintf(stderr, "usage: %s METRIC DIST [REF]\n", argv[0]);
        return 2;
    }
    if (!iqa::abi_compatible()) {
        std::fprintf(stderr, "error: libiqa ABI %u, this program was built for ABI %d\n", iqa::abi_version(),
                     IQA_ABI_VERSION);
        return 1;
    }
    try {
        iqa::Metric metric(argv[1]);
        const double score = argc == 4 ? metric.score_files(argv[2], argv[3]) : metric.score_files(argv[2]);
        std::printf("score %s %.17g\n", metric.info().name.c_str(), score);
    } catch (const iqa::Error& e) {
        std::fprintf(stderr, "error: %s: %s\n", iqa::status_name(e.status()).c_str(), e.what());
        return 1;
    }
    return 0;
}
