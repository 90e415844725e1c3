// iqa.hpp: header-only C++17 interface over iqa's C API (iqa.h), namespace iqa.
//
//   #include <iqa/iqa.hpp>
//   iqa::Metric ssim("ssim");                                  // throws iqa::Error on failure
//   double s = ssim.score_files("dist.png", "ref.png");
//   double t = ssim.score(iqa::ImageView(pixels, w, h, IQA_FORMAT_RGB8), iqa::ImageView(ref, w, h, IQA_FORMAT_RGB8));
//
// - iqa::Metric owns one handle: move-only, freed by its destructor.
// - Every failing call throws iqa::Error, a std::runtime_error whose what() is iqa_last_error()'s message and
//   whose status() is the IqaStatus the C function returned.
// - iqa::ImageView describes caller memory (no copy, no ownership); it must stay valid during the call only.
//   iqa::FrameView does the same for a YUV video frame (planes, strides, format, matrix, range, siting).
// - iqa::Stream scores (dist, ref) frame pairs with several metrics behind push(): per-frame and pooled scores.
// - Thread safety is the C API's: one Metric may score from many threads at once (its scoring methods are const).
// Nothing here adds state or behaviour: each method is one C call plus the error check, so scores are the C API's.
#ifndef IQA_HPP
#define IQA_HPP

#if !defined(__cplusplus) || __cplusplus < 201703L
#error "iqa.hpp needs C++17 (-std=c++17); C programs include iqa.h"
#endif

#include "iqa.h"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace iqa {

// ---------------------------------------------------------------------------------------------------- errors

// The enumerator's name ("IQA_ERR_IO"), or "IQA_STATUS_<n>" for a value this header does not know.
inline std::string status_name(IqaStatus status) {
    switch (status) {
        case IQA_OK: return "IQA_OK";
        case IQA_ERR_INVALID_ARGUMENT: return "IQA_ERR_INVALID_ARGUMENT";
        case IQA_ERR_UNKNOWN_METRIC: return "IQA_ERR_UNKNOWN_METRIC";
        case IQA_ERR_IO: return "IQA_ERR_IO";
        case IQA_ERR_DECODE: return "IQA_ERR_DECODE";
        case IQA_ERR_SHAPE_MISMATCH: return "IQA_ERR_SHAPE_MISMATCH";
        case IQA_ERR_WEIGHTS: return "IQA_ERR_WEIGHTS";
        case IQA_ERR_DEVICE: return "IQA_ERR_DEVICE";
        case IQA_ERR_RUNTIME: return "IQA_ERR_RUNTIME";
        case IQA_ERR_PANIC: return "IQA_ERR_PANIC";
    }
    return "IQA_STATUS_" + std::to_string(static_cast<int>(status));
}

// A failed call: status() is what the C function returned, what() the message iqa_last_error() gave.
class Error : public std::runtime_error {
public:
    Error(IqaStatus status, const std::string& message) : std::runtime_error(message), status_(status) {}
    IqaStatus status() const noexcept { return status_; }

private:
    IqaStatus status_;
};

namespace detail {
// Throws unless `status` is IQA_OK, copying this thread's message before any other iqa call replaces it.
inline void check(IqaStatus status) {
    if (status != IQA_OK) {
        const char* message = iqa_last_error();
        throw Error(status, message != nullptr && *message != '\0' ? message : status_name(status));
    }
}
}  // namespace detail

// ---------------------------------------------------------------------------------------------- library-wide

// IQA_ABI_VERSION of the library actually loaded; abi_compatible() compares it with this header's.
inline std::uint32_t abi_version() noexcept { return iqa_abi_version(); }
inline bool abi_compatible() noexcept { return iqa_abi_version() == IQA_ABI_VERSION; }
// The loaded library's version, "MAJOR.MINOR.PATCH".
inline std::string version() { return iqa_version(); }

