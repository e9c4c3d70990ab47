#include "core/atomic_file.h"

#include <unistd.h>
#include <atomic>
#include <fstream>
#include <mutex>

#include "core/error.h"

namespace vp {

namespace {

std::mutex prefix_mutex;
std::string& temporary_prefix() {
  static std::string prefix = ".";
  return prefix;
}

}  // namespace

std::string set_temporary_prefix(const std::string& prefix) {
  std::lock_guard<std::mutex> lock(prefix_mutex);
  std::string previous = temporary_prefix();
  temporary_prefix() = prefix;
  return previous;
}

void write_atomically(const std::filesystem::path& path,
                      const std::function<void(const std::filesystem::path& tmp_path)>& write) {
  static std::atomic<unsigned> counter{0};
  std::string prefix;
  {
    std::lock_guard<std::mutex> lock(prefix_mutex);
    prefix = temporary_prefix();
  }
  // Keep the extension last: some writers pick the format from it.
  std::filesystem::path tmp = path.parent_path() / (prefix + "tmp" + std::to_string(::getpid()) + "_" +
                                                    std::to_string(counter++) + "_" + path.filename().string());
  try {
    write(tmp);
    std::filesystem::rename(tmp, path);
  } catch (const std::filesystem::filesystem_error& e) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    // An output that cannot be written is the user's path to fix (exit 2), not an internal error.
    throw InputError("cannot write " + path.string() + ": " + e.code().message());
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
}

void write_text_atomically(const std::filesystem::path& path, const std::string& text) {
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    out.close();
    if (!out) throw InputError("cannot write " + path.string());
  });
}

void write_bytes_atomically(const std::filesystem::path& path, const std::vector<unsigned char>& bytes) {
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw InputError("cannot write " + path.string());
  });
}

}  // namespace vp
