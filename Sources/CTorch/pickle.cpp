// Reads state dicts saved with torch.save (zip format). torch::pickle_load turns the OrderedDict of
// a saved state_dict into None, so this is a small unpickler of its own over libtorch's zip reader:
// the opcodes torch.save emits (protocols 2 to 4), tensors rebuilt from their storages, and every
// other object kept as an opaque value so that extra entries (epochs, numpy arrays) do not fail.
#include "handles.hpp"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>


namespace {

struct Value;
using Ref = std::shared_ptr<Value>;
struct Value {
    enum Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Tensor, Storage, Mark, Opaque } kind;
    int64_t i = 0;
    double f = 0;
    std::string s;  // strings, and "module.name" of globals
    std::vector<Ref> items;
    std::vector<std::pair<Ref, Ref>> dict;
    at::Tensor tensor;  // tensors, and storages as 1-D tensors of their dtype
    explicit Value(Kind k) : kind(k) {}
};

Ref make(Value::Kind k) { return std::make_shared<Value>(k); }

c10::ScalarType storage_dtype(const std::string &name) {
    static const std::map<std::string, c10::ScalarType> types = {
        {"torch.FloatStorage", at::kFloat},   {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
        {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong}, {"torch.IntStorage", at::kInt},
        {"torch.ShortStorage", at::kShort},   {"torch.CharStorage", at::kChar},     {"torch.ByteStorage", at::kByte},
        {"torch.BoolStorage", at::kBool},
    };
    auto it = types.find(name);
    if (it == types.end()) throw std::runtime_error("unsupported storage type " + name);
    return it->second;
}

class Unpickler {
  public:
    Unpickler(caffe2::serialize::PyTorchStreamReader &reader, const std::vector<uint8_t> &data)
        : reader_(reader), p_(data.data()), end_(data.data() + data.size()) {}

    Ref run() {
        for (;;) {
            uint8_t op = byte();
            switch (op) {
            case 0x80: byte(); break;          // PROTO
            case 0x95: take(8); break;         // FRAME
            case '.': return pop();            // STOP
            case '(': push(make(Value::Mark)); break;
            case 'N': push(make(Value::None)); break;
            case 0x88: case 0x89: { auto v = make(Value::Bool); v->i = op == 0x88; push(v); break; }
            case 'K': push_int(byte()); break;
            case 'M': push_int(le(2)); break;
            case 'J': push_int((int32_t)le(4)); break;
            case 0x8a: {  // LONG1: little-endian two's complement
                int n = byte();
                int64_t v = 0;
                for (int k = 0; k < n; k++) v |= (int64_t)byte() << (8 * k);
                if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v -= (int64_t)1 << (8 * n);
                push_int(v);
                break;
            }
            case 'G': {
                uint64_t bits = 0;
                for (int k = 0; k < 8; k++) bits = (bits << 8) | byte();
                auto v = make(Value::Float);
                std::memcpy(&v->f, &bits, 8);
                push(v);
                break;
            }
            case 'X': push_string(le(4)); break;
            case 0x8c: push_string(byte()); break;
            case 0x8d: push_string(le(8)); break;
            case 'B': push_bytes(le(4)); break;
            case 'C': push_bytes(byte()); break;
            case 0x8e: push_bytes(le(8)); break;
            case ']': push(make(Value::List)); break;
            case '}': push(make(Value::Dict)); break;
            case ')': push(make(Value::Tuple)); break;
            case 't': { auto v = make(Value::Tuple); v->items = pop_mark(); push(v); break; }
            case 0x85: case 0x86: case 0x87: {
                auto v = make(Value::Tuple);
                int n = op - 0x84;
                v->items.assign(stack_.end() - n, stack_.end());
                stack_.resize(stack_.size() - n);
                push(v);
                break;
            }
            case 'a': { auto x = pop(); top(Value::List)->items.push_back(x); break; }
            case 'e': { auto xs = pop_mark(); auto l = top(Value::List); l->items.insert(l->items.end(), xs.begin(), xs.end()); break; }
            case 's': { auto v = pop(); auto k = pop(); set_item(k, v); break; }
            case 'u': {
                auto xs = pop_mark();
                for (size_t k = 0; k + 1 < xs.size(); k += 2) set_item(xs[k], xs[k + 1]);
                break;
            }
            case 'q': memo_[byte()] = stack_.back(); break;
            case 'r': memo_[le(4)] = stack_.back(); break;
            case 0x94: memo_[memo_.size()] = stack_.back(); break;
            case 'h': push(memo(byte())); break;
            case 'j': push(memo(le(4))); break;
            case 'c': {
                std::string module = line(), name = line();
                auto g = make(Value::Global);
                g->s = module + "." + name;
                push(g);
                break;
            }
            case 0x93: {
                auto name = pop(), module = pop();
                auto g = make(Value::Global);
                g->s = module->s + "." + name->s;
                push(g);
                break;
            }
            case 'Q': push(persistent_load(pop())); break;
            case 'R': { auto args = pop(); auto fn = pop(); push(reduce(fn, args)); break; }
            case 0x81: { pop(); pop(); push(make(Value::Opaque)); break; }  // NEWOBJ
            case 'b': pop(); break;  // BUILD: object state is not needed
            default: {
                char buf[64];
                snprintf(buf, sizeof buf, "unsupported pickle opcode 0x%02x", op);
                throw std::runtime_error(buf);
            }
            }
        }
    }

  private:
    caffe2::serialize::PyTorchStreamReader &reader_;
    const uint8_t *p_, *end_;
    std::vector<Ref> stack_;
    std::map<uint64_t, Ref> memo_;
    std::map<std::string, at::Tensor> storages_;

    const uint8_t *take(size_t n) {
        if ((size_t)(end_ - p_) < n) throw std::runtime_error("pickle data ends early");
        const uint8_t *at = p_;
        p_ += n;
        return at;
    }
    uint8_t byte() { return *take(1); }
    uint64_t le(int n) {
        const uint8_t *b = take(n);
        uint64_t v = 0;
        for (int k = 0; k < n; k++) v |= (uint64_t)b[k] << (8 * k);
        return v;
    }
    std::string line() {
        const uint8_t *start = p_;
        while (p_ < end_ && *p_ != '\n') p_++;
        std::string s((const char *)start, p_ - start);
        take(1);
        return s;
    }
    void push(Ref v) { stack_.push_back(std::move(v)); }
    void push_int(int64_t i) { auto v = make(Value::Int); v->i = i; push(v); }
    void push_string(uint64_t n) { auto v = make(Value::String); v->s.assign((const char *)take(n), n); push(v); }
    void push_bytes(uint64_t n) { take(n); push(make(Value::Opaque)); }
    Ref pop() {
        if (stack_.empty()) throw std::runtime_error("pickle stack underflow");
        Ref v = stack_.back();
        stack_.pop_back();
        return v;
    }
    Ref top(Value::Kind k) {
        if (stack_.empty() || stack_.back()->kind != k) throw std::runtime_error("malformed pickle: unexpected container");
        return stack_.back();
    }
    std::vector<Ref> pop_mark() {
        size_t k = stack_.size();
        while (k > 0 && stack_[k - 1]->kind != Value::Mark) k--;
        if (k == 0) throw std::runtime_error("malformed pickle: no mark");
        std::vector<Ref> items(stack_.begin() + k, stack_.end());
        stack_.resize(k - 1);
        return items;
    }
    Ref memo(uint64_t k) {
        auto it = memo_.find(k);
        if (it == memo_.end()) throw std::runtime_error("malformed pickle: unknown memo entry");
        return it->second;
    }
    void set_item(const Ref &k, const Ref &v) {
        auto d = stack_.empty() ? nullptr : stack_.back();
        if (!d) throw std::runtime_error("malformed pickle: SETITEM without a target");
        if (d->kind == Value::Dict) d->dict.emplace_back(k, v);
        // Items set on opaque objects (e.g. argparse.Namespace dicts) are dropped.
    }

    // ('storage', storage_type, key, location, numel)
    Ref persistent_load(const Ref &pid) {
        if (pid->kind != Value::Tuple || pid->items.size() < 5 || pid->items[0]->s != "storage")
            throw std::runtime_error("unsupported persistent id");
        c10::ScalarType dtype = storage_dtype(pid->items[1]->s);
        const std::string &key = pid->items[2]->s;
        auto it = storages_.find(key);
        if (it == storages_.end()) {
            auto [ptr, bytes] = reader_.getRecord("data/" + key);
            c10::Storage storage(c10::Storage::use_byte_size_t(), bytes, std::move(ptr), nullptr, false);
            at::Tensor t = at::empty({0}, at::TensorOptions().dtype(dtype));
            t.set_(storage, 0, {(int64_t)(bytes / c10::elementSize(dtype))}, {1});
            it = storages_.emplace(key, t).first;
        }
        auto v = make(Value::Storage);
        v->tensor = it->second;
        return v;
    }

    static std::vector<int64_t> ints(const Ref &tuple) {
        std::vector<int64_t> out;
        for (auto &x : tuple->items) out.push_back(x->i);
        return out;
    }

    Ref reduce(const Ref &fn, const Ref &args) {
        const std::string &name = fn->s;
        if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
            auto &a = args->items;
            if (a.size() < 4 || a[0]->kind != Value::Storage) throw std::runtime_error("malformed tensor record");
            at::Tensor storage = a[0]->tensor;
            auto v = make(Value::Tensor);
            v->tensor = at::empty({0}, storage.options());
            v->tensor.set_(storage.storage(), a[1]->i, ints(a[2]), ints(a[3]));
            return v;
        }
        if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
            if (args->items.empty() || args->items[0]->kind != Value::Tensor) throw std::runtime_error("malformed parameter record");
            return args->items[0];
        }
        if (name == "collections.OrderedDict" || name == "builtins.dict") return make(Value::Dict);
        return make(Value::Opaque);
    }
};

void visit_all(const Ref &v, const std::string &prefix, mt_visit_fn visit, void *ctx) {
    if (v->kind == Value::Tensor) {
        visit(ctx, prefix.c_str(), new mt_tensor_s{v->tensor});
    } else if (v->kind == Value::Dict) {
        for (auto &[k, x] : v->dict) {
            std::string key = k->kind == Value::String ? k->s : k->kind == Value::Int ? std::to_string(k->i) : std::string();
            if (key.empty()) continue;
            visit_all(x, prefix.empty() ? key : prefix + "." + key, visit, ctx);
        }
    }
}

}  // namespace

// Throws on malformed files; the caller (mt_load_pth) turns that into an error message.
void mt_load_pth_throwing(const char *path, mt_visit_fn visit, void *ctx) {
    caffe2::serialize::PyTorchStreamReader reader(path);
    auto [ptr, bytes] = reader.getRecord("data.pkl");
    const uint8_t *b = (const uint8_t *)ptr.get();
    std::vector<uint8_t> data(b, b + bytes);
    Unpickler unpickler(reader, data);
    visit_all(unpickler.run(), "", visit, ctx);
}
