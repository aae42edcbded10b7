// Blocking network calls over Boost.Asio for a sink's own thread: one io_context run until the
// operation is done, its time limit passes, or the sink is interrupted (shutdown), and a name
// lookup bounded the same way. The http and syslog sinks use it.
#ifndef NEEDLE_SINKS_BLOCKING_IO_H
#define NEEDLE_SINKS_BLOCKING_IO_H

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <string>
#include <utility>

namespace needle::sinks {

class BlockingIo {
 public:
  boost::asio::io_context ioc;
  std::atomic<bool> interrupted{false};

  /// Runs the queued operation until it sets `done`, `limit` passes or interrupted is set.
  /// Otherwise `shut()` closes the sockets so the operation ends, its aborted handlers run, and
  /// the result is false.
  template <class Shut>
  bool run(const bool& done, std::chrono::steady_clock::duration limit, Shut&& shut) {
    ioc.restart();
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done && !interrupted.load()) {
      if (ioc.run_one_until(deadline) == 0) {
        break;
      }
    }
    if (!done) {
      shut();
      ioc.restart();
      ioc.run();   // the aborted handlers
      return false;
    }
    return true;
  }

  /// Why run() returned false, for an error message: "interrupted while ..." or "timed out ...".
  std::string run_failure(const std::string& what) const {
    return std::string(interrupted.load() ? "interrupted" : "timed out") + " while " + what;
  }

  /// Resolves host:port within `limit`. False with `error` set when it failed or ran out of time.
  template <class Shut>
  bool resolve(const std::string& host, uint16_t port, std::chrono::steady_clock::duration limit,
               Shut&& shut, boost::asio::ip::tcp::resolver::results_type& results,
               std::string& error) {
    using boost::asio::ip::tcp;
    tcp::resolver resolver(ioc);
    boost::system::error_code ec;
    bool done = false;
    resolver.async_resolve(host, std::to_string(port),
                           [&](const boost::system::error_code& e, tcp::resolver::results_type r) {
                             ec = e;
                             results = std::move(r);
                             done = true;
                           });
    if (!run(done, limit, shut)) {
      resolver.cancel();
      ioc.restart();
      ioc.run();
      error = run_failure("resolving " + host);
      return false;
    }
    if (ec) {
      error = "cannot resolve " + host + ": " + ec.message();
      return false;
    }
    return true;
  }
};

}  // namespace needle::sinks

#endif  // NEEDLE_SINKS_BLOCKING_IO_H
