// In-memory handshakes (BIO pairs, no sockets) between contexts built by tls/tls_context.
#include <doctest/doctest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

#include "support/test_certs.hpp"
#include "tls/tls_context.hpp"

using gatehouse::CertificateFiles;
using gatehouse::ServerTls;
using gatehouse::UpstreamTls;
using gatehouse::detail::make_client_context;
using gatehouse::detail::make_server_context;
using gatehouse::detail::openssl_error_string;
using gatehouse::detail::prepare_client_stream;
using gatehouse::test::TestPki;

namespace {

struct SslFree {
  void operator()(SSL* s) const noexcept { SSL_free(s); }
  void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslFree>;

struct Side {
  SslPtr ssl;
  bool done = false;
  bool failed = false;
  std::string error;

  void step() {
    if (done || failed) return;
    ERR_clear_error();
    int rc = SSL_do_handshake(ssl.get());
    if (rc == 1) {
      done = true;
      return;
    }
    int e = SSL_get_error(ssl.get(), rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
    failed = true;
    error = openssl_error_string();
  }
};

// A client and a server SSL joined by an in-memory BIO pair.
struct Handshake {
  Side client;
  Side server;

  Handshake(SSL_CTX* server_ctx, SSL_CTX* client_ctx) {
    server.ssl.reset(SSL_new(server_ctx));
    client.ssl.reset(SSL_new(client_ctx));
    REQUIRE(server.ssl);
    REQUIRE(client.ssl);
    BIO* a = nullptr;
    BIO* b = nullptr;
    REQUIRE(BIO_new_bio_pair(&a, 0, &b, 0) == 1);
    SSL_set_bio(server.ssl.get(), a, a);
    SSL_set_bio(client.ssl.get(), b, b);
    SSL_set_accept_state(server.ssl.get());
    SSL_set_connect_state(client.ssl.get());
  }

  SSL* c() const { return client.ssl.get(); }
  SSL* s() const { return server.ssl.get(); }

