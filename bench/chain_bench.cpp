// ns per request for a chain of 10 trivial middlewares (on_request, on_response, on_complete),
// run with the gateway's chain functions: the fixed cost the chain adds to every request.
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "ns_per_iteration.hpp"
#include "core/chain.hpp"
#include "gatehouse/exchange.hpp"
#include "gatehouse/middleware.hpp"

namespace {

using namespace gatehouse;
using bench::ns_per_iteration;

constexpr std::size_t kMiddlewares = 10;
constexpr long kIterations = 2'000'000;

// Reads the exchange so the hooks are not empty, and stays allocation-free.
volatile std::size_t g_touched = 0;
class Trivial final : public Middleware {
 public:
  Flow on_request(Exchange& ex) const override {
    g_touched = g_touched + ex.request().headers().size();
    return Flow::next();
  }
  Flow on_response(Exchange& ex) const override {
    g_touched = g_touched + ex.response().status();
    return Flow::next();
  }
  void on_complete(Exchange& ex, std::error_code) const noexcept override { g_touched = g_touched + ex.bytes_sent(); }
};

}  // namespace

int main() {
  std::array<Trivial, kMiddlewares> middlewares;
  std::array<const Middleware*, kMiddlewares> pointers{};
  for (std::size_t i = 0; i < kMiddlewares; ++i) pointers[i] = &middlewares[i];
  const detail::ChainView chain(pointers);

  // One request through the chain as the gateway runs it when no hook defers or answers.
  auto one_request = [&](Exchange& ex) {
    std::size_t entered = 0;
    Flow f = detail::step_on_request(chain, ex, entered);
    if (!f.is_next()) std::abort();
    std::size_t pos = entered;
    bool replaced = false;
    f = detail::step_on_response(chain, ex, pos, replaced);
    if (!f.is_next() || replaced) std::abort();
    detail::run_on_complete(chain, entered, ex, {});
  };

  Exchange shared("GET", "/bench");
  const double chain_only = ns_per_iteration(kIterations, [&] { one_request(shared); });
  if (shared.bytes_sent() == 0) return 1;  // keeps the work observable
  const double with_exchange = ns_per_iteration(kIterations, [&] {
    Exchange ex("GET", "/bench", {{"host", "example.com"}});
    one_request(ex);
  });

  std::printf("chain of %zu middlewares, %ld iterations\n", kMiddlewares, kIterations);
  std::printf("  chain hooks only:            %7.1f ns/request\n", chain_only);
  std::printf("  with a fresh Exchange each:  %7.1f ns/request\n", with_exchange);
  return 0;
}
