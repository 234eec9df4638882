#include "config/reload_reuse.hpp"

#include <sys/stat.h>

#include <array>
#include <cstdio>
#include <memory>
#include <utility>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

namespace gatehouse::detail {
namespace {

using nlohmann::json;

// Hex SHA-256 of the file's content, or "" when it cannot be read.
std::string file_digest(const std::string& file) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!f) return {};
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> md(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!md || EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr) != 1) return {};
  std::array<char, 16384> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) EVP_DigestUpdate(md.get(), buf.data(), n);
  if (std::ferror(f.get())) return {};
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(md.get(), digest, &len) != 1) return {};
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

bool names_regular_file(const std::string& s) {
  if (s.empty() || s.size() > 4096 || s.find('\0') != std::string::npos) return false;
  struct stat st {};
  return ::stat(s.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

template <class Fn>
void for_each_string(const json& j, Fn&& fn) {
  if (j.is_string()) {
    fn(j.get_ref<const std::string&>());
  } else if (j.is_structured()) {
    for (const auto& item : j) for_each_string(item, fn);
  }
}

// The files an entry reads: strings naming regular files, except under a key "path", which names
// what an entry writes (an access log's file changes all the time and is no definition).
template <class Fn>
void for_each_input_file(const json& j, Fn&& fn) {
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    if (names_regular_file(s)) fn(s);
  } else if (j.is_object()) {
    for (const auto& [key, value] : j.items())
      if (key != "path") for_each_input_file(value, fn);
  } else if (j.is_array()) {
    for (const auto& item : j) for_each_input_file(item, fn);
  }
}

}  // namespace

std::string ConfigReuse::key(std::string_view kind, std::string_view name) {
  std::string k(kind);
  k += '\0';
  k += name;
  return k;
}

std::shared_ptr<void> ConfigReuse::find(std::string_view kind, std::string_view name, const std::string& fingerprint) {
  if (!previous_) return nullptr;
  const auto [first, last] = previous_->entries_.equal_range(key(kind, name));
  for (auto it = first; it != last; ++it) {
    const Entry& e = it->second;
    if (e.fingerprint == fingerprint && taken_.insert(&e).second) return e.object;
  }
  return nullptr;
}

void ConfigReuse::record(std::string_view kind, std::string_view name, std::string fingerprint,
                         std::shared_ptr<void> object, bool reused) {
  entries_.emplace(key(kind, name), Entry{std::move(fingerprint), std::move(object)});
  ++(reused ? reused_ : built_);
}

std::string definition_fingerprint(const json& entry) {
  std::string out = entry.dump();
  for_each_input_file(entry, [&out](const std::string& file) {
    out += "\nfile ";
    out += file;
    out += ' ';
    out += file_digest(file);
  });
  return out;
}

std::string middleware_fingerprint(const json& entry, const ConfigContext& context) {
  std::string out = definition_fingerprint(entry);
  for_each_string(entry, [&](const std::string& s) {
    char id[64];
    if (const auto v = context.verifiers.find(s); v != context.verifiers.end()) {
      std::snprintf(id, sizeof id, "\nverifier %p ", static_cast<const void*>(v->second.get()));
      out += id;
      out += s;
    }
    if (const auto m = context.token_minters.find(s); m != context.token_minters.end()) {
      std::snprintf(id, sizeof id, "\nminter %p ", static_cast<const void*>(m->second.get()));
      out += id;
      out += s;
    }
    if (const auto r = context.redis.find(s); r != context.redis.end()) {
      std::snprintf(id, sizeof id, "\nredis %p ", static_cast<const void*>(r->second.get()));
      out += id;
      out += s;
    }
  });
  return out;
}

}  // namespace gatehouse::detail
