// Client input buffers: bytes received but not handled yet, and the process-wide budget the
// large ones are charged to (max_client_memory).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace shardgate::proxy {

// A process-wide limit on bytes that sessions hold for their clients beyond a small free
// allowance each (max_client_memory: partly received messages, which transaction pooling
// handles whole and which may be up to max_message_size each).
class byte_budget {
  public:
    explicit byte_budget(std::uint64_t limit) : limit_(limit) {}
    bool try_take(std::uint64_t n) {
        auto used = used_.load(std::memory_order_relaxed);
        do {
            if (used + n > limit_) return false;
        } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
        return true;
    }
    void give(std::uint64_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t used() const { return used_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t limit() const { return limit_; }

  private:
    const std::uint64_t limit_;
    std::atomic<std::uint64_t> used_{0};
};

// Bytes received but not handled yet (a partial message), consumed from the front. With a
// budget, what it holds beyond `free_bytes` is charged to it.
class byte_queue {
  public:
    static constexpr std::size_t free_bytes = 64 * 1024;
    byte_queue() = default;
    explicit byte_queue(byte_budget* budget) : budget_(budget) {}
    byte_queue(const byte_queue&) = delete;
    byte_queue& operator=(const byte_queue&) = delete;
    ~byte_queue() {
        if (budget_ != nullptr && charged_ > 0) budget_->give(charged_);
    }
    // False (and nothing appended) when the budget cannot hold it.
    [[nodiscard]] bool append(std::span<const std::byte> b) {
        if (budget_ != nullptr && !charge(pending().size() + b.size())) return false;
        if (start_ > 0 && start_ >= buf_.size() / 2) {
            buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(start_));
            start_ = 0;
        }
        buf_.insert(buf_.end(), b.begin(), b.end());
        return true;
    }
    [[nodiscard]] std::span<const std::byte> pending() const {
        return std::span<const std::byte>(buf_).subspan(start_);
    }
    void consume(std::size_t n) {
        start_ += n;
        if (start_ == buf_.size()) clear();
        if (budget_ != nullptr) (void)charge(pending().size());
    }
    void clear() {
        buf_.clear();
        start_ = 0;
        // An idle client keeps no big buffer (one large message once is enough).
        if (buf_.capacity() > 64 * 1024) buf_.shrink_to_fit();
        if (budget_ != nullptr) (void)charge(0);
    }
    [[nodiscard]] bool empty() const { return start_ == buf_.size(); }

  private:
    // Charges the budget for holding `bytes` (gives back what is no longer held).
    bool charge(std::size_t bytes) {
        const std::size_t want = bytes > free_bytes ? bytes - free_bytes : 0;
        if (want > charged_) {
            if (!budget_->try_take(want - charged_)) return false;
        } else if (want < charged_) {
            budget_->give(charged_ - want);
        }
        charged_ = want;
        return true;
    }

    std::vector<std::byte> buf_;
    std::size_t start_ = 0;
    byte_budget* budget_ = nullptr;
    std::size_t charged_ = 0;
};

}  // namespace shardgate::proxy