  // Alternates until both finish or both fail; a side left waiting for data just stops.
  void run() {
    for (int i = 0; i < 50; ++i) {
      client.step();
      server.step();
      if ((client.done && server.done) || (client.failed && server.failed)) break;
    }
  }
  bool ok() const { return client.done && server.done; }
};

std::string subject_cn(const X509* cert) {
  if (!cert) return "<none>";
  const X509_NAME* name = X509_get_subject_name(cert);
  int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (i < 0) return "<no CN>";
  const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<std::size_t>(ASN1_STRING_length(s))};
}

std::string peer_cn(SSL* ssl) { return subject_cn(SSL_get0_peer_certificate(ssl)); }

std::string alpn(SSL* ssl) {
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(ssl, &p, &n);
  return p ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
}

// A client with no verification and free choice of protocol settings, to probe the server.
SslCtxPtr probe_client() {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  REQUIRE(ctx);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  return ctx;
}

template <typename F>
std::string setup_error(F&& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "<no exception>";
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

TEST_CASE("TLS: server and client contexts negotiate TLS 1.3 with ALPN http/1.1 and a verified host") {
  TestPki pki;
  auto cert = pki.issue("server", {"a.example.com", "localhost"});
  auto server = make_server_context(ServerTls{{cert}, {}, {}});
  auto client = make_client_context(UpstreamTls{pki.ca_cert, {}, {}});

  long opts = static_cast<long>(SSL_CTX_get_options(server->native_handle()));
  CHECK((opts & SSL_OP_NO_COMPRESSION) != 0);
  CHECK((opts & SSL_OP_NO_RENEGOTIATION) != 0);
  CHECK((opts & SSL_OP_CIPHER_SERVER_PREFERENCE) != 0);
  CHECK(SSL_CTX_get_min_proto_version(server->native_handle()) == TLS1_2_VERSION);
  CHECK(SSL_CTX_get_min_proto_version(client->native_handle()) == TLS1_2_VERSION);

  Handshake h(server->native_handle(), client->native_handle());
  CHECK(prepare_client_stream(h.c(), "A.Example.com"));
  h.run();
  INFO("client: " << h.client.error << " server: " << h.server.error);
  REQUIRE(h.ok());
  CHECK(SSL_version(h.c()) == TLS1_3_VERSION);
  CHECK(SSL_get_verify_result(h.c()) == X509_V_OK);
  CHECK(alpn(h.c()) == "http/1.1");
  CHECK(alpn(h.s()) == "http/1.1");
  CHECK(std::string_view(SSL_get_servername(h.s(), TLSEXT_NAMETYPE_host_name)) == "A.Example.com");
}

TEST_CASE("TLS: 1.2 uses an ECDHE AEAD suite; TLS 1.1 and non-ECDHE clients are refused") {
  TestPki pki;
  auto server = make_server_context(ServerTls{{pki.issue("server", {"localhost"})}, {}, {}});

  SUBCASE("TLS 1.2") {
    auto client = make_client_context(UpstreamTls{pki.ca_cert, {}, {}});
    SSL_CTX_set_max_proto_version(client->native_handle(), TLS1_2_VERSION);
    Handshake h(server->native_handle(), client->native_handle());
    prepare_client_stream(h.c(), "localhost");
    h.run();
    REQUIRE(h.ok());
    CHECK(SSL_version(h.c()) == TLS1_2_VERSION);
    std::string cipher = SSL_get_cipher_name(h.c());
    CHECK(cipher.rfind("ECDHE-ECDSA-", 0) == 0);
    CHECK((contains(cipher, "GCM") || contains(cipher, "CHACHA20-POLY1305")));
    CHECK(alpn(h.c()) == "http/1.1");
  }
  SUBCASE("TLS 1.1 client") {
    auto client = probe_client();
    // Security level 0 so that OpenSSL 3 lets this client offer TLS 1.1 at all.
    SSL_CTX_set_security_level(client.get(), 0);
    REQUIRE(SSL_CTX_set_cipher_list(client.get(), "DEFAULT:@SECLEVEL=0") == 1);
    SSL_CTX_set_min_proto_version(client.get(), TLS1_1_VERSION);
    SSL_CTX_set_max_proto_version(client.get(), TLS1_1_VERSION);
    Handshake h(server->native_handle(), client.get());
    h.run();
    CHECK(h.server.failed);
    CHECK(h.client.failed);
    CHECK(contains(h.server.error, "unsupported protocol"));
  }
  SUBCASE("TLS 1.2 client without ECDHE") {
    auto client = probe_client();
    SSL_CTX_set_max_proto_version(client.get(), TLS1_2_VERSION);
    REQUIRE(SSL_CTX_set_cipher_list(client.get(), "AES128-GCM-SHA256:AES256-SHA") == 1);
    Handshake h(server->native_handle(), client.get());
    h.run();
    CHECK(h.server.failed);
    CHECK(contains(h.server.error, "no shared cipher"));
  }
}

TEST_CASE("TLS: SNI selects the certificate whose names match, else the first one") {
  TestPki pki;
  ServerTls tls;
  tls.certificates = {pki.issue("alpha", {"alpha.example.com"}),
                      pki.issue("beta", {"*.beta.example.com"}),
                      pki.issue("gamma.example.com", {}),  // no SAN: CN fallback
                      pki.issue("delta", {"exact.beta.example.com"}, {"192.0.2.1"})};
  auto server = make_server_context(tls);
  auto verified = make_client_context(UpstreamTls{pki.ca_cert, {}, {}});

  SUBCASE("matching names verify on the client, ALPN works on every context") {
    struct Case {
      const char* host;
      const char* cn;
    };
    for (Case k : {Case{"alpha.example.com", "alpha"}, Case{"www.beta.example.com", "beta"},
                   Case{"WWW.Beta.Example.COM", "beta"}, Case{"Gamma.Example.com", "gamma.example.com"},
                   Case{"exact.beta.example.com", "delta"}}) {
      CAPTURE(k.host);
      Handshake h(server->native_handle(), verified->native_handle());
      CHECK(prepare_client_stream(h.c(), k.host));
      h.run();
      INFO("client: " << h.client.error << " server: " << h.server.error);
      REQUIRE(h.ok());
      CHECK(peer_cn(h.c()) == k.cn);
      CHECK(X509_check_host(SSL_get0_peer_certificate(h.c()), k.host, 0, 0, nullptr) == 1);
      CHECK(alpn(h.c()) == "http/1.1");
    }
  }
  SUBCASE("no SNI or no match: the first certificate") {
    auto probe = probe_client();
    for (const char* host : {"", "beta.example.com", ".beta.example.com", "a.b.beta.example.com", "unknown.test"}) {
      CAPTURE(host);
      Handshake h(server->native_handle(), probe.get());
      if (*host) SSL_set_tlsext_host_name(h.c(), host);
      h.run();
      REQUIRE(h.ok());
      CHECK(peer_cn(h.c()) == "alpha");
    }
  }
  SUBCASE("the extra contexts live as long as the default SSL_CTX, not the asio wrapper") {
    SslPtr ssl(SSL_new(server->native_handle()));
    server.reset();
    Handshake h(SSL_get_SSL_CTX(ssl.get()), verified->native_handle());
    ssl.reset();  // the Handshake's own SSL holds the context now
    prepare_client_stream(h.c(), "x.beta.example.com");
    h.run();
    REQUIRE(h.ok());
    CHECK(peer_cn(h.c()) == "beta");
  }
}

TEST_CASE("TLS: ALPN selects only http/1.1 and proceeds without ALPN otherwise") {
  TestPki pki;
  auto server = make_server_context(ServerTls{{pki.issue("server", {"localhost"})}, {}, {}});
  auto probe = probe_client();

  static const unsigned char h2_only[] = {2, 'h', '2'};
  static const unsigned char h2_and_http11[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  {
    Handshake h(server->native_handle(), probe.get());
    REQUIRE(SSL_set_alpn_protos(h.c(), h2_only, sizeof h2_only) == 0);
    h.run();
    REQUIRE(h.ok());
    CHECK(alpn(h.c()).empty());
  }
  {
    Handshake h(server->native_handle(), probe.get());
    REQUIRE(SSL_set_alpn_protos(h.c(), h2_and_http11, sizeof h2_and_http11) == 0);
    h.run();
    REQUIRE(h.ok());
    CHECK(alpn(h.c()) == "http/1.1");
  }
}

TEST_CASE("TLS: upstream verification rejects another CA, a wrong name and an unusable host") {
  TestPki pki;
  TestPki other("other CA");
  auto client = make_client_context(UpstreamTls{pki.ca_cert, {}, {}});

  SUBCASE("certificate from another CA") {
    auto server = make_server_context(ServerTls{{other.issue("server", {"a.example.com"})}, {}, {}});
    Handshake h(server->native_handle(), client->native_handle());
    prepare_client_stream(h.c(), "a.example.com");
    h.run();
    CHECK(h.client.failed);
    CHECK(SSL_get_verify_result(h.c()) == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  }
  SUBCASE("host name mismatch") {
    auto server = make_server_context(ServerTls{{pki.issue("server", {"a.example.com", "*.b.example.com"})}, {}, {}});
    for (const char* host : {"c.example.com", "example.com", "x.y.b.example.com"}) {
      CAPTURE(host);
      Handshake h(server->native_handle(), client->native_handle());
      CHECK(prepare_client_stream(h.c(), host));
      h.run();
      CHECK(h.client.failed);
      CHECK(SSL_get_verify_result(h.c()) == X509_V_ERR_HOSTNAME_MISMATCH);
    }
  }
  SUBCASE("an empty host fails closed") {
    auto server = make_server_context(ServerTls{{pki.issue("server", {"a.example.com"})}, {}, {}});
    Handshake h(server->native_handle(), client->native_handle());
    CHECK_FALSE(prepare_client_stream(h.c(), ""));
    h.run();
    CHECK(h.client.failed);
    CHECK(SSL_get_verify_result(h.c()) != X509_V_OK);
    CHECK(ERR_peek_error() == 0);
  }
}

TEST_CASE("TLS: IP literals are verified against IP SANs and are not sent as SNI") {
  TestPki pki;
  auto server = make_server_context(ServerTls{{pki.issue("server", {"localhost"}, {"127.0.0.1", "::1"})}, {}, {}});
  auto client = make_client_context(UpstreamTls{pki.ca_cert, {}, {}});

  for (const char* host : {"127.0.0.1", "::1", "[::1]"}) {
    CAPTURE(host);
    Handshake h(server->native_handle(), client->native_handle());
    CHECK(prepare_client_stream(h.c(), host));
    h.run();
    INFO("client: " << h.client.error);
    REQUIRE(h.ok());
    CHECK(SSL_get_servername(h.s(), TLSEXT_NAMETYPE_host_name) == nullptr);
  }
  Handshake h(server->native_handle(), client->native_handle());
  CHECK(prepare_client_stream(h.c(), "127.0.0.2"));
  h.run();
  CHECK(h.client.failed);
  CHECK(SSL_get_verify_result(h.c()) == X509_V_ERR_IP_ADDRESS_MISMATCH);
}

TEST_CASE("TLS: mTLS requires a client certificate from the configured CA") {
  TestPki pki;
  TestPki other("other CA");
  ServerTls tls;
  tls.certificates = {pki.issue("server", {"a.example.com"}), pki.issue("second", {"b.example.com"})};
  tls.client_ca_file = pki.ca_cert;
  auto server = make_server_context(tls);

  auto no_cert = make_client_context(UpstreamTls{pki.ca_cert, {}, {}});
  auto foreign = make_client_context(UpstreamTls{pki.ca_cert, {}, other.issue("client", {}, {}, true)});
  auto valid = make_client_context(UpstreamTls{pki.ca_cert, {}, pki.issue("client", {}, {}, true)});

  // "b.example.com" goes through the SNI switch: verification must hold on that context too.
  for (const char* host : {"a.example.com", "b.example.com"}) {
    CAPTURE(host);
    {
      Handshake h(server->native_handle(), no_cert->native_handle());
      prepare_client_stream(h.c(), host);
      h.run();
      CHECK(h.server.failed);
      CHECK(contains(h.server.error, "peer did not return a certificate"));
    }
    {
      Handshake h(server->native_handle(), foreign->native_handle());
      prepare_client_stream(h.c(), host);
      h.run();
      CHECK(h.server.failed);
      CHECK(SSL_get_verify_result(h.s()) != X509_V_OK);
    }
    {
      Handshake h(server->native_handle(), valid->native_handle());
      prepare_client_stream(h.c(), host);
      h.run();
      INFO("client: " << h.client.error << " server: " << h.server.error);
      REQUIRE(h.ok());
      CHECK(peer_cn(h.s()) == "client");
      CHECK(SSL_get_verify_result(h.s()) == X509_V_OK);
    }
  }
}

TEST_CASE("TLS: sessions resume, also with mTLS and after an SNI switch") {
  TestPki pki;
  ServerTls tls;
  tls.certificates = {pki.issue("server", {"a.example.com"}), pki.issue("second", {"b.example.com"})};
  tls.client_ca_file = pki.ca_cert;
  auto server = make_server_context(tls);
  auto client = make_client_context(UpstreamTls{pki.ca_cert, {}, pki.issue("client", {}, {}, true)});

  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    for (const char* host : {"a.example.com", "b.example.com"}) {
      CAPTURE(version);
      CAPTURE(host);
      SSL_SESSION* session = nullptr;
      {
        Handshake h(server->native_handle(), client->native_handle());
        SSL_set_max_proto_version(h.c(), version);
        prepare_client_stream(h.c(), host);
        h.run();
        REQUIRE(h.ok());
        // TLS 1.3 tickets arrive after the handshake: let the client read them.
        char byte;
        CHECK(SSL_read(h.c(), &byte, 1) <= 0);
        // OpenSSL invalidates the session of an SSL freed without a close_notify.
        SSL_shutdown(h.c());
        SSL_shutdown(h.s());
        session = SSL_get1_session(h.c());
        REQUIRE(session);
        CHECK(SSL_SESSION_is_resumable(session) == 1);
      }
      Handshake h(server->native_handle(), client->native_handle());
      SSL_set_max_proto_version(h.c(), version);
      prepare_client_stream(h.c(), host);
      SSL_set_session(h.c(), session);
      SSL_SESSION_free(session);
      h.run();
      INFO("client: " << h.client.error << " server: " << h.server.error);
      REQUIRE(h.ok());
      CHECK(SSL_session_reused(h.c()) == 1);
      CHECK(SSL_session_reused(h.s()) == 1);
    }
  }
}

TEST_CASE("TLS: setup errors are exceptions naming the file and the reason") {
  TestPki pki;
  auto good = pki.issue("server", {"a.example.com"});
  auto other = pki.issue("other", {"b.example.com"});
  const std::string missing = pki.dir + "/missing.pem";

  std::string e = setup_error([&] { make_server_context(ServerTls{{{good.cert_file, missing}}, {}, {}}); });
  CHECK(contains(e, missing));
  CHECK(contains(e, "private key"));
  CHECK(contains(e, "No such file"));

  e = setup_error([&] { make_server_context(ServerTls{{{missing, good.key_file}}, {}, {}}); });
  CHECK(contains(e, missing));
  CHECK(contains(e, "certificate"));

  e = setup_error([&] { make_server_context(ServerTls{{{good.cert_file, other.key_file}}, {}, {}}); });
  CHECK(contains(e, "does not match"));
  CHECK(contains(e, other.key_file));

  e = setup_error([&] { make_server_context(ServerTls{{good, {good.key_file, good.key_file}}, {}, {}}); });
  CHECK(contains(e, good.key_file));  // the second certificate is checked as well

  e = setup_error([&] { make_server_context(ServerTls{{good}, {}, missing}); });
  CHECK(contains(e, "client CA"));
  CHECK(contains(e, missing));

  CHECK(contains(setup_error([&] { make_server_context(ServerTls{}); }), "at least one certificate"));

  e = setup_error([&] { make_client_context(UpstreamTls{missing, {}, {}}); });
  CHECK(contains(e, missing));
  e = setup_error([&] { make_client_context(UpstreamTls{pki.ca_cert, {}, {good.cert_file, {}}}); });
  CHECK(contains(e, "key_file"));

  CHECK_NOTHROW(make_client_context(UpstreamTls{}));  // system trust store
  CHECK(ERR_peek_error() == 0);
}
