#include "gatehouse/middleware/authenticate.hpp"

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string_view>

#include <nlohmann/json.hpp>

#include "gatehouse/auth/token_error.hpp"
#include "http1/token.hpp"
#include "observe/gateway_metrics.hpp"
#include "observe/security_events_auth.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

namespace gatehouse {
namespace {

using auth::TokenError;
using auth::VerifyResult;

using detail::hex_value;
using detail::is_control;
using detail::is_http_token;
using detail::trim_ows;
using detail::without_controls;

bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// Claim values come from the token issuer, but a header line must never be split by them.
constexpr std::size_t kMaxIdentityValue = 4096;
std::string sanitize(std::string_view v) {
  std::string out;
  out.reserve(std::min(v.size(), kMaxIdentityValue));
  for (char c : v) {
    if (out.size() == kMaxIdentityValue) break;
    if (c == '\t' || !is_control(c)) out += c;
  }
  return out;
}

// Sets the header to the value, sanitized; the common clean value is copied once, not per character.
void set_sanitized(Headers& h, std::string_view name, std::string_view v) {
  const bool clean = v.size() <= kMaxIdentityValue && detail::is_field_value(v);
  if (clean) {
    h.set(name, v);
  } else {
    h.set(name, sanitize(v));
  }
}

// A "scope" claim already in canonical form (single spaces between scopes) is sent as it is.
bool canonical_scope_list(std::string_view s) noexcept {
  return !s.empty() && s.front() != ' ' && s.back() != ' ' && s.find("  ") == std::string_view::npos &&
         s.find('\t') == std::string_view::npos;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

// Calls f(name, value) for each "name=value" in a list split by `sep`.
template <class F>
void for_each_pair(std::string_view list, char sep, F f) {
  while (!list.empty()) {
    const std::size_t end = list.find(sep);
    const std::string_view item = list.substr(0, end);
    const std::size_t eq = item.find('=');
    f(item, trim_ows(item.substr(0, eq)),
      eq == std::string_view::npos ? std::string_view() : trim_ows(item.substr(eq + 1)));
    if (end == std::string_view::npos) break;
    list.remove_prefix(end + 1);
  }
}

struct Credential {
  enum class Found : unsigned char { none, one, several } found = Found::none;
  std::string token{};
};

Credential extract(const Request& req, const CredentialSource& src) {
  Credential c;
  auto take = [&c](std::string_view value) {
    c.found = c.found == Credential::Found::none ? Credential::Found::one : Credential::Found::several;
    c.token.assign(value);
  };
  switch (src.kind) {
    case CredentialSource::Kind::header: {
      const bool authorization = iequals(src.name, "authorization");
      for (auto f : req.headers()) {
        if (!iequals(f.name, src.name)) continue;
        std::string_view v = trim_ows(f.value);
        if (istarts_with(v, "bearer ") || iequals(v, "bearer")) {
          take(trim_ows(v.substr(6)));
        } else if (!authorization) {
          take(v);
        }  // Authorization with another scheme (Basic...) is not a bearer credential.
      }
      break;
    }
    case CredentialSource::Kind::cookie:
      for (auto f : req.headers()) {
        if (!iequals(f.name, "cookie")) continue;
        for_each_pair(f.value, ';', [&](std::string_view, std::string_view name, std::string_view value) {
          if (name == src.name) take(value);
        });
      }
      break;
    case CredentialSource::Kind::query:
      for_each_pair(req.query(), '&', [&](std::string_view, std::string_view name, std::string_view value) {
        if (percent_decode(name) == src.name) take(percent_decode(value));
      });
      break;
  }
  return c;
}

// Which failure says most about the token: a verifier that knew the issuer beats one that did not.
int specificity(std::error_code e) noexcept {
  if (e == TokenError::wrong_issuer) return 0;
  if (e == TokenError::malformed || e == TokenError::token_too_large || e == TokenError::forbidden_header ||
      e == TokenError::unsupported_algorithm || e == TokenError::unknown_key) {
    return 1;
  }
  if (auth::is_unavailable(e)) return 2;
  return 3;
}

void keep_most_specific(std::optional<VerifyResult>& best, std::size_t& best_index, VerifyResult r, std::size_t index) {
  if (!best || specificity(r.error()) > specificity(best->error())) {
    best = std::move(r);
    best_index = index;
  }
}

// The verifier label of outcomes decided before any verifier ran (no credential, several).
constexpr std::string_view kNoVerifier = "none";

bool undecided(std::error_code e) noexcept { return auth::is_unavailable(e); }

// Refusals are the clients' doing (info); a verifier that cannot decide is ours to look at.
void log_failure(const std::shared_ptr<Logger>& own, const Exchange& ex, std::error_code error,
                 std::string_view why) {
  const std::shared_ptr<Logger> logger = detail::logger_or_default(own);
  const bool refused = !undecided(error);
  const LogLevel level = refused ? LogLevel::info : LogLevel::warning;
  if (!logger->enabled(level)) return;
  // The client sent these: they must not be able to split or forge a log line.
  const std::string request_id = without_controls(ex.request_id());
  const std::string route = without_controls(ex.route_name());
  const std::string message = error.message();
  const std::string clean_why = without_controls(why);
  detail::log(logger, level, refused ? "authenticate: credential refused" : "authenticate: credential undecided",
              {{"request_id", request_id}, {"route", route}, {"error", message}, {"detail", clean_why}});
}

}  // namespace

Authenticate::Authenticate(AuthenticateOptions options) : options_(std::move(options)) {
  if (options_.verifiers.empty()) throw std::invalid_argument("Authenticate: at least one verifier is needed");
  for (const auto& v : options_.verifiers) {
    if (!v) throw std::invalid_argument("Authenticate: a verifier is null");
  }
  auto check_name = [](std::string_view name, std::string_view what) {
    if (!is_http_token(name)) {
      throw std::invalid_argument("Authenticate: invalid " + std::string(what) + " \"" + without_controls(name) + "\"");
    }
  };
  if (options_.source.kind == CredentialSource::Kind::header) {
    check_name(options_.source.name, "credential header name");
  } else if (options_.source.name.empty() || options_.source.name.find_first_of(";=&, \t") != std::string::npos ||
             detail::has_control(options_.source.name)) {
    throw std::invalid_argument("Authenticate: invalid credential name \"" + without_controls(options_.source.name) + "\"");
  }
  if (!detail::fits_quoted_string(options_.realm)) {
    throw std::invalid_argument("Authenticate: the realm must not contain '\"', '\\' or control characters");
  }
  if (!options_.identity.subject.empty()) check_name(options_.identity.subject, "identity header name");
  if (!options_.identity.scopes.empty()) check_name(options_.identity.scopes, "identity header name");
  for (const auto& [claim, header] : options_.identity.claims) {
    if (claim.empty()) throw std::invalid_argument("Authenticate: empty claim name in identity headers");
    check_name(header, "identity header name");
  }
  for (std::size_t i = 0; i < options_.verifiers.size(); ++i) {
    const bool named = i < options_.verifier_names.size() && !options_.verifier_names[i].empty();
    verifier_labels_.push_back(named ? options_.verifier_names[i] : "verifier" + std::to_string(i));
  }
  challenge_ = "Bearer realm=\"" + options_.realm + "\"";
  invalid_challenge_ = challenge_ + ", error=\"invalid_token\"";
}

Flow Authenticate::on_request(Exchange& ex) const {
  // Before anything else: whatever happens next, a client-sent identity header must not survive.
  Headers& h = ex.request().headers();
  if (!options_.identity.subject.empty()) h.remove(options_.identity.subject);
  if (!options_.identity.scopes.empty()) h.remove(options_.identity.scopes);
  for (const auto& [claim, header] : options_.identity.claims) h.remove(header);

  Credential c = extract(ex.request(), options_.source);
  if (c.found == Credential::Found::none) {
    detail::count_auth(ex, kNoVerifier, "missing");
    if (options_.optional) return Flow::next();
    if (ex.security_events())
      detail::report_authentication_failure(ex, options_.verifiers, {}, {}, "no credential in the request", 401);
    Flow f = Flow::respond(Status::unauthorized);
    f.response().headers().set("www-authenticate", challenge_);
    return f;
  }
  if (c.found == Credential::Found::several) {
    // Which one would the upstream believe? Refuse rather than guess (RFC 6750 section 2).
    log_failure(options_.logger, ex, make_error_code(TokenError::malformed), "more than one credential in the request");
    detail::count_auth(ex, kNoVerifier, "ambiguous");
    ex.emplace<AuthFailure>(AuthFailure{make_error_code(TokenError::malformed), "more than one credential"});
    if (ex.security_events())
      detail::report_authentication_failure(ex, options_.verifiers, {}, make_error_code(TokenError::malformed),
                                            "more than one credential in the request", 400);
    Flow f = Flow::respond(Status::bad_request);
    f.response().headers().set("www-authenticate", challenge_ + ", error=\"invalid_request\"");
    return f;
  }

  std::optional<VerifyResult> best;
  std::size_t best_index = 0;
  for (std::size_t i = 0; i < options_.verifiers.size(); ++i) {
    std::optional<VerifyResult> r = options_.verifiers[i]->try_verify_now(c.token);
    if (!r) return Flow::later(verify_later(ex, std::move(c.token), i, std::move(best), best_index));
    if (r->ok()) return finish(ex, std::move(*r), i, c.token);
    keep_most_specific(best, best_index, std::move(*r), i);
  }
  return finish(ex, std::move(*best), best_index, c.token);
}

asio::awaitable<Flow> Authenticate::verify_later(Exchange& ex, std::string token, std::size_t first,
                                                 std::optional<VerifyResult> best, std::size_t best_index) const {
  for (std::size_t i = first; i < options_.verifiers.size(); ++i) {
    VerifyResult r = co_await options_.verifiers[i]->verify(token);
    if (r.ok()) co_return finish(ex, std::move(r), i, token);
    keep_most_specific(best, best_index, std::move(r), i);
  }
  co_return finish(ex, std::move(*best), best_index, token);
}

Flow Authenticate::finish(Exchange& ex, VerifyResult result, std::size_t verifier, std::string_view token) const {
  detail::count_auth(ex, verifier_labels_[verifier],
                     result.ok() ? std::string_view("success") : detail::auth_result_label(result.error()));
  if (result.ok()) {
    set_identity(ex, result.value());
    ex.emplace<auth::Claims>(std::move(result).value());
    if (!options_.forward_token) remove_credential(ex);
    return Flow::next();
  }
  const std::error_code error = result.error();
  log_failure(options_.logger, ex, error, result.detail());
  std::string reason = error.message();
  if (!result.detail().empty()) reason += ": " + result.detail();
  ex.emplace<AuthFailure>(AuthFailure{error, std::move(reason)});
  if (ex.security_events()) {
    const unsigned status = !undecided(error) ? 401u : options_.fail_open_when_unavailable ? 0u : 503u;
    detail::report_authentication_failure(ex, options_.verifiers, token, error, result.detail(), status);
  }
  if (undecided(error)) {
    if (options_.fail_open_when_unavailable) {
      if (!options_.forward_token) remove_credential(ex);
      return Flow::next();
    }
    return Flow::respond(Status::service_unavailable);
  }
  // The same answer for every reason: the client learns nothing about why.
  Flow f = Flow::respond(Status::unauthorized);
  f.response().headers().set("www-authenticate", invalid_challenge_);
  return f;
}

void Authenticate::set_identity(Exchange& ex, const auth::Claims& claims) const {
  Headers& h = ex.request().headers();
  const IdentityHeaders& id = options_.identity;
  if (!id.subject.empty()) {
    if (auto sub = claims.subject()) set_sanitized(h, id.subject, *sub);
  }
  if (!id.scopes.empty()) {
    if (auto scope = claims.string("scope"); scope && canonical_scope_list(*scope)) {
      set_sanitized(h, id.scopes, *scope);
    } else {
      std::string joined;
      for (const auto& s : claims.scopes()) {
        if (!joined.empty()) joined += ' ';
        joined += s;
      }
      if (!joined.empty()) set_sanitized(h, id.scopes, joined);
    }
  }
  for (const auto& [claim, header] : id.claims) {
    const auth::ClaimValue v = claim.starts_with('/') ? claims.at(claim) : claims.get(claim);
    if (!v) continue;
    std::string text;
    if (auto s = v.string()) {
      text = *s;
    } else if (v.is_array()) {
      for (const auto& item : nlohmann::json::parse(v.dump())) {
        if (!text.empty()) text += ' ';
        text += item.is_string() ? item.get<std::string>() : item.dump();
      }
    } else {
      text = v.dump();
    }
    set_sanitized(h, header, text);
  }
}

void Authenticate::remove_credential(Exchange& ex) const {
  Request& req = ex.request();
  const std::string& name = options_.source.name;
  switch (options_.source.kind) {
    case CredentialSource::Kind::header:
      req.headers().remove(name);
      break;
    case CredentialSource::Kind::cookie: {
      // Rebuild the Cookie fields without the credential; other cookies still reach the upstream.
      std::vector<std::string> kept;
      for (auto f : req.headers()) {
        if (!iequals(f.name, "cookie")) continue;
        std::string rest;
        for_each_pair(f.value, ';', [&](std::string_view item, std::string_view n, std::string_view) {
          if (n == name || trim_ows(item).empty()) return;
          if (!rest.empty()) rest += "; ";
          rest += trim_ows(item);
        });
        if (!rest.empty()) kept.push_back(std::move(rest));
      }
      req.headers().remove("cookie");
      for (const auto& v : kept) req.headers().add("cookie", v);
      break;
    }
    case CredentialSource::Kind::query: {
      std::string query;
      for_each_pair(req.query(), '&', [&](std::string_view item, std::string_view n, std::string_view) {
        if (percent_decode(n) == name || item.empty()) return;
        if (!query.empty()) query += '&';
        query += item;
      });
      std::string target(req.path());
      if (!query.empty()) target += "?" + query;
      req.set_target(target);
      break;
    }
  }
}

}  // namespace gatehouse
