// The timing loop of the in-process micro benchmarks: warm up, then the mean time of one call.
#pragma once
#include <chrono>

namespace gatehouse::bench {

/// Runs `body` iterations / 20 times unmeasured, then `iterations` times; returns ns per call.
template <class Body>
double ns_per_iteration(long iterations, Body&& body) {
  for (long i = 0; i < iterations / 20; ++i) body();  // warm up
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < iterations; ++i) body();
  const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
  return took.count() / static_cast<double>(iterations);
}

}  // namespace gatehouse::bench
