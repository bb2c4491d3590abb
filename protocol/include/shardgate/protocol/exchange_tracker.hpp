// What a relay must know about a client/server exchange to decide whether the server
// connection is idle and clean: how many replies (ReadyForQuery) are still owed, whether
// extended-protocol messages await a Sync, the last transaction status, a Terminate seen, a
// FATAL from the server. Fed with message types by the relay's scanners. No I/O.
#pragma once

#include <cstdint>

#include "shardgate/protocol/scanner.hpp"

namespace shardgate::protocol {

class exchange_tracker {
  public:
    // The client message types the tracker needs to see.
    static constexpr type_set client_types() {
        return type_set{'Q', 'S', 'F', 'P', 'B', 'D', 'E', 'C', 'H', 'X'};
    }

    void on_client(char type) {
        switch (type) {
            case 'Q':  // one ReadyForQuery each
            case 'F':
                ++owed_;
                break;
            case 'S':
                ++owed_;
                unsynced_ = false;
                break;
            case 'X':
                terminated_ = true;
                break;
            case 'P':
            case 'B':
            case 'D':
            case 'E':
            case 'C':
            case 'H':
                unsynced_ = true;
                break;
            default:  // CopyData/CopyDone/CopyFail belong to the exchange already owed
                break;
        }
    }
    // ReadyForQuery with its status byte.
    void on_ready(char status) {
        if (owed_ > 0) --owed_;
        status_ = status;
    }
    void on_fatal() { fatal_ = true; }
    // shardgate answered what was owed itself (an error instead of a server).
    void forget_owed() {
        owed_ = 0;
        unsynced_ = false;
    }
    void mark_dirty() { dirty_ = true; }

    // The server owes no reply and waits for nothing: it is between exchanges.
    [[nodiscard]] bool server_idle() const { return owed_ == 0 && !unsynced_; }
    [[nodiscard]] char txn_status() const { return status_; }
    [[nodiscard]] std::uint32_t owed() const { return owed_; }
    [[nodiscard]] bool terminated() const { return terminated_; }
    [[nodiscard]] bool server_fatal() const { return fatal_; }
    // Something left the server in a state we cannot describe (a partial message).
    [[nodiscard]] bool dirty() const { return dirty_; }

  private:
    std::uint32_t owed_ = 0;
    bool unsynced_ = false;
    char status_ = 'I';
    bool terminated_ = false;
    bool fatal_ = false;
    bool dirty_ = false;
};

}  // namespace shardgate::protocol
