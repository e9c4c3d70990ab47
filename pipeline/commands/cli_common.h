// Flags shared by the commands that take a VOLUME argument (info, solve, measure,
// segment, cracks): format options, spacing override, phase names and roles.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/error.h"
#include "core/phase_table.h"
#include "core/stage.h"
#include "filters/io/volume_io.h"

namespace vp {

struct VolumeArgs {
  std::string path;
  std::string format = "auto";
  std::string dims;   // "NX,NY,NZ" (raw)
  std::string dtype;  // raw
  std::string endian = "little";
  std::uint64_t offset = 0;
  std::string dataset;  // HDF5
  std::string spacing;  // "S" or "SX,SY,SZ" in µm; overrides the file's
};

// Adds the positional VOLUME and --format --dims --dtype --endian --offset --dataset --spacing.
void add_volume_flags(CLI::App& app, VolumeArgs& args);
// Reads the volume; --spacing wins over the file's metadata.
ReadResult load_volume(const VolumeArgs& args);
// The read options the flags name (without --spacing, which load_volume applies after reading).
ReadOptions read_options(const VolumeArgs& args);

// "0.5" -> {0.5, 0.5, 0.5}; "1,1,2" -> {1, 1, 2}. Throws InputError naming the flag.
Vec3 parse_spacing(const std::string& text, const std::string& flag = "--spacing");
// "1,2.5,3" -> {1, 2.5, 3}; "" -> {}. Throws InputError naming the flag and the item that is not a
// number, followed by "; expected EXPECTED" when `expected` is given.
std::vector<double> parse_numbers(const std::string& text, const std::string& flag, const std::string& expected = "");
// "a,b,,c" -> {"a", "b", "c"} (empty items dropped).
std::vector<std::string> split_list(const std::string& text);
// "NAME=VALUE,NAME=VALUE" -> pairs. Throws InputError naming the flag.
std::vector<std::pair<std::string, std::string>> parse_assignments(const std::string& text, const std::string& flag);

// Phase table from --labels pore=0,se=1,am=2 and --roles se=electrolyte,am=active.
// Without --labels: one "phase<N>" per label present. A name equal to a role ("pore",
// "electrolyte", "active", ...) takes that role unless --roles says otherwise.
PhaseTable phase_table_from_flags(const std::string& labels, const std::string& roles,
                                  const std::vector<int>& labels_present);
std::vector<int> labels_present(const Volume<std::uint8_t>& labels);

// The sample context in which the label commands (measure, solve, cracks) run their stages:
// the input as integer labels, named by --labels / --roles, its path as the sample's name. It takes
// the volume as read (moved from, or freed once converted): a solve or a measurement never holds
// the file's copy beside the labels.
SampleContext label_sample_context(ReadResult&& input, const std::string& labels_flag, const std::string& roles_flag);

// --particles FILE: particle ids (any integer-valued type) with the labels' dims, as uint32 with
// the labels' spacing. Throws InputError naming the file on other dims or a non-integer voxel.
Volume<std::uint32_t> read_particle_ids(const std::string& path, const Volume<std::uint8_t>& labels);
// An id volume read from `path` (particle or crack ids) as uint32, same dims and spacing as
// `voxels`; InputError naming the file and the voxel for a negative or non-integer id, `what`
// naming the ids ("particle id").
Volume<std::uint32_t> to_id_volume(const AnyVolume& ids, const std::string& path, const Volume<std::uint8_t>& voxels,
                                   const std::string& what);

// A stage's parameters from command-line values ({"connectivity": "26"}, each parsed as YAML),
// checked against its specs and its preflight; InputError listing every problem, attributed to
// `origin` ("cracks command line").
Params stage_params(const Stage& stage, const std::map<std::string, std::string>& values, const std::string& origin,
                    const PreflightContext& preflight);

// Command-line flags generated from a stage's declared parameters, one per name in `names`:
// --flux-balance for flux_balance, its help, unit and default from the spec; a boolean that
// defaults to false is a bare flag (--periodic). A flag given puts its text in values[name],
// which stage_params then checks against the same spec as a config's key (bounds, choices).
void add_stage_flags(CLI::App& app, const Stage& stage, const std::vector<std::string>& names,
                     std::map<std::string, std::string>& values);
// An older spelling of a generated flag, kept working and hidden from --help:
// add_stage_flag_alias(app, stage, "--nlmeans-patch", "nlmeans_patch_radius", values).
void add_stage_flag_alias(CLI::App& app, const Stage& stage, const std::string& alias, const std::string& name,
                          std::map<std::string, std::string>& values);
// The flag of a stage parameter: "flux_balance" -> "--flux-balance".
std::string flag_of(const std::string& param);

// --out DIR of a command: created, and checked writable before any work, else an InputError naming
// the flag and the path (exit 2). output_file_folder does the same for the folder of an output file.
void create_output_folder(const std::string& dir, const std::string& flag);
void check_output_file(const std::string& path, const std::string& flag);

// A role error of a label command ("no phase with role 'pore'") followed by one line that says how
// to give roles, built from the labels in the volume: "give roles with --labels pore=0,se=1
// --roles se=electrolyte". Other errors unchanged.
InputError with_roles_hint(const InputError& e, const PhaseTable& table, bool labels_given);

// Parses args (argv after the command name) and turns CLI11's errors into InputError;
// returns true when --help was printed (the caller then exits 0).
bool parse_cli(CLI::App& app, const std::vector<std::string>& args);

}  // namespace vp
