// voxpress only ever deletes or replaces what it wrote. A run folder carries a marker
// (RUN/.voxpress-run) naming the tokens of the runs that wrote into it; every temporary name a
// run creates (sample working folders, atomic-write temporaries, worker results) starts with
// ".vp-<token>-", so the next run removes exactly those leftovers and nothing else.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace vp {

inline constexpr const char* kRunMarker = ".voxpress-run";

struct RunFolder {
  std::filesystem::path dir;
  std::string token;  // this run's: 16 hex digits
};

// Makes dir this run's folder. An existing folder is accepted when it is empty, or a voxpress
// run folder (the marker, or the metrics.json of an earlier voxpress version); its earlier runs'
// temporaries are removed. Any other non-empty folder is refused (InputError naming it) unless
// `force`; even then, voxpress's output names (metrics.csv, metrics.json, config.yaml, run.log,
// report.html, fits.json, series/, plots/, samples/<name> of `sample_names`) must not exist there,
// so that no user file is replaced. Writes the marker with this run's token.
RunFolder claim_run_folder(const std::filesystem::path& dir, const std::vector<std::string>& sample_names, bool force);

// Names with the run's token: the prefix of its temporaries, a sample's working folder and the
// file in which a sample's worker process leaves its record.
std::string temporary_prefix(const std::string& token);
std::filesystem::path sample_work_dir(const std::filesystem::path& run_dir, const std::string& token,
                                      const std::string& sample);
std::filesystem::path sample_result_file(const std::filesystem::path& run_dir, const std::string& token,
                                         const std::string& sample);

}  // namespace vp
