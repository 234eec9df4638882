// An address list that may change while the gateway runs: the blocks given inline plus those of a
// list file, published as an immutable PrefixSet. Readers (workers, per request or per accepted
// connection) load one atomic pointer: no lock, no reference count. Writers (a file check, off the
// workers) build a new set, publish it, and free an old one only after a grace period.
#pragma once
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <asio/ip/address.hpp>

#include "net/cidr.hpp"
#include "net/prefix_set.hpp"

namespace gatehouse::detail {

/// Parses a list file: one CIDR block or address per line; blank lines and text after '#' are
/// ignored. Throws std::runtime_error "FILE: cannot read ..." or std::invalid_argument
/// "FILE:LINE: invalid CIDR block \"...\"".
void read_address_file(const std::string& file, PrefixSet& into);

class AddressList {
 public:
  /// How long a replaced set stays allocated after it was replaced. A reader holds the pointer only
  /// for one lookup (well under a microsecond); this is many orders of magnitude more than that.
  static constexpr std::chrono::seconds kGracePeriod{30};

  /// `blocks`: already parsed; `file`: empty or a list file, read now. Throws as read_address_file.
  AddressList(std::vector<Cidr> blocks, std::string file);
  ~AddressList();
  AddressList(const AddressList&) = delete;
  AddressList& operator=(const AddressList&) = delete;

  bool contains(const asio::ip::address& addr) const noexcept {
    return current_.load(std::memory_order_acquire)->contains(addr);
  }

  /// What a check of the file found.
  enum class Refresh : unsigned char { unchanged, reloaded, failed };
  /// Reads the file again when its modification time, size or inode changed. A file that does not
  /// read or parse keeps the current set (failed; `error` says why). Thread-safe.
  Refresh refresh(std::string* error = nullptr);

  const std::string& file() const noexcept { return file_; }
  /// Blocks in force (inline and file).
  std::size_t size() const noexcept { return current_.load(std::memory_order_acquire)->size(); }

 private:
  struct FileStamp {
    std::int64_t mtime_ns = -1, size = -1;
    std::uint64_t inode = 0;
    friend bool operator==(const FileStamp&, const FileStamp&) = default;
  };
  static FileStamp stamp_of(const std::string& file) noexcept;
  std::unique_ptr<PrefixSet> build() const;

  const std::vector<Cidr> blocks_;
  const std::string file_;
  std::mutex write_mutex_;
  FileStamp stamp_;
  /// Every set not yet freed; the last one is current_. (When each was replaced, for the others.)
  struct Version {
    std::unique_ptr<const PrefixSet> set;
    std::chrono::steady_clock::time_point replaced{};
  };
  std::vector<Version> versions_;
  std::atomic<const PrefixSet*> current_{nullptr};
};

}  // namespace gatehouse::detail
