// mapFile(path) → ArrayBuffer: the whole file mapped read-only (MAP_PRIVATE, PROT_READ), as an
// external ArrayBuffer that unmaps when the garbage collector frees it. Safetensors loading takes
// typed-array views of it, so a tensor stored in the dtype it is used in is never copied (its
// pages are the page cache's; they count in RSS once touched, and the kernel can drop them).
// Writing into a view faults (SIGSEGV): only frozen weights are ever given such views.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
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
  const size_t len = (size_t)st.st_size;
  if (len == 0) {
    close(fd);
    return Napi::ArrayBuffer::New(info.Env(), 0);
  }
  void* p = mmap(nullptr, len, PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  close(fd);  // the mapping keeps the file
  if (p == MAP_FAILED) throw std::runtime_error("mapFile: cannot map " + path + ": " + std::strerror(e));
  return Napi::ArrayBuffer::New(info.Env(), p, len, [](Napi::Env, void* data, size_t* n) {
    munmap(data, *n);
    delete n;
  }, new size_t(len));
}

}  // namespace dpo
