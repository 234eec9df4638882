// Precompiled header of the loopback integration tests (Meson's cpp_pch): the headers nearly every
// one of them includes (doctest, cpp-httplib, Asio, the public API), parsed once per build instead of
// once per file. It changes no test: each file still includes what it uses. Only cuts build time
// (CI builds the suite twice).
#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "gatehouse/config.hpp"
#include "gatehouse/gatehouse.hpp"
#include "gatehouse/testing.hpp"