// Every name Metric accepts (pyiqa's names, then TorchScript modules found in IQA_WEIGHTS_DIR).
inline std::vector<std::string> metric_names() {
    std::vector<std::string> names;
    const std::size_t count = iqa_metric_count();
    names.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        if (const char* name = iqa_metric_name(i)) names.emplace_back(name);
    }
    return names;
}

// "accuracy", "speed" or "memory" (iqa_set_preset).
inline void set_preset(const std::string& name) { detail::check(iqa_set_preset(name.c_str())); }

// Distinct loaded models and live handles, process-wide.
inline IqaCacheStats cache_stats() {
    IqaCacheStats stats{};
    detail::check(iqa_cache_stats(&stats));
    return stats;
}

// ------------------------------------------------------------------------------------------------ arguments

// Pixels in caller memory: width x height pixels of `format`, rows `stride` bytes apart (0 = packed).
// Borrowed for the duration of a call; the library keeps no pointer to them.
struct ImageView {
    const void* data = nullptr;
    std::uint32_t width = 0;
    std::uint32_t height = 0;
    IqaPixelFormat format = IQA_FORMAT_RGB8;
    std::size_t stride = 0;

    ImageView() = default;
    ImageView(const void* data_, std::uint32_t width_, std::uint32_t height_, IqaPixelFormat format_,
              std::size_t stride_ = 0) noexcept
        : data(data_), width(width_), height(height_), format(format_), stride(stride_) {}

    IqaImage c_image() const noexcept { return IqaImage{data, width, height, stride, format}; }
};

// A YUV video frame in caller memory (iqa_score_frame's IqaFrame): planes Y, U, V (planar formats) or Y, UV
// (NV12, P010), each with its stride in bytes (0 = packed). The matrix, range and siting default to the C
// API's 0 values (BT.709, limited range, chroma left). Borrowed for the duration of a call only.
struct FrameView {
    std::uint32_t width = 0;
    std::uint32_t height = 0;
    IqaFrameFormat format = IQA_FRAME_I420;
    IqaColorMatrix matrix = IQA_MATRIX_BT709;
    IqaColorRange range = IQA_RANGE_LIMITED;
    IqaChromaSiting siting = IQA_CHROMA_LEFT;
    const void* planes[3] = {nullptr, nullptr, nullptr};
    std::size_t strides[3] = {0, 0, 0};

    FrameView() = default;
    FrameView(std::uint32_t width_, std::uint32_t height_, IqaFrameFormat format_, const void* y,
              std::size_t y_stride, const void* u, std::size_t u_stride, const void* v = nullptr,
              std::size_t v_stride = 0) noexcept
        : width(width_), height(height_), format(format_), planes{y, u, v}, strides{y_stride, u_stride, v_stride} {}

    FrameView& color(IqaColorMatrix matrix_, IqaColorRange range_,
                     IqaChromaSiting siting_ = IQA_CHROMA_LEFT) noexcept {
        matrix = matrix_;
        range = range_;
        siting = siting_;
        return *this;
    }

    IqaFrame c_frame() const noexcept {
        IqaFrame f{};
        f.struct_size = sizeof(IqaFrame);
        f.width = width;
        f.height = height;
        f.format = format;
        f.matrix = matrix;
        f.range = range;
        f.siting = siting;
        for (int p = 0; p < 3; ++p) {
            f.planes[p] = planes[p];
            f.strides[p] = strides[p];
        }
        return f;
    }
};

// Options for Metric: starts from iqa_options_default() (which reads IQA_PRECISION), then chained setters.
class Options {
public:
    Options() noexcept { iqa_options_default(&options_); }
    Options& device(IqaDeviceKind kind, std::int32_t index = 0) noexcept {
        options_.device = kind;
        options_.device_index = index;
        return *this;
    }
    Options& precision(IqaPrecision precision) noexcept {
        options_.precision = precision;
        return *this;
    }
    const IqaOptions& c_options() const noexcept { return options_; }

private:
    IqaOptions options_{};
};

