/*
 * core/secure_buffer.hpp
 *
 * SecureBuffer: key material in libsodium-allocated memory (guard pages,
 * mlock'ed, never swapped) that is zeroed and released in the destructor.
 * Move-only. sodium_init() must have run (the module does it in _PG_init,
 * the unit tests in their main).
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <sodium.h>

#include "core/no_postgres.hpp"

namespace tenant_guard {

class SecureBuffer {
public:
	SecureBuffer() = default;
	explicit SecureBuffer(std::size_t n) : size_(n)
	{
		if (n == 0)
			return;
		data_ = static_cast<std::uint8_t*>(sodium_malloc(n));
		if (data_ == nullptr)
			throw std::bad_alloc();
	}
	SecureBuffer(const SecureBuffer&) = delete;
	SecureBuffer& operator=(const SecureBuffer&) = delete;
	SecureBuffer(SecureBuffer&& o) noexcept : data_(o.data_), size_(o.size_)
	{
		o.data_ = nullptr;
		o.size_ = 0;
	}
	SecureBuffer& operator=(SecureBuffer&& o) noexcept
	{
		if (this != &o) {
			reset();
			data_ = o.data_;
			size_ = o.size_;
			o.data_ = nullptr;
			o.size_ = 0;
		}
		return *this;
	}
	~SecureBuffer() { reset(); }

	// sodium_free zeroes the memory before unmapping it.
	void reset() noexcept
	{
		if (data_ != nullptr)
			sodium_free(data_);
		data_ = nullptr;
		size_ = 0;
	}

	std::uint8_t* data() noexcept { return data_; }
	const std::uint8_t* data() const noexcept { return data_; }
	std::size_t size() const noexcept { return size_; }
	bool empty() const noexcept { return size_ == 0; }

private:
	std::uint8_t* data_ = nullptr;
	std::size_t size_ = 0;
};

}  // namespace tenant_guard
