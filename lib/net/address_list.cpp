#include "net/address_list.hpp"

#include <sys/stat.h>

#include <fstream>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "util/text.hpp"

namespace gatehouse::detail {
namespace {

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Quoted for an error message, bounded, with control bytes escaped.
std::string shown(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, 64)) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '"' || c == '\\') out += '?';
    else out += c;
  }
  if (s.size() > 64) out += "...";
  return out + "\"";
}

}  // namespace

void read_address_file(const std::string& file, PrefixSet& into) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(file + ": cannot read the address list");
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string_view text = line;
    if (const auto hash = text.find('#'); hash != std::string_view::npos) text = text.substr(0, hash);
    text = trim(text);
    if (text.empty()) continue;
    if (!into.add(text))
      throw std::invalid_argument(file + ":" + std::to_string(number) + ": invalid CIDR block " + shown(text));
  }
  if (in.bad()) throw std::runtime_error(file + ": read error");
}

AddressList::AddressList(std::vector<Cidr> blocks, std::string file)
    : blocks_(std::move(blocks)), file_(std::move(file)) {
  stamp_ = file_.empty() ? FileStamp{} : stamp_of(file_);
  auto set = build();
  current_.store(set.get(), std::memory_order_release);
  versions_.push_back({std::move(set), {}});
}

AddressList::~AddressList() = default;

AddressList::FileStamp AddressList::stamp_of(const std::string& file) noexcept {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return {};
  return {static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
          static_cast<std::int64_t>(st.st_size), static_cast<std::uint64_t>(st.st_ino)};
}

std::unique_ptr<PrefixSet> AddressList::build() const {
  auto set = std::make_unique<PrefixSet>();
  for (const Cidr& c : blocks_) set->add(c);
  if (!file_.empty()) read_address_file(file_, *set);
  set->build();
  return set;
}

AddressList::Refresh AddressList::refresh(std::string* error) {
  if (file_.empty()) return Refresh::unchanged;
  std::lock_guard lock(write_mutex_);
  const auto now = std::chrono::steady_clock::now();
  // Sets replaced long enough ago that no reader can still be inside them.
  std::erase_if(versions_, [&](const Version& v) {
    return v.set.get() != current_.load(std::memory_order_relaxed) && now - v.replaced > kGracePeriod;
  });
  const FileStamp stamp = stamp_of(file_);
  if (stamp == stamp_) return Refresh::unchanged;
  std::unique_ptr<PrefixSet> set;
  try {
    set = build();
  } catch (const std::exception& e) {
    if (error) *error = e.what();
    stamp_ = stamp;  // the same broken file is reported once, not at every check
    return Refresh::failed;
  }
  stamp_ = stamp;
  versions_.back().replaced = now;
  current_.store(set.get(), std::memory_order_release);
  versions_.push_back({std::move(set), {}});
  return Refresh::reloaded;
}

}  // namespace gatehouse::detail
