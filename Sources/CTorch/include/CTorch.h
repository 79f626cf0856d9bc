// A small C interface over libtorch (ATen, autograd, torch::optim, the zip checkpoint reader).
// Handles are opaque and owned by the caller (free each with mt_free / mt_optim_free). No C++
// exception leaves this library: a failing call returns NULL (or -1) and leaves the message in
// mt_last_error(), which is per thread.
#ifndef CTORCH_H
#define CTORCH_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct mt_tensor_s *mt_tensor;
typedef struct mt_optim_s *mt_optim;
typedef struct mt_group_s *mt_group;

// Scalar types use c10::ScalarType's numbering.
enum { MT_U8 = 0, MT_I32 = 3, MT_I64 = 4, MT_F16 = 5, MT_F32 = 6, MT_F64 = 7, MT_BOOL = 11, MT_BF16 = 15 };
// Devices: -1 is the CPU, N >= 0 is cuda:N.

const char *mt_last_error(void);
void mt_free(mt_tensor t);

// --- runtime -------------------------------------------------------------------------------
void mt_set_num_threads(int n);
int mt_get_num_threads(void);
void mt_manual_seed(uint64_t seed);
// The folder libtorch_cpu.so was loaded from.
const char *mt_library_dir(void);
// dlopen()s libtorch_cuda.so (and its CUDA libraries) from `libdir`; returns the device count or -1.
int mt_cuda_load(const char *libdir);
int mt_cuda_device_count(void);
int mt_cuda_synchronize(int device);
// Returns the previous state.
int mt_set_grad_enabled(int enabled);
// Autocast on the CPU (device < 0) or CUDA with the given dtype (MT_BF16 or MT_F16); enabled = 0
// turns it off. Returns the previous state.
int mt_set_autocast(int device, int enabled, int dtype);
// The most bytes the CUDA caching allocator has held in tensors on `device` since the last reset
// (reset = 1 starts a new count after reading); -1 on failure.
int64_t mt_cuda_peak_memory(int device, int reset);

// --- creation and access -------------------------------------------------------------------
mt_tensor mt_from_data(const void *data, const int64_t *shape, int ndim, int dtype);
mt_tensor mt_full(const int64_t *shape, int ndim, double value, int dtype, int device);
// Normal (kind 0) or uniform [0,1) (kind 1) samples from a generator seeded with `seed`.
mt_tensor mt_random(const int64_t *shape, int ndim, int kind, uint64_t seed, int dtype, int device);
mt_tensor mt_arange(double start, double end, double step, int dtype, int device);
int mt_ndim(mt_tensor t);
// Writes ndim sizes into `out`.
void mt_shape(mt_tensor t, int64_t *out);
int mt_dtype(mt_tensor t);
int mt_device(mt_tensor t);
// Copies the elements (row-major, the tensor's own dtype) into out, which holds `bytes` bytes.
int mt_copy_out(mt_tensor t, void *out, size_t bytes);
mt_tensor mt_to(mt_tensor t, int dtype, int device);
// A second handle to the same tensor (same storage, same autograd history).
mt_tensor mt_share(mt_tensor t);
mt_tensor mt_clone(mt_tensor t);
mt_tensor mt_detach(mt_tensor t);
mt_tensor mt_contiguous(mt_tensor t);
// dst.copy_(src) without recording autograd history (for loading weights).
int mt_assign(mt_tensor dst, mt_tensor src);

// --- elementwise ---------------------------------------------------------------------------
enum { MT_ADD, MT_SUB, MT_MUL, MT_DIV, MT_POW, MT_MAXIMUM, MT_MINIMUM, MT_GT, MT_LT, MT_GE, MT_LE, MT_EQ,
       MT_AND, MT_OR, MT_ATAN2 };
mt_tensor mt_binary(int op, mt_tensor a, mt_tensor b);
mt_tensor mt_binary_scalar(int op, mt_tensor a, double b);
// Scalar on the left: b op a (for 1 - x, 2 / x).
mt_tensor mt_scalar_binary(int op, double a, mt_tensor b);
enum { MT_NEG, MT_EXP, MT_LOG, MT_SQRT, MT_RSQRT, MT_SIGMOID, MT_RELU, MT_GELU, MT_GELU_TANH, MT_TANH,
       MT_ABS, MT_SIN, MT_COS, MT_FLOOR, MT_NOT, MT_SIGN, MT_LOGSIGMOID, MT_ROUND };
mt_tensor mt_unary(int op, mt_tensor a);
mt_tensor mt_where(mt_tensor cond, mt_tensor a, mt_tensor b);
mt_tensor mt_clamp(mt_tensor a, double lo, double hi);

// --- reductions ----------------------------------------------------------------------------
enum { MT_SUM, MT_MEAN, MT_AMAX, MT_AMIN };
// ndims = 0 reduces over everything.
mt_tensor mt_reduce(int op, mt_tensor a, const int64_t *dims, int ndims, int keepdim);
mt_tensor mt_argmax(mt_tensor a, int64_t dim, int keepdim);
mt_tensor mt_softmax(mt_tensor a, int64_t dim);

