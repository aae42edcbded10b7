// Errors as values: Result<T> holds a T or an Error (a message and, for configuration errors,
// the key at fault). Header-only; used by the core and by plugins.
#ifndef NEEDLE_RESULT_H
#define NEEDLE_RESULT_H

#include <string>
#include <utility>
#include <variant>

namespace needle {

struct Error {
  std::string message;
  std::string key;   // config key at fault, empty when none
};

inline Error make_error(std::string message, std::string key = {}) {
  return Error{std::move(message), std::move(key)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}            // NOLINT(google-explicit-constructor)
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return err_; }

 private:
  Error err_;
  bool ok_ = true;
};

inline Result<void> ok() { return {}; }

}  // namespace needle

#endif  // NEEDLE_RESULT_H
