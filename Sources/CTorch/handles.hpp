// What the opaque C handles hold (shared by the shim's translation units).
#pragma once
#include "CTorch.h"
#include <ATen/ATen.h>

struct mt_tensor_s {
    at::Tensor t;
};

// Reads a torch.save zip file (pickle.cpp); throws on malformed files.
void mt_load_pth_throwing(const char *path, mt_visit_fn visit, void *ctx);
