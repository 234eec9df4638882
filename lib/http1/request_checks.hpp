// What the session checks in a parsed request head before routing it (RFC 9112 3.2, RFC 9110 7.2):
// the target's form, the Host header, and the path, which is rewritten to its canonical form here
// so that routing, every middleware and the upstream see one spelling of it.
#pragma once
#include <string_view>

#include "gatehouse/path_policy.hpp"
#include "gatehouse/request.hpp"

namespace gatehouse::detail {

struct HeadVerdict {
  unsigned status = 0;       ///< 0: the request may go on; else the status to refuse it with
  std::string_view reason;  ///< a static string
};

/// Checks `req` and brings it to the form the gateway forwards: an absolute-form target
/// ("http://host/p") becomes origin form and its authority replaces Host (RFC 9112 3.2.2); the
/// path becomes canonical under `policy` (core/canonical_path.hpp). Refuses CONNECT (405), the
/// asterisk form (501 for OPTIONS *, else 400), any other target not starting with '/', a missing
/// (HTTP/1.1), repeated or invalid Host, and paths the policy refuses (400).
HeadVerdict check_request_head(Request& req, const PathPolicy& policy);

}  // namespace gatehouse::detail
