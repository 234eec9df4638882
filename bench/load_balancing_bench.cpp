// ns per pick of each load-balancing policy, one thread, through the gateway's own path
// (EndpointChooser: the health view, then the policy) and the outcome report that follows each
// attempt. What the balancing adds to every proxied request; run by hand (bench/README.md).
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ns_per_iteration.hpp"
#include "gatehouse/auth/claims.hpp"
#include "gatehouse/exchange.hpp"
#include "gatehouse/load_balancers.hpp"
#include "proxy/endpoint_chooser.hpp"

namespace {

using namespace gatehouse;
using bench::ns_per_iteration;
constexpr long kIterations = 2'000'000;

std::vector<UpstreamEndpoint> endpoints(std::size_t n, bool weighted) {
  std::vector<UpstreamEndpoint> out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back({{asio::ip::make_address("10.0.0.1"), static_cast<unsigned short>(8000 + i)},
                   "10.0.0.1:" + std::to_string(8000 + i), "10.0.0.1", weighted ? static_cast<unsigned>(1 + i % 4) : 1u});
  return out;
}

// One pick and its outcome, as UpstreamOrigin::serve does them.
double cost(const char* name, LoadBalancerFactory policy, std::size_t n, bool weighted, UpstreamHealthOptions health,
            Exchange& ex) {
  auto h = std::make_shared<detail::UpstreamHealth>("bench", health);
  h->set_endpoints(endpoints(n, weighted));
  detail::EndpointChooser chooser(h, policy());
  const double ns = ns_per_iteration(kIterations, [&] {
    const detail::Choice c = chooser.pick(ex, 0, {});
    chooser.started(c);
    chooser.ended(c, true, detail::Outcome::success);
  });
  std::printf("%s\t%zu\t%s\t%s\t%.1f\n", name, n, weighted ? "mixed" : "equal",
              health.outlier_detection ? "on" : "off", ns);
  return ns;
}

}  // namespace

int main() {
  Exchange ex("GET", "/orders/7", {{"host", "api.example.com"}, {"x-user", "alice"}, {"cookie", "a=1; sid=s-42"}});
  ex.emplace<auth::Claims>(auth::Claims(nlohmann::json{{"sub", "alice"}}));
  UpstreamHealthOptions off;
  UpstreamHealthOptions on;
  on.outlier_detection = OutlierDetectionOptions{};
  std::printf("policy\tendpoints\tweights\toutlier_detection\tns_per_pick\n");
  for (std::size_t n : {3u, 16u, 256u}) {
    for (bool weighted : {false, true}) {
      cost("round_robin", round_robin(), n, weighted, off, ex);
      cost("least_request", least_request(), n, weighted, off, ex);
      cost("random", random_choice(), n, weighted, off, ex);
    }
    cost("consistent_hash(header)", consistent_hash({.key = {HashKey::Source::header, "x-user"}}), n, false, off, ex);
    cost("consistent_hash(cookie)", consistent_hash({.key = {HashKey::Source::cookie, "sid"}}), n, false, off, ex);
    cost("consistent_hash(claim)", consistent_hash({.key = {HashKey::Source::claim, "sub"}}), n, false, off, ex);
    cost("consistent_hash(client_address)", consistent_hash({.key = {HashKey::Source::client_address, {}}}), n, false,
         off, ex);
    cost("round_robin", round_robin(), n, false, on, ex);
  }
  return 0;
}
