// Must NOT compile: a policy with `visible` and `classify` but no `runs`. CTest passes only when
// the build fails with trimix's message "trimix mask policy: missing `runs(...".
// compile.policy_ok is the control that proves the same harness compiles a valid policy.
#include <trimix/mask.hpp>

namespace {

struct NoRuns {
  TRIMIX_FUNCTION bool visible(trimix::index_t, trimix::index_t, trimix::index_t) const {
    return true;
  }
  TRIMIX_FUNCTION trimix::TileClass classify(const trimix::TileGeometry&, trimix::index_t,
                                             trimix::index_t) const {
    return trimix::TileClass::full;
  }
};

}  // namespace

static_assert(trimix::check_mask_policy<NoRuns>());
