// Trainable voxel classifier: a random forest (OpenCV ml RTrees) on the features of
// features.h, trained from a sparse scribble volume and saved as one model file that is then
// applied to a whole series.
//
// Scribble convention (as painted in Fiji / napari on a label layer): 0 = unlabelled,
// value v >= 1 = "this voxel is output label v - 1". So paint 1 on pore, 2 on SE, 3 on AM to
// get labels 0, 1, 2.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/volume.h"
#include "filters/segment/features.h"

namespace vp {

struct ForestOptions {
  int trees = 64;
  int max_depth = 16;
  int min_samples_per_leaf = 4;
  std::int64_t max_samples = 200000;  // scribbled voxels used for training (evenly strided above)
};

class ForestModel {
 public:
  ForestModel();
  ~ForestModel();
  ForestModel(ForestModel&&) noexcept;
  ForestModel& operator=(ForestModel&&) noexcept;

  const FeatureSettings& features() const { return features_; }
  const std::vector<int>& labels() const { return labels_; }  // output labels it can give
  std::int64_t training_samples() const { return samples_; }
  double training_accuracy() const { return training_accuracy_; }  // on the training voxels

  // Throws InputError when the scribbles are empty, differ in dims, or hold fewer than 2 classes.
  static ForestModel train(const Volume<float>& grey, const Volume<std::uint8_t>& scribbles,
                           const FeatureSettings& features = {}, const ForestOptions& options = {});

  Volume<std::uint8_t> classify(const Volume<float>& grey) const;

  // One file (OpenCV FileStorage YAML/XML, ".gz" allowed): format tag, feature scales, feature
  // names, output labels, the forest. load() throws InputError naming the file on any mismatch.
  void save(const std::string& path) const;
  static ForestModel load(const std::string& path);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  FeatureSettings features_;
  std::vector<int> labels_;
  std::int64_t samples_ = 0;
  double training_accuracy_ = 0;
};

}  // namespace vp
