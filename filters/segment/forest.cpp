#include "filters/segment/forest.h"

#include <algorithm>
#include <filesystem>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <opencv2/core.hpp>
#include <opencv2/ml.hpp>

#include "core/atomic_file.h"
#include "core/error.h"

namespace vp {

namespace {

constexpr const char* kFormat = "voxpress-forest-1";
// z-slices per feature slab: thick enough that the halo recomputed around each slab costs at
// most as much as the slab (2 × halo), thin enough that one slab's features stay under 256 MB.
index_t slab_thickness(const Volume<float>& grey, const FeatureSettings& f) {
  const double per_slice = static_cast<double>(grey.dims().x * grey.dims().y) * feature_names(f).size() * sizeof(float);
  const auto memory_cap = std::max<index_t>(1, static_cast<index_t>(256e6 / per_slice));
  return std::clamp<index_t>(2 * feature_halo(grey, f), 8, std::max<index_t>(8, memory_cap));
}

}  // namespace

// The trained trees flattened for prediction. cv::ml::RTrees::predict costs ~35 µs per voxel
// (per-sample overhead); walking the same trees here, voxels in parallel, is ~30x faster and
// gives the same votes (checked against predict on the training voxels after every train/load).
struct FlatForest {
  struct Node {
    int var = -1;         // feature index; -1 = leaf
    float threshold = 0;  // go left when value <= threshold (swapped when inversed)
    bool inversed = false;
    int left = -1, right = -1;
    int class_index = 0;  // leaf: voted class
  };
  std::vector<Node> nodes;
  std::vector<int> roots;
  std::vector<int> class_label;  // class index -> response label

  static FlatForest from(const cv::ml::RTrees& rf) {
    FlatForest f;
    const auto& nodes = rf.getNodes();
    const auto& splits = rf.getSplits();
    f.roots = rf.getRoots();
    f.nodes.resize(nodes.size());
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const auto& n = nodes[i];
      Node& o = f.nodes[i];
      o.left = n.left;
      o.right = n.right;
      o.class_index = n.classIdx;
      if (n.split >= 0) {
        const auto& sp = splits[static_cast<std::size_t>(n.split)];
        // Every feature is ordered (continuous), so no split is categorical.
        o.var = sp.varIdx;
        o.threshold = sp.c;
        o.inversed = sp.inversed;
      } else {
        if (n.classIdx >= static_cast<int>(f.class_label.size())) f.class_label.resize(n.classIdx + 1, -1);
        f.class_label[n.classIdx] = static_cast<int>(std::lround(n.value));
      }
    }
    return f;
  }

  int predict(const float* x, std::vector<int>& votes) const {
    std::fill(votes.begin(), votes.end(), 0);
    for (int r : roots) {
      int i = r;
      while (nodes[i].var >= 0) {
        const Node& n = nodes[i];
        bool left = x[n.var] <= n.threshold;
        if (n.inversed) left = !left;
        i = left ? n.left : n.right;
      }
      ++votes[nodes[i].class_index];
    }
    int best = 0;  // first maximum, as OpenCV
    for (std::size_t k = 1; k < votes.size(); ++k)
      if (votes[k] > votes[best]) best = static_cast<int>(k);
    return class_label[best];
  }
};

struct ForestModel::Impl {
  cv::Ptr<cv::ml::RTrees> forest;
  FlatForest flat;
};

ForestModel::ForestModel() : impl_(std::make_unique<Impl>()) {}
ForestModel::~ForestModel() = default;
ForestModel::ForestModel(ForestModel&&) noexcept = default;
ForestModel& ForestModel::operator=(ForestModel&&) noexcept = default;

