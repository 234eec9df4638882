// gatehouse: the config-driven gateway program.
//   gatehouse --config FILE   run until SIGINT/SIGTERM (graceful stop); SIGHUP reloads FILE
//   gatehouse --check FILE    validate the configuration and exit (0 valid, 2 invalid)
//   gatehouse --demo          two demo services and a gateway in front of them, on loopback
#include <gatehouse/config.hpp>
#include <gatehouse/config_reloader.hpp>
#include <gatehouse/gatehouse.hpp>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
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
int run_on(gh::Gateway& gw, asio::io_context& io, gh::ConfigReloader* reloader = nullptr) {
  gw.start();
  std::optional<ReloadOnSighup> hup;  // before "listening on": from then on SIGHUP reloads
  if (reloader) hup.emplace(*reloader);
  for (const auto& ep : gw.local_endpoints()) std::cerr << "gatehouse: listening on " << ep << "\n";
  asio::signal_set stop{io, SIGINT, SIGTERM};
  stop.async_wait([&](const asio::error_code&, int sig) {
    std::cerr << "gatehouse: " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ", draining\n";
    gw.stop();
  });
  io.run();
  gw.wait();
  return 0;
}

int run(gh::Gateway& gw) {
  asio::io_context signals;
  return run_on(gw, signals);
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
      if (config.options.workers == 1) {
        // One worker: it runs on this thread. A single-threaded process also makes every
        // syscall a little cheaper (the kernel skips reference counting on its descriptors).
        asio::io_context io(ASIO_CONCURRENCY_HINT_UNSAFE_IO);
        gh::Gateway gw{io.get_executor(), config.options};
        gh::apply(config, gw);
        gh::ConfigReloader reloader{gw, argv[2], std::move(config)};
        return run_on(gw, io, &reloader);
      }
      gh::Gateway gw{config.options};
      gh::apply(config, gw);
      gh::ConfigReloader reloader{gw, argv[2], std::move(config)};
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
