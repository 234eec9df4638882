// What a configuration built from which definition, so that loading the file again (a reload) can
// keep the objects whose definition did not change: an upstream its connection pools, a verifier
// its keys and caches (no refetch), a token minter its key, a middleware its state (an access log
// its file and writer thread).
#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "gatehouse/config.hpp"

namespace gatehouse::detail {

class ConfigReuse {
 public:
  /// `previous`: what the configuration being replaced recorded (null: nothing to keep). Only
  /// read while loading; forget_previous() drops it before the new configuration is returned.
  explicit ConfigReuse(const ConfigReuse* previous) noexcept : previous_(previous) {}

  /// The object the previous configuration built for an entry `kind`/`name` with the same
  /// `fingerprint`, or null. Each previous object is handed out once.
  std::shared_ptr<void> find(std::string_view kind, std::string_view name, const std::string& fingerprint);
  /// Notes what this configuration uses for the entry, for the next load.
  void record(std::string_view kind, std::string_view name, std::string fingerprint, std::shared_ptr<void> object,
              bool reused);
  void forget_previous() noexcept { previous_ = nullptr; }

  std::size_t reused() const noexcept { return reused_; }
  std::size_t built() const noexcept { return built_; }

 private:
  struct Entry {
    std::string fingerprint;
    std::shared_ptr<void> object;
  };
  static std::string key(std::string_view kind, std::string_view name);

  const ConfigReuse* previous_;
  std::multimap<std::string, Entry> entries_;
  std::set<const Entry*> taken_;  // entries of previous_ already handed out
  std::size_t reused_ = 0, built_ = 0;
};

/// The definition of a section entry as compared across loads: its JSON (keys sorted) and the
/// SHA-256 of the content of every regular file a string in it names, so that a key file or CA
/// bundle replaced under the same name counts as a change. Strings under a key "path" are left
/// out: they name what an entry writes (an access log), not what defines it.
std::string definition_fingerprint(const nlohmann::json& entry);

/// A middleware entry's: its definition_fingerprint, and which verifier or token minter object
/// each name in it refers to (a middleware naming a verifier that was rebuilt is rebuilt too).
std::string middleware_fingerprint(const nlohmann::json& entry, const ConfigContext& context);

/// The previous object for the entry when its fingerprint is unchanged, else make()'s; recorded
/// for the next load either way. With a null `reuse`, just make().
template <class T, class Make>
std::shared_ptr<T> reuse_or_make(ConfigReuse* reuse, std::string_view kind, std::string_view name,
                                 const std::string& fingerprint, Make&& make) {
  if (!reuse) return make();
  if (std::shared_ptr<void> kept = reuse->find(kind, name, fingerprint)) {
    reuse->record(kind, name, fingerprint, kept, true);
    return std::static_pointer_cast<T>(kept);
  }
  std::shared_ptr<T> made = make();
  reuse->record(kind, name, fingerprint, std::const_pointer_cast<void>(std::shared_ptr<const void>(made)), false);
  return made;
}

}  // namespace gatehouse::detail
