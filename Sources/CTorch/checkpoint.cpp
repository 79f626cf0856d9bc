// Activation checkpointing (torch.utils.checkpoint's reentrant form): a block runs without
// keeping its activations, and its backward node runs it again with autograd on, then
// back-propagates through the recomputed graph. The block is a callback into Swift.
#include "handles.hpp"

#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>

#include <memory>
#include <stdexcept>

namespace {

// Owns the Swift context; frees it when the last forward or backward use is gone.
struct Block {
    mt_block_fn fn;
    void *ctx;
    mt_release_fn release;
    Block(mt_block_fn fn, void *ctx, mt_release_fn release) : fn(fn), ctx(ctx), release(release) {}
    Block(const Block &) = delete;
    ~Block() { release(ctx); }

    at::Tensor run(const at::Tensor &x) const {
        mt_tensor_s in{x};
        mt_tensor out = fn(ctx, &in);
        if (!out) throw std::runtime_error("checkpointed block: " + last_error);
        at::Tensor y = std::move(out->t);
        delete out;
        return y;
    }
};

// Autocast is per thread, and backward may run on another thread or outside the forward's
// autocast scope: the recomputation restores the state the forward ran under.
struct AutocastState {
    bool cpu = at::autocast::is_autocast_enabled(at::kCPU), cuda = at::autocast::is_autocast_enabled(at::kCUDA);
    at::ScalarType cpu_dtype = at::autocast::get_autocast_dtype(at::kCPU), cuda_dtype = at::autocast::get_autocast_dtype(at::kCUDA);

    void apply() const {
        at::autocast::set_autocast_dtype(at::kCPU, cpu_dtype);
        at::autocast::set_autocast_enabled(at::kCPU, cpu);
        at::autocast::set_autocast_dtype(at::kCUDA, cuda_dtype);
        at::autocast::set_autocast_enabled(at::kCUDA, cuda);
    }
};

struct CheckpointBackward : torch::autograd::Node {
    std::shared_ptr<Block> block;
    at::Tensor input;  // detached; the only activation kept
    bool input_requires_grad;
    AutocastState autocast;

    torch::autograd::variable_list apply(torch::autograd::variable_list &&grads) override {
        at::Tensor x = input.detach().requires_grad_(input_requires_grad);
        AutocastState outer;
        autocast.apply();
        at::Tensor y;
        try {
            at::AutoGradMode on(true);
            y = block->run(x);
        } catch (...) {
            outer.apply();
            throw;
        }
        outer.apply();
        // Parameters inside the block receive their gradients here; the input's goes on up.
        torch::autograd::backward({y}, {grads[0]});
        return {input_requires_grad ? x.grad() : at::Tensor()};
    }

    void release_variables() override { input.reset(); }
};

}  // namespace

extern "C" {

void mt_set_last_error(const char *message) { last_error = message ? message : ""; }

mt_tensor mt_checkpoint(mt_block_fn fn, void *ctx, mt_release_fn release, mt_tensor input) {
    auto block = std::make_shared<Block>(fn, ctx, release);
    PROTECT(nullptr, {
        const at::Tensor &x = input->t;
        if (!c10::GradMode::is_enabled()) return new mt_tensor_s{block->run(x)};
        at::Tensor y;
        {
            at::NoGradGuard off;
            y = block->run(x.detach());
        }
        auto node = std::shared_ptr<CheckpointBackward>(new CheckpointBackward(), torch::autograd::deleteNode);
        node->block = block;
        node->input = x.detach();
        node->input_requires_grad = x.requires_grad();
        node->set_next_edges(torch::autograd::collect_next_edges(x));
        torch::autograd::create_gradient_edge(y, node);
        return new mt_tensor_s{y};
    })
}

}
