#include "pipeline/runner.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>

#include <tbb/info.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"
#include "filters/io/slice_png.h"
#include "metrics/phase_fractions.h"

namespace vp {

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", s);
  return buf;
}

// Label values as u8 with the config's phase table; without one, each label present becomes
// "phase<N>" so that nothing is dropped.
LabelVolume make_labels(const AnyVolume& volume, const PhaseTable& phases) {
  Volume<std::uint8_t> labels = to_labels_u8(volume);
  labels.spacing_um = spacing_of(volume);
  labels.provenance = provenance_of(volume);
  if (!phases.empty()) return LabelVolume(std::move(labels), phases);
  const auto counts = count_labels(labels);
  std::vector<int> present;
  for (int l = 0; l < 256; ++l)
    if (counts[static_cast<std::size_t>(l)] > 0) present.push_back(l);
  return LabelVolume(std::move(labels), PhaseTable::unnamed(present));
}

// Artifact paths as the run folder will hold them: the sample's working folder is renamed to
// its final name once the sample succeeds. A file written again by a later stage (grey_xy.png
// by preprocess, labels_*.png by segment and cleanup) is listed once, where it first appeared.
std::vector<std::string> artifact_paths(const std::vector<fs::path>& artifacts, const fs::path& work_dir,
                                        const fs::path& final_dir, const fs::path& run_dir) {
  std::vector<std::string> out;
  for (const auto& a : artifacts) {
    fs::path p = a.is_absolute() ? a : work_dir / a;
    const fs::path rel = p.lexically_normal().lexically_relative(work_dir);
    if (!rel.empty() && *rel.begin() != "..") p = final_dir / rel;
    std::string path = p.lexically_normal().lexically_relative(run_dir).generic_string();
    if (std::find(out.begin(), out.end(), path) == out.end()) out.push_back(std::move(path));
  }
  return out;
}

// The report gallery's slices of the volumes as read, mid-z plane: grey_xy.png for a sample
// with a grey volume, labels_xy.png (labels over the grey when there is one) for a sample
// whose labels come from a file. Stages that change the volumes write them again.
void write_input_slices(SampleContext& ctx) {
  if (ctx.grey) {
    const fs::path path = ctx.out_dir / "grey_xy.png";
    write_slice_png(*ctx.grey, Plane::xy, -1, path.string());
    ctx.artifacts.push_back(path);
  }
  if (ctx.labels) {
    const fs::path path = ctx.out_dir / "labels_xy.png";
    write_label_overlay_png(ctx.grey ? &*ctx.grey : nullptr, static_cast<const Volume<std::uint8_t>&>(*ctx.labels),
                            Plane::xy, -1, path.string());
    ctx.artifacts.push_back(path);
  }
}

class SampleRunner {
 public:
  SampleRunner(const Config& config, const fs::path& run_dir, int threads, Progress& progress)
      : config_(config), run_dir_(run_dir), threads_(threads), progress_(progress) {}

