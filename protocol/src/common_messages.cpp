// CopyData/CopyDone codec, shared by the frontend and backend catalogs.
#include "shardgate/protocol/common_messages.hpp"

#include "shardgate/protocol/reader.hpp"

namespace shardgate::protocol {

result<copy_data> decode_copy_data(std::span<const std::byte> body) {
    return copy_data{std::string(as_text(body))};
}

result<copy_done> decode_copy_done(std::span<const std::byte> body) {
    if (!body.empty()) return decode_error::malformed;
    return copy_done{};
}

void encode(write_buffer& out, const copy_data& m) {
    const auto mark = out.begin_message(copy_data::type);
    out.bytes(m.data);
    out.end_message(mark);
}

void encode(write_buffer& out, const copy_done& /*m*/) {
    out.end_message(out.begin_message(copy_done::type));
}

}  // namespace shardgate::protocol
