// gatehouse: the config-driven gateway program.
//   gatehouse --config FILE   run until SIGINT/SIGTERM (graceful stop)
//   gatehouse --check FILE    validate the configuration and exit (0 valid, 2 invalid)
//   gatehouse --demo          two demo services and a gateway in front of them, on loopback
// Signals: SIGINT/SIGTERM drain and stop; SIGUSR1 reopens the security-event files (logrotate).
#include <gatehouse/config.hpp>
#include <gatehouse/gatehouse.hpp>
#include <gatehouse/security_events.hpp>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "demo.hpp"

namespace gh = gatehouse;

namespace {

int usage() {
  std::cerr << "usage: gatehouse --config FILE | --check FILE | --demo\n";
  return 64;
}

// Runs the gateway until a signal asks it to stop, then drains it. `io` runs the signal wait (and,
// for a gateway on a host executor, the gateway itself).
// SIGUSR1: the security-event sinks reopen their files (SIGHUP is left to configuration reload).
struct ReopenOnSignal {
  asio::signal_set& signals;
  gh::SecurityEvents* events;
  void operator()(const asio::error_code& ec, int) const {
    if (ec) return;
    events->reopen();
    signals.async_wait(*this);
  }
};

int run_on(gh::Gateway& gw, asio::io_context& io) {
  gw.start();
  for (const auto& ep : gw.local_endpoints()) std::cerr << "gatehouse: listening on " << ep << "\n";
  asio::signal_set reopen{io};
  if (gh::SecurityEvents* events = gw.options().security_events.get()) {
    reopen.add(SIGUSR1);
    reopen.async_wait(ReopenOnSignal{reopen, events});
  }
  asio::signal_set stop{io, SIGINT, SIGTERM};
  stop.async_wait([&](const asio::error_code&, int sig) {
    std::cerr << "gatehouse: " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ", draining\n";
    reopen.cancel();
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
        return run_on(gw, io);
      }
      gh::Gateway gw{config.options};
      gh::apply(config, gw);
      return run(gw);
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
