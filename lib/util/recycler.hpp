// Objects of one type kept for reuse by one worker: taken for a request and given back after it,
// so that how many exist follows the requests in progress, not the open connections (an idle
// keep-alive connection holds none), and their grown capacity is reused.
#pragma once
#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

namespace gatehouse::detail {

/// What Recycler does to an object given back: nothing (the next user prepares it).
struct KeepAsIs {
  template <class T>
  void operator()(T&) const noexcept {}
};

/// `Clean`: called on every object given back, kept or not, so that what it holds ends with its
/// use.
template <class T, class Clean = KeepAsIs>
class Recycler {
 public:
  /// Gives its object back to the recycler when it ends.
  class Lease {
   public:
    Lease(Recycler& owner, std::unique_ptr<T> object) noexcept : owner_(&owner), object_(std::move(object)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (object_) owner_->give_back(std::move(object_));
    }
    T& operator*() const noexcept { return *object_; }
    T* operator->() const noexcept { return object_.get(); }

   private:
    Recycler* owner_;
    std::unique_ptr<T> object_;
  };

  /// Keeps at most `keep` objects between uses (more in use at once are freed when given back).
  explicit Recycler(std::size_t keep = 256) : keep_(keep) {}
  Recycler(const Recycler&) = delete;
  Recycler& operator=(const Recycler&) = delete;

  /// A kept object as its last user left it, or a new one made from `args`.
  template <class... Args>
  Lease take(Args&&... args) {
    if (free_.empty()) return Lease(*this, std::make_unique<T>(std::forward<Args>(args)...));
    std::unique_ptr<T> object = std::move(free_.back());
    free_.pop_back();
    return Lease(*this, std::move(object));
  }
  std::size_t kept() const noexcept { return free_.size(); }

 private:
  void give_back(std::unique_ptr<T> object) noexcept {
    Clean{}(*object);
    if (free_.size() >= keep_) return;
    try {
      free_.push_back(std::move(object));
    } catch (...) {  // no room to keep it: it goes
    }
  }

  std::size_t keep_;
  std::vector<std::unique_ptr<T>> free_;
};

}  // namespace gatehouse::detail
