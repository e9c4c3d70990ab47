#include "pipeline/run_ownership.h"

#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "pipeline/outputs.h"

namespace vp {

namespace fs = std::filesystem;

namespace {

std::string new_token() {
  std::random_device rd;
  const std::uint64_t v = (std::uint64_t{rd()} << 32) ^ rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::optional<nlohmann::json> read_json(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

// The tokens of the runs that wrote into dir, or nullopt when dir is no voxpress run folder.
std::optional<std::vector<std::string>> earlier_tokens(const fs::path& dir) {
  if (const auto m = read_json(dir / kRunMarker); m && m->contains("tokens") && (*m)["tokens"].is_array()) {
    std::vector<std::string> tokens;
    for (const auto& t : (*m)["tokens"])
      if (t.is_string() && t.get<std::string>().size() == 16) tokens.push_back(t.get<std::string>());
    return tokens;
  }
  // Written before the marker existed: metrics.json with our keys next to our config copy.
  if (const auto j = read_json(dir / "metrics.json"); j && j->is_object() && j->contains("voxpress_version") &&
                                                      j->contains("samples") && fs::exists(dir / "config.yaml"))
    return std::vector<std::string>{};
  return std::nullopt;
}

// Removes the entries of dir and of its direct subfolders whose names start with one of the prefixes.
void remove_temporaries(const fs::path& dir, const std::vector<std::string>& prefixes) {
  if (prefixes.empty()) return;
  auto ours = [&](const fs::path& p) {
    const std::string n = p.filename().string();
    for (const auto& pre : prefixes)
      if (n.rfind(pre, 0) == 0) return true;
    return false;
  };
  std::vector<fs::path> doomed;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (ours(e.path())) doomed.push_back(e.path());
    else if (e.is_directory() && !e.is_symlink())
      for (const auto& f : fs::directory_iterator(e.path()))
        if (ours(f.path())) doomed.push_back(f.path());
  }
  for (const auto& p : doomed) fs::remove_all(p);
}

// Atomically, under a temporary name carrying the token (as every temporary of the run).
// A marker's temporary (".vp-<16 hex>-.voxpress-run"): a run killed while writing its marker
// leaves only this, and the folder is still as good as empty.
bool is_marker_temporary(const fs::path& p) {
  const std::string n = p.filename().string();
  return n.size() == 4 + 16 + 1 + std::string(kRunMarker).size() && n.rfind(".vp-", 0) == 0 &&
         n.substr(21) == kRunMarker;
}

// Empty, or holding only marker temporaries and an empty samples/ of a run killed at its start.
bool nothing_but_a_killed_start(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (is_marker_temporary(e.path())) continue;
    if (e.path().filename() == "samples" && e.is_directory() && fs::is_empty(e.path())) continue;
    return false;
  }
  return true;
}

void write_marker(const fs::path& dir, const std::string& token) {
  const nlohmann::json m = {{"voxpress_version", voxpress_version()}, {"tokens", {token}}};
  const fs::path tmp = dir / (temporary_prefix(token) + kRunMarker);
  {
    std::ofstream out(tmp, std::ios::binary);
    out << m.dump(2) << "\n";
    if (!out.flush())
      throw InputError("cannot write " + (dir / kRunMarker).string() + "; expected a writable run folder");
  }
  fs::rename(tmp, dir / kRunMarker);
}

}  // namespace

std::string temporary_prefix(const std::string& token) { return ".vp-" + token + "-"; }

fs::path sample_work_dir(const fs::path& run_dir, const std::string& token, const std::string& sample) {
  return run_dir / "samples" / (temporary_prefix(token) + sample + ".partial");
}

fs::path sample_result_file(const fs::path& run_dir, const std::string& token, const std::string& sample) {
  return run_dir / "samples" / (temporary_prefix(token) + sample + ".result.json");
}

RunFolder claim_run_folder(const fs::path& dir, const std::vector<std::string>& sample_names, bool force) {
  RunFolder run{dir, new_token()};
  try {
    const bool empty = !fs::exists(dir) || (fs::is_directory(dir) && nothing_but_a_killed_start(dir));
    std::optional<std::vector<std::string>> tokens = empty ? std::vector<std::string>{} : earlier_tokens(dir);
    if (!tokens) {
      if (!fs::is_directory(dir))
        throw InputError("cannot use " + dir.string() +
                         " as the run folder: it is a file; expected a folder (--out DIR or `output:`)");
      if (!force)
        throw InputError(dir.string() + " is not empty and is not a voxpress run folder (no " + kRunMarker +
                         "); choose another --out, or pass --force to write into it (its files are left alone)");
      std::vector<std::string> taken;
      for (const char* name :
           {"metrics.csv", "metrics.json", "config.yaml", "run.log", "report.html", "fits.json", "series", "plots"})
        if (fs::exists(fs::symlink_status(dir / name))) taken.push_back(name);
      for (const auto& s : sample_names)
        if (fs::exists(fs::symlink_status(dir / "samples" / s))) taken.push_back("samples/" + s);
      if (!taken.empty()) {
        std::string list;
        for (const auto& t : taken) list += (list.empty() ? "" : ", ") + t;
        throw InputError(dir.string() +
                         ": --force never replaces files voxpress did not write, and these names are "
                         "voxpress outputs: " +
                         list + "; move them or choose another --out");
      }
      tokens = std::vector<std::string>{};
    }
    fs::create_directories(dir);
    if (empty)
      for (const auto& e : fs::directory_iterator(dir))
        if (is_marker_temporary(e.path())) fs::remove(e.path());
    std::vector<std::string> prefixes;
    for (const auto& t : *tokens) prefixes.push_back(temporary_prefix(t));
    remove_temporaries(dir, prefixes);
    write_marker(dir, run.token);
    fs::create_directories(dir / "samples");
  } catch (const fs::filesystem_error& e) {
    throw InputError("cannot prepare the run folder " + dir.string() + ": " + e.code().message() +
                     "; expected a writable folder (--out DIR or `output:`)");
  }
  return run;
}

}  // namespace vp
