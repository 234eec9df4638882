// gatehouse: the config-driven gateway program.
//   gatehouse --config FILE   run until SIGINT/SIGTERM (graceful stop); SIGHUP reloads FILE
//   gatehouse --check FILE    validate the configuration and exit (0 valid, 2 invalid)
//   gatehouse --demo          two demo services and a gateway in front of them, on loopback
// Signals: SIGINT/SIGTERM drain and stop; SIGUSR1 reopens the security-event files (logrotate).
#include <gatehouse/config.hpp>
#include <gatehouse/config_reloader.hpp>
#include <gatehouse/gatehouse.hpp>
#include <gatehouse/security_events.hpp>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "demo.hpp"

namespace gh = gatehouse;

namespace {

int usage() {
  std::cerr << "usage: gatehouse --config FILE | --check FILE | --demo\n";
  return 64;
}

// SIGHUP reloads the configuration file, on a thread of its own: reading files and loading
// certificates must not hold up a worker (with "workers": 1, the main thread is the worker).
// A refused file is logged with its JSON path; the gateway goes on as it was.
class ReloadOnSighup {
 public:
  explicit ReloadOnSighup(gh::ConfigReloader& reloader) : reloader_(reloader) {
    wait();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~ReloadOnSighup() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void wait() {
    hup_.async_wait([this](const asio::error_code& ec, int) {
      if (ec) return;
      reloader_.reload();  // logs the outcome
      wait();
    });
  }
  gh::ConfigReloader& reloader_;
  asio::io_context io_;
  asio::signal_set hup_{io_, SIGHUP};
  std::thread thread_;
};

// Runs the gateway until a signal asks it to stop, then drains it. `io` runs the signal wait (and,
// for a gateway on a host executor, the gateway itself).
// SIGUSR1: the security-event sinks of the configuration in force (a reload brings its own)
// reopen their files (SIGHUP is left to configuration reload). Caught whether or not that
// configuration has events, since a reload may add them (and SIGUSR1 would otherwise end the
// process).
struct ReopenOnSignal {
  asio::signal_set& signals;
  gh::Gateway& gw;
  void operator()(const asio::error_code& ec, int) const {
    if (ec) return;
    if (const auto events = gw.definition().options.security_events) events->reopen();
    signals.async_wait(*this);
  }
};

int run_on(gh::Gateway& gw, asio::io_context& io, gh::ConfigReloader* reloader = nullptr) {
  // Before start(): the admin API's POST /drain raises SIGTERM as soon as it listens.
  asio::signal_set reopen{io, SIGUSR1};
  reopen.async_wait(ReopenOnSignal{reopen, gw});
  asio::signal_set stop{io, SIGINT, SIGTERM};
  stop.async_wait([&](const asio::error_code&, int sig) {
    std::cerr << "gatehouse: " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ", draining\n";
    reopen.cancel();
    gw.stop();
  });
  gw.start();
  std::optional<ReloadOnSighup> hup;  // before "listening on": from then on SIGHUP reloads
  if (reloader) hup.emplace(*reloader);
  for (const auto& ep : gw.local_endpoints()) std::cerr << "gatehouse: listening on " << ep << "\n";
  if (const auto admin = gw.admin_endpoint()) std::cerr << "gatehouse: admin API on " << *admin << "\n";
  io.run();
  gw.wait();
  return 0;
}

int run(gh::Gateway& gw) {
  asio::io_context signals;
  return run_on(gw, signals);
}

// The admin API, when the file has an "admin" section: GET /config shows this file with its
// secrets redacted, and POST /drain stops the program as SIGTERM does (the same log line, the
// same exit).
// POST /reload does what SIGHUP does, through `reloader` once main() has made it.
void enable_admin(gh::AdminOptions& admin, const std::string& file,
                  const std::shared_ptr<gh::ConfigReloader*>& reloader) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  admin.running_config = [text = std::make_shared<const std::string>(text.str())] { return *text; };
  admin.reload = [reloader] {
    if (!*reloader) return gh::ReloadResult{.error = "the gateway is not running yet"};
    return (*reloader)->reload();
  };
  admin.drain = [] {
    std::cerr << "gatehouse: drain requested on the admin API\n";
    std::raise(SIGTERM);
  };
}

// GET /metrics on the admin API: a scrape of the registry the gateway counts into (a reload keeps
// it). Without metrics the endpoint answers 404.
void serve_metrics(gh::GatewayConfig& config) {
  gh::MetricsOptions& metrics = config.options.metrics;
  if (!metrics.enabled) return;
  if (!metrics.registry) metrics.registry = std::make_shared<gh::MetricsRegistry>();
  config.admin->metrics = [registry = metrics.registry] { return registry->render_prometheus(); };
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string mode = argv[1];
  try {
    if (mode == "--demo") return gatehouse_demo::run_demo(run);
    if ((mode == "--config" || mode == "--check") && argc == 3) {
      gh::GatewayConfig config = gh::load_config_file(argv[2]);
      if (mode == "--check") {
        std::cout << argv[2] << ": configuration is valid\n";
        return 0;
      }
      auto reloader_slot = std::make_shared<gh::ConfigReloader*>(nullptr);
      if (config.admin) {
        enable_admin(*config.admin, argv[2], reloader_slot);
        serve_metrics(config);
      }
      if (config.options.workers == 1) {
        // One worker: it runs on this thread. A single-threaded process also makes every
        // syscall a little cheaper (the kernel skips reference counting on its descriptors).
        asio::io_context io(ASIO_CONCURRENCY_HINT_UNSAFE_IO);
        gh::Gateway gw{io.get_executor(), config.options};
        gh::apply(config, gw);
        gh::ConfigReloader reloader{gw, argv[2], std::move(config)};
        *reloader_slot = &reloader;
        return run_on(gw, io, &reloader);
      }
      gh::Gateway gw{config.options};
      gh::apply(config, gw);
      gh::ConfigReloader reloader{gw, argv[2], std::move(config)};
      *reloader_slot = &reloader;
      asio::io_context signals;
      return run_on(gw, signals, &reloader);
    }
    return usage();
  } catch (const gh::ConfigError& e) {
    std::cerr << "gatehouse: invalid configuration: " << (e.path().empty() ? "" : e.path() + ": ") << e.reason()
              << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "gatehouse: " << e.what() << "\n";
    return 1;
  }
}