  // Never throws: a failure is recorded in the returned record and leaves no sample folder.
  SampleRecord run(const SampleConfig& sample) const {
    const auto t0 = std::chrono::steady_clock::now();
    SampleRecord rec;
    rec.info = sample.info;
    rec.kind = sample.kind;
    rec.roi = sample.roi;
    const std::string& name = sample.info.name;
    const fs::path final_dir = run_dir_ / "samples" / name;
    const fs::path work_dir = run_dir_ / "samples" / (".partial-" + name);
    try {
      if (sample.file_problem) throw InputError(sample.file_problem->format());
      fs::remove_all(work_dir);
      fs::create_directories(work_dir);
      SampleContext ctx;
      ctx.sample = sample.info;
      ctx.config_phases = &config_.phases;
      ctx.out_dir = work_dir;
      ctx.threads = threads_;
      ctx.progress = &progress_;
      load_sample(sample, config_.phases, ctx, rec);
      for (const auto& sc : config_.stages) run_stage(sc, ctx, rec);
      rec.rows = std::move(ctx.rows);
      rec.artifacts = artifact_paths(ctx.artifacts, work_dir, final_dir, run_dir_);
      fs::remove_all(final_dir);  // outputs of an earlier run of this sample
      fs::rename(work_dir, final_dir);
      rec.ok = true;
    } catch (const InputError& e) {
      fail(rec, "input", e.what());
    } catch (const ComputeError& e) {
      fail(rec, "compute", e.what());
    } catch (const std::exception& e) {
      fail(rec, "internal", e.what());
    } catch (...) {
      fail(rec, "internal", "unknown exception");
    }
    if (!rec.ok) {
      // No partial output: neither the working folder nor a stale one from an earlier run.
      std::error_code ec;
      fs::remove_all(work_dir, ec);
      fs::remove_all(final_dir, ec);
      rec.rows.clear();
      rec.artifacts.clear();
    }
    rec.seconds = seconds_since(t0);
    progress_.message(name, "", rec.ok ? "done in " + seconds_text(rec.seconds) + ", " + std::to_string(rec.rows.size()) + " metrics"
                                       : "FAILED (" + rec.error_kind + " error): " + rec.error);
    return rec;
  }

 private:
  void run_stage(const StageConfig& sc, SampleContext& ctx, SampleRecord& rec) const {
    const auto t0 = std::chrono::steady_clock::now();
    ctx.current_stage = sc.stage->name();
    ctx.details = nlohmann::json::object();
    progress_.message(ctx.sample.name, ctx.current_stage, "start");
    const std::size_t rows_before = ctx.rows.size();
    sc.stage->run(sc.params, ctx);
    const double s = seconds_since(t0);
    rec.stages.push_back({ctx.current_stage, s, ctx.details});
    progress_.message(ctx.sample.name, ctx.current_stage,
                      "done in " + seconds_text(s) + " (" + std::to_string(ctx.rows.size() - rows_before) + " metrics)");
  }

  static void fail(SampleRecord& rec, const std::string& kind, const std::string& message) {
    rec.ok = false;
    rec.error_kind = kind;
    rec.error = message;
  }

  const Config& config_;
  fs::path run_dir_;
  int threads_;
  Progress& progress_;
};

std::vector<std::size_t> selected_samples(const Config& config, const std::vector<std::string>& only) {
  std::vector<std::size_t> out;
  for (const auto& name : only) {
    bool found = false;
    for (std::size_t i = 0; i < config.samples.size(); ++i)
      if (config.samples[i].info.name == name) {
        found = true;
        if (std::find(out.begin(), out.end(), i) == out.end()) out.push_back(i);
      }
    if (!found) {
      std::string names;
      for (const auto& s : config.samples) names += (names.empty() ? "" : ", ") + s.info.name;
      throw InputError("--only: no sample named '" + name + "' in " + config.path.string() + "; samples: " + names);
    }
  }
  if (only.empty())
    for (std::size_t i = 0; i < config.samples.size(); ++i) out.push_back(i);
  std::sort(out.begin(), out.end());  // config order, whatever the order of --only
  return out;
}

// Creates RUN/samples and clears what an interrupted earlier run may have left: working folders
// of samples (.partial-*), temporary files of atomic writes (.tmp*) and the old log.
void prepare_run_folder(const fs::path& run_dir) {
  try {
    fs::create_directories(run_dir / "samples");
    for (const fs::path& dir : {run_dir, run_dir / "samples"})
      for (const auto& e : fs::directory_iterator(dir)) {
        const std::string n = e.path().filename().string();
        if (n.rfind(".partial-", 0) == 0 || n.rfind(".tmp", 0) == 0) fs::remove_all(e.path());
      }
    fs::remove(run_dir / "run.log");
  } catch (const fs::filesystem_error& e) {
    throw InputError("cannot prepare the run folder " + run_dir.string() + ": " + e.code().message() +
                     "; expected a writable folder (--out DIR or `output:`)");
  }
}

void write_config_copy(const Config& config, const fs::path& run_dir) {
  std::ifstream in(config.path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  write_text_atomically(run_dir / "config.yaml", text.str());
}

}  // namespace

