// The built-in load-balancing policies besides round_robin() (gatehouse/load_balancer.hpp). Each
// is a LoadBalancerFactory for UpstreamOptions::load_balancer, and is also selectable by name in
// the configuration file ("least_request", "random", "consistent_hash").
#pragma once
#include <cstddef>
#include <string>

#include "gatehouse/load_balancer.hpp"

namespace gatehouse {

struct LeastRequestOptions {
  /// Endpoints drawn at random (in proportion to their weights) for each pick; the one with the
  /// fewest requests in flight per unit of weight wins. 2 is "power of two choices".
  unsigned choice_count = 2;
};

/// Least request with power-of-two-choices: load follows the endpoints that answer fastest, at
/// O(1) per pick. Weights count both in the draw and in the comparison, so with no load the split
/// is the weights' and under load it is requests in flight per unit of weight. Requests in flight
/// are counted per worker (each worker balances its own share of the traffic).
LoadBalancerFactory least_request(LeastRequestOptions options = {});

/// A random endpoint, in proportion to the weights.
LoadBalancerFactory random_choice();

/// What consistent hashing hashes.
struct HashKey {
  enum class Source : unsigned char {
    client_address,  ///< Exchange::client_address(): the client, after trusted-proxy resolution
    header,          ///< the first field `name`
    cookie,          ///< the cookie `name`
    claim,           ///< a claim of the verified token (`name`, or a JSON pointer "/a/b"), as the
                     ///< authenticate middleware stored it: an unverified token never counts
  };
  Source source = Source::client_address;
  std::string name{};
};

struct ConsistentHashOptions {
  HashKey key{};
  /// Picks when the request has no key (no such header, cookie or claim); empty: round_robin().
  LoadBalancerFactory fallback{};
  /// Slots of the Maglev lookup table: a prime, at least 100 × the number of endpoints for an
  /// even spread. 65537 by default (128 KiB, shared by the workers).
  std::size_t table_size = 65537;
};

/// Consistent hashing with Maglev (Google's load balancer, NSDI 2016): a request with the same key
/// goes to the same endpoint while it is usable. When an endpoint leaves or joins, only about its
/// own share of the keys moves. Lookup is one table read (O(1)); endpoint weights are respected.
/// A retry skips endpoints already tried by walking on through the table.
LoadBalancerFactory consistent_hash(ConsistentHashOptions options);

}  // namespace gatehouse
