#include "pipeline/runner.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include <tbb/info.h>
#include <tbb/task_arena.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/json_util.h"
#include "filters/io/slice_png.h"
#include "metrics/phase_fractions.h"
#include "pipeline/run_ownership.h"

namespace vp {

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

constexpr const char* kSampleRecordFile = ".voxpress-sample.json";

// "SEGV", "SIGSEGV" or "11" -> 11; 0 when unknown.
int signal_number(const std::string& text) {
  const std::string abbrev = text.rfind("SIG", 0) == 0 ? text.substr(3) : text;
  for (int s = 1; s < NSIG; ++s)
    if (const char* a = ::sigabbrev_np(s); a && abbrev == a) return s;
  try {
    return std::stoi(text);
  } catch (const std::exception&) {
    return 0;
  }
}

std::string signal_name(int s) {
  const char* a = ::sigabbrev_np(s);
  return a ? std::string("SIG") + a : "signal " + std::to_string(s);
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

// Runs one sample in this process (a worker's): never throws; a failure is recorded in the
// returned record and leaves no sample folder. A success leaves samples/<name>/ with every
// artifact and .voxpress-sample.json, the record from which --resume takes it.
// A series' reference scan as its sample reads it (format options, ROI, the config's spacing).
AnyVolume read_reference_scan(const SampleConfig& ref) {
  if (ref.file_problem) throw InputError(ref.file_problem->format());
  ReadResult r = read_volume(ref.read);
  if (ref.spacing_from_config) spacing_of(r.volume) = ref.info.spacing_um;
  return std::move(r.volume);
}

class SampleRunner {
 public:
  SampleRunner(const Config& config, const fs::path& run_dir, const std::string& token, int threads, Progress& progress)
      : config_(config), run_dir_(run_dir), token_(token), threads_(threads), progress_(progress) {}

  SampleRecord run(const SampleConfig& sample) const {
    const auto t0 = std::chrono::steady_clock::now();
    SampleRecord rec;
    rec.info = sample.info;
    rec.kind = sample.kind;
    rec.roi = sample.roi;
    const std::string& name = sample.info.name;
    const fs::path final_dir = run_dir_ / "samples" / name;
    const fs::path work_dir = sample_work_dir(run_dir_, token_, name);
    try {
      rec.settings_hash = sample_settings_hash(config_, sample);
      if (sample.file_problem) throw InputError(sample.file_problem->format());
      const std::string inputs_hash = sample_inputs_hash(config_, sample);
      fs::remove_all(work_dir);
      fs::create_directories(work_dir);
      SampleContext ctx;
      ctx.sample = sample.info;
      ctx.config_phases = &config_.phases;
      if (const SampleConfig* ref = series_reference(config_, sample)) {
        ctx.series_reference = ref->info.name;
        ctx.load_series_reference = [ref] { return read_reference_scan(*ref); };
      }
      ctx.out_dir = work_dir;
      ctx.threads = threads_;
      ctx.progress = &progress_;
      load_sample(sample, config_.phases, ctx, rec);
      for (const auto& sc : config_.stages) run_stage(sc, ctx, rec);
      rec.rows = std::move(ctx.rows);
      rec.artifacts = artifact_paths(ctx.artifacts, work_dir, final_dir, run_dir_);
      rec.ok = true;
      rec.seconds = seconds_since(t0);
      nlohmann::json done = sample_record_json(rec);
      done["inputs_sha256"] = inputs_hash;
      write_text_atomically(work_dir / kSampleRecordFile, done.dump(1) + "\n");
      fs::remove_all(final_dir);  // outputs of an earlier run of this sample
      fs::rename(work_dir, final_dir);
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
    progress_.message(name, "",
                      rec.ok
                          ? "done in " + seconds_text(rec.seconds) + ", " + std::to_string(rec.rows.size()) + " metrics"
                          : "FAILED (" + rec.error_kind + " error): " + rec.error);
    return rec;
  }

 private:
  void run_stage(const StageConfig& sc, SampleContext& ctx, SampleRecord& rec) const {
    const auto t0 = std::chrono::steady_clock::now();
    ctx.current_stage = sc.stage->name();
    ctx.details = nlohmann::json::object();
    progress_.message(ctx.sample.name, ctx.current_stage, "start");
    crash_if_asked(ctx.sample.name, ctx.current_stage);
    const std::size_t rows_before = ctx.rows.size();
    vp::run_stage(*sc.stage, sc.params, ctx);
    const double s = seconds_since(t0);
    rec.stages.push_back({ctx.current_stage, s, ctx.details});
    progress_.message(
        ctx.sample.name, ctx.current_stage,
        "done in " + seconds_text(s) + " (" + std::to_string(ctx.rows.size() - rows_before) + " metrics)");
  }

  // Test hook, honoured by worker processes only: VP_TEST_CRASH=<sample>:<signal>[:<stage>]
  // raises the signal (SEGV, ABRT, KILL, ... or a number) when that sample starts that stage
  // (default: its first stage), so that the batch's crash handling is tested deterministically.
  static void crash_if_asked(const std::string& sample, const std::string& stage) {
    const char* spec = std::getenv("VP_TEST_CRASH");
    if (!spec) return;
    std::vector<std::string> parts;
    std::stringstream ss(spec);
    for (std::string p; std::getline(ss, p, ':');) parts.push_back(p);
    if (parts.size() < 2 || parts[0] != sample) return;
    if (parts.size() >= 3 && parts[2] != stage) return;
    static bool first_stage_seen = false;
    if (parts.size() < 3 && std::exchange(first_stage_seen, true)) return;
    std::raise(signal_number(parts[1]));
  }

  static void fail(SampleRecord& rec, const std::string& kind, const std::string& message) {
    rec.ok = false;
    rec.error_kind = kind;
    rec.error = message;
  }

  const Config& config_;
  fs::path run_dir_;
  std::string token_;
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
  nlohmann::json details = {{"format", main.format},
                            {"dims", to_json(rec.dims)},
                            {"dtype", rec.dtype},
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
                       " but the grey volume " + sample.read.path + " is " + to_string(rec.dims) +
                       "; expected the same dims");
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
  return static_cast<std::uint64_t>(
      std::ceil(voxels * (static_cast<double>(sample.loaded_bytes_per_voxel()) + stage_bytes)));
}

namespace {

std::optional<std::uint64_t> read_number_file(const fs::path& p) {
  std::ifstream in(p);
  std::string text;
  if (!(in >> text)) return std::nullopt;
  try {
    return std::stoull(text);
  } catch (const std::exception&) {
    return std::nullopt;  // "max": no limit
  }
}

// What the process's memory cgroup still allows, when it sets a limit.
std::optional<std::uint64_t> cgroup_memory_left() {
  std::ifstream cg("/proc/self/cgroup");
  for (std::string line; std::getline(cg, line);) {
    if (line.rfind("0::", 0) == 0) {  // cgroup v2
      const fs::path dir = fs::path("/sys/fs/cgroup") / fs::path(line.substr(3)).relative_path();
      const auto max = read_number_file(dir / "memory.max");
      if (!max) return std::nullopt;
      const std::uint64_t used = read_number_file(dir / "memory.current").value_or(0);
      return *max > used ? *max - used : 0;
    }
  }
  const auto limit = read_number_file("/sys/fs/cgroup/memory/memory.limit_in_bytes");  // cgroup v1
  if (!limit || *limit >= (std::uint64_t{1} << 60)) return std::nullopt;
  const std::uint64_t used = read_number_file("/sys/fs/cgroup/memory/memory.usage_in_bytes").value_or(0);
  return *limit > used ? *limit - used : 0;
}

}  // namespace

std::uint64_t machine_memory_available() {
  std::uint64_t available = 0;
  std::ifstream meminfo("/proc/meminfo");
  for (std::string key; meminfo >> key;) {
    std::uint64_t kib = 0;
    meminfo >> kib;
    if (key == "MemAvailable:") available = kib * 1024;
    meminfo.ignore(256, '\n');
  }
  if (available == 0) {
    const long pages = ::sysconf(_SC_AVPHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    available = pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) : 0;
  }
  if (const auto left = cgroup_memory_left()) available = std::min(available, *left);
  return available;
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
    throw InputError(flag + " '" + text +
                     "': expected a positive size in bytes, optionally with K, M, G or T (e.g. 4G)");
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

namespace {

nlohmann::json read_options_json(const ReadOptions& o) {
  return {{"path", o.path},
          {"format", o.format},
          {"dims", o.dims ? to_json(*o.dims) : nlohmann::json(nullptr)},
          {"dtype", o.dtype ? nlohmann::json(to_string(*o.dtype)) : nlohmann::json(nullptr)},
          {"big_endian", o.big_endian},
          {"header_bytes", o.header_bytes},
          {"dataset", o.dataset},
          {"roi", o.roi ? nlohmann::json{{"min", o.roi->min}, {"size", o.roi->size}} : nlohmann::json(nullptr)}};
}

// The files a volume path reads, sorted: a folder's files, a glob's matches, a file (with the
// data files beside a .mhd / .nhdr header that share its stem).
std::vector<fs::path> input_files(const std::string& path) {
  std::vector<fs::path> files;
  const fs::path p(path);
  std::error_code ec;
  auto add_matching = [&](const fs::path& dir, auto&& keep) {
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.is_regular_file() && keep(e.path())) files.push_back(e.path());
  };
  if (fs::is_directory(p, ec)) {
    add_matching(p, [](const fs::path&) { return true; });
  } else if (path.find_first_of("*?[") != std::string::npos) {
    const std::string pattern = p.filename().string();
    add_matching(p.parent_path(),
                 [&](const fs::path& f) { return ::fnmatch(pattern.c_str(), f.filename().c_str(), 0) == 0; });
  } else {
    files.push_back(p);
    std::string ext = p.extension().string();
    for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (ext == ".mhd" || ext == ".nhdr") {
      const std::string stem = p.stem().string() + ".";
      add_matching(p.parent_path(),
                   [&](const fs::path& f) { return f != p && f.filename().string().rfind(stem, 0) == 0; });
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

std::string sample_settings_hash(const Config& config, const SampleConfig& sample) {
  const SampleInfo& i = sample.info;
  nlohmann::json phases = nlohmann::json::array();
  for (const auto& ph : config.phases.phases()) phases.push_back({ph.name, ph.label, to_string(ph.role)});
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& sc : config.stages) {
    nlohmann::json params = nlohmann::json::object();
    for (const auto& spec : sc.params.specs()) params[spec.name] = YAML::Dump(sc.params.node(spec.name));
    stages.push_back({{"stage", sc.stage->name()}, {"params", params}});
  }
  const nlohmann::json j = {
      {"voxpress_version", voxpress_version()},
      {"sample",
       {{"name", i.name},
        {"series", i.series},
        {"pressure_MPa", format_number(i.pressure_MPa)},
        {"path", i.path},
        {"labels_path", i.labels_path},
        {"pressing_axis", i.pressing_axis},
        {"kind", sample.kind},
        {"spacing_um",
         {format_number(i.spacing_um[0]), format_number(i.spacing_um[1]), format_number(i.spacing_um[2])}},
        {"spacing_from_config", sample.spacing_from_config},
        {"read", read_options_json(sample.read)},
        {"labels", sample.labels ? read_options_json(*sample.labels) : nlohmann::json(nullptr)}}},
      {"phases", phases},
      {"stages", stages},
  };
  const std::string text = j.dump();
  return sha256_hex(text.data(), text.size());
}

std::string sample_inputs_hash(const Config& config, const SampleConfig& sample) {
  std::vector<std::string> paths = {sample.read.path, sample.labels ? sample.labels->path : std::string()};
  const bool reads_reference = std::any_of(config.stages.begin(), config.stages.end(),
                                           [](const StageConfig& sc) { return sc.stage->reads_series_reference(); });
  if (const SampleConfig* ref = series_reference(config, sample); ref && reads_reference)
    paths.push_back(ref->read.path);
  std::string digests;
  for (const std::string& path : paths) {
    if (path.empty()) continue;
    for (const auto& f : input_files(path)) digests += f.string() + " " + sha256_file(f.string()) + "\n";
  }
  return sha256_hex(digests.data(), digests.size());
}

const SampleConfig* series_reference(const Config& config, const SampleConfig& sample) {
  const SampleConfig* first = nullptr;
  for (const SampleConfig& s : config.samples)
    if (s.info.series == sample.info.series && (!first || s.info.pressure_MPa < first->info.pressure_MPa)) first = &s;
  return first == &sample || (first && first->info.name == sample.info.name) ? nullptr : first;
}

int sample_worker_main(const std::vector<std::string>& args, const Registry& registry) {
  std::map<std::string, std::string> opt;
  std::string config_path;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i].rfind("--", 0) == 0 && i + 1 < args.size()) opt[args[i]] = args[i + 1], ++i;
    else config_path = args[i];
  }
  const fs::path run_dir = opt["--run-dir"];
  const std::string token = opt["--token"], name = opt["--sample"];
  if (config_path.empty() || run_dir.empty() || token.empty() || name.empty()) {
    std::cerr << "voxpress __sample: internal command of `voxpress run`; not for direct use\n";
    return 2;
  }
  set_temporary_prefix(temporary_prefix(token));
  Progress progress(false);  // stderr: a pipe the runner reads, forwards and logs
  SampleRecord rec;
  rec.info.name = name;
  try {
    const Config config = load_config(config_path, registry);
    if (config.sha256 != opt["--config-sha256"])
      throw InputError(config_path + " changed while the batch ran (its SHA-256 is now " + config.sha256 +
                       "); run the batch again");
    const auto it = std::find_if(config.samples.begin(), config.samples.end(),
                                 [&](const SampleConfig& c) { return c.info.name == name; });
    if (it == config.samples.end()) throw InputError(config_path + ": no sample named '" + name + "'");
    const int threads = std::max(1, std::atoi(opt["--threads"].c_str()));
    const SampleRunner runner(config, run_dir, token, threads, progress);
    tbb::task_arena arena(threads);
    rec = arena.execute([&] { return runner.run(*it); });
  } catch (const std::exception& e) {
    rec.ok = false;
    rec.error_kind = "input";
    rec.error = e.what();
  }
  write_text_atomically(sample_result_file(run_dir, token, name), sample_record_json(rec).dump() + "\n");
  return 0;
}

namespace {

// One sample's worker process: its pid, the read end of its merged stdout/stderr and what its
// progress lines said last.
struct Worker {
  pid_t pid = -1;
  int fd = -1;
  std::size_t k = 0;  // index into the batch's chosen samples
  std::string pending, stage, last_line;
};

// fork + exec with only async-signal-safe calls in the child (the parent may run oneTBB threads).
// The worker dies with the runner (PR_SET_PDEATHSIG), so a killed batch leaves no orphans.
Worker spawn_worker(const std::vector<std::string>& argv, std::size_t k) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  Worker w;
  w.pid = pid;
  w.fd = fds[0];
  w.k = k;
  return w;
}

// Forwards a worker's progress line to the batch's progress (restamped with the batch's clock)
// and remembers its stage and text for a crash report.
void forward_line(Worker& w, const std::string& sample, const std::string& line, Progress& progress) {
  std::string text = line;
  const std::size_t close = line.find("] ");
  if (!line.empty() && line[0] == '[' && close != std::string::npos) text = line.substr(close + 2);
  else text = sample + ": " + line;  // not a progress line: a library's message
  const std::string who = sample + " / ";
  if (text.rfind(who, 0) == 0) {
    const std::size_t colon = text.find(": ", who.size());
    if (colon != std::string::npos) w.stage = text.substr(who.size(), colon - who.size());
  }
  w.last_line = text;
  progress.message("", "", text);
}

// The record of a worker that ended: the one it wrote, or a crash record naming the signal or
// exit status, the stage and the last progress line.
SampleRecord collect_worker(const Worker& w, int status, const SampleConfig& sample, const fs::path& run_dir,
                            const std::string& token, Progress& progress) {
  const fs::path result = sample_result_file(run_dir, token, sample.info.name);
  SampleRecord rec;
  bool reported = false;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    try {
      rec = sample_record_from_json(nlohmann::json::parse(std::ifstream(result, std::ios::binary)));
      reported = true;
    } catch (const std::exception&) {
    }
  }
  std::error_code ec;
  fs::remove(result, ec);
  if (reported) {
    if (rec.info.path.empty()) {  // failed before it could resolve its sample
      rec.info = sample.info;
      rec.kind = sample.kind;
      rec.roi = sample.roi;
    }
    return rec;
  }
  rec.info = sample.info;
  rec.kind = sample.kind;
  rec.roi = sample.roi;
  rec.ok = false;
  rec.error_kind = "crash";
  WorkerFailure f;
  f.stage = w.stage;
  f.last_progress = w.last_line;
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    f.signal = signal_name(sig);
    rec.error = "worker process killed by " + f.signal + " (" + ::strsignal(sig) + ")" +
                (sig == SIGKILL ? "; the kernel's out-of-memory killer sends SIGKILL when memory runs out" : "");
  } else {
    f.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    rec.error = "worker process exited with status " + std::to_string(f.exit_status) + " without a result";
  }
  rec.error += " during stage '" + (f.stage.empty() ? std::string("start") : f.stage) + "'; last progress: '" +
               f.last_progress + "'";
  rec.worker_failure = f;
  // Its working folder, and a sample folder it may have renamed into place before it died.
  fs::remove_all(sample_work_dir(run_dir, token, sample.info.name), ec);
  fs::remove_all(run_dir / "samples" / sample.info.name, ec);
  progress.message(sample.info.name, "", "FAILED (crash): " + rec.error);
  return rec;
}

// Why --resume must run the sample again, or nullopt with `reused` filled when its folder is
// complete and its inputs and settings are unchanged.
std::optional<std::string> resume_reason(const Config& config, const SampleConfig& sample, const fs::path& run_dir,
                                         SampleRecord& reused) {
  const fs::path dir = run_dir / "samples" / sample.info.name;
  if (!fs::is_directory(dir)) return "missing";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(std::ifstream(dir / kSampleRecordFile, std::ios::binary));
    reused = sample_record_from_json(j);
  } catch (const std::exception&) {
    return "incomplete";
  }
  if (!reused.ok || !j.contains("inputs_sha256")) return "incomplete";
  if (reused.settings_hash != sample_settings_hash(config, sample)) return "settings changed";
  if (sample.file_problem) return "input changed";
  try {
    if (j["inputs_sha256"] != sample_inputs_hash(config, sample)) return "input changed";
  } catch (const std::exception&) {
    return "input changed";
  }
  reused.reused = true;
  return std::nullopt;
}