void load_sample(const SampleConfig& sample, const PhaseTable& phases, SampleContext& ctx, SampleRecord& rec) {
  const auto t0 = std::chrono::steady_clock::now();
  ctx.current_stage = "read";
  ctx.report("reading " + sample.read.path);
  ReadResult main = read_volume(sample.read);
  if (sample.spacing_from_config) spacing_of(main.volume) = sample.info.spacing_um;
  ctx.sample.spacing_um = rec.info.spacing_um = spacing_of(main.volume);
  rec.input_sha256 = provenance_of(main.volume).sha256;
  rec.dims = dims_of(main.volume);
  rec.dtype = to_string(dtype_of(main.volume));
  nlohmann::json details = {{"format", main.format}, {"dims", to_json(rec.dims)}, {"dtype", rec.dtype},
                            {"spacing_um", to_json(rec.info.spacing_um)}};
  if (sample.kind == "labels") {
    ctx.labels = make_labels(main.volume, phases);
  } else {
    ctx.grey = std::move(main.volume);
  }
  if (sample.labels) {
    ReadResult comp = read_volume(*sample.labels);
    if (!(dims_of(comp.volume) == rec.dims))
      throw InputError(sample.labels->path + ": label volume is " + to_string(dims_of(comp.volume)) +
                       " but the grey volume " + sample.read.path + " is " + to_string(rec.dims) + "; expected the same dims");
    spacing_of(comp.volume) = rec.info.spacing_um;  // one sample, one voxel grid
    rec.labels_sha256 = provenance_of(comp.volume).sha256;
    ctx.labels = make_labels(comp.volume, phases);
    details["labels_format"] = comp.format;
  }
  write_input_slices(ctx);
  const double s = seconds_since(t0);
  rec.stages.push_back({"read", s, details});
  ctx.report("read " + to_string(rec.dims) + " " + rec.dtype + " in " + seconds_text(s));
}

std::uint64_t estimate_sample_bytes(const SampleConfig& sample, const std::vector<StageConfig>& stages) {
  double stage_bytes = 0;
  for (const auto& sc : stages) stage_bytes = std::max(stage_bytes, sc.stage->bytes_per_voxel());
  const double voxels = static_cast<double>(sample.loaded_dims().count());
  return static_cast<std::uint64_t>(std::ceil(voxels * (static_cast<double>(sample.loaded_bytes_per_voxel()) + stage_bytes)));
}

std::uint64_t default_memory_budget() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return std::uint64_t{4} << 30;  // unknown: assume a small machine
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) / 2;
}

std::uint64_t parse_bytes(const std::string& text, const std::string& flag) {
  std::size_t used = 0;
  double value = -1;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit.size() > 1 && unit.back() == 'B') unit.pop_back();
  if (unit.size() > 1 && unit.back() == 'I') unit.pop_back();
  double scale = 0;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "K") scale = 1024.0;
  else if (unit == "M") scale = 1024.0 * 1024;
  else if (unit == "G") scale = 1024.0 * 1024 * 1024;
  else if (unit == "T") scale = 1024.0 * 1024 * 1024 * 1024;
  if (used == 0 || scale == 0 || !(value > 0) || !std::isfinite(value))
    throw InputError(flag + " '" + text + "': expected a positive size in bytes, optionally with K, M, G or T (e.g. 4G)");
  return static_cast<std::uint64_t>(value * scale);
}

std::string format_bytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

