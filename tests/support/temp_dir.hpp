// A fresh scratch directory per test, removed with everything in it at the end.
#pragma once
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

namespace gatehouse::test {

struct TempDir {
  std::filesystem::path dir;

  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "gatehouse-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + tmpl);
    dir = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// Writes `content` to `name` inside the directory and returns the file's path.
  std::string file(const std::string& name, const std::string& content = "dummy\n") const {
    const auto p = dir / name;
    std::ofstream(p) << content;
    return p.string();
  }
};

}  // namespace gatehouse::test
