// libFuzzer target for the YAML batch config's parser and validator (pipeline/config.h): any
// input must end in diagnostics or an InputError, never a crash or another exception. The
// registry is empty (linking every stage would build the whole project under the fuzzer):
// keys, types, samples, the phase table and file headers are validated; stage names are unknown.
#include "core/stage.h"
#include "fuzz/fuzz_common.h"
#include "pipeline/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const vp::Registry registry;
  const std::string path = vp::fuzz::write_input("config.yaml", data, size);
  try {
    vp::Diagnostics diags(path);
    vp::parse_config(path, registry, diags);
  } catch (const vp::InputError&) {
  }
  return 0;
}
