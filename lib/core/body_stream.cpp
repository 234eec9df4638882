#include "core/body_stream.hpp"

namespace gatehouse::detail {

BodySink::Now BodySink::write_now(std::span<const std::string_view>, std::string_view, bool) { return Now::later; }


asio::awaitable<PumpResult> pump_body(BodySource& source, BodySink& sink, BodyHooks& hooks) {
  const bool fixed_length = source.length() >= 0;
  auto stop_for = [](BodyHooks::Verdict v) {
    return PumpResult{v == BodyHooks::Verdict::answered ? PumpResult::Stop::answered : PumpResult::Stop::failed};
  };
  for (;;) {
    std::span<std::string_view> pieces = source.pieces();
    // Pieces [first, i) are ready to write. A hook that replaced a piece may reuse its memory for
    // the next one, so a replaced piece is written before the hooks see another.
    std::size_t first = 0;
    bool replaced = false;
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      if (replaced) {
        if (!co_await sink.write(pieces.subspan(first, i - first), {}, false)) co_return PumpResult{PumpResult::Stop::sink};
        first = i;
        replaced = false;
      }
      BodyChunk chunk{pieces[i], false};
      if (const auto v = hooks.run(chunk); v != BodyHooks::Verdict::pass) co_return stop_for(v);
      // The peer was promised Content-Length bytes: a resized piece would desynchronize it.
      if (fixed_length && chunk.data.size() != pieces[i].size()) co_return PumpResult{PumpResult::Stop::failed};
      replaced = chunk.data.data() != pieces[i].data();
      pieces[i] = chunk.data;
    }
    const bool last = source.complete();
    std::string_view tail;
    if (last) {
      if (replaced) {
        if (!co_await sink.write(pieces.subspan(first), {}, false)) co_return PumpResult{PumpResult::Stop::sink};
        first = pieces.size();
      }
      BodyChunk chunk{{}, true};
      if (const auto v = hooks.run(chunk); v != BodyHooks::Verdict::pass) co_return stop_for(v);
      if (fixed_length && !chunk.data.empty()) co_return PumpResult{PumpResult::Stop::failed};
      tail = chunk.data;
    }
    const auto rest = pieces.subspan(first);
    if (!rest.empty() || !tail.empty() || last) {
      const BodySink::Now now = sink.write_now(rest, tail, last);
      if (now == BodySink::Now::failed) co_return PumpResult{PumpResult::Stop::sink};
      if (now == BodySink::Now::later && !co_await sink.write(rest, tail, last))
        co_return PumpResult{PumpResult::Stop::sink};
    }
    source.consume();
    if (last) co_return PumpResult{};
    BodyRead r = co_await source.read_more();
    if (!r.ok()) co_return PumpResult{PumpResult::Stop::source, r};
  }
}

}  // namespace gatehouse::detail
