#pragma once
// A small expected-like result type: errors cross module boundaries as values.
// result<T, E> holds either a T (success) or an E (failure); E is usually an enum.
#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

namespace schemas {

template <class E>
struct failure {
  E error;
};
template <class E>
failure(E) -> failure<E>;

template <class T, class E>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  result(failure<E> f) : v_(std::in_place_index<1>, std::move(f.error)) {}

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { assert(has_value()); return std::get<0>(v_); }
  const T& value() const& { assert(has_value()); return std::get<0>(v_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const E& error() const { assert(!has_value()); return std::get<1>(v_); }

 private:
  std::variant<T, E> v_;
};

// result<void, E>
template <class E>
class [[nodiscard]] status {
 public:
  status() = default;
  status(failure<E> f) : ok_(false), e_(std::move(f.error)) {}
  bool has_value() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const E& error() const { assert(!ok_); return e_; }

 private:
  bool ok_ = true;
  E e_{};
};

}  // namespace schemas