ForestModel ForestModel::train(const Volume<float>& grey, const Volume<std::uint8_t>& scribbles,
                               const FeatureSettings& features, const ForestOptions& options) {
  if (!(grey.dims() == scribbles.dims()))
    throw InputError("scribbles " + scribbles.provenance.path + ": dims " + to_string(scribbles.dims()) +
                     " differ from the grey volume's " + to_string(grey.dims()));
  std::vector<index_t> picked;
  std::vector<int> present(256, 0);
  for (index_t i = 0; i < scribbles.size(); ++i)
    if (scribbles[i]) {
      picked.push_back(i);
      present[scribbles[i]] = 1;
    }
  ForestModel m;
  for (int v = 1; v < 256; ++v)
    if (present[v]) m.labels_.push_back(v - 1);
  if (m.labels_.size() < 2)
    throw InputError("scribbles " + scribbles.provenance.path +
                     ": need voxels of at least 2 classes (0 = unlabelled, v >= 1 = label v-1); found " +
                     std::to_string(m.labels_.size()));
  // Evenly strided subsample keeps training time bounded and deterministic.
  if (static_cast<std::int64_t>(picked.size()) > options.max_samples) {
    std::vector<index_t> sub;
    const double step = static_cast<double>(picked.size()) / static_cast<double>(options.max_samples);
    for (std::int64_t k = 0; k < options.max_samples; ++k) sub.push_back(picked[static_cast<std::size_t>(k * step)]);
    picked.swap(sub);
  }
  m.features_ = features;
  const std::size_t nf = feature_names(features).size();
  cv::Mat X(static_cast<int>(picked.size()), static_cast<int>(nf), CV_32F);
  cv::Mat y(static_cast<int>(picked.size()), 1, CV_32S);
  const index_t plane = grey.dims().x * grey.dims().y;
  std::size_t row = 0;
  // Features slab by slab, only where there are scribbles.
  const index_t slab = slab_thickness(grey, features);
  for (index_t z0 = 0; z0 < grey.dims().z && row < picked.size(); z0 += slab) {
    const index_t z1 = std::min(grey.dims().z, z0 + slab);
    if (picked[row] >= z1 * plane) continue;
    const std::vector<float> f = voxel_features(grey, features, z0, z1);
    for (; row < picked.size() && picked[row] < z1 * plane; ++row) {
      const index_t local = picked[row] - z0 * plane;
      std::copy_n(&f[static_cast<std::size_t>(local) * nf], nf, X.ptr<float>(static_cast<int>(row)));
      y.at<int>(static_cast<int>(row)) = scribbles[picked[row]] - 1;
    }
  }
  auto& rf = m.impl_->forest;
  rf = cv::ml::RTrees::create();
  rf->setMaxDepth(options.max_depth);
  rf->setMinSampleCount(options.min_samples_per_leaf);
  rf->setRegressionAccuracy(0);
  rf->setUseSurrogates(false);
  rf->setMaxCategories(16);
  rf->setCalculateVarImportance(false);
  rf->setActiveVarCount(0);  // √(features) per split
  rf->setTermCriteria(cv::TermCriteria(cv::TermCriteria::MAX_ITER, options.trees, 0));
  auto data = cv::ml::TrainData::create(X, cv::ml::ROW_SAMPLE, y);
  if (!rf->train(data)) throw ComputeError("random forest training failed");
  m.impl_->flat = FlatForest::from(*rf);
  cv::Mat pred;
  rf->predict(X, pred);
  std::int64_t right = 0;
  std::vector<int> votes(m.impl_->flat.class_label.size());
  for (int r = 0; r < X.rows; ++r) {
    const int label = static_cast<int>(pred.at<float>(r));
    if (m.impl_->flat.predict(X.ptr<float>(r), votes) != label)
      throw ComputeError("random forest: flattened trees disagree with OpenCV's predict at training row " +
                         std::to_string(r));
    right += label == y.at<int>(r);
  }
  m.samples_ = X.rows;
  m.training_accuracy_ = static_cast<double>(right) / X.rows;
  return m;
}