// Runs the queued samples (indices into chosen) in worker processes, at most `jobs` at once and
// within the memory budget, and fills their records.
void run_workers(const Config& config, const std::vector<std::size_t>& chosen, const std::vector<std::size_t>& queue,
                 const std::vector<std::uint64_t>& estimate, const RunRecord& run, const RunFolder& folder,
                 const fs::path& program, Progress& progress, std::vector<SampleRecord>& records) {
  std::vector<Worker> workers;
  // A stop from the caller's progress hook (Ctrl-C in Python) unwinds through here: the workers
  // still running are killed and reaped and their working folders removed, so nothing is left
  // running; the samples already finished stay in place for --resume.
  struct StopWorkersOnUnwind {
    std::vector<Worker>& workers;
    const Config& config;
    const std::vector<std::size_t>& chosen;
    const RunFolder& folder;
    ~StopWorkersOnUnwind() {
      for (Worker& w : workers) {
        ::kill(w.pid, SIGKILL);
        ::close(w.fd);
        int status = 0;
        while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
        }
        std::error_code ec;
        fs::remove_all(sample_work_dir(folder.dir, folder.token, config.samples[chosen[w.k]].info.name), ec);
      }
    }
  } stop_on_unwind{workers, config, chosen, folder};
  std::size_t next = 0, finished = 0;
  std::uint64_t in_use = 0;
  while (next < queue.size() || !workers.empty()) {
    progress_point(static_cast<double>(finished) / static_cast<double>(queue.size()));
    while (next < queue.size() && static_cast<int>(workers.size()) < run.jobs) {
      const std::size_t k = queue[next];
      if (!workers.empty() && in_use + estimate[k] > run.memory_budget_bytes) break;
      const SampleConfig& s = config.samples[chosen[k]];
      workers.push_back(spawn_worker({program.string(), "__sample", config.path.string(), "--run-dir",
                                      folder.dir.string(), "--token", folder.token, "--sample", s.info.name,
                                      "--threads", std::to_string(run.threads), "--config-sha256", config.sha256},
                                     k));
      in_use += estimate[k];
      ++next;
    }
    std::vector<pollfd> fds;
    for (const auto& w : workers) fds.push_back({w.fd, POLLIN, 0});
    // Wakes at least every 0.2 s so that the progress hook is polled while workers compute.
    if (::poll(fds.data(), fds.size(), 200) < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
    }
    for (std::size_t i = fds.size(); i-- > 0;) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      Worker& w = workers[i];
      const std::string& name = config.samples[chosen[w.k]].info.name;
      char buf[65536];
      const ssize_t n = ::read(w.fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) {
        w.pending.append(buf, static_cast<std::size_t>(n));
        for (std::size_t eol; (eol = w.pending.find('\n')) != std::string::npos;) {
          forward_line(w, name, w.pending.substr(0, eol), progress);
          w.pending.erase(0, eol + 1);
        }
        continue;
      }
      // End of output: the worker has exited (or closed its streams just before).
      if (!w.pending.empty()) forward_line(w, name, w.pending, progress);
      ::close(w.fd);
      int status = 0;
      rusage usage{};
      while (::wait4(w.pid, &status, 0, &usage) < 0 && errno == EINTR) {
      }
      SampleRecord rec = collect_worker(w, status, config.samples[chosen[w.k]], folder.dir, folder.token, progress);
      rec.memory_estimate_bytes = estimate[w.k];
      rec.peak_rss_bytes = static_cast<std::uint64_t>(usage.ru_maxrss) * 1024;  // Linux: KiB
      records[w.k] = std::move(rec);
      in_use -= estimate[w.k];
      ++finished;
      workers.erase(workers.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
}

SampleRecord refused_sample(const SampleConfig& sample, const std::string& kind, const std::string& error) {
  SampleRecord rec;
  rec.info = sample.info;
  rec.kind = sample.kind;
  rec.roi = sample.roi;
  rec.error_kind = kind;
  rec.error = error;
  return rec;
}

// Restores the default temporary prefix when the run ends, however it ends.
struct TemporaryPrefix {
  explicit TemporaryPrefix(const std::string& prefix) : previous(set_temporary_prefix(prefix)) {}
  ~TemporaryPrefix() { set_temporary_prefix(previous); }
  std::string previous;
};

}  // namespace

