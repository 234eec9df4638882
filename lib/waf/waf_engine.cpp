#include "waf/waf_engine.hpp"

#include <modsecurity/intervention.h>
#include <modsecurity/modsecurity.h>
#include <modsecurity/rule_message.h>
#include <modsecurity/rules_set.h>
#include <modsecurity/rules_set_properties.h>
#include <modsecurity/transaction.h>

#include <charconv>
#include <filesystem>
#include <map>
#include <mutex>

namespace gatehouse::detail {
namespace {

// Rule ids of gatehouse's own base rules (a range the ModSecurity id registry leaves unassigned).
constexpr int kJsonProcessorRule = 440001;
constexpr int kXmlProcessorRule = 440002;
constexpr int kBodyErrorRule = 440003;
constexpr int kMultipartStrictRule = 440004;
constexpr int kCrsSettingsRule = 440010;
// CRS 3.3's initialization of the persistent "global" and "ip" collections: ModSecurity's
// in-memory collections are not safe for concurrent transactions, and the rules that use them
// (IP reputation, DoS protection) are off by default; gatehouse bans clients itself.
constexpr int kCrsCollectionsRule = 901321;

// The SecLang parser keeps global state: one load at a time in the process.
std::mutex& load_mutex() {
  static std::mutex m;
  return m;
}

// SecLang's Include takes the path as it is (quotes would be part of it), so a path with spaces
// or quotes cannot be included: refused with a clear error instead.
std::string include_path(const std::string& p) {
  std::string abs = std::filesystem::absolute(p).lexically_normal().string();
  if (abs.find_first_of(" \t\r\n\"'\\") != std::string::npos)
    throw WafError("WAF rule file path " + abs + ": spaces, quotes and backslashes are not supported");
  return abs;
}

void append_exclusions(std::string& text, const WafExclusions& ex) {
  for (int id : ex.ids) text += "SecRuleRemoveById " + std::to_string(id) + "\n";
  for (auto [lo, hi] : ex.ranges) text += "SecRuleRemoveById " + std::to_string(lo) + "-" + std::to_string(hi) + "\n";
}

int to_int(const std::unique_ptr<std::string>& s) {
  if (!s) return 0;
  int v = 0;
  std::from_chars(s->data(), s->data() + s->size(), v);
  return v;
}

}  // namespace

void WafRequest::add_header(std::string_view name, std::string_view value) {
  Field f{header_bytes.size(), name.size(), 0, value.size()};
  header_bytes.append(name);
  f.value_at = header_bytes.size();
  header_bytes.append(value);
  headers.push_back(f);
}

// One ModSecurity instance for the process, never destroyed: its destructor cleans up libxml2 and
// libcurl globally (xmlCleanupParser), which would break every other rule set still in use.
modsecurity::ModSecurity& modsecurity_instance() {
  static modsecurity::ModSecurity* const instance = [] {
    auto* m = new modsecurity::ModSecurity();
    m->setConnectorInformation("gatehouse");
    // Matches are read from each transaction and reported as security events; without a callback
    // ModSecurity prints every one of them on standard output.
    m->setServerLogCb([](void*, const void*) {}, modsecurity::RuleMessageLogProperty);
    return m;
  }();
  return *instance;
}

struct WafEngine::Impl {
  modsecurity::ModSecurity& modsec = modsecurity_instance();
  modsecurity::RulesSet rules;
  int inbound_threshold = 5;
};

WafEngine::WafEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WafEngine::~WafEngine() = default;

std::string WafEngine::rules_text(const WafOptions& o) {
  const std::string limit = std::to_string(o.request_body_limit == 0 ? 1 : o.request_body_limit);
  std::string t;
  t += o.mode == WafMode::block ? "SecRuleEngine On\n" : "SecRuleEngine DetectionOnly\n";
  t += "SecRequestBodyAccess On\n";
  t += "SecRequestBodyLimit " + limit + "\n";
  t += "SecRequestBodyNoFilesLimit " + limit + "\n";
  t += "SecRequestBodyLimitAction ProcessPartial\n";
  t += "SecResponseBodyAccess Off\n";
  t += "SecAuditEngine Off\n";
  // Body processors by content type (urlencoded and multipart are ModSecurity's defaults), and a
  // body that does not parse is refused: otherwise its arguments would escape inspection.
  t += "SecRule REQUEST_HEADERS:Content-Type \"@rx ^application/(?:[a-z0-9.+-]+\\+)?json\" \"id:" +
       std::to_string(kJsonProcessorRule) + ",phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON\"\n";
  t += "SecRule REQUEST_HEADERS:Content-Type \"@rx ^(?:application(?:/soap\\+|/)|text/)xml\" \"id:" +
       std::to_string(kXmlProcessorRule) + ",phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML\"\n";
  t += "SecRule REQBODY_ERROR \"!@eq 0\" \"id:" + std::to_string(kBodyErrorRule) +
       ",phase:2,t:none,log,deny,status:400,severity:'CRITICAL',msg:'Request body does not parse',"
       "logdata:'%{reqbody_error_msg}'\"\n";
  t += "SecRule MULTIPART_STRICT_ERROR \"!@eq 0\" \"id:" + std::to_string(kMultipartStrictRule) +
       ",phase:2,t:none,log,deny,status:400,severity:'CRITICAL',msg:'Multipart body fails strict validation'\"\n";
  if (o.crs) {
    t += "Include " + include_path(o.crs_setup) + "\n";
    t += "SecAction \"id:" + std::to_string(kCrsSettingsRule) + ",phase:1,pass,nolog,t:none," +
         "setvar:tx.paranoia_level=" + std::to_string(o.paranoia_level) +
         ",setvar:tx.inbound_anomaly_score_threshold=" + std::to_string(o.inbound_anomaly_threshold) +
         ",setvar:tx.outbound_anomaly_score_threshold=" + std::to_string(o.outbound_anomaly_threshold) +
         // An API gateway serves REST verbs (CRS allows only GET HEAD POST OPTIONS by default).
         ",setvar:'tx.allowed_methods=GET HEAD POST PUT PATCH DELETE OPTIONS'\"\n";
    t += "Include " + include_path(o.crs_rules_dir + "/*.conf") + "\n";
    t += "SecRuleRemoveById " + std::to_string(kCrsCollectionsRule) + "\n";
  }
  for (const std::string& f : o.rule_files) t += "Include " + include_path(f) + "\n";
  if (!o.rules.empty()) t += o.rules + "\n";
  append_exclusions(t, o.exclude);
  return t;
}

std::shared_ptr<const WafEngine> WafEngine::load(const WafOptions& options) {
  const std::string text = rules_text(options);
  static std::mutex cache_mutex;
  static std::map<std::string, std::weak_ptr<const WafEngine>> cache;
  std::lock_guard cache_lock(cache_mutex);
  if (auto it = cache.find(text); it != cache.end())
    if (auto engine = it->second.lock()) return engine;
  auto impl = std::make_unique<Impl>();
  impl->inbound_threshold = options.inbound_anomaly_threshold;
  {
    std::lock_guard load_lock(load_mutex());
    if (impl->rules.load(text.c_str(), "gatehouse-waf") < 0)
      throw WafError("WAF rules do not load: " + impl->rules.getParserError());
  }
  auto engine = std::make_shared<const WafEngine>(std::move(impl));
  for (auto it = cache.begin(); it != cache.end();) it = it->second.expired() ? cache.erase(it) : std::next(it);
  cache[text] = engine;
  return engine;
}

struct WafTransaction::Impl {
  Impl(std::shared_ptr<const WafEngine> e)
      : engine(std::move(e)),
        tx(const_cast<modsecurity::ModSecurity*>(&engine->impl().modsec),
           const_cast<modsecurity::RulesSet*>(&engine->impl().rules), nullptr) {}