// Describes a TorchScript module for Metric::torchscript (iqa_metric_create_torchscript).
struct TorchScriptSpec {
    std::string name;  // empty = the file name without extension
    IqaMode mode = IQA_MODE_FR;
    bool lower_better = false;
    double score_min = std::numeric_limits<double>::quiet_NaN();  // NaN where unknown
    double score_max = std::numeric_limits<double>::quiet_NaN();
};

// What iqa_metric_info reports, with the name copied.
struct MetricInfo {
    std::string name;
    IqaMode mode = IQA_MODE_FR;
    bool lower_better = false;
    double score_min = 0.0;
    double score_max = 0.0;
};

// Where a handle's model runs (what AUTO resolved to).
struct Device {
    IqaDeviceKind kind = IQA_DEVICE_CPU;
    std::int32_t index = 0;
};

// ----------------------------------------------------------------------------------------------- Reference

// A reference image prepared once by a full-reference metric (Metric::prepare_reference), to score many
// distorted images against: move-only, freed by the destructor; usable from many threads at once.
class Reference {
public:
    // Takes ownership of a reference from the C API (NULL allowed: an empty Reference).
    explicit Reference(IqaReference* handle) noexcept : handle_(handle) {}
    Reference(const Reference&) = delete;
    Reference& operator=(const Reference&) = delete;
    Reference(Reference&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    Reference& operator=(Reference&& other) noexcept {
        if (this != &other) {
            iqa_reference_free(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }
    ~Reference() { iqa_reference_free(handle_); }

    IqaReference* get() const noexcept { return handle_; }
    explicit operator bool() const noexcept { return handle_ != nullptr; }

private:
    IqaReference* handle_ = nullptr;
};

// -------------------------------------------------------------------------------------------------- Metric

// One metric handle: move-only, freed by the destructor. Scoring methods are const and thread-safe.
class Metric {
public:
    // iqa_metric_create: `name` as pyiqa names it ("psnr", "ssim", "lpips-vgg", ...).
    explicit Metric(const std::string& name, const Options& options = Options()) {
        detail::check(iqa_metric_create(name.c_str(), &options.c_options(), &handle_));
    }

    // iqa_metric_create_torchscript with a spec.
    static Metric torchscript(const std::string& path, const TorchScriptSpec& spec,
                              const Options& options = Options()) {
        IqaTorchScriptSpec c_spec{};
        c_spec.struct_size = sizeof(IqaTorchScriptSpec);
        c_spec.name = spec.name.empty() ? nullptr : spec.name.c_str();
        c_spec.mode = spec.mode;
        c_spec.lower_better = spec.lower_better;
        c_spec.score_min = spec.score_min;
        c_spec.score_max = spec.score_max;
        IqaMetric* handle = nullptr;
        detail::check(iqa_metric_create_torchscript(path.c_str(), &c_spec, &options.c_options(), &handle));
        return Metric(handle);
    }

    // iqa_metric_create_torchscript reading the sidecar NAME.json next to NAME.pt.
    static Metric torchscript(const std::string& path, const Options& options = Options()) {
        IqaMetric* handle = nullptr;
        detail::check(iqa_metric_create_torchscript(path.c_str(), nullptr, &options.c_options(), &handle));
        return Metric(handle);
    }

    // Takes ownership of a handle from the C API (NULL allowed: an empty Metric).
    explicit Metric(IqaMetric* handle) noexcept : handle_(handle) {}

    Metric(const Metric&) = delete;
    Metric& operator=(const Metric&) = delete;
    Metric(Metric&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    Metric& operator=(Metric&& other) noexcept {
        if (this != &other) {
            iqa_metric_free(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }
    ~Metric() { iqa_metric_free(handle_); }

    // The C handle, still owned by this object; release() gives up ownership (the caller frees it).
    IqaMetric* get() const noexcept { return handle_; }
    IqaMetric* release() noexcept { return std::exchange(handle_, nullptr); }
    // False once moved from or released.
    explicit operator bool() const noexcept { return handle_ != nullptr; }

    MetricInfo info() const {
        IqaMetricInfo c_info{};
        detail::check(iqa_metric_info(handle_, &c_info));
        return MetricInfo{c_info.name != nullptr ? c_info.name : "", c_info.mode, c_info.lower_better,
                          c_info.score_min, c_info.score_max};
    }

    Device device() const {
        Device d;
        detail::check(iqa_metric_device(handle_, &d.kind, &d.index));
        return d;
    }

    IqaPrecision precision() const {
        IqaPrecision p = IQA_PRECISION_FP32;
        detail::check(iqa_metric_precision(handle_, &p));
        return p;
    }

    // No-reference metrics.
    double score(const ImageView& dist) const { return score_impl(dist, nullptr); }
    // Full-reference metrics.
    double score(const ImageView& dist, const ImageView& ref) const { return score_impl(dist, &ref); }

    // One score per image; images of one size go through the model in one pass. An empty list gives an empty
    // result (the C function refuses a count of 0). NR: no refs.
    std::vector<double> score_batch(const std::vector<ImageView>& dists) const {
        return batch_impl(dists, nullptr);
    }
    // FR: refs[i] is the reference of dists[i]; both lists must have the same length.
    std::vector<double> score_batch(const std::vector<ImageView>& dists, const std::vector<ImageView>& refs) const {
        if (refs.size() != dists.size()) {
            throw Error(IQA_ERR_INVALID_ARGUMENT, "score_batch: " + std::to_string(dists.size()) +
                                                      " distorted images but " + std::to_string(refs.size()) +
                                                      " references");
        }
        return batch_impl(dists, &refs);
    }

    // Decodes and scores files (PNG, JPEG, BMP, TIFF, WebP) as pyiqa reads them. NR: no reference path.
    double score_files(const std::string& dist_path) const { return files_impl(dist_path.c_str(), nullptr); }
    double score_files(const std::string& dist_path, const std::string& ref_path) const {
        return files_impl(dist_path.c_str(), ref_path.c_str());
    }

    // Per-pixel distance map (width x height, row-major) for the metrics that define one (the LPIPS family).
    std::vector<float> score_map(const ImageView& dist, const ImageView& ref) const {
        std::vector<float> map(static_cast<std::size_t>(dist.width) * dist.height);
        const IqaImage d = dist.c_image(), r = ref.c_image();
        detail::check(iqa_score_map(handle_, &d, &r, map.data(), map.size()));
        return map;
    }

    // ------------------------------------------------------------------------ one reference, many images
    // iqa_reference_create: the reference's pixels copied and the metric's work on it done once.
    Reference prepare_reference(const ImageView& ref) const {
        const IqaImage r = ref.c_image();
        IqaReference* handle = nullptr;
        detail::check(iqa_reference_create(handle_, &r, &handle));
        return Reference(handle);
    }

    // The score of (dist, the prepared reference), as score(dist, ref) gives it.
    double score(const ImageView& dist, const Reference& ref) const {
        const IqaImage d = dist.c_image();
        double out = 0.0;
        detail::check(iqa_score_with_reference(handle_, ref.get(), &d, &out));
        return out;
    }

    // One score per image against the prepared reference; an empty list gives an empty result.
    std::vector<double> score_batch(const std::vector<ImageView>& dists, const Reference& ref) const {
        if (dists.empty()) return {};
        std::vector<IqaImage> d;
        d.reserve(dists.size());
        for (const ImageView& v : dists) d.push_back(v.c_image());
        std::vector<double> out(dists.size());
        detail::check(iqa_score_batch_with_reference(handle_, ref.get(), d.data(), d.size(), out.data()));
        return out;
    }

    // ------------------------------------------------------------------------------------ frames and streams
    // A video frame's score: the metric's score on the frame's RGB conversion (iqa_score_frame). NR: no ref.
    double score_frame(const FrameView& dist) const { return frame_impl(dist, nullptr); }
    double score_frame(const FrameView& dist, const FrameView& ref) const { return frame_impl(dist, &ref); }

    // One score per frame (iqa_score_frames); an empty list gives an empty result. NR: no refs.
    std::vector<double> score_frames(const std::vector<FrameView>& dists) const {
        return frames_impl(dists, nullptr);
    }
    std::vector<double> score_frames(const std::vector<FrameView>& dists, const std::vector<FrameView>& refs) const {
        if (refs.size() != dists.size()) {
            throw Error(IQA_ERR_INVALID_ARGUMENT, "score_frames: " + std::to_string(dists.size()) +
                                                      " distorted frames but " + std::to_string(refs.size()) +
                                                      " references");
        }
        return frames_impl(dists, &refs);
    }

private:
    double score_impl(const ImageView& dist, const ImageView* ref) const {
        const IqaImage d = dist.c_image();
        IqaImage r{};
        if (ref != nullptr) r = ref->c_image();
        double out = 0.0;
        detail::check(iqa_score(handle_, &d, ref != nullptr ? &r : nullptr, &out));
        return out;
    }

    std::vector<double> batch_impl(const std::vector<ImageView>& dists, const std::vector<ImageView>* refs) const {
        if (dists.empty()) return {};
        std::vector<IqaImage> d, r;
        d.reserve(dists.size());
        for (const ImageView& v : dists) d.push_back(v.c_image());
        if (refs != nullptr) {
            r.reserve(refs->size());
            for (const ImageView& v : *refs) r.push_back(v.c_image());
        }
        std::vector<double> out(dists.size());
        detail::check(
            iqa_score_batch(handle_, d.data(), refs != nullptr ? r.data() : nullptr, d.size(), out.data()));
        return out;
    }

    double frame_impl(const FrameView& dist, const FrameView* ref) const {
        const IqaFrame d = dist.c_frame();
        IqaFrame r{};
        if (ref != nullptr) r = ref->c_frame();
        double out = 0.0;
        detail::check(iqa_score_frame(handle_, &d, ref != nullptr ? &r : nullptr, &out));
        return out;
    }

    std::vector<double> frames_impl(const std::vector<FrameView>& dists, const std::vector<FrameView>* refs) const {
        if (dists.empty()) return {};
        std::vector<IqaFrame> d, r;
        d.reserve(dists.size());
        for (const FrameView& v : dists) d.push_back(v.c_frame());
        if (refs != nullptr) {
            r.reserve(refs->size());
            for (const FrameView& v : *refs) r.push_back(v.c_frame());
        }
        std::vector<double> out(dists.size());
        detail::check(
            iqa_score_frames(handle_, d.data(), refs != nullptr ? r.data() : nullptr, d.size(), out.data()));
        return out;
    }

    double files_impl(const char* dist_path, const char* ref_path) const {
        double out = 0.0;
        detail::check(iqa_score_files(handle_, dist_path, ref_path, &out));
        return out;
    }

    IqaMetric* handle_ = nullptr;
};

// -------------------------------------------------------------------------------------------------- Stream

// Options for Stream (iqa_stream_options_default, then chained setters; 0 in a count means its default).
class StreamOptions {
public:
    StreamOptions() noexcept { iqa_stream_options_default(&options_); }
    // Score every Nth frame pushed (frames 0, N, 2N, ...).
    StreamOptions& subsample(std::uint32_t n) noexcept { return set(options_.subsample, n); }
    // Worker threads scoring behind push().
    StreamOptions& threads(std::uint32_t n) noexcept { return set(options_.threads, n); }
    // Frames that may wait for a worker before push() blocks.
    StreamOptions& queue(std::uint32_t n) noexcept { return set(options_.queue, n); }
    // Consecutive waiting frames scored in one forward pass.
    StreamOptions& batch(std::uint32_t n) noexcept { return set(options_.batch, n); }
    // Keep only the running pooled values: no per-frame reads, no percentiles.
    StreamOptions& pooled_only(bool on) noexcept {
        options_.pooled_only = on;
        return *this;
    }
    // Device and precision of every metric (copied).
    StreamOptions& metric_options(const Options& options) noexcept {
        metric_options_ = options.c_options();
        has_metric_options_ = true;
        return *this;
    }
    // The C struct; its metric_options points into this object.
    IqaStreamOptions c_options() const noexcept {
        IqaStreamOptions out = options_;
        out.metric_options = has_metric_options_ ? &metric_options_ : nullptr;
        return out;
    }

private:
    StreamOptions& set(std::uint32_t& field, std::uint32_t n) noexcept {
        field = n;
        return *this;
    }
    IqaStreamOptions options_{};
    IqaOptions metric_options_{};
    bool has_metric_options_ = false;
};

// Several metrics over a sequence of frame pairs (iqa_stream_*): each pair pushed is copied, converted to RGB
// once for all metrics and scored behind push() in frame order. Move-only; the destructor closes it (frames
// still queued are dropped unscored: call flush() first to keep them).
class Stream {
public:
    explicit Stream(const std::vector<std::string>& metrics, const StreamOptions& options = StreamOptions())
        : metric_count_(metrics.size()) {
        std::vector<const char*> names;
        names.reserve(metrics.size());
        for (const std::string& m : metrics) names.push_back(m.c_str());
        const IqaStreamOptions c_options = options.c_options();
        detail::check(iqa_stream_open(names.data(), names.size(), &c_options, &handle_));
    }

    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;
    Stream(Stream&& other) noexcept
        : handle_(std::exchange(other.handle_, nullptr)), metric_count_(std::exchange(other.metric_count_, 0)) {}
    Stream& operator=(Stream&& other) noexcept {
        if (this != &other) {
            iqa_stream_close(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
            metric_count_ = std::exchange(other.metric_count_, 0);
        }
        return *this;
    }
    ~Stream() { iqa_stream_close(handle_); }

    IqaStream* get() const noexcept { return handle_; }
    explicit operator bool() const noexcept { return handle_ != nullptr; }
    // Metrics in the order given (frame_scores() and pooled() index them).
    std::size_t metric_count() const noexcept { return metric_count_; }

    // The next pair in display order (NR metrics only: no ref). Blocks only while the queue is full.
    void push(const FrameView& dist) { push_impl(dist, nullptr); }
    void push(const FrameView& dist, const FrameView& ref) { push_impl(dist, &ref); }

    // Waits until every frame pushed is scored.
    void flush() { detail::check(iqa_stream_flush(handle_)); }

    struct Progress {
        std::uint64_t pushed = 0;
        // Leading frames scored (or skipped by subsampling): frame_scores() reads frames below this.
        std::uint64_t done = 0;
    };
    Progress progress() const {
        Progress p;
        detail::check(iqa_stream_progress(handle_, &p.pushed, &p.done));
        return p;
    }

    // Display frame `frame`'s scores, one per metric.
    std::vector<double> frame_scores(std::uint64_t frame) const {
        std::vector<double> out(metric_count_);
        detail::check(iqa_stream_frame_scores(handle_, frame, out.data(), out.size()));
        return out;
    }

    // Metric `metric_index`'s scores pooled over every frame pushed (waits for them); `percentile` (0..100)
    // is read for IQA_POOL_PERCENTILE only.
    double pooled(std::size_t metric_index, IqaPooling method, double percentile = 0.0) {
        double out = 0.0;
        detail::check(
            iqa_stream_pooled(handle_, metric_index, static_cast<std::uint32_t>(method), percentile, &out));
        return out;
    }

private:
    void push_impl(const FrameView& dist, const FrameView* ref) {
        const IqaFrame d = dist.c_frame();
        IqaFrame r{};
        if (ref != nullptr) r = ref->c_frame();
        detail::check(iqa_stream_push(handle_, &d, ref != nullptr ? &r : nullptr));
    }

    IqaStream* handle_ = nullptr;
    std::size_t metric_count_ = 0;
};

}  // namespace iqa

#endif  // IQA_HPP