RunResult run_batch(const Config& config, const RunOptions& options, Progress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<std::size_t> chosen = selected_samples(config, options.only);
  RunResult result;
  result.run_dir = (options.out_dir.empty() ? config.output : fs::absolute(options.out_dir)).lexically_normal();
  const fs::path& run_dir = result.run_dir;
  std::vector<std::string> names;
  for (std::size_t k : chosen) names.push_back(config.samples[k].info.name);
  const RunFolder folder = claim_run_folder(run_dir, names, options.force);
  const TemporaryPrefix prefix(temporary_prefix(folder.token));
  {
    std::error_code ec;
    fs::remove(run_dir / "run.log", ec);  // ours: the folder is a run folder
  }
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
  run.resumed = options.resume;
  const std::uint64_t machine = machine_memory_available();
  progress.message("", "run",
                   config.path.string() + ": " + std::to_string(chosen.size()) + " samples, " +
                       std::to_string(config.stages.size()) + " stages, " + std::to_string(run.jobs) + " jobs, " +
                       std::to_string(run.threads) + " threads, memory budget " +
                       format_bytes(run.memory_budget_bytes) + " (available " + format_bytes(machine) + ") -> " +
                       run_dir.string());

  // Each sample is taken over (--resume), refused (unreadable, too big) or queued for a worker.
  std::vector<SampleRecord> records(chosen.size());
  std::vector<std::uint64_t> estimate(chosen.size());
  std::vector<std::size_t> queue;
  for (std::size_t k = 0; k < chosen.size(); ++k) {
    const SampleConfig& s = config.samples[chosen[k]];
    const std::string& name = s.info.name;
    if (options.resume) {
      const std::optional<std::string> reason = resume_reason(config, s, run_dir, records[k]);
      if (!reason) {
        records[k].memory_estimate_bytes = estimate_sample_bytes(s, config.stages);
        progress.message(name, "", "complete with unchanged inputs and settings: kept (--resume)");
        continue;
      }
      run.redone.push_back({name, *reason});
      progress.message(name, "", "run again (--resume): " + *reason);
      records[k] = SampleRecord();
    }
    std::error_code ec;
    if (s.file_problem) {
      progress.message(name, "", "FAILED (input error): " + s.file_problem->format());
      records[k] = refused_sample(s, "input", s.file_problem->format());
      fs::remove_all(run_dir / "samples" / name, ec);  // no stale folder of an earlier run
      continue;
    }
    estimate[k] = estimate_sample_bytes(s, config.stages);
    std::string refusal;
    if (estimate[k] > run.memory_budget_bytes)
      refusal = "refused: needs about " + format_bytes(estimate[k]) + " (" + to_string(s.loaded_dims()) +
                " voxels), more than the memory budget " + format_bytes(run.memory_budget_bytes) +
                "; raise --max-memory if the machine has the memory, or crop the sample with `roi`";
    else if (estimate[k] > machine)
      refusal = "refused: needs about " + format_bytes(estimate[k]) + " (" + to_string(s.loaded_dims()) +
                " voxels), more than this machine has available (" + format_bytes(machine) +
                ", MemAvailable and the cgroup limit; budget " + format_bytes(run.memory_budget_bytes) +
                "); crop the sample with `roi` or run it on a larger machine";
    if (!refusal.empty()) {
      progress.message(name, "", "FAILED (memory error): " + refusal);
      records[k] = refused_sample(s, "memory", refusal);
      records[k].memory_estimate_bytes = estimate[k];
      fs::remove_all(run_dir / "samples" / name, ec);
      continue;
    }
    queue.push_back(k);
  }

  const fs::path program = options.worker_program.empty() ? fs::path("/proc/self/exe") : options.worker_program;
  {
    const ScopedProgressRange samples_part(0.0, 0.95);  // the report stages take the rest
    run_workers(config, chosen, queue, estimate, run, folder, program, progress, records);
  }

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
  progress_point(1.0);
  progress.message("", "run",
                   std::to_string(run.samples.size() - static_cast<std::size_t>(result.failed_samples)) + " of " +
                       std::to_string(run.samples.size()) + " samples ok in " + seconds_text(run.seconds) +
                       "; results in " + run_dir.string());
  return result;
}

}  // namespace vp
