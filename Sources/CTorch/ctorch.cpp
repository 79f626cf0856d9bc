// The C shim over libtorch. Every entry point runs inside PROTECT, so a C++ exception becomes a
// NULL/-1 return and a per-thread message instead of unwinding through Swift.
#include "handles.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <c10/core/CachingDeviceAllocator.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <dlfcn.h>
#include <map>
#include <memory>
#include <string>
#include <vector>

struct mt_optim_s {
    std::unique_ptr<torch::optim::Optimizer> opt;
    std::vector<at::Tensor> params;
    int kind;
};

thread_local std::string last_error;

static mt_tensor wrap(at::Tensor t) { return new mt_tensor_s{std::move(t)}; }
static at::IntArrayRef dims(const int64_t *p, int n) { return at::IntArrayRef(p, (size_t)n); }
static c10::Device device_of(int d) { return d < 0 ? c10::Device(c10::kCPU) : c10::Device(c10::kCUDA, (c10::DeviceIndex)d); }
static c10::optional<at::Tensor> opt(mt_tensor t) { return t ? c10::optional<at::Tensor>(t->t) : c10::nullopt; }
static at::TensorOptions options(int dtype, int device) {
    return at::TensorOptions().dtype((c10::ScalarType)dtype).device(device_of(device));
}

