#include "server/tls_files.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace mqttspec::server {
namespace {

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using File = std::unique_ptr<FILE, FileCloser>;
using Cert = std::unique_ptr<X509, X509Free>;
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

// `key` is the full configuration key, e.g. "broker.tls.key_file".
Error Bad(const std::string& key, const std::string& what) {
  return MakeError(ErrorCode::kInvalidValue, fmt::format("{}: {}", key, what));
}

Result<File> Open(const std::string& key, const std::string& path) {
  File f(std::fopen(path.c_str(), "r"));
  if (!f) return Bad(key, fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  return f;
}

// The first certificate of a PEM file (a CA file may hold several; all must parse).
Result<Cert> ReadCerts(const std::string& key, const std::string& path) {
  auto f = Open(key, path);
  if (!f.ok()) return f.take_error();
  Cert first;
  for (;;) {
    Cert c(PEM_read_X509(f.value().get(), nullptr, nullptr, nullptr));
    if (!c) break;
    if (!first) first = std::move(c);
  }
  ERR_clear_error();  // the end of the file reads as an error
  if (!first) return Bad(key, fmt::format("{} holds no PEM certificate", path));
  return first;
}

Result<Key> ReadKey(const std::string& key, const std::string& path) {
  auto f = Open(key, path);
  if (!f.ok()) return f.take_error();
  // No passphrase prompt: an encrypted key cannot be used by a service that starts unattended.
  Key k(PEM_read_PrivateKey(
      f.value().get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
  ERR_clear_error();
  if (!k) return Bad(key, fmt::format("{} holds no unencrypted PEM private key", path));
  return k;
}

Status CheckPair(const std::string& section, const std::string& cert_file,
                 const std::string& key_file) {
  auto cert = ReadCerts(section + ".cert_file", cert_file);
  if (!cert.ok()) return cert.take_error();
  auto key = ReadKey(section + ".key_file", key_file);
  if (!key.ok()) return key.take_error();
  if (X509_check_private_key(cert.value().get(), key.value().get()) != 1) {
    ERR_clear_error();
    return Bad(section + ".key_file", fmt::format("{} is not the private key of {}.cert_file {}",
                                                  key_file, section, cert_file));
  }
  return OkStatus();
}

// The PEM files of one TLS section ("broker.tls", "admin.tls").
Status CheckSection(const std::string& section, const std::string& cert_file,
                    const std::string& key_file, const std::string& ca_file) {
  if (!cert_file.empty() || !key_file.empty()) {
    if (auto st = CheckPair(section, cert_file, key_file); !st.ok()) return st;
  }
  if (!ca_file.empty()) {
    auto ca = ReadCerts(section + ".ca_file", ca_file);
    if (!ca.ok()) return ca.take_error();
  }
  return OkStatus();
}

}  // namespace

Status CheckTlsFiles(const Config& c) {
  const TlsConfig& t = c.broker.tls;
  if (t.enabled) {
    if (auto st = CheckSection("broker.tls", t.cert_file, t.key_file, t.ca_file); !st.ok())
      return st;
  }
  const AdminTlsConfig& a = c.admin.tls;
  if (a.enabled) return CheckSection("admin.tls", a.cert_file, a.key_file, a.ca_file);
  return OkStatus();
}

}  // namespace mqttspec::server
