// Reading a tensor's bytes with every OpenMP thread, each pread-ing its own slice a megabyte at a
// time: a page-cache copy on one core ran at ~2.4 GB/s here, so loading a 3 GB checkpoint was
// bound by one thread's copy (and, for float32, by touching the fresh pages it widens into).
//   readParallel(fd, offset, dst)         dst (a Uint8Array) ← the file's bytes at offset
//   readBf16AsF32(fd, offset, n, dst)     dst[i] ← the bf16 value at offset + 2i, widened (exact)
#include <unistd.h>
#include <omp.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>
#include "common.h"

namespace dpo {

namespace {

constexpr int64_t kChunk = 1 << 20;  // bytes per pread

// Reads [offset, offset + bytes) of fd in kChunk pieces spread over the threads; each piece lands
// in `where(c)` (a buffer of kChunk bytes, or fewer for the last) and is passed to `done(c, p, k)`.
// Errors are gathered and thrown after the parallel region (an exception may not leave it).
template <typename Where, typename Done>
void readChunks(int fd, int64_t offset, int64_t bytes, Where where, Done done) {
  const int64_t chunks = (bytes + kChunk - 1) / kChunk;
  int err = 0;
  bool ended = false;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; c++) {
    const int64_t k = std::min(kChunk, bytes - c * kChunk);
    char* p = where(c);
    int64_t got = 0;
    while (got < k) {
      const ssize_t r = pread(fd, p + got, (size_t)(k - got), (off_t)(offset + c * kChunk + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        const int e = r < 0 ? errno : 0;
#pragma omp critical
        {
          if (e && !err) err = e;
          if (!e) ended = true;
        }
        break;
      }
      got += r;
    }
    if (got == k) done(c, p, k);
  }
  if (err) throw std::runtime_error(std::string("read failed: ") + std::strerror(err));
  if (ended) throw std::runtime_error("the file ends inside the tensor (truncated download?)");
}

}  // namespace

Napi::Value ReadParallel(const Napi::CallbackInfo& info) {
  const int fd = (int)I64(info[0]);
  const int64_t offset = I64(info[1]);
  Napi::Uint8Array dst = info[2].As<Napi::Uint8Array>();
  char* d = (char*)dst.Data();
  readChunks(fd, offset, (int64_t)dst.ByteLength(), [&](int64_t c) { return d + c * kChunk; }, [](int64_t, char*, int64_t) {});
  return info.Env().Undefined();
}

Napi::Value ReadBf16AsF32(const Napi::CallbackInfo& info) {
  const int fd = (int)I64(info[0]);
  const int64_t offset = I64(info[1]), n = I64(info[2]);
  uint32_t* dst = (uint32_t*)F32(info[3]);
  // One bounce buffer per thread, allocated before the parallel region (nothing in it may throw);
  // the widening writes straight into dst.
  const int64_t per = std::min<int64_t>(kChunk / 2, n);
  std::vector<uint16_t> bufs((size_t)(omp_get_max_threads() * per));
  readChunks(fd, offset, n * 2,
      [&](int64_t) { return (char*)(bufs.data() + omp_get_thread_num() * per); },
      [&](int64_t c, char* p, int64_t k) {
        const uint16_t* s = (const uint16_t*)p;
        uint32_t* o = dst + c * (kChunk / 2);
        for (int64_t i = 0; i < k / 2; i++) o[i] = (uint32_t)s[i] << 16;
      });
  return info.Env().Undefined();
}

}  // namespace dpo
