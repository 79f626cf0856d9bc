// torch.distributed's c10d process groups behind the C shim: Gloo on the CPU (Debian's
// libgloo-dev headers; the symbols are in libtorch_cpu), NCCL for CUDA tensors (in
// libtorch_cuda, found at run time). Collectives run on the group's own threads; each entry point
// waits for its work to finish.
#include "handles.hpp"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <vector>

struct mt_group_s {
    c10::intrusive_ptr<c10d::Store> store;
    c10::intrusive_ptr<c10d::Backend> backend;
};

static std::vector<at::Tensor> tensors(const mt_tensor *ts, int n) {
    std::vector<at::Tensor> out;
    for (int i = 0; i < n; i++) out.push_back(ts[i]->t);
    return out;
}

// The address this machine's host name resolves to, as torch.distributed binds Gloo by default.
// A name that does not resolve, or resolves to loopback, cannot be reached from other nodes: that
// is an error with several nodes, and loopback is used on one.
static std::shared_ptr<::gloo::transport::Device> gloo_device(const char *interface, bool one_node) {
    if (interface && *interface) {
        try {
            return c10d::ProcessGroupGloo::createDeviceForInterface(interface);
        } catch (const std::exception &e) {
            throw std::runtime_error(std::string("GLOO_SOCKET_IFNAME=") + interface + ": " + e.what());
        }
    }
    char name[256] = {0};
    gethostname(name, sizeof name - 1);
    std::string problem;
    addrinfo hints{}, *found = nullptr;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(name, nullptr, &hints, &found) != 0 || !found) {
        problem = "does not resolve to an address";
    } else {
        char text[INET6_ADDRSTRLEN] = {0};
        bool loopback = false;
        if (found->ai_family == AF_INET) {
            auto *a = (sockaddr_in *)found->ai_addr;
            inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
            loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
        } else {
            auto *a = (sockaddr_in6 *)found->ai_addr;
            inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
            loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
        }
        freeaddrinfo(found);
        if (loopback && !one_node) problem = std::string("resolves to the loopback address ") + text;
        if (!loopback) {
            try {
                return c10d::ProcessGroupGloo::createDeviceForHostname(name);
            } catch (const std::exception &e) {
                problem = std::string("resolves to ") + text + ", which cannot be bound here (" + e.what() + ")";
            }
        }
    }
    if (!problem.empty() && !one_node) {
        throw std::runtime_error(std::string("this host's name '") + name + "' " + problem +
                                 ", which other nodes cannot reach; set GLOO_SOCKET_IFNAME to the network interface that reaches MASTER_ADDR");
    }
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
}

// ProcessGroupNCCL lives in libtorch_cuda.so, and its header needs the CUDA toolkit's and NCCL's,
// which a CPU build does not have. Its two exported constructors are found once libtorch_cuda is
// loaded (mt_cuda_load) and run on storage from operator new; the objects' own virtual destructors
// free them. The storage is larger than either class in torch 2.11.
static c10::intrusive_ptr<c10d::Backend> nccl_backend(const c10::intrusive_ptr<c10d::Store> &store, int rank, int world) {
    using OptionsCtor = void (*)(void *, bool);
    using GroupCtor = void (*)(void *, c10::intrusive_ptr<c10d::Store>, int, int, c10::intrusive_ptr<c10d::Backend::Options>);
    auto options_ctor = (OptionsCtor)dlsym(RTLD_DEFAULT, "_ZN4c10d16ProcessGroupNCCL7OptionsC1Eb");
    auto group_ctor = (GroupCtor)dlsym(RTLD_DEFAULT,
        "_ZN4c10d16ProcessGroupNCCLC1EN3c1013intrusive_ptrINS_5StoreENS1_6detail34intrusive_target_default_null_typeIS3_EEEEiiNS2_INS0_7OptionsENS5_IS8_EEEE");
    if (!options_ctor || !group_ctor) {
        throw std::runtime_error("NCCL is not available: this libtorch has no libtorch_cuda.so loaded with ProcessGroupNCCL in it");
    }
    void *o = ::operator new(1 << 16);
    std::memset(o, 0, 1 << 16);
    options_ctor(o, false);
    auto options = c10::intrusive_ptr<c10d::Backend::Options>::unsafe_steal_from_new((c10d::Backend::Options *)o);
    void *g = ::operator new(1 << 20);
    std::memset(g, 0, 1 << 20);
    group_ctor(g, store, rank, world, options);
    return c10::intrusive_ptr<c10d::Backend>::unsafe_steal_from_new((c10d::Backend *)g);
}

extern "C" {

mt_group mt_group_new(int nccl, const char *master, int port, int serve, int rank, int world, const char *interface, int one_node,
                      double timeout) {
    PROTECT(nullptr, {
        auto wait = std::chrono::milliseconds((int64_t)(timeout * 1000));
        c10::intrusive_ptr<c10d::Backend> backend;
        std::shared_ptr<::gloo::transport::Device> device;
        if (!nccl) device = gloo_device(interface, one_node != 0);
        c10d::TCPStoreOptions o;
        o.port = (uint16_t)port;
        o.isServer = serve != 0;
        o.numWorkers = world;
        o.waitWorkers = true;
        o.timeout = wait;
        c10::intrusive_ptr<c10d::Store> store;
        try {
            // Keys of their own, as torch.distributed's groups have, beside a torchrun agent's.
            store = c10::make_intrusive<c10d::PrefixStore>("medcat/", c10::make_intrusive<c10d::TCPStore>(master, o));
        } catch (const std::exception &e) {
            throw std::runtime_error(std::string(serve ? "cannot serve" : "cannot reach") + " the rendezvous at MASTER_ADDR:MASTER_PORT = " +
                                     master + ":" + std::to_string(port) + ": " + e.what());
        }
        if (nccl) {
            backend = nccl_backend(store, rank, world);
        } else {
            auto options = c10d::ProcessGroupGloo::Options::create(wait);
            options->devices.push_back(device);
            backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, options);
        }
        return new mt_group_s{store, backend};
    })
}

void mt_group_free(mt_group g) { delete g; }

int mt_group_all_reduce(mt_group g, const mt_tensor *ts, int n) {
    PROTECT(-1, {
        auto list = tensors(ts, n);
        g->backend->allreduce_coalesced(list)->wait();
        return 0;
    })
}

int mt_group_broadcast(mt_group g, const mt_tensor *ts, int n, int root) {
    PROTECT(-1, {
        auto list = tensors(ts, n);
        c10d::BroadcastOptions o;
        o.rootRank = root;
        for (auto &t : list) {
            std::vector<at::Tensor> one{t};
            g->backend->broadcast(one, o)->wait();
        }
        return 0;
    })
}

int mt_group_barrier(mt_group g) {
    PROTECT(-1, {
        g->backend->barrier()->wait();
        return 0;
    })
}

}