  // Reads what the phase left: intervention, new messages, the anomaly score.
  WafVerdict verdict() {
    WafVerdict v;
    modsecurity::ModSecurityIntervention it;
    modsecurity::intervention::clean(&it);
    if (tx.intervention(&it)) {
      v.intervene = it.disruptive != 0;
      v.status = it.status;
    }
    modsecurity::intervention::free(&it);
    std::size_t i = 0;
    for (const modsecurity::RuleMessage& m : tx.m_rulesMessages) {
      if (i++ < seen) continue;
      v.matches.push_back({m.m_ruleId, m.m_severity, m.m_message, m.m_data});
    }
    seen = i;
    v.anomaly_score = to_int(tx.m_collections.m_tx_collection->resolveFirst("anomaly_score"));
    v.over_threshold = v.anomaly_score >= engine->impl().inbound_threshold;
    return v;
  }

  std::shared_ptr<const WafEngine> engine;
  modsecurity::Transaction tx;
  std::size_t seen = 0;
};

namespace {

void remove_rules(modsecurity::Transaction& tx, const WafExclusions* ex) {
  if (!ex) return;
  for (int id : ex->ids) tx.m_ruleRemoveById.push_back(id);
  for (auto r : ex->ranges) tx.m_ruleRemoveByIdRange.push_back(r);
}

const unsigned char* bytes(const std::string& s, std::size_t at) {
  return reinterpret_cast<const unsigned char*>(s.data() + at);
}

}  // namespace

WafTransaction::WafTransaction(std::shared_ptr<const WafEngine> engine, const WafTransactionPolicy& policy)
    : impl_(std::make_unique<Impl>(std::move(engine))) {
  if (policy.detect_only) impl_->tx.m_secRuleEngine = modsecurity::RulesSetProperties::DetectionOnlyRuleEngine;
  else impl_->tx.m_secRuleEngine = modsecurity::RulesSetProperties::EnabledRuleEngine;
  remove_rules(impl_->tx, policy.global);
  remove_rules(impl_->tx, policy.route);
}

WafTransaction::~WafTransaction() = default;

WafVerdict WafTransaction::inspect_request(const WafRequest& r) {
  auto& tx = impl_->tx;
  if (r.body_truncated) {
    // A cut JSON or multipart body does not parse: that alone is no reason to refuse it.
    tx.m_ruleRemoveById.push_back(kBodyErrorRule);
    tx.m_ruleRemoveById.push_back(kMultipartStrictRule);
  }
  tx.processConnection(r.client_ip.c_str(), r.client_port, r.server_ip.c_str(), r.server_port);
  tx.processURI(r.target.c_str(), r.method.c_str(), r.version.c_str());
  for (const auto& f : r.headers)
    tx.addRequestHeader(bytes(r.header_bytes, f.name_at), f.name_len, bytes(r.header_bytes, f.value_at), f.value_len);
  tx.processRequestHeaders();
  WafVerdict early = impl_->verdict();
  if (early.intervene) return early;
  if (!r.body.empty()) tx.appendRequestBody(bytes(r.body, 0), r.body.size());
  tx.processRequestBody();
  WafVerdict v = impl_->verdict();
  early.matches.insert(early.matches.end(), std::make_move_iterator(v.matches.begin()),
                       std::make_move_iterator(v.matches.end()));
  v.matches = std::move(early.matches);
  return v;
}

WafVerdict WafTransaction::inspect_response(int status, const std::string& header_bytes,
                                            const std::vector<WafRequest::Field>& headers) {
  auto& tx = impl_->tx;
  for (const auto& f : headers)
    tx.addResponseHeader(bytes(header_bytes, f.name_at), f.name_len, bytes(header_bytes, f.value_at), f.value_len);
  tx.processResponseHeaders(status, "HTTP 1.1");
  return impl_->verdict();
}

}  // namespace gatehouse::detail