extern "C" {

const char *mt_last_error(void) { return last_error.c_str(); }
void mt_free(mt_tensor t) { delete t; }

// --- runtime ---------------------------------------------------------------------------------

void mt_set_num_threads(int n) { try { at::set_num_threads(n); } catch (...) {} }
int mt_get_num_threads(void) { return at::get_num_threads(); }
void mt_manual_seed(uint64_t seed) { try { at::manual_seed(seed); } catch (...) {} }

const char *mt_library_dir(void) {
    static std::string dir;
    Dl_info info;
    if (dir.empty() && dladdr((void *)&at::get_num_threads, &info) && info.dli_fname) {
        dir = info.dli_fname;
        dir = dir.substr(0, dir.find_last_of('/'));
    }
    return dir.c_str();
}

int mt_cuda_load(const char *libdir) {
    PROTECT(-1, {
        std::string path = std::string(libdir) + "/libtorch_cuda.so";
        // RTLD_GLOBAL: its static initialisers register the CUDA kernels and hooks with ATen.
        if (!dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
            const char *why = dlerror();
            last_error = std::string("cannot load ") + path + ": " + (why ? why : "unknown error");
            return -1;
        }
        return at::detail::getCUDAHooks().getNumGPUs();
    })
}
int mt_cuda_device_count(void) {
    PROTECT(-1, { return at::detail::getCUDAHooks().hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0; })
}
int mt_cuda_synchronize(int device) {
    PROTECT(-1, { at::detail::getCUDAHooks().deviceSynchronize((c10::DeviceIndex)device); return 0; })
}
int mt_set_grad_enabled(int enabled) {
    bool previous = c10::GradMode::is_enabled();
    c10::GradMode::set_enabled(enabled != 0);
    return previous;
}
int mt_set_autocast(int device, int enabled, int dtype) {
    PROTECT(-1, {
        auto type = device < 0 ? at::kCPU : at::kCUDA;
        bool previous = at::autocast::is_autocast_enabled(type);
        if (enabled) at::autocast::set_autocast_dtype(type, (c10::ScalarType)dtype);
        at::autocast::set_autocast_enabled(type, enabled != 0);
        if (!enabled) at::autocast::clear_cache();
        return (int)previous;
    })
}
int64_t mt_cuda_peak_memory(int device, int reset) {
    PROTECT(-1, {
        auto *allocator = c10::getDeviceAllocator(c10::kCUDA);
        auto d = (c10::DeviceIndex)device;
        auto peak = allocator->getDeviceStats(d).allocated_bytes[(size_t)c10::CachingAllocator::StatType::AGGREGATE].peak;
        if (reset) allocator->resetPeakStats(d);
        return (int64_t)peak;
    })
}

// --- creation and access ---------------------------------------------------------------------

mt_tensor mt_from_data(const void *data, const int64_t *shape, int ndim, int dtype) {
    PROTECT(nullptr, {
        at::Tensor t = at::empty(dims(shape, ndim), options(dtype, -1));
        if (t.nbytes() > 0) memcpy(t.data_ptr(), data, t.nbytes());
        return wrap(t);
    })
}
mt_tensor mt_full(const int64_t *shape, int ndim, double value, int dtype, int device) {
    PROTECT(nullptr, { return wrap(at::full(dims(shape, ndim), value, options(dtype, device))); })
}
mt_tensor mt_random(const int64_t *shape, int ndim, int kind, uint64_t seed, int dtype, int device) {
    PROTECT(nullptr, {
        // Drawn on the CPU from its own generator so that a seed gives the same values on any device.
        at::Generator gen = at::detail::createCPUGenerator(seed);
        at::Tensor t = kind == 0 ? at::randn(dims(shape, ndim), gen, options(MT_F32, -1))
                                 : at::rand(dims(shape, ndim), gen, options(MT_F32, -1));
        return wrap(t.to(options(dtype, device)));
    })
}
mt_tensor mt_arange(double start, double end, double step, int dtype, int device) {
    PROTECT(nullptr, { return wrap(at::arange(start, end, step, options(dtype, device))); })
}
int mt_ndim(mt_tensor t) { return (int)t->t.dim(); }
void mt_shape(mt_tensor t, int64_t *out) {
    for (int64_t i = 0; i < t->t.dim(); i++) out[i] = t->t.size(i);
}
int mt_dtype(mt_tensor t) { return (int)t->t.scalar_type(); }
int mt_device(mt_tensor t) { return t->t.device().is_cpu() ? -1 : (int)t->t.device().index(); }
int mt_copy_out(mt_tensor t, void *out, size_t bytes) {
    PROTECT(-1, {
        at::Tensor c = t->t.detach().to(c10::kCPU).contiguous();
        if (c.nbytes() != bytes) {
            last_error = "copy_out: tensor holds " + std::to_string(c.nbytes()) + " bytes, buffer " + std::to_string(bytes);
            return -1;
        }
        if (bytes > 0) memcpy(out, c.data_ptr(), bytes);
        return 0;
    })
}
mt_tensor mt_to(mt_tensor t, int dtype, int device) {
    PROTECT(nullptr, { return wrap(t->t.to(options(dtype, device))); })
}
mt_tensor mt_share(mt_tensor t) { PROTECT(nullptr, { return wrap(t->t); }) }
mt_tensor mt_clone(mt_tensor t) { PROTECT(nullptr, { return wrap(t->t.clone()); }) }
mt_tensor mt_detach(mt_tensor t) { PROTECT(nullptr, { return wrap(t->t.detach()); }) }
mt_tensor mt_contiguous(mt_tensor t) { PROTECT(nullptr, { return wrap(t->t.contiguous()); }) }
int mt_assign(mt_tensor dst, mt_tensor src) {
    PROTECT(-1, {
        at::NoGradGuard guard;
        dst->t.copy_(src->t);
        return 0;
    })
}

// --- elementwise -----------------------------------------------------------------------------

static at::Tensor binary(int op, const at::Tensor &a, const at::Tensor &b) {
    switch (op) {
    case MT_ADD: return a + b;
    case MT_SUB: return a - b;
    case MT_MUL: return a * b;
    case MT_DIV: return a / b;
    case MT_POW: return at::pow(a, b);
    case MT_MAXIMUM: return at::maximum(a, b);
    case MT_MINIMUM: return at::minimum(a, b);
    case MT_GT: return a > b;
    case MT_LT: return a < b;
    case MT_GE: return a >= b;
    case MT_LE: return a <= b;
    case MT_EQ: return a == b;
    case MT_AND: return at::logical_and(a, b);
    case MT_OR: return at::logical_or(a, b);
    case MT_ATAN2: return at::atan2(a, b);
    }
    throw std::invalid_argument("unknown binary op " + std::to_string(op));
}
mt_tensor mt_binary(int op, mt_tensor a, mt_tensor b) { PROTECT(nullptr, { return wrap(binary(op, a->t, b->t)); }) }
mt_tensor mt_binary_scalar(int op, mt_tensor a, double b) {
    PROTECT(nullptr, {
        switch (op) {
        case MT_ADD: return wrap(a->t + b);
        case MT_SUB: return wrap(a->t - b);
        case MT_MUL: return wrap(a->t * b);
        case MT_DIV: return wrap(a->t / b);
        case MT_POW: return wrap(at::pow(a->t, b));
        default: return wrap(binary(op, a->t, at::scalar_tensor(b, a->t.options())));
        }
    })
}
mt_tensor mt_scalar_binary(int op, double a, mt_tensor b) {
    PROTECT(nullptr, { return wrap(binary(op, at::scalar_tensor(a, b->t.options()), b->t)); })
}
mt_tensor mt_unary(int op, mt_tensor a) {
    PROTECT(nullptr, {
        const at::Tensor &x = a->t;
        switch (op) {
        case MT_NEG: return wrap(-x);
        case MT_EXP: return wrap(x.exp());
        case MT_LOG: return wrap(x.log());
        case MT_SQRT: return wrap(x.sqrt());
        case MT_RSQRT: return wrap(x.rsqrt());
        case MT_SIGMOID: return wrap(x.sigmoid());
        case MT_RELU: return wrap(x.relu());
        case MT_GELU: return wrap(at::gelu(x, "none"));
        case MT_GELU_TANH: return wrap(at::gelu(x, "tanh"));
        case MT_TANH: return wrap(x.tanh());
        case MT_ABS: return wrap(x.abs());
        case MT_SIN: return wrap(x.sin());
        case MT_COS: return wrap(x.cos());
        case MT_FLOOR: return wrap(x.floor());
        case MT_NOT: return wrap(x.logical_not());
        case MT_SIGN: return wrap(x.sign());
        case MT_LOGSIGMOID: return wrap(at::log_sigmoid(x));
        case MT_ROUND: return wrap(x.round());
        }
        throw std::invalid_argument("unknown unary op " + std::to_string(op));
    })
}
mt_tensor mt_where(mt_tensor c, mt_tensor a, mt_tensor b) { PROTECT(nullptr, { return wrap(at::where(c->t, a->t, b->t)); }) }
mt_tensor mt_clamp(mt_tensor a, double lo, double hi) { PROTECT(nullptr, { return wrap(at::clamp(a->t, lo, hi)); }) }

// --- reductions ------------------------------------------------------------------------------

mt_tensor mt_reduce(int op, mt_tensor a, const int64_t *d, int nd, int keepdim) {
    PROTECT(nullptr, {
        const at::Tensor &x = a->t;
        bool all = nd == 0;
        at::IntArrayRef r = dims(d, nd);
        switch (op) {
        case MT_SUM: return wrap(all ? x.sum() : x.sum(r, keepdim));
        case MT_MEAN: return wrap(all ? x.mean() : x.mean(r, keepdim));
        case MT_AMAX: return wrap(all ? x.amax(at::IntArrayRef{}) : x.amax(r, keepdim));
        case MT_AMIN: return wrap(all ? x.amin(at::IntArrayRef{}) : x.amin(r, keepdim));
        }
        throw std::invalid_argument("unknown reduction " + std::to_string(op));
    })
}
mt_tensor mt_argmax(mt_tensor a, int64_t dim, int keepdim) { PROTECT(nullptr, { return wrap(a->t.argmax(dim, keepdim)); }) }
mt_tensor mt_softmax(mt_tensor a, int64_t dim) { PROTECT(nullptr, { return wrap(a->t.softmax(dim)); }) }

// --- shape -----------------------------------------------------------------------------------

mt_tensor mt_reshape(mt_tensor a, const int64_t *s, int n) { PROTECT(nullptr, { return wrap(a->t.reshape(dims(s, n))); }) }
mt_tensor mt_permute(mt_tensor a, const int64_t *d, int n) { PROTECT(nullptr, { return wrap(a->t.permute(dims(d, n))); }) }
mt_tensor mt_transpose(mt_tensor a, int64_t d0, int64_t d1) { PROTECT(nullptr, { return wrap(a->t.transpose(d0, d1)); }) }
mt_tensor mt_narrow(mt_tensor a, int64_t dim, int64_t start, int64_t len) {
    PROTECT(nullptr, { return wrap(a->t.narrow(dim, start, len)); })
}
mt_tensor mt_select(mt_tensor a, int64_t dim, int64_t index) { PROTECT(nullptr, { return wrap(a->t.select(dim, index)); }) }
mt_tensor mt_index_select(mt_tensor a, int64_t dim, mt_tensor index) {
    PROTECT(nullptr, { return wrap(a->t.index_select(dim, index->t)); })
}
static std::vector<at::Tensor> list(const mt_tensor *ts, int n) {
    std::vector<at::Tensor> v;
    v.reserve(n);
    for (int i = 0; i < n; i++) v.push_back(ts[i]->t);
    return v;
}
mt_tensor mt_cat(const mt_tensor *ts, int n, int64_t dim) { PROTECT(nullptr, { return wrap(at::cat(list(ts, n), dim)); }) }
mt_tensor mt_stack(const mt_tensor *ts, int n, int64_t dim) { PROTECT(nullptr, { return wrap(at::stack(list(ts, n), dim)); }) }
mt_tensor mt_expand(mt_tensor a, const int64_t *s, int n) { PROTECT(nullptr, { return wrap(a->t.expand(dims(s, n))); }) }
mt_tensor mt_repeat(mt_tensor a, const int64_t *r, int n) { PROTECT(nullptr, { return wrap(a->t.repeat(dims(r, n))); }) }
mt_tensor mt_unsqueeze(mt_tensor a, int64_t dim) { PROTECT(nullptr, { return wrap(a->t.unsqueeze(dim)); }) }
mt_tensor mt_squeeze(mt_tensor a, int64_t dim) { PROTECT(nullptr, { return wrap(a->t.squeeze(dim)); }) }
mt_tensor mt_flip(mt_tensor a, const int64_t *d, int n) { PROTECT(nullptr, { return wrap(a->t.flip(dims(d, n))); }) }
mt_tensor mt_pad(mt_tensor a, const int64_t *pad, int npad, double value) {
    PROTECT(nullptr, { return wrap(at::constant_pad_nd(a->t, dims(pad, npad), value)); })
}

// --- neural network --------------------------------------------------------------------------

mt_tensor mt_matmul(mt_tensor a, mt_tensor b) { PROTECT(nullptr, { return wrap(at::matmul(a->t, b->t)); }) }
mt_tensor mt_einsum(const char *equation, const mt_tensor *ts, int n) {
    PROTECT(nullptr, { return wrap(at::einsum(equation, list(ts, n))); })
}
mt_tensor mt_linear(mt_tensor x, mt_tensor w, mt_tensor b) { PROTECT(nullptr, { return wrap(at::linear(x->t, w->t, opt(b))); }) }
mt_tensor mt_conv2d(mt_tensor x, mt_tensor w, mt_tensor b, const int64_t stride[2], const int64_t padding[2],
                    const int64_t dilation[2], int64_t groups) {
    PROTECT(nullptr, {
        return wrap(at::conv2d(x->t, w->t, opt(b), dims(stride, 2), dims(padding, 2), dims(dilation, 2), groups));
    })
}
mt_tensor mt_conv_transpose2d(mt_tensor x, mt_tensor w, mt_tensor b, const int64_t stride[2], const int64_t padding[2],
                              const int64_t output_padding[2], int64_t groups) {
    PROTECT(nullptr, {
        return wrap(at::conv_transpose2d(x->t, w->t, opt(b), dims(stride, 2), dims(padding, 2), dims(output_padding, 2), groups));
    })
}
mt_tensor mt_layer_norm(mt_tensor x, const int64_t *shape, int ndim, mt_tensor w, mt_tensor b, double eps) {
    PROTECT(nullptr, { return wrap(at::layer_norm(x->t, dims(shape, ndim), opt(w), opt(b), eps)); })
}
mt_tensor mt_batch_norm(mt_tensor x, mt_tensor w, mt_tensor b, mt_tensor mean, mt_tensor var, double eps) {
    PROTECT(nullptr, {
        return wrap(at::batch_norm(x->t, opt(w), opt(b), opt(mean), opt(var), false, 0.0, eps, true));
    })
}
mt_tensor mt_interpolate(mt_tensor x, int64_t h, int64_t w, int mode, int align_corners) {
    PROTECT(nullptr, {
        std::vector<int64_t> size{h, w};
        switch (mode) {
        case 0: return wrap(at::upsample_bilinear2d(x->t, size, align_corners != 0));
        case 1: return wrap(at::upsample_bicubic2d(x->t, size, align_corners != 0));
        case 2: return wrap(at::upsample_nearest2d(x->t, size));
        }
        throw std::invalid_argument("unknown interpolation mode " + std::to_string(mode));
    })
}
mt_tensor mt_bce_with_logits(mt_tensor logits, mt_tensor target) {
    PROTECT(nullptr, { return wrap(at::binary_cross_entropy_with_logits(logits->t, target->t)); })
}

// --- autograd --------------------------------------------------------------------------------

int mt_set_requires_grad(mt_tensor t, int requires) { PROTECT(-1, { t->t.requires_grad_(requires != 0); return 0; }) }
int mt_requires_grad(mt_tensor t) { return t->t.requires_grad(); }
int mt_backward(mt_tensor loss) { PROTECT(-1, { loss->t.backward(); return 0; }) }
mt_tensor mt_grad(mt_tensor t) {
    PROTECT(nullptr, {
        const at::Tensor &g = t->t.grad();
        return g.defined() ? wrap(g) : nullptr;
    })
}
int mt_zero_grad(mt_tensor t) {
    PROTECT(-1, {
        t->t.mutable_grad().reset();
        return 0;
    })
}

// --- optimisers ------------------------------------------------------------------------------

mt_optim mt_optim_new(int kind, const mt_tensor *params, int n, double lr, double a, double b, double eps,
                      double weight_decay) {
    PROTECT(nullptr, {
        auto o = std::make_unique<mt_optim_s>();
        o->params = list(params, n);
        o->kind = kind;
        if (kind == 0) {
            o->opt = std::make_unique<torch::optim::AdamW>(
                o->params, torch::optim::AdamWOptions(lr).betas({a, b}).eps(eps).weight_decay(weight_decay));
        } else if (kind == 1) {
            o->opt = std::make_unique<torch::optim::SGD>(
                o->params, torch::optim::SGDOptions(lr).momentum(a).dampening(b).weight_decay(weight_decay));
        } else {
            throw std::invalid_argument("unknown optimiser kind " + std::to_string(kind));
        }
        return o.release();
    })
}
void mt_optim_free(mt_optim o) { delete o; }
int mt_optim_step(mt_optim o) { PROTECT(-1, { o->opt->step(); return 0; }) }
int mt_optim_zero_grad(mt_optim o) { PROTECT(-1, { o->opt->zero_grad(true); return 0; }) }
int mt_optim_set_lr(mt_optim o, double lr) {
    PROTECT(-1, {
        for (auto &group : o->opt->param_groups()) group.options().set_lr(lr);
        return 0;
    })
}
int mt_optim_state(mt_optim o, int param, mt_tensor *out, int cap) {
    PROTECT(-1, {
        auto &state = o->opt->state();
        auto it = state.find(o->params.at(param).unsafeGetTensorImpl());
        if (it == state.end()) return 0;
        std::vector<at::Tensor> v;
        if (o->kind == 0) {
            auto &s = static_cast<torch::optim::AdamWParamState &>(*it->second);
            v = {at::scalar_tensor((double)s.step(), at::kLong), s.exp_avg(), s.exp_avg_sq()};
        } else {
            auto &s = static_cast<torch::optim::SGDParamState &>(*it->second);
            v = {s.momentum_buffer()};
        }
        if ((int)v.size() > cap) throw std::invalid_argument("optimiser state buffer too small");
        for (size_t i = 0; i < v.size(); i++) out[i] = wrap(v[i].detach().clone());
        return (int)v.size();
    })
}
int mt_optim_set_state(mt_optim o, int param, const mt_tensor *st, int n) {
    PROTECT(-1, {
        const at::Tensor &p = o->params.at(param);
        if (o->kind == 0) {
            if (n != 3) throw std::invalid_argument("AdamW state has 3 tensors (step, exp_avg, exp_avg_sq)");
            auto s = std::make_unique<torch::optim::AdamWParamState>();
            s->step(st[0]->t.item<int64_t>());
            s->exp_avg(st[1]->t.detach().clone().to(p.device()));
            s->exp_avg_sq(st[2]->t.detach().clone().to(p.device()));
            o->opt->state()[p.unsafeGetTensorImpl()] = std::move(s);
        } else {
            if (n != 1) throw std::invalid_argument("SGD state has 1 tensor (momentum_buffer)");
            auto s = std::make_unique<torch::optim::SGDParamState>();
            s->momentum_buffer(st[0]->t.detach().clone().to(p.device()));
            o->opt->state()[p.unsafeGetTensorImpl()] = std::move(s);
        }
        return 0;
    })
}
double mt_clip_grad_norm(const mt_tensor *params, int n, double max_norm) {
    PROTECT(-1.0, { return torch::nn::utils::clip_grad_norm_(list(params, n), max_norm); })
}

// --- checkpoints -----------------------------------------------------------------------------

int mt_load_pth(const char *path, mt_visit_fn visit, void *ctx) {
    PROTECT(-1, { mt_load_pth_throwing(path, visit, ctx); return 0; })
}

}  // extern "C"
