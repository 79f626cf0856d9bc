// What the opaque C handles hold (shared by the shim's translation units).
#pragma once
#include "CTorch.h"
#include <ATen/ATen.h>
#include <string>

// The message mt_last_error() returns, per thread.
extern thread_local std::string last_error;

// Every entry point's body runs inside PROTECT: a C++ exception becomes the `fail` return value
// and a message, never an unwind through Swift.
#define PROTECT(fail, ...)                                    \
    try {                                                     \
        last_error.clear();                                   \
        __VA_ARGS__                                           \
    } catch (const c10::Error &e) {                           \
        last_error = e.what_without_backtrace();              \
    } catch (const std::exception &e) {                       \
        last_error = e.what();                                \
    } catch (...) {                                           \
        last_error = "unknown C++ exception";                 \
    }                                                         \
    return fail;

struct mt_tensor_s {
    at::Tensor t;
};

// Reads a torch.save zip file (pickle.cpp); throws on malformed files.
void mt_load_pth_throwing(const char *path, mt_visit_fn visit, void *ctx);