// --- shape ---------------------------------------------------------------------------------
mt_tensor mt_reshape(mt_tensor a, const int64_t *shape, int ndim);
mt_tensor mt_permute(mt_tensor a, const int64_t *dims, int ndim);
mt_tensor mt_transpose(mt_tensor a, int64_t d0, int64_t d1);
mt_tensor mt_narrow(mt_tensor a, int64_t dim, int64_t start, int64_t length);
mt_tensor mt_select(mt_tensor a, int64_t dim, int64_t index);
mt_tensor mt_index_select(mt_tensor a, int64_t dim, mt_tensor index);
mt_tensor mt_cat(const mt_tensor *ts, int n, int64_t dim);
mt_tensor mt_stack(const mt_tensor *ts, int n, int64_t dim);
mt_tensor mt_expand(mt_tensor a, const int64_t *shape, int ndim);
mt_tensor mt_repeat(mt_tensor a, const int64_t *repeats, int ndim);
mt_tensor mt_unsqueeze(mt_tensor a, int64_t dim);
mt_tensor mt_squeeze(mt_tensor a, int64_t dim);
mt_tensor mt_flip(mt_tensor a, const int64_t *dims, int ndim);
// Constant padding in F.pad's order (last dimension first: left, right, top, bottom, ...).
mt_tensor mt_pad(mt_tensor a, const int64_t *pad, int npad, double value);

// --- neural network ------------------------------------------------------------------------
mt_tensor mt_matmul(mt_tensor a, mt_tensor b);
mt_tensor mt_einsum(const char *equation, const mt_tensor *ts, int n);
mt_tensor mt_linear(mt_tensor x, mt_tensor w, mt_tensor b /* nullable */);
mt_tensor mt_conv2d(mt_tensor x, mt_tensor w, mt_tensor b, const int64_t stride[2], const int64_t padding[2],
                    const int64_t dilation[2], int64_t groups);
mt_tensor mt_conv_transpose2d(mt_tensor x, mt_tensor w, mt_tensor b, const int64_t stride[2],
                              const int64_t padding[2], const int64_t output_padding[2], int64_t groups);
mt_tensor mt_layer_norm(mt_tensor x, const int64_t *shape, int ndim, mt_tensor w, mt_tensor b, double eps);
// Inference-mode batch norm with running statistics.
mt_tensor mt_batch_norm(mt_tensor x, mt_tensor w, mt_tensor b, mt_tensor mean, mt_tensor var, double eps);
// mode 0 bilinear, 1 bicubic, 2 nearest; align_corners as in F.interpolate.
mt_tensor mt_interpolate(mt_tensor x, int64_t h, int64_t w, int mode, int align_corners);
mt_tensor mt_bce_with_logits(mt_tensor logits, mt_tensor target);  // mean over elements

// --- autograd ------------------------------------------------------------------------------
int mt_set_requires_grad(mt_tensor t, int requires);
int mt_requires_grad(mt_tensor t);
int mt_backward(mt_tensor loss);
// The accumulated gradient, or NULL with an empty error when there is none.
mt_tensor mt_grad(mt_tensor t);
int mt_zero_grad(mt_tensor t);
// Activation checkpointing: returns fn(input) with no activations of fn kept; the backward pass
// calls fn again (with autograd and the forward's autocast state) and back-propagates through it.
// fn returns a new handle, or NULL after mt_set_last_error; release(ctx) runs once fn is no longer
// needed (after the backward pass, or when the graph is dropped).
typedef mt_tensor (*mt_block_fn)(void *ctx, mt_tensor input);
typedef void (*mt_release_fn)(void *ctx);
mt_tensor mt_checkpoint(mt_block_fn fn, void *ctx, mt_release_fn release, mt_tensor input);
void mt_set_last_error(const char *message);

// --- optimisers (torch::optim) -------------------------------------------------------------
// kind 0 AdamW (a = beta1, b = beta2, eps), kind 1 SGD (a = momentum, b = dampening, eps unused).
mt_optim mt_optim_new(int kind, const mt_tensor *params, int n, double lr, double a, double b, double eps,
                      double weight_decay);
void mt_optim_free(mt_optim o);
int mt_optim_step(mt_optim o);
int mt_optim_zero_grad(mt_optim o);
int mt_optim_set_lr(mt_optim o, double lr);
// Per-parameter state tensors (AdamW: step, exp_avg, exp_avg_sq) for checkpoints. Returns the count
// written (at most cap) or -1; a parameter without state yet gives 0.
int mt_optim_state(mt_optim o, int param, mt_tensor *out, int cap);
int mt_optim_set_state(mt_optim o, int param, const mt_tensor *state, int n);
// Clips the total L2 norm of the parameters' gradients; returns the norm before clipping or -1.
double mt_clip_grad_norm(const mt_tensor *params, int n, double max_norm);

// --- torch.distributed (c10d) ---------------------------------------------------------------
// A process group of `world` processes rendezvousing through a TCP store at master:port (served
// by this process when `serve`, else by rank 0 or a torchrun agent): NCCL (nccl = 1, CUDA tensors;
// libtorch_cuda loaded) or Gloo, which binds to `interface` (GLOO_SOCKET_IFNAME) or else to the
// address of this host's name, falling back to loopback only when all processes are on one node.
// NULL on failure (timeout in seconds).
mt_group mt_group_new(int nccl, const char *master, int port, int serve, int rank, int world, const char *interface, int one_node,
                      double timeout);
void mt_group_free(mt_group g);
// Sums the tensors over all processes, in place (one collective for the list).
int mt_group_all_reduce(mt_group g, const mt_tensor *tensors, int n);
int mt_group_broadcast(mt_group g, const mt_tensor *tensors, int n, int root);
int mt_group_barrier(mt_group g);

// --- checkpoints ---------------------------------------------------------------------------
// Reads a zip-format torch.save file and calls `visit` for each tensor reachable through (nested)
// dictionaries, with its dotted key. Non-tensor values are skipped. The callee owns the tensor.
typedef void (*mt_visit_fn)(void *ctx, const char *key, mt_tensor t);
int mt_load_pth(const char *path, mt_visit_fn visit, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
