// The binding's one error helper: a malloc'd copy of a C++ error message,
// which the Go side frees (see cError in dlib.go).
#pragma once
#include <cstring>
#include <string>

static inline char* kd_dup_err(const std::string& s) { return strdup(s.c_str()); }