Volume<std::uint8_t> ForestModel::classify(const Volume<float>& grey) const {
  if (!impl_->forest) throw InputError("random forest: model not trained or loaded");
  Volume<std::uint8_t> out = grey.like<std::uint8_t>(grey.dims());
  const std::size_t nf = feature_names(features_).size();
  const index_t plane = grey.dims().x * grey.dims().y;
  const index_t slab = slab_thickness(grey, features_);
  for (index_t z0 = 0; z0 < grey.dims().z; z0 += slab) {
    const index_t z1 = std::min(grey.dims().z, z0 + slab);
    const std::vector<float> f = voxel_features(grey, features_, z0, z1);
    const auto rows = static_cast<index_t>(f.size() / nf);
    const FlatForest& flat = impl_->flat;
    tbb::parallel_for(tbb::blocked_range<index_t>(0, rows, 1024), [&](const tbb::blocked_range<index_t>& r) {
      std::vector<int> votes(flat.class_label.size());
      for (index_t i = r.begin(); i != r.end(); ++i)
        out[z0 * plane + i] = static_cast<std::uint8_t>(flat.predict(&f[static_cast<std::size_t>(i) * nf], votes));
    });
  }
  return out;
}

void ForestModel::save(const std::string& path) const {
  if (!impl_->forest) throw InputError("random forest: nothing to save");
  // FileStorage picks the format from the name: write to a temporary of the same suffix.
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    std::string name = tmp.string();
    const std::filesystem::path target(path);
    std::string suffix = target.extension().string();
    if (suffix == ".gz") suffix = target.stem().extension().string() + suffix;
    if (suffix.empty()) suffix = ".yml";
    const std::string real = name + suffix;
    {
      cv::FileStorage fs(real, cv::FileStorage::WRITE);
      if (!fs.isOpened()) throw InputError(path + ": cannot write the model file");
      fs << "format" << kFormat;
      fs << "sigmas_um" << features_.sigmas_um;
      fs << "feature_names" << feature_names(features_);
      fs << "labels" << labels_;
      fs << "scribble_convention"
         << "0 = unlabelled, v >= 1 = output label v - 1";
      fs << "training_samples" << static_cast<double>(samples_);
      fs << "training_accuracy" << training_accuracy_;
      fs << "forest"
         << "{";
      impl_->forest->write(fs);
      fs << "}";
    }
    std::filesystem::rename(real, tmp);
  });
}

ForestModel ForestModel::load(const std::string& path) {
  if (!std::filesystem::exists(path)) throw InputError(path + ": model file not found");
  cv::FileStorage fs;
  try {
    fs.open(path, cv::FileStorage::READ);
  } catch (const cv::Exception& e) {
    throw InputError(path + ": not a readable model file (" + e.what() + ")");
  }
  if (!fs.isOpened()) throw InputError(path + ": not a readable model file");
  std::string format;
  fs["format"] >> format;
  if (format != kFormat)
    throw InputError(path + ": format '" + format + "', expected '" + kFormat +
                     "' (a model saved by voxpress segment)");
  ForestModel m;
  fs["sigmas_um"] >> m.features_.sigmas_um;
  fs["labels"] >> m.labels_;
  std::vector<std::string> names;
  fs["feature_names"] >> names;
  if (names != feature_names(m.features_))
    throw InputError(path + ": feature_names do not match this voxpress version's features");
  double samples = 0;
  fs["training_samples"] >> samples;
  m.samples_ = static_cast<std::int64_t>(samples);
  fs["training_accuracy"] >> m.training_accuracy_;
  m.impl_->forest = cv::ml::RTrees::create();
  try {
    m.impl_->forest->read(fs["forest"]);
  } catch (const cv::Exception& e) {
    throw InputError(path + ": key 'forest' is not an OpenCV random forest (" + e.what() + ")");
  }
  if (!m.impl_->forest->isTrained()) throw InputError(path + ": key 'forest' holds no trained forest");
  m.impl_->flat = FlatForest::from(*m.impl_->forest);
  return m;
}

}  // namespace vp
