// gatehouse: the config-driven gateway program.
//   gatehouse --config FILE   run until SIGINT/SIGTERM (graceful stop)
//   gatehouse --check FILE    validate the configuration and exit (0 valid, 2 invalid)
//   gatehouse --demo          two demo services and a gateway in front of them, on loopback
#include <gatehouse/config.hpp>
#include <gatehouse/gatehouse.hpp>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
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
int run_on(gh::Gateway& gw, asio::io_context& io) {
  // Before start(): the admin API's POST /drain raises SIGTERM as soon as it listens.
  asio::signal_set stop{io, SIGINT, SIGTERM};
  stop.async_wait([&](const asio::error_code&, int sig) {
    std::cerr << "gatehouse: " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ", draining\n";
    gw.stop();
  });
  gw.start();
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
void enable_admin(gh::AdminOptions& admin, const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  admin.running_config = [text = std::make_shared<const std::string>(text.str())] { return *text; };
  admin.drain = [] {
    std::cerr << "gatehouse: drain requested on the admin API\n";
    std::raise(SIGTERM);
  };
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
      if (config.admin) enable_admin(*config.admin, argv[2]);
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
