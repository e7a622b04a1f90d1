// The Linux binaries link libstdc++ statically, so they load where the system libstdc++ is older than
// the build machine's (Amazon Linux 2023, RHEL 9: GCC 11). libstdc++'s std::random_device then
// references arc4random, which glibc added in 2.36; the engine never uses random_device, and this
// local (hidden) definition keeps the binaries loadable on glibc 2.34.
#if defined(__linux__)
#include <sys/random.h>  // defines __GLIBC__ (through features.h) on glibc

#include <cstdint>
#endif

#if defined(__linux__) && defined(__GLIBC__)
extern "C" __attribute__((visibility("hidden"))) uint32_t arc4random(void) {
  uint32_t v = 0;
  while (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
  }
  return v;
}
#endif
