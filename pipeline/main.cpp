// voxpress: the command-line entry point. Dispatches to registered commands.
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "core/error.h"
#include "pipeline/catalog.h"
#include "pipeline/runner.h"

namespace {

void print_usage(const vp::Registry& registry) {
  std::cout << "voxpress — microstructure and transport of pressed solid-state-battery composites\n\n"
               "usage: voxpress COMMAND [ARGS...]   (voxpress COMMAND --help for its options)\n\ncommands:\n";
  for (const auto& c : registry.commands()) {
    std::printf("  %-10s %s\n", c.name.c_str(), c.summary.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto& registry = vp::Registry::global();
  vp::register_all(registry);
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    print_usage(registry);
    return argc < 2 ? 2 : 0;
  }
  if (std::string(argv[1]) == "--version") {
    std::cout << "voxpress " << VOXPRESS_VERSION << "\n";
    return 0;
  }
  // `voxpress run` runs each sample in a worker process: this program again with `__sample`.
  if (std::string(argv[1]) == "__sample")
    return vp::sample_worker_main(std::vector<std::string>(argv + 2, argv + argc), registry);
  const vp::Command* command = registry.command(argv[1]);
  if (!command) {
    std::cerr << "voxpress: unknown command '" << argv[1] << "'\n\n";
    print_usage(registry);
    return 2;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  try {
    return command->run(args);
  } catch (const vp::InputError& e) {
    std::cerr << "voxpress " << command->name << ": error: " << e.what() << "\n";
    return 2;
  } catch (const vp::ComputeError& e) {
    std::cerr << "voxpress " << command->name << ": computation failed: " << e.what() << "\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << "voxpress " << command->name << ": internal error: " << e.what() << "\n";
    return 1;
  }
}
