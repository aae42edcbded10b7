// The TLS client context every network sink sets up the same way: TLS 1.2 or newer, the CA file
// (or the system's default paths) to verify the server, and an optional client certificate.
#ifndef NEEDLE_SINKS_TLS_CLIENT_H
#define NEEDLE_SINKS_TLS_CLIENT_H

#include <boost/asio/ssl/context.hpp>
#include <string>

namespace needle::sinks {

/// Configures `ctx` (made with tls_client). Throws boost::system::system_error when a file
/// cannot be loaded; the caller names the endpoint and the files in its error.
inline void configure_tls_client(boost::asio::ssl::context& ctx, const std::string& ca_file,
                                 const std::string& cert_file, const std::string& key_file) {
  namespace ssl = boost::asio::ssl;
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (ca_file.empty()) {
    ctx.set_default_verify_paths();
  } else {
    ctx.load_verify_file(ca_file);
  }
  if (!cert_file.empty()) {
    ctx.use_certificate_chain_file(cert_file);
    ctx.use_private_key_file(key_file, ssl::context::pem);
  }
}

}  // namespace needle::sinks

#endif  // NEEDLE_SINKS_TLS_CLIENT_H
