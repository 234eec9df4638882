// Precompiled header of the unit and config tests (Meson's cpp_pch): the headers nearly every one
// of them includes, parsed once per build instead of once per file. It changes no test: each file
// still includes what it uses. Only cuts build time (CI builds the suite twice).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "gatehouse/config.hpp"
#include "gatehouse/gatehouse.hpp"
#include "gatehouse/testing.hpp"
