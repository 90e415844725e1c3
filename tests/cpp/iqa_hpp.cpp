// iqa_hpp: checks include/iqa/iqa.hpp (the C++17 interface) against the library, through the header alone.
//
//   iqa_hpp CALIBRATION_DIR        (data/calibration: dist/I03.bmp ... and ref/I03.bmp ...)
//
// Prints one line per check, then "score METRIC IMAGE VALUE" lines (compared with pyiqa's scores by
// tests/install.rs) and, last, "N passed, M failed"; exits 0 only when M == 0. With IQA_WEIGHTS_DIR set it also
// checks lpips' map. Build: g++ -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude tests/cpp/iqa_hpp.cpp
//                          -Ltarget/release -liqa -Wl,-rpath,$PWD/target/release -o iqa_hpp
#include <iqa/iqa.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <type_traits>
#include <vector>

static_assert(!std::is_copy_constructible_v<iqa::Metric>, "Metric is move-only");
static_assert(!std::is_copy_assignable_v<iqa::Metric>, "Metric is move-only");
static_assert(std::is_nothrow_move_constructible_v<iqa::Metric>, "Metric moves without throwing");
static_assert(std::is_nothrow_move_assignable_v<iqa::Metric>, "Metric moves without throwing");
static_assert(std::is_base_of_v<std::runtime_error, iqa::Error>, "Error is a std::runtime_error");
static_assert(!std::is_copy_constructible_v<iqa::Stream>, "Stream is move-only");
static_assert(!std::is_copy_assignable_v<iqa::Stream>, "Stream is move-only");
static_assert(std::is_nothrow_move_constructible_v<iqa::Stream>, "Stream moves without throwing");
static_assert(std::is_nothrow_move_assignable_v<iqa::Stream>, "Stream moves without throwing");

