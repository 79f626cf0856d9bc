// torch.distributed's c10d process groups behind the C shim: Gloo on the CPU (Debian's
// libgloo-dev headers; the symbols are in libtorch_cpu). Collectives run on the group's own
// threads; each entry point waits for its work to finish.
#include "handles.hpp"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
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

extern "C" {

mt_group mt_group_gloo(const char *host, int port, int rank, int world, double timeout) {
    PROTECT(nullptr, {
        auto wait = std::chrono::milliseconds((int64_t)(timeout * 1000));
        c10d::TCPStoreOptions o;
        o.port = (uint16_t)port;
        o.isServer = rank == 0;
        o.numWorkers = world;
        o.waitWorkers = true;
        o.timeout = wait;
        auto store = c10::make_intrusive<c10d::TCPStore>(host, o);
        auto options = c10d::ProcessGroupGloo::Options::create(wait);
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host));
        auto backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, options);
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
