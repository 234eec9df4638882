// unique_ptr for OpenSSL objects, each released with its own *_free function.
#pragma once
#include <memory>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace gatehouse::detail {

template <auto Free>
struct OpenSslFree {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};

template <class T, auto Free>
using OpenSslPtr = std::unique_ptr<T, OpenSslFree<Free>>;

using BioPtr = OpenSslPtr<BIO, &BIO_free>;
using BignumPtr = OpenSslPtr<BIGNUM, &BN_free>;
using EcdsaSigPtr = OpenSslPtr<ECDSA_SIG, &ECDSA_SIG_free>;
using MdPtr = OpenSslPtr<EVP_MD, &EVP_MD_free>;
using MdCtxPtr = OpenSslPtr<EVP_MD_CTX, &EVP_MD_CTX_free>;
using PkeyPtr = OpenSslPtr<EVP_PKEY, &EVP_PKEY_free>;
using PkeyCtxPtr = OpenSslPtr<EVP_PKEY_CTX, &EVP_PKEY_CTX_free>;
using DecoderCtxPtr = OpenSslPtr<OSSL_DECODER_CTX, &OSSL_DECODER_CTX_free>;
using ParamPtr = OpenSslPtr<OSSL_PARAM, &OSSL_PARAM_free>;
using ParamBldPtr = OpenSslPtr<OSSL_PARAM_BLD, &OSSL_PARAM_BLD_free>;
using SslCtxPtr = OpenSslPtr<SSL_CTX, &SSL_CTX_free>;
using X509Ptr = OpenSslPtr<X509, &X509_free>;

}  // namespace gatehouse::detail