RunResult run_batch(const Config& config, const RunOptions& options, Progress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<std::size_t> chosen = selected_samples(config, options.only);
  RunResult result;
  result.run_dir = (options.out_dir.empty() ? config.output : fs::absolute(options.out_dir)).lexically_normal();
  const fs::path& run_dir = result.run_dir;
  prepare_run_folder(run_dir);
  progress.set_log((run_dir / "run.log").string());
  write_config_copy(config, run_dir);

  RunRecord& run = result.record;
  run.config_path = config.path.string();
  run.config_sha256 = config.sha256;
  run.version = voxpress_version();
  run.threads = tbb::info::default_concurrency();
  run.jobs = std::max(1, options.jobs > 0 ? options.jobs : run.threads);
  run.memory_budget_bytes = options.max_memory > 0 ? options.max_memory : default_memory_budget();
  run.started = utc_timestamp();
  progress.message("", "run", config.path.string() + ": " + std::to_string(chosen.size()) + " samples, " +
                                  std::to_string(config.stages.size()) + " stages, " + std::to_string(run.jobs) +
                                  " jobs, " + std::to_string(run.threads) + " threads, memory budget " +
                                  format_bytes(run.memory_budget_bytes) + " -> " + run_dir.string());

  for (std::size_t k : chosen)
    if (const auto& s = config.samples[k]; s.file_problem)
      progress.message(s.info.name, "", "cannot be read, recorded as failed: " + s.file_problem->format());
  std::vector<std::uint64_t> estimate(chosen.size());
  for (std::size_t k = 0; k < chosen.size(); ++k) {
    estimate[k] = estimate_sample_bytes(config.samples[chosen[k]], config.stages);
    if (estimate[k] > run.memory_budget_bytes)
      progress.message(config.samples[chosen[k]].info.name, "", "warning: needs about " + format_bytes(estimate[k]) +
                                                                    ", more than the memory budget " +
                                                                    format_bytes(run.memory_budget_bytes) + "; it runs alone");
  }

  // Samples start in config order as soon as a job slot and their memory estimate are free. A
  // finishing sample starts the next ones from its own task, so no task ever blocks waiting.
  std::vector<SampleRecord> records(chosen.size());
  const SampleRunner runner(config, run_dir, run.threads, progress);
  tbb::task_arena arena(run.threads);
  tbb::task_group group;
  std::mutex mutex;
  std::size_t next = 0;
  int running = 0;
  std::uint64_t in_use = 0;
  std::function<void()> launch_ready = [&] {  // called with mutex held
    while (next < chosen.size() && running < run.jobs) {
      const std::size_t k = next;
      if (running > 0 && in_use + estimate[k] > run.memory_budget_bytes) break;
      ++next;
      ++running;
      in_use += estimate[k];
      group.run([&, k] {
        records[k] = runner.run(config.samples[chosen[k]]);
        std::lock_guard<std::mutex> lock(mutex);
        --running;
        in_use -= estimate[k];
        launch_ready();
      });
    }
  };
  arena.execute([&] {
    {
      std::lock_guard<std::mutex> lock(mutex);
      launch_ready();
    }
    group.wait();
  });

  run.samples = std::move(records);
  for (const auto& s : run.samples) result.failed_samples += s.ok ? 0 : 1;
  run.finished = utc_timestamp();
  run.seconds = seconds_since(t0);
  write_metrics(run_dir, run);

  // Batch stages read the finished run folder (metrics.csv / metrics.json).
  for (const auto& bc : config.report) {
    const auto tb = std::chrono::steady_clock::now();
    BatchStageRecord br;
    br.stage = bc.stage->name();
    progress.message("", br.stage, "start");
    try {
      bc.stage->run(bc.params, run_dir, progress);
      br.ok = true;
    } catch (const std::exception& e) {
      br.error = e.what();
    } catch (...) {
      br.error = "unknown exception";
    }
    if (!br.ok) ++result.failed_report_stages;
    br.seconds = seconds_since(tb);
    progress.message("", br.stage, br.ok ? "done in " + seconds_text(br.seconds) : "FAILED: " + br.error);
    run.report.push_back(br);
  }
  if (!config.report.empty()) {
    run.finished = utc_timestamp();
    run.seconds = seconds_since(t0);
    write_metrics(run_dir, run);
  }
  progress.message("", "run", std::to_string(run.samples.size() - static_cast<std::size_t>(result.failed_samples)) + " of " +
                                  std::to_string(run.samples.size()) + " samples ok in " + seconds_text(run.seconds) +
                                  "; results in " + run_dir.string());
  return result;
}

}  // namespace vp
