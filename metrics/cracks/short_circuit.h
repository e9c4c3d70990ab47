// Short-circuit risk: does the void network (cracks + pores) connect the two faces of the
// layer along an axis, and how wide is its narrowest unavoidable passage?
//
// Bottleneck diameter: the diameter of the largest ball that can travel from one face to the
// other inside the network. Each network voxel carries r = its distance to the nearest
// non-network voxel cube (metrics' squared_distance_to_boundary: the radius of the largest
// ball centred there that fits inside the network as a union of voxel cubes; a one-voxel-wide
// gap gives r = h/2). The bottleneck is 2·max over face-to-face voxel paths of min r along the
// path — the widest (max–min) path, found exactly for the voxel graph by adding voxels in
// decreasing r to a union-find until the two faces join. The voxel grid makes it exact only
// to the voxel: a slab t voxels wide gives t·h for odd t and (t − 1)·h for even t.
#pragma once

#include <cstdint>
#include <vector>

#include "core/volume.h"
#include "metrics/connectivity.h"

namespace vp {

struct ShortCircuitOptions {
  int axis = 2;           // the pressing axis: 0 = x, 1 = y, 2 = z
  int connectivity = 26;  // 6, 18 or 26; 26 lets one-voxel oblique cracks connect
};

struct ShortCircuitRisk {
  int axis = 2;
  bool percolates = false;
  double bottleneck_diameter_um = 0;  // 0 when not percolating
  index_t percolating_voxels = 0;     // network voxels connected to both faces
};

// network: nonzero = void that lithium could fill (crack or pore voxels).
ShortCircuitRisk short_circuit_risk(const Volume<std::uint8_t>& network, const ShortCircuitOptions& options = {});

// The same along each of `axes` (in that order), from one distance transform, one ordering of
// the network by radius and one union-find buffer: the same answers as one call per axis.
std::vector<ShortCircuitRisk> short_circuit_risks(const Volume<std::uint8_t>& network, const std::vector<int>& axes,
                                                  int connectivity = 26);
// The same from the network's components, label_clusters(network, connectivity), when the caller
// has them: a voxel is connected to a face iff its component touches that face.
std::vector<ShortCircuitRisk> short_circuit_risks(const Volume<std::uint8_t>& network, const Clusters& components,
                                                  const std::vector<int>& axes, int connectivity);

}  // namespace vp