namespace {

int g_passed = 0, g_failed = 0;

void check_at(bool ok, int line, const std::string& what) {
    (ok ? g_passed : g_failed)++;
    std::printf("%s line %d: %s\n", ok ? "ok  " : "FAIL", line, what.c_str());
    std::fflush(stdout);
}
#define CHECK(cond, what) check_at((cond), __LINE__, (what))

// Runs `call`, which must throw iqa::Error with `status` and a message containing `needle` that is also what
// iqa_last_error() still says, unless the wrapper itself refused the call (`by_wrapper`).
template <typename F>
void expect_error_at(int line, const char* what, IqaStatus status, const std::string& needle, F call,
                     bool by_wrapper = false) {
    try {
        call();
        check_at(false, line, std::string(what) + ": no exception");
    } catch (const iqa::Error& e) {
        const std::string message = e.what();
        const bool ok = e.status() == status && message.find(needle) != std::string::npos &&
                        (by_wrapper || message == iqa_last_error());
        check_at(ok, line,
                 std::string(what) + ": " + iqa::status_name(e.status()) + " (want " + iqa::status_name(status) +
                     ") \"" + message + "\" mentions \"" + needle + "\"");
    }
}
#define EXPECT_ERROR(what, status, needle, ...) expect_error_at(__LINE__, what, status, needle, __VA_ARGS__)
#define EXPECT_WRAPPER_ERROR(what, status, needle, call) expect_error_at(__LINE__, what, status, needle, call, true)

// A 24-bit bottom-up BMP (the calibration files) as top-down BGR rows `stride` bytes apart (>= 3*width).
struct Bgr {
    std::vector<unsigned char> bytes;
    std::uint32_t width = 0, height = 0;
    std::size_t stride = 0;
    iqa::ImageView view() const { return iqa::ImageView(bytes.data(), width, height, IQA_FORMAT_BGR8, stride); }
};

std::uint32_t le32(const std::vector<unsigned char>& b, std::size_t at) {
    return b[at] | b[at + 1] << 8 | b[at + 2] << 16 | static_cast<std::uint32_t>(b[at + 3]) << 24;
}

Bgr read_bmp(const std::string& path, std::size_t padding) {
    std::ifstream file(path, std::ios::binary);
    std::vector<unsigned char> b((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    Bgr img;
    if (b.size() < 54 || b[0] != 'B' || b[1] != 'M' || b[28] != 24 || le32(b, 30) != 0) {
        std::fprintf(stderr, "%s: not an uncompressed 24-bit BMP\n", path.c_str());
        std::exit(2);
    }
    const std::uint32_t offset = le32(b, 10);
    img.width = le32(b, 18);
    img.height = le32(b, 22);
    const std::size_t row = 3 * static_cast<std::size_t>(img.width), file_row = (row + 3) / 4 * 4;
    img.stride = row + padding;
    img.bytes.assign(img.stride * img.height, 0xAB);
    for (std::uint32_t y = 0; y < img.height; ++y) {
        std::memcpy(&img.bytes[y * img.stride], &b[offset + (img.height - 1 - y) * file_row], row);
    }
    return img;
}

bool close(double a, double b, double relative) { return std::fabs(a - b) <= relative * std::fabs(b); }

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CALIBRATION_DIR\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    const char* images[] = {"I03.bmp", "I04.bmp", "I06.bmp", "I08.bmp", "I19.bmp"};

    // ------------------------------------------------------------------------------------ library-wide
    CHECK(iqa::abi_compatible() && iqa::abi_version() == IQA_ABI_VERSION, "ABI " + std::to_string(iqa::abi_version()));
    CHECK(iqa::version() == IQA_VERSION_STRING, "version " + iqa::version());
    const std::vector<std::string> names = iqa::metric_names();
    auto listed = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
    CHECK(names.size() == iqa_metric_count() && listed("psnr") && listed("ssim") && listed("entropy"),
          std::to_string(names.size()) + " metric names");
    EXPECT_ERROR("set_preset(bogus)", IQA_ERR_INVALID_ARGUMENT, "bogus", [] { iqa::set_preset("bogus"); });
    CHECK(iqa::status_name(IQA_ERR_IO) == "IQA_ERR_IO" && iqa::status_name(static_cast<IqaStatus>(99)) ==
                                                              "IQA_STATUS_99",
          "status names");

    // ----------------------------------------------------------------------------- creation and info
    const std::size_t handles = iqa::cache_stats().handles_alive;
    {
        iqa::Metric psnr("psnr");
        const iqa::MetricInfo info = psnr.info();
        CHECK(info.name == "psnr" && info.mode == IQA_MODE_FR && !info.lower_better, "psnr info " + info.name);
        const iqa::Device device = psnr.device();
        IqaDeviceKind kind = IQA_DEVICE_AUTO;
        std::int32_t index = -1;
        iqa_metric_device(psnr.get(), &kind, &index);
        CHECK(device.kind == kind && device.index == index && device.kind != IQA_DEVICE_AUTO, "device as the C API");
        CHECK(psnr.precision() == IQA_PRECISION_FP32, "psnr runs fp32");
        CHECK(iqa::cache_stats().handles_alive == handles + 1, "one more live handle");
    }
    CHECK(iqa::cache_stats().handles_alive == handles, "the destructor freed the handle");
    {
        iqa::Metric cpu("ssim", iqa::Options().device(IQA_DEVICE_CPU).precision(IQA_PRECISION_BF16));
        CHECK(cpu.device().kind == IQA_DEVICE_CPU && cpu.device().index == 0, "Options().device(CPU)");
        CHECK(cpu.precision() == IQA_PRECISION_FP32, "ssim ignores bf16 (pyiqa's scores need fp32)");
    }
    EXPECT_ERROR("unknown metric", IQA_ERR_UNKNOWN_METRIC, "no_such_metric", [] { iqa::Metric m("no_such_metric"); });
    EXPECT_ERROR("missing TorchScript file", IQA_ERR_IO, "/no/such/module",
                 [] { iqa::Metric::torchscript("/no/such/module.pt"); });
    EXPECT_ERROR("TorchScript spec with a bad mode", IQA_ERR_INVALID_ARGUMENT, "mode", [] {
        iqa::TorchScriptSpec spec;
        spec.mode = static_cast<IqaMode>(7);
        iqa::Metric::torchscript("/no/such/module.pt", spec);
    });
    CHECK(iqa::cache_stats().handles_alive == handles, "failed creations leave no handle");

    // ------------------------------------------------------------------------------- move semantics
    {
        iqa::Metric a("psnr");
        IqaMetric* raw = a.get();
        iqa::Metric b(std::move(a));
        CHECK(!a && b && b.get() == raw, "move construction transfers the handle");  // NOLINT(use-after-move)
        iqa::Metric c("ssim");
        CHECK(iqa::cache_stats().handles_alive == handles + 2, "two live handles");
        c = std::move(b);
        CHECK(c.get() == raw && !b && iqa::cache_stats().handles_alive == handles + 1,
              "move assignment frees the target's handle");
        iqa::Metric& alias = c;  // self-move through a reference: the case move assignment must survive
        c = std::move(alias);
        CHECK(c.get() == raw && c.info().name == "psnr", "self-move keeps the handle");
        iqa::Metric d(c.release());
        CHECK(!c && d.get() == raw, "release() then adopting");
        EXPECT_ERROR("a moved-from Metric", IQA_ERR_INVALID_ARGUMENT, "NULL", [&] { (void)a.info(); });
    }
    CHECK(iqa::cache_stats().handles_alive == handles, "every handle freed at scope end");

    // --------------------------------------------------------------------------------------- scoring
    iqa::Metric psnr("psnr"), ssim("ssim"), entropy("entropy");
    std::vector<Bgr> dists, refs;
    for (const char* image : images) {
        const std::string d = dir + "/dist/" + image, r = dir + "/ref/" + image;
        for (iqa::Metric* m : {&psnr, &ssim}) {
            std::printf("score %s %s %.17g\n", m->info().name.c_str(), image, m->score_files(d, r));
        }
        std::printf("score entropy %s %.17g\n", image, entropy.score_files(d));
        dists.push_back(read_bmp(d, 13));
        refs.push_back(read_bmp(r, 0));
    }
    std::vector<iqa::ImageView> dv, rv;
    for (std::size_t i = 0; i < dists.size(); ++i) {
        dv.push_back(dists[i].view());
        rv.push_back(refs[i].view());
    }
    for (iqa::Metric* m : {&psnr, &ssim}) {
        const std::string name = m->info().name;
        const std::vector<double> batch = m->score_batch(dv, rv);
        bool same = batch.size() == dv.size();
        for (std::size_t i = 0; same && i < dv.size(); ++i) {
            const std::string d = dir + "/dist/" + images[i], r = dir + "/ref/" + images[i];
            const double file = m->score_files(d, r), view = m->score(dv[i], rv[i]);
            same = close(view, file, 1e-12) && close(batch[i], view, 1e-9);
        }
        CHECK(same, name + ": strided BGR8 views score as the files, batch as single");
    }
    {
        const std::vector<double> batch = entropy.score_batch(dv);
        CHECK(batch.size() == 5 && close(batch[0], entropy.score(dv[0]), 1e-9), "NR batch equals single");
    }
    CHECK(psnr.score_batch({}, {}).empty(), "an empty batch gives no scores");
    {
        // One reference, many images: a Reference outlives the buffer it was prepared from.
        iqa::Reference prepared = [&] {
            Bgr copy = refs[0];
            return ssim.prepare_reference(copy.view());
        }();
        std::vector<iqa::ImageView> ladder(dv.begin(), dv.begin() + 1);
        ladder.push_back(rv[0]);
        const std::vector<double> against = ssim.score_batch(ladder, prepared);
        CHECK(against.size() == 2 && against[0] == ssim.score(dv[0], rv[0]) && against[1] == ssim.score(rv[0], rv[0]) &&
                  ssim.score(dv[0], prepared) == against[0],
              "scores against a prepared reference equal the pairs'");
        iqa::Reference moved = std::move(prepared);
        CHECK(!prepared && moved, "a Reference moves");  // NOLINT(bugprone-use-after-move)
        EXPECT_ERROR("a reference prepared by another metric", IQA_ERR_INVALID_ARGUMENT, "prepared by 'ssim'",
                     [&] { psnr.score(dv[0], moved); });
        EXPECT_ERROR("an NR metric prepares no reference", IQA_ERR_INVALID_ARGUMENT, "no-reference",
                     [&] { entropy.prepare_reference(rv[0]); });
    }

    // ----------------------------------------------------------------------------------------- errors
    const iqa::ImageView small(dists[0].bytes.data(), 100, 80, IQA_FORMAT_BGR8, dists[0].stride);
    EXPECT_ERROR("FR metric without a reference", IQA_ERR_INVALID_ARGUMENT, "ref", [&] { psnr.score(dv[0]); });
    EXPECT_ERROR("NR metric with a reference", IQA_ERR_INVALID_ARGUMENT, "ref", [&] { entropy.score(dv[0], rv[0]); });
    EXPECT_ERROR("pair of different sizes", IQA_ERR_SHAPE_MISMATCH, "100", [&] { psnr.score(small, rv[0]); });
    EXPECT_WRAPPER_ERROR("batch lists of different lengths", IQA_ERR_INVALID_ARGUMENT, "5 distorted images but 1",
                 [&] { psnr.score_batch(dv, {rv[0]}); });
    EXPECT_ERROR("stride shorter than a row", IQA_ERR_INVALID_ARGUMENT, "stride", [&] {
        psnr.score(iqa::ImageView(dists[0].bytes.data(), 512, 384, IQA_FORMAT_BGR8, 100), rv[0]);
    });
    EXPECT_ERROR("missing file", IQA_ERR_IO, "/no/such/dist.png",
                 [&] { psnr.score_files("/no/such/dist.png", dir + "/ref/I03.bmp"); });
    {
        iqa::Metric ms_ssim("ms_ssim");
        EXPECT_ERROR("map of a metric without one", IQA_ERR_INVALID_ARGUMENT, "ms_ssim",
                     [&] { ms_ssim.score_map(dv[0], rv[0]); });
    }

    // ---------------------------------------------------------------------------------- frames and streams
    // Full-range I420 frames whose chroma is neutral (128) convert to R = G = B = Y / 255: they score as the
    // RGB8 image with R = G = B = Y. Y is each calibration image's green channel.
    {
        struct Yuv {
            std::vector<unsigned char> y, chroma, gray_rgb;
            std::uint32_t width = 0, height = 0;
            iqa::FrameView frame() const {
                return iqa::FrameView(width, height, IQA_FRAME_I420, y.data(), 0, chroma.data(), 0, chroma.data(), 0)
                    .color(IQA_MATRIX_BT601, IQA_RANGE_FULL);
            }
            iqa::ImageView image() const { return iqa::ImageView(gray_rgb.data(), width, height, IQA_FORMAT_RGB8); }
        };
        auto yuv = [](const Bgr& img) {
            Yuv f;
            f.width = img.width;
            f.height = img.height;
            f.chroma.assign(static_cast<std::size_t>(img.width / 2) * (img.height / 2), 128);
            for (std::uint32_t y = 0; y < img.height; ++y) {
                for (std::uint32_t x = 0; x < img.width; ++x) {
                    const unsigned char g = img.bytes[y * img.stride + 3 * x + 1];
                    f.y.push_back(g);
                    f.gray_rgb.insert(f.gray_rgb.end(), {g, g, g});
                }
            }
            return f;
        };
        std::vector<Yuv> yd, yr;
        std::vector<iqa::FrameView> fd, fr;
        for (std::size_t i = 0; i < dists.size(); ++i) {
            yd.push_back(yuv(dists[i]));
            yr.push_back(yuv(refs[i]));
        }
        for (std::size_t i = 0; i < dists.size(); ++i) {
            fd.push_back(yd[i].frame());
            fr.push_back(yr[i].frame());
        }
        std::vector<std::vector<double>> direct(2);
        iqa::Metric* metrics[] = {&psnr, &ssim};
        for (int k = 0; k < 2; ++k) {
            const std::string name = metrics[k]->info().name;
            bool same = true;
            for (std::size_t i = 0; i < fd.size(); ++i) {
                direct[k].push_back(metrics[k]->score_frame(fd[i], fr[i]));
                same = same && close(direct[k][i], metrics[k]->score(yd[i].image(), yr[i].image()), 1e-6);
            }
            const std::vector<double> batch = metrics[k]->score_frames(fd, fr);
            for (std::size_t i = 0; i < fd.size(); ++i) same = same && close(batch[i], direct[k][i], 1e-9);
            CHECK(same, name + ": neutral-chroma frames score as their gray RGB, score_frames as score_frame");
        }
        CHECK(psnr.score_frames({}, {}).empty(), "an empty frame list gives no scores");

        iqa::Stream stream({"psnr", "ssim"}, iqa::StreamOptions().threads(2).queue(2));
        CHECK(stream && stream.metric_count() == 2, "stream of psnr and ssim");
        for (std::size_t i = 0; i < fd.size(); ++i) stream.push(fd[i], fr[i]);
        stream.flush();
        const iqa::Stream::Progress progress = stream.progress();
        CHECK(progress.pushed == 5 && progress.done == 5, "5 frames pushed and done");
        bool same = true;
        for (std::uint64_t i = 0; i < 5; ++i) {
            const std::vector<double> s = stream.frame_scores(i);
            same = same && s.size() == 2 && close(s[0], direct[0][i], 1e-12) && close(s[1], direct[1][i], 1e-12);
        }
        CHECK(same, "the stream's per-frame scores are score_frame's");
        for (std::size_t k = 0; k < 2; ++k) {
            std::vector<double> v = direct[k];
            std::sort(v.begin(), v.end());
            double sum = 0.0, inverse = 0.0;
            for (double x : v) {
                sum += x;
                inverse += 1.0 / (x + 1.0);
            }
            const bool pooled = close(stream.pooled(k, IQA_POOL_MEAN), sum / 5.0, 1e-12) &&
                                close(stream.pooled(k, IQA_POOL_HARMONIC_MEAN), 5.0 / inverse - 1.0, 1e-12) &&
                                stream.pooled(k, IQA_POOL_MIN) == v[0] && stream.pooled(k, IQA_POOL_MAX) == v[4] &&
                                close(stream.pooled(k, IQA_POOL_PERCENTILE, 50.0), v[2], 1e-12) &&
                                close(stream.pooled(k, IQA_POOL_PERCENTILE, 62.5), 0.5 * (v[2] + v[3]), 1e-12);
            CHECK(pooled, std::string(k == 0 ? "psnr" : "ssim") + ": mean, harmonic mean, min, max, percentiles");
        }
        EXPECT_ERROR("a frame not pushed", IQA_ERR_INVALID_ARGUMENT, "frame 5 was not pushed",
                     [&] { stream.frame_scores(5); });
        EXPECT_ERROR("a bad pooling method", IQA_ERR_INVALID_ARGUMENT, "method 9 is not an IqaPooling",
                     [&] { stream.pooled(0, static_cast<IqaPooling>(9)); });
        iqa::Stream moved(std::move(stream));
        CHECK(!stream && moved && moved.frame_scores(4).size() == 2, "a moved stream keeps its scores");

        iqa::FrameView odd = fd[0];
        odd.width = 511;
        EXPECT_ERROR("odd I420 width", IQA_ERR_INVALID_ARGUMENT, "width 511 is not a multiple of 2",
                     [&] { psnr.score_frame(odd, fr[0]); });
        iqa::FrameView no_u = fd[0];
        no_u.planes[1] = nullptr;
        EXPECT_ERROR("NULL U plane", IQA_ERR_INVALID_ARGUMENT, "planes[1] (U) is NULL",
                     [&] { psnr.score_frame(no_u, fr[0]); });
        iqa::FrameView short_v = fd[0];
        short_v.strides[2] = 100;
        EXPECT_ERROR("short V stride", IQA_ERR_INVALID_ARGUMENT, "plane V: stride 100 bytes",
                     [&] { moved.push(short_v, fr[0]); });
        EXPECT_WRAPPER_ERROR("frame lists of different lengths", IQA_ERR_INVALID_ARGUMENT,
                             "5 distorted frames but 1", [&] { psnr.score_frames(fd, {fr[0]}); });
        EXPECT_ERROR("stream of an unknown metric", IQA_ERR_UNKNOWN_METRIC, "no_such_metric",
                     [] { iqa::Stream s({"psnr", "no_such_metric"}); });
    }
    CHECK(iqa::cache_stats().handles_alive == handles + 3, "streams closed: only psnr, ssim, entropy alive");

    // ------------------------------------------------------------------------ map (needs lpips' weights)
    if (std::getenv("IQA_WEIGHTS_DIR") != nullptr) {
        iqa::Metric lpips("lpips");
        const std::vector<float> map = lpips.score_map(dv[0], rv[0]);
        double sum = 0.0;
        for (float v : map) sum += v;
        const double mean = sum / static_cast<double>(map.size()), score = lpips.score(dv[0], rv[0]);
        CHECK(map.size() == 512u * 384u && std::fabs(mean - score) <= 1e-6,
              "lpips map mean " + std::to_string(mean) + " vs score " + std::to_string(score));
    }

    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
