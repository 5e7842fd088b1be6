// mapFile(path[, offset, length]) → ArrayBuffer: the whole file, or the byte range [offset,
// offset + length), mapped read-only (MAP_PRIVATE, PROT_READ), as an external ArrayBuffer that
// unmaps when the garbage collector frees it. The range form serves files larger than one
// ArrayBuffer may be (4 GiB on Node 20): each tensor gets its own mapping. Safetensors loading takes
// typed-array views of it, so a tensor stored in the dtype it is used in is never copied (its
// pages are the page cache's; they count in RSS once touched, and the kernel can drop them).
// Writing into a view faults (SIGSEGV): only frozen weights are ever given such views.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include "common.h"

namespace dpo {

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("mapFile: cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    throw std::runtime_error("mapFile: cannot stat " + path + ": " + std::strerror(e));
  }
  const size_t size = (size_t)st.st_size;
  const bool range = info.Length() >= 3;
  const double off = range ? info[1].As<Napi::Number>().DoubleValue() : 0;
  const double want = range ? info[2].As<Napi::Number>().DoubleValue() : (double)size;
  if (!(off >= 0 && want >= 0 && off + want <= (double)size)) {
    close(fd);
    throw std::runtime_error("mapFile: range " + std::to_string((long long)off) + "+" + std::to_string((long long)want) + " is outside " + path + " (" + std::to_string(size) + " bytes)");
  }
  const size_t len = (size_t)want;
  if (len == 0) {
    close(fd);
    return Napi::ArrayBuffer::New(info.Env(), 0);
  }
  // mmap offsets are page multiples: map from the page holding `off`, hand out the view from `off`.
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t start = (size_t)off / page * page, skip = (size_t)off - start;
  void* p = mmap(nullptr, len + skip, PROT_READ, MAP_PRIVATE, fd, (off_t)start);
  int e = errno;
  close(fd);  // the mapping keeps the file
  if (p == MAP_FAILED) throw std::runtime_error("mapFile: cannot map " + path + ": " + std::strerror(e));
  struct Mapping { void* base; size_t len; };
  return Napi::ArrayBuffer::New(info.Env(), (char*)p + skip, len, [](Napi::Env, void*, Mapping* m) {
    munmap(m->base, m->len);
    delete m;
  }, new Mapping{p, len + skip});
}

// allocLarge(bytes) → ArrayBuffer: zero-filled anonymous memory for a large long-lived buffer (a
// float32 weight widened at load), unmapped when garbage-collected. madvise(MADV_HUGEPAGE) asks
// for 2 MB pages where the kernel's transparent huge pages are in "madvise" mode (Debian's
// default): a VM pays ~5 µs per 4 KB page fault, and widening a 1.5B checkpoint to float32 faults
// 1.5 M of them (~8 s) — 512× fewer with huge pages. Where the advice is refused the memory is
// the same, only slower to touch.
Napi::Value AllocLarge(const Napi::CallbackInfo& info) {
  const double want = info[0].As<Napi::Number>().DoubleValue();
  if (!(want >= 0)) throw std::runtime_error("allocLarge: bad size");
  const size_t len = (size_t)want;
  if (len == 0) return Napi::ArrayBuffer::New(info.Env(), 0);
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error(std::string("allocLarge: cannot allocate ") + std::to_string(len) + " bytes: " + std::strerror(errno));
#ifdef MADV_HUGEPAGE
  madvise(p, len, MADV_HUGEPAGE);
#endif
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), (int64_t)len);
  struct Block { void* base; size_t len; };
  return Napi::ArrayBuffer::New(info.Env(), p, len, [](Napi::Env env, void*, Block* b) {
    munmap(b->base, b->len);
    Napi::MemoryManagement::AdjustExternalMemory(env, -(int64_t)b->len);
    delete b;
  }, new Block{p, len});
}

// discardLarge(buffer): gives an allocLarge block's pages back to the kernel now
// (madvise(MADV_DONTNEED); its virtual range goes when the garbage collector frees it). Node runs
// an external buffer's finalizer only when the event loop turns, and a training step with gradient
// accumulation runs its micro-batches without one: the buffers the pool dropped during the step
// stayed resident until the step ended. Reads of a discarded block give zeros; the pool never
// hands it out again. Only blocks from allocLarge may come here (tensor/large-buffer.ts checks).
Napi::Value DiscardLarge(const Napi::CallbackInfo& info) {
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  const size_t len = ab.ByteLength(), page = (size_t)sysconf(_SC_PAGESIZE);
  if (len == 0) return info.Env().Undefined();
  if ((uintptr_t)ab.Data() % page != 0) throw std::runtime_error("discardLarge: not a block from allocLarge (unaligned)");
  if (madvise(ab.Data(), len, MADV_DONTNEED) != 0) throw std::runtime_error(std::string("discardLarge: madvise: ") + std::strerror(errno));
  return info.Env().Undefined();
}

}  // namespace dpo
